# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Trains one grokking run. Intentionally short: the logic is in train.py.

  python -m examples.grokking.main --workdir=/tmp/grok \
      --config=examples/grokking/configs/snr_adam.py --config.seed=1
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

# The configs import examples.grokking; make the repository importable when
# this file is run as a script.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from examples.grokking import train  # pylint: disable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Directory for metrics, checkpoints and '
                    'plots; an existing run there is resumed.')
config_flags.DEFINE_config_file(
    'config', os.path.join(os.path.dirname(__file__), 'configs', 'default.py'),
    'Path to a configuration file (configs/*.py).', lock_config=True)
flags.DEFINE_bool('distributed', False,
                  'Call jax.distributed.initialize() first: one process per '
                  'host of a TPU pod slice or a multi-GPU cluster, the '
                  'coordinator taken from the environment.')
flags.mark_flags_as_required(['workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  try:
    train.validate_config(FLAGS.config)
  except ValueError as e:
    sys.exit(f'error: {e}')
  if FLAGS.distributed:
    jax.distributed.initialize()
  logging.info('JAX process %d of %d; devices: %s', jax.process_index(),
               jax.process_count(), jax.devices())
  result = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  logging.info('result: %s', result)
  print({k: result[k] for k in ('optimizer', 'seed', 'steps_to_target',
                                'final_val_accuracy')})


if __name__ == '__main__':
  app.run(main)
