# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Adam at SIREN's learning rate 1e-4 on every pixel (the default's)."""

from examples.inr import configs

LABEL = 'Adam'
OVERRIDES = {'optimizer': 'adam'}


def get_config():
  return configs.build(OVERRIDES)
