# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""SNR-Adam with Grokfast's filter on the masked mean, in front of Adam."""

from examples.grokking import configs

LABEL = 'SNR-Adam + Grokfast'
OVERRIDES = {'optimizer': 'snr_adam_grokfast'}


def get_config():
  return configs.build(OVERRIDES)
