# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Grokfast: the EMA filter (alpha 0.98, lambda 2) in front of AdamW."""

from examples.grokking import configs

LABEL = 'Grokfast (alpha 0.98, lambda 2) + AdamW'
OVERRIDES = {'optimizer': 'grokfast'}


def get_config():
  return configs.build(OVERRIDES)
