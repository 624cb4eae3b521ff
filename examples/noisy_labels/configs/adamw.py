# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""AdamW: Adam with decoupled weight decay 1e-2, the usual regulariser."""

from examples.noisy_labels import configs

LABEL = 'AdamW (weight decay 1e-2)'
OVERRIDES = {'optimizer': 'adam', 'weight_decay': 1e-2}


def get_config():
  return configs.build(OVERRIDES)
