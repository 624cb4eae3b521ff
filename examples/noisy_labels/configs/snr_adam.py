# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""SNR-Adam: exact per-example statistics, hard mask before Adam."""

from examples.noisy_labels import configs

LABEL = 'SNR-Adam, exact, hard, before'
OVERRIDES = {'optimizer': 'snr_adam'}


def get_config():
  return configs.build(OVERRIDES)
