# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""A seconds-long setting for tests and CI: few points, a small network."""

from examples.pinn import configs

TASK = {'n_collocation': 64, 'n_initial': 16, 'n_boundary': 16,
        'collocation_batch': 16, 'initial_batch': 0, 'boundary_batch': 8,
        'hidden_layers': 1, 'hidden_width': 8, 'grid_nx': 16, 'grid_nt': 5,
        'learning_rate': 1e-2, 'num_steps': 20, 'decay_steps': 20,
        'eval_every': 5, 'checkpoint_every': 10}


def get_config():
  return configs.build(TASK)
