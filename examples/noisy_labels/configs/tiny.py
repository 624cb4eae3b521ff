# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""A seconds-long setting for tests and CI: the synthetic clusters, a small
MLP, batches of 16 and a larger learning rate, so that 20 steps move it."""

from examples.noisy_labels import configs

TASK = {'dataset': 'synthetic', 'hidden_layers': 1, 'hidden_width': 16,
        'cnn.channels': 4, 'batch_size': 16, 'learning_rate': 1e-2,
        'num_steps': 20, 'eval_every': 5, 'checkpoint_every': 10}


def get_config():
  return configs.build(TASK)
