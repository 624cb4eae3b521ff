# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of suites.py on hand-made run directories (no training).

The compare program itself is run on a tiny suite in
examples/<name>/train_test.py.
"""

import json
import os
import shlex
import types

from absl.testing import absltest

from examples.common import suites

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
OPTIMIZER = types.SimpleNamespace(OVERRIDES={'optimizer': 'adam'},
                                  LABEL='Adam')
SUITE = suites.Suite(task={}, runs={'adam': suites.Run(OPTIMIZER)},
                     about='a suite')


def finished_run(workdir, seed, *segments):
  path = suites.run_dir(workdir, 'adam', seed)
  os.makedirs(path)
  with open(os.path.join(path, 'result.json'), 'w') as f:
    json.dump({}, f)
  with open(os.path.join(path, 'provenance.json'), 'w') as f:
    json.dump({'segments': list(segments)}, f)


class CommandsOfTest(absltest.TestCase):

  def test_the_recorded_command_lines_in_order_of_start(self):
    workdir = self.create_tempdir().full_path
    program = os.path.join(REPO, 'examples', 'toy', 'compare.py')
    argv = [program, "--workdir=/tmp/it's here", '--seeds=0']
    finished_run(workdir, 0,
                 {'argv': shlex.join(argv), 'xla_flags': '',
                  'started': '2026-01-02T00:00:00+00:00'})
    finished_run(workdir, 1,
                 # Recorded before argv was quoted: read as it was.
                 {'argv': f"{program} --workdir=/tmp/it's --seeds=1",
                  'xla_flags': '--a=1 --b=2',
                  'started': '2026-01-01T00:00:00+00:00'})
    self.assertEqual(
        suites.commands_of([workdir], SUITE, [0, 1]),
        ["XLA_FLAGS='--a=1 --b=2' python -m examples.toy.compare "
         """'--workdir=/tmp/it'"'"'s' --seeds=1""",
         'python -m examples.toy.compare '
         """'--workdir=/tmp/it'"'"'s here' --seeds=0"""])


if __name__ == '__main__':
  absltest.main()
