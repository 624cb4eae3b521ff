# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""SNR-Adam: exact per-example statistics, hard mask before Adam."""

from examples.grokking.configs import default


def get_config():
  config = default.get_config()
  config.optimizer = 'snr_adam'
  return config
