# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""SNR-Adam, exact multi-term statistics, hard, before."""

from examples.pinn import configs

LABEL = 'SNR-Adam, exact multi-term statistics, hard, before'
OVERRIDES = {'optimizer': 'snr_adam'}


def get_config():
  return configs.build(OVERRIDES)
