# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""AdamW, weight decay 1e-4."""

from examples.pinn import configs

LABEL = 'AdamW, weight decay 1e-4'
OVERRIDES = {'optimizer': 'adamw', 'weight_decay': 1e-4}


def get_config():
  return configs.build(OVERRIDES)
