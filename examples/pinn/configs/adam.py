# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Adam."""

from examples.pinn import configs

LABEL = 'Adam'
OVERRIDES = {'optimizer': 'adam'}


def get_config():
  return configs.build(OVERRIDES)
