# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Grokfast: the EMA filter (alpha 0.98, lambda 2) in front of AdamW."""

from examples.grokking.configs import default


def get_config():
  config = default.get_config()
  config.optimizer = 'grokfast'
  return config
