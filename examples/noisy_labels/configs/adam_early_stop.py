# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Adam with early stopping: trains on 90% of the noisy training set, picks
the evaluation of best accuracy on the other 10% (their noisy labels): the
validation set the rule claims to remove."""

from examples.noisy_labels import configs

LABEL = 'Adam + early stopping on a noisy validation split'
OVERRIDES = {'optimizer': 'adam_early_stop'}


def get_config():
  return configs.build(OVERRIDES)
