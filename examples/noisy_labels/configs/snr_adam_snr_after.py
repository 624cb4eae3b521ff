# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""SNR-Adam with the smooth mask mu^2 / (mu^2 + nu), after Adam."""

from examples.noisy_labels import configs

LABEL = 'SNR-Adam, exact, snr, after'
OVERRIDES = {'optimizer': 'snr_adam', 'snr.mode': 'snr',
             'snr.placement': 'after'}


def get_config():
  return configs.build(OVERRIDES)
