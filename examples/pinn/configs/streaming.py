# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""streaming SNR-AdamW."""

from examples.pinn import configs

LABEL = 'streaming SNR-AdamW'
OVERRIDES = {'optimizer': 'streaming_snr_adamw'}


def get_config():
  return configs.build(OVERRIDES)
