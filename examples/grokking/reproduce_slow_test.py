# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Re-runs the cheapest cells of every published table and compares exactly.

Slow (a few minutes): ``SNR_OPTAX_SLOW=1 python -m pytest
examples/grokking/reproduce_slow_test.py``. A published table
(``results/<suite>/results.json``) names the environment it was measured in;
where this machine has the same one (versions, CPU, backend), the same
command, run with the table's ``XLA_FLAGS``, must give the same steps to the
target and the same final held-out accuracy, bit for bit. Where the
environment differs the test is skipped and says what differs: the numbers
are then not expected to agree (see the README's noise floor).
"""

import json
import os
import subprocess
import sys

from absl.testing import absltest

from examples.common import provenance

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
RESULTS = os.path.join(REPO, 'examples', 'grokking', 'results')
EXAMPLE = os.path.join(REPO, 'examples', 'grokking')
# Cells per table: the cheapest that reached the target.
CELLS = 2
# What the re-run sets itself (XLA_FLAGS, and so the device count) and what
# may differ without changing a number (the code hash: a change of code
# that changes a number fails the test, which is the point).
_SET_BY_THE_TEST = ('xla_flags', 'device_count', 'code_hash')


def published():
  for suite in sorted(os.listdir(RESULTS)):
    path = os.path.join(RESULTS, suite, 'results.json')
    if os.path.exists(path):
      with open(path) as f:
        summary = json.load(f)
      if summary.get('environment'):
        yield summary


def cheapest(summary, count):
  cells = [(seed['final_step'], name, seed)
           for name, row in summary['results'].items()
           for seed in row['per_seed']
           if seed['steps_to_target'] is not None]
  return [(name, seed) for _, name, seed in sorted(
      cells, key=lambda c: (c[0], c[1], c[2]['seed']))[:count]]


def current_environment(xla_flags):
  code = ('import json; from examples.common import provenance; '
          f'print(json.dumps(provenance.collect({EXAMPLE!r})))')
  out = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                       capture_output=True, text=True, check=True,
                       env={**os.environ, 'XLA_FLAGS': xla_flags,
                            'JAX_PLATFORMS': 'cpu'})
  return json.loads(out.stdout.strip().splitlines()[-1])


class ReproduceTest(absltest.TestCase):

  def test_cheapest_cells_reproduce_exactly(self):
    summaries = list(published())
    self.assertNotEmpty(summaries, 'no published table with provenance')
    for summary in summaries:
      recorded = summary['environment']
      here = current_environment(recorded['xla_flags'])
      differ = [d for d in provenance.differences(recorded, here)
                if d.split(':')[0] not in _SET_BY_THE_TEST]
      if differ:
        self.skipTest(f'{summary["suite"]}: this machine is not the '
                      f'environment of the table ({"; ".join(differ)})')
      for name, seed in cheapest(summary, CELLS):
        with self.subTest(suite=summary['suite'], run=name,
                          seed=seed['seed']):
          workdir = self.create_tempdir().full_path
          subprocess.run(
              [sys.executable, '-m', 'examples.grokking.compare',
               f'--suite={summary["suite"]}', f'--only={name}',
               f'--seeds={seed["seed"]}', f'--workdir={workdir}'],
              cwd=REPO, capture_output=True, text=True, check=True,
              timeout=1800, env={**os.environ,
                                 'XLA_FLAGS': recorded['xla_flags'],
                                 'JAX_PLATFORMS': 'cpu'})
          with open(os.path.join(workdir, name, f'seed_{seed["seed"]}',
                                 'result.json')) as f:
            result = json.load(f)
          code_changed = (here['code_hash'] != recorded['code_hash'])
          self.assertEqual(
              (result['steps_to_target'], result['final_val_accuracy']),
              (seed['steps_to_target'], seed['final_val_accuracy']),
              'the re-run differs from the published table'
              + (' (the code changed since: regenerate the table)'
                 if code_changed else ''))


if __name__ == '__main__':
  absltest.main()
