# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""A seconds-long setting for tests and CI: addition mod 11, a small model."""

from examples.grokking.configs import default


def get_config():
  config = default.get_config()
  config.operation = 'addition'
  config.p = 11
  config.train_fraction = 0.5
  config.width = 16
  config.depth = 1
  config.heads = 2
  config.batch_size = 16
  config.num_steps = 20
  config.eval_every = 5
  config.checkpoint_every = 10
  return config
