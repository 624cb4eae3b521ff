# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""SNR-Adam with Grokfast's filter on the masked mean, in front of Adam."""

from examples.grokking.configs import default


def get_config():
  config = default.get_config()
  config.optimizer = 'snr_adam_grokfast'
  return config
