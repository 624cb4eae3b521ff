# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Streaming SNR-AdamW: the paper's one-extra-vector form (snr mask)."""

from examples.grokking.configs import default


def get_config():
  config = default.get_config()
  config.optimizer = 'streaming_snr_adamw'
  config.snr.mode = 'snr'
  return config
