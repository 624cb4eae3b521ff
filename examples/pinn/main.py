# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Trains one PINN on the convection equation. Intentionally short: see train.py.

  python -m examples.pinn.main --workdir=/tmp/pinn \\
      --config=examples/pinn/configs/snr_adam.py --config.seed=1

Every config field can be overridden (--config.<field>=<value>); the fields
are listed under --config below (``--config.beta=30`` is the hard case).
The same command resumes an interrupted run; Ctrl-C saves a checkpoint and
prints that command.
"""

import os
import sys

# The configs import examples.pinn; make the repository importable when this
# file is run as a script.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from examples.common import cli  # pylint: disable=g-import-not-at-top,wrong-import-position

if __name__ == '__main__':
  cli.run_example('examples.pinn',
                  summary_keys=('optimizer', 'seed', 'beta', 'final_rel_l2',
                                'best_rel_l2', 'steps_to_target',
                                'final_ic_error_clean',
                                'final_ic_error_noisy', 'final_noise_fit'))
