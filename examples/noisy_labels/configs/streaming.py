# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Streaming SNR-AdamW: the paper's one-extra-vector form (snr mask), no
per-example gradients, weight decay 0 like Adam's."""

from examples.noisy_labels import configs

LABEL = 'streaming SNR-AdamW (snr, rho 0.99)'
OVERRIDES = {'optimizer': 'streaming_snr_adamw', 'snr.mode': 'snr'}


def get_config():
  return configs.build(OVERRIDES)
