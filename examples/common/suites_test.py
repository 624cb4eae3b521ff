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

from absl import logging
from absl.testing import absltest
import ml_collections

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


class TabulateTest(absltest.TestCase):
  """The pieces of an example's ``tabulate`` that every table has."""

  def test_means_skip_what_is_missing(self):
    self.assertEqual(suites.mean([1.0, None, 2.0]), 1.5)
    self.assertIsNone(suites.mean([None]))
    self.assertIsNone(suites.mean([]))
    self.assertEqual(suites.mean_mask([{'mask_fraction': 0.5},
                                       {'mask_fraction': None}, {},
                                       {'mask_fraction': 0.25}]), 0.375)
    self.assertIsNone(suites.mean_mask([{'mask_fraction': None}]))

  def test_a_row_and_its_summary_written(self):
    workdir = self.create_tempdir().full_path
    finished_run(workdir, 0, {'argv': 'python -m examples.toy.compare',
                              'xla_flags': '',
                              'started': '2026-01-02T00:00:00+00:00'})
    path = suites.run_dir(workdir, 'adam', 0)
    with open(os.path.join(path, 'metrics.jsonl'), 'w') as f:
      f.write('{"step": 5, "mask_fraction": 0.5}\n{"step": 10}\n')
    self.assertEqual(suites.curve(workdir, 'adam', 0),
                     [{'step': 5, 'mask_fraction': 0.5}, {'step': 10}])
    per_seed = [{'seed': 0, 'seconds_per_step': 0.1, 'mean_mask': 0.5},
                {'seed': 1, 'seconds_per_step': 0.3, 'mean_mask': None},
                {'seed': 2, 'seconds_per_step': 0.2, 'mean_mask': 0.3}]
    row = {**suites.run_entries(suites.Run(OPTIMIZER, {'b1': 0.5}),
                                per_seed),
           **suites.speed_and_mask(per_seed)}
    self.assertEqual(row, {'label': 'Adam, b1=0.5',
                           'overrides': {'optimizer': 'adam', 'b1': 0.5},
                           'per_seed': per_seed, 'seeds': [0, 1, 2],
                           'seconds_per_step': 0.2, 'mean_mask': 0.4})
    summary = suites.make_summary(
        workdir, 'toy', SUITE, [0], environment=None,
        settings={'target': 0.9}, rows={'adam': row},
        noise_metric='steps_to_target')
    # The settings between the baseline and the environment, in order.
    self.assertEqual(list(summary),
                     ['suite', 'about', 'task', 'seeds', 'baseline', 'target',
                      'environment', 'started', 'commands', 'noise_floor',
                      'results'])
    self.assertEqual(summary['baseline'], 'adam')
    self.assertEqual(summary['started'], ['2026-01-02T00:00:00+00:00'])
    self.assertEqual(summary['commands'], ['python -m examples.toy.compare'])
    self.assertIsNone(summary['noise_floor'])
    suites.write_summary(workdir, summary, lambda s: f'table of {s["suite"]}')
    with open(os.path.join(workdir, 'results.json')) as f:
      self.assertEqual(json.load(f), json.loads(json.dumps(summary)))
    with open(os.path.join(workdir, 'results.md')) as f:
      self.assertEqual(f.read(), 'table of toy\n')


def build(*overrides):
  """A toy example's ``configs.build``: the default, then each override."""
  config = ml_collections.ConfigDict({'optimizer': 'sgd', 'seed': 0,
                                      'num_steps': 100, 'eval_every': 10,
                                      'mesh_data': 0})
  for override in overrides:
    config.update(override)
  return config


class PartialTest(absltest.TestCase):
  """A table of runs short of a seed says which seeds each row has."""

  @staticmethod
  def summary(**seeds_of):
    return {'seeds': [0, 1, 2], 'baseline': 'adam',
            'results': {name: {'seeds': seeds}
                        for name, seeds in seeds_of.items()}}

  def test_a_complete_table_says_nothing_more(self):
    # Every row of every seed: the published tables read as before.
    summary = self.summary(adam=[0, 1, 2], snr=[0, 1, 2])
    self.assertIsNone(suites.partial_text(summary, None, 'About.'))
    self.assertIsNone(suites.partial_text(summary, ['adam', 'snr'], 'A.'))
    self.assertEqual(suites.row_seeds(summary, summary['results']['snr']), '')

  def test_rows_short_of_a_seed_are_named_with_theirs(self):
    summary = self.summary(adam=[0, 1, 2], snr=[0], slow=[0, 2])
    self.assertEqual(suites.row_seeds(summary, summary['results']['snr']),
                     ' (seed 0)')
    self.assertEqual(suites.row_seeds(summary, summary['results']['slow']),
                     ' (seeds 0, 2)')
    self.assertEqual(
        suites.partial_text(summary, None, 'Means are over those.'),
        '**Not every run has finished every seed** (seeds 0, 1, 2): `snr` '
        'seed 0 only; `slow` seeds 0, 2 only. Means are over those.')

  def test_runs_without_a_row(self):
    # By default a run of the suite with no row (not chosen by --only) is
    # not named, but the baseline every comparison divides by is.
    summary = self.summary(snr=[0, 1, 2])
    self.assertEqual(
        suites.partial_text(summary, None, 'A.'),
        '**Not every run has finished every seed** (seeds 0, 1, 2): `adam` '
        'none. A.')
    # Named runs: each one accounted for, in the order given.
    self.assertEqual(
        suites.partial_text(summary, ['adam', 'snr', 'other'], 'A.'),
        '**Not every run has finished every seed** (seeds 0, 1, 2): `adam` '
        'none; `other` none. A.')
    self.assertEqual(suites.seeds_text([3]), 'seed 3')


