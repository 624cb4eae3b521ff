# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Fits one implicit neural representation. Intentionally short: see train.py.

  python -m examples.inr.main --workdir=/tmp/inr \\
      --config=examples/inr/configs/snr_adam.py --config.seed=1

Every config field can be overridden (--config.<field>=<value>); the fields
are listed under --config below. ``--config.image=photo.png`` fits another
image (grey or RGB). The same command resumes an interrupted run; Ctrl-C
saves a checkpoint and prints that command.
"""

import os
import sys

# The configs import examples.inr; make the repository importable when this
# file is run as a script.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from examples.common import cli  # pylint: disable=g-import-not-at-top,wrong-import-position

if __name__ == '__main__':
  cli.run_example('examples.inr',
                  summary_keys=('optimizer', 'seed', 'best_clean_psnr',
                                'best_clean_step', 'final_clean_psnr',
                                'final_fit_psnr', 'early_stop_clean_psnr'))
