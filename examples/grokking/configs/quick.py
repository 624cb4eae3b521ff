# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The quick task: addition mod 23, 70% train, one block of width 64.

Minutes on two CPU cores: the top-level README's main job, the notebook's
task and the home of the 3-seed sweep (``compare.py --suite=quick`` and
``--suite=quick_sweep``). AdamW as in the default; combine with an
optimizer's file through ``configs.build(quick.TASK, snr_adam.OVERRIDES)``.
"""

from examples.grokking import configs

TASK = {'operation': 'addition', 'p': 23, 'train_fraction': 0.7,
        'width': 64, 'depth': 1, 'batch_size': 128, 'eval_every': 50,
        'num_steps': 4000, 'stop_at_target': True}


def get_config():
  return configs.build(TASK)
