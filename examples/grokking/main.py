# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Trains one grokking run. Intentionally short: the logic is in train.py.

  python -m examples.grokking.main --workdir=/tmp/grok \\
      --config=examples/grokking/configs/snr_adam.py --config.seed=1

Every config field can be overridden (--config.<field>=<value>); the fields
are listed under --config below. The same command resumes an interrupted
run; Ctrl-C saves a checkpoint and prints that command.
"""

import os
import sys

# The configs import examples.grokking; make the repository importable when
# this file is run as a script.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from examples.common import cli  # pylint: disable=g-import-not-at-top,wrong-import-position

if __name__ == '__main__':
  cli.run_example('examples.grokking',
                  summary_keys=('optimizer', 'seed', 'steps_to_target',
                                'final_val_accuracy'))
