# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Streaming SNR-AdamW: the paper's one-extra-vector form (snr mask)."""

from examples.inr import configs

LABEL = 'streaming SNR-AdamW (snr, rho 0.99)'
OVERRIDES = {'optimizer': 'streaming_snr_adamw', 'snr.mode': 'snr'}


def get_config():
  return configs.build(OVERRIDES)
