# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""AdamW with Power et al.'s hyperparameters (lr 1e-3, wd 1, betas 0.9/0.98)."""

from examples.grokking.configs import default


def get_config():
  return default.get_config()
