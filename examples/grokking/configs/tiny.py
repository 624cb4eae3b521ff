# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""A seconds-long setting for tests and CI: addition mod 11, a small model."""

from examples.grokking import configs

TASK = {'operation': 'addition', 'p': 11, 'train_fraction': 0.5,
        'width': 16, 'depth': 1, 'heads': 2, 'batch_size': 16,
        'num_steps': 20, 'eval_every': 5, 'checkpoint_every': 10}


def get_config():
  return configs.build(TASK)
