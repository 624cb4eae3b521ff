# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Trains one classifier on corrupted labels. Intentionally short: see train.py.

  python -m examples.noisy_labels.main --workdir=/tmp/noisy \\
      --config=examples/noisy_labels/configs/snr_adam.py --config.seed=1

Every config field can be overridden (--config.<field>=<value>); the fields
are listed under --config below. ``--config.dataset=mnist`` trains on a
prepared TFDS dataset (``--config.data_dir`` says where it is). The same
command resumes an interrupted run; Ctrl-C saves a checkpoint and prints
that command.
"""

import os
import sys

# The configs import examples.noisy_labels; make the repository importable
# when this file is run as a script.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from examples.common import cli  # pylint: disable=g-import-not-at-top,wrong-import-position

if __name__ == '__main__':
  cli.run_example('examples.noisy_labels',
                  summary_keys=('optimizer', 'seed', 'noise_fraction',
                                'best_test_accuracy', 'best_test_step',
                                'final_test_accuracy', 'final_memorisation',
                                'early_stop_test_accuracy'))
