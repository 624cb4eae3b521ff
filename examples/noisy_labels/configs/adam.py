# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Adam on every (noisy) training label (the default's)."""

from examples.noisy_labels import configs

LABEL = 'Adam'
OVERRIDES = {'optimizer': 'adam'}


def get_config():
  return configs.build(OVERRIDES)
