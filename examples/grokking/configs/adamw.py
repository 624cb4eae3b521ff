# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""AdamW with Power et al.'s hyperparameters (the default's)."""

from examples.grokking import configs

LABEL = 'AdamW, Power et al. (lr 1e-3, wd 1)'
OVERRIDES = {'optimizer': 'adamw'}


def get_config():
  return configs.build(OVERRIDES)
