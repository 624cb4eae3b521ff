# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""A seconds-long setting for tests and CI: 16 x 16 pixels, a small SIREN.

Pixel minibatches of 64 (the default fits the full image every step) and a
larger learning rate, so that 20 steps move the fit.
"""

from examples.inr import configs

TASK = {'side': 16, 'hidden_layers': 1, 'hidden_width': 16,
        'batch_size': 64, 'learning_rate': 1e-2, 'num_steps': 20,
        'eval_every': 5, 'checkpoint_every': 10}


def get_config():
  return configs.build(TASK)
