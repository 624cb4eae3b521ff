# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""SNR-Adam with the smooth mask mu^2 / (mu^2 + nu), before Adam."""

from examples.noisy_labels import configs

LABEL = 'SNR-Adam, exact, snr, before'
OVERRIDES = {'optimizer': 'snr_adam', 'snr.mode': 'snr'}


def get_config():
  return configs.build(OVERRIDES)
