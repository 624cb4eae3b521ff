# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""SNR-Adam, hard mask after Adam (Algorithm 1's placement: the mean feeds
Adam's moments, the mask gates Adam's direction)."""

from examples.noisy_labels import configs

LABEL = 'SNR-Adam, exact, hard, after'
OVERRIDES = {'optimizer': 'snr_adam', 'snr.placement': 'after'}


def get_config():
  return configs.build(OVERRIDES)