class ChangesTest(absltest.TestCase):
  """What the runs ran with in place of the suite's config."""

  SUITE = suites.Suite(task={'num_steps': 50},
                       runs={'adam': suites.Run(OPTIMIZER)}, about='a suite')

  def finished(self, workdir, seed, **changes):
    finished_run(workdir, seed, {'argv': 'python -m examples.toy.compare',
                                 'xla_flags': '',
                                 'started': '2026-01-02T00:00:00+00:00'})
    config = suites.make_config(build, self.SUITE, 'adam', seed)
    config.update(changes)
    with open(os.path.join(suites.run_dir(workdir, 'adam', seed),
                           'config.json'), 'w') as f:
      f.write(config.to_json(indent=1))

  def summary(self, workdir, seeds):
    row = {'per_seed': [{'seed': s} for s in seeds]}
    return suites.make_summary(workdir, 'toy', self.SUITE, seeds,
                               environment=None, settings={},
                               rows={'adam': row}, noise_metric='steps',
                               build=build)

  def test_a_finished_run_is_kept_and_another_budget_is_said(self):
    workdir = self.create_tempdir().full_path
    self.finished(workdir, 0)                    # the suite's 50 steps
    self.finished(workdir, 1, num_steps=20)      # an earlier, shorter run
    trained = []
    example = suites.Example(
        module='examples.toy', suites={'toy': self.SUITE}, build=build,
        validate=lambda config: None,
        train=lambda config, path: trained.append((config.seed, path)),
        tabulate=None, render=None, files=())
    # absl's logger, at INFO for the test (another test may have set its
    # verbosity).
    with self.assertLogs(logger=logging.get_absl_logger(),
                         level='INFO') as logs:
      suites.run_suite(example, workdir, 'toy', [0, 1, 2])
    self.assertEqual(trained, [(2, suites.run_dir(workdir, 'adam', 2))])
    warnings = [r.getMessage() for r in logs.records
                if r.levelname == 'WARNING']
    self.assertEqual(warnings, [
        f'=== adam seed 1: kept the run finished in '
        f'{suites.run_dir(workdir, "adam", 1)} with num_steps=20, not 50 '
        '(the table says so); delete it to train it with 50'])
    self.assertTrue(any('adam seed 0: finished in' in r.getMessage()
                        for r in logs.records))

  def test_runs_as_the_suite_says_leave_the_summary_as_it_was(self):
    workdir = self.create_tempdir().full_path
    self.finished(workdir, 0)
    self.finished(workdir, 1)
    summary = self.summary(workdir, [0, 1])
    self.assertNotIn('changed', summary)
    self.assertEqual(suites.changes_of(workdir, self.SUITE, [0, 1], build),
                     [])
    # The caption's words of before (the published tables' text).
    self.assertEqual(suites.task_text(summary),
                     '(task overrides of `configs/default.py`: num_steps=50)')
    self.assertEqual(suites.task_text({**summary, 'task': {}}),
                     '(task overrides of `configs/default.py`: none)')

  def test_what_every_run_changed_and_what_some_did(self):
    workdir = self.create_tempdir().full_path
    # As --num_steps=20 --override=mesh_data=2 makes them, then seed 1
    # resumed with --num_steps=30.
    self.finished(workdir, 0, num_steps=20, mesh_data=2)
    self.finished(workdir, 1, num_steps=30, mesh_data=2)
    summary = self.summary(workdir, [0, 1])
    self.assertEqual(list(summary)[:4], ['suite', 'about', 'task', 'changed'])
    self.assertEqual(summary['task'], {'num_steps': 50})
    self.assertEqual(summary['changed'], [
        {'field': 'num_steps', 'value': 20, 'suite_value': 50,
         'runs': ['adam seed 0']},
        {'field': 'num_steps', 'value': 30, 'suite_value': 50,
         'runs': ['adam seed 1']},
        {'field': 'mesh_data', 'value': 2, 'suite_value': 0,
         'runs': ['adam seed 0', 'adam seed 1']}])
    self.assertEqual(
        suites.task_text(summary),
        '(task overrides of `configs/default.py`: num_steps=50; the runs '
        'tabulated ran with num_steps=20 instead of 50 (in 1 of 2 runs), '
        'num_steps=30 instead of 50 (in 1 of 2 runs), mesh_data=2 instead '
        'of 0)')

  def test_runs_without_a_config_are_not_compared(self):
    workdir = self.create_tempdir().full_path
    finished_run(workdir, 0, {'argv': 'python -m examples.toy.compare',
                              'xla_flags': '',
                              'started': '2026-01-02T00:00:00+00:00'})
    self.assertNotIn('changed', self.summary(workdir, [0]))


if __name__ == '__main__':
  absltest.main()
