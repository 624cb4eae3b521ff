# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Adam with early stopping: trains on 90% of the pixels, picks the step of
best PSNR on the other 10% (the validation set the rule claims to remove)."""

from examples.inr import configs

LABEL = 'Adam + early stopping on held-out pixels'
OVERRIDES = {'optimizer': 'adam_early_stop'}


def get_config():
  return configs.build(OVERRIDES)
