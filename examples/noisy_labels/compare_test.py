# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of the noisy-labels compare.py: suites, tables, targets, README.

testing.CompareTests (mixed in): every suite is a valid config, and the
README's generated blocks are what the code renders from the committed
results.
"""

import json
import os

from absl.testing import absltest
from absl.testing import parameterized
import jax
import tensorflow_datasets as tfds

from examples.common import testing
from examples.noisy_labels import compare


def _row(optimizer, noise, finals, memorised, picks=None):
  """A tabulated row with per-seed final accuracies (seeds 0, 1, ...)."""
  per_seed = [{'seed': seed, 'final_test_accuracy': final,
               'final_memorisation': memo,
               'early_stop_test_accuracy': None if picks is None
                                           else picks[seed]}
              for seed, (final, memo) in enumerate(zip(finals, memorised))]
  return {'optimizer': optimizer, 'noise_fraction': noise,
          'per_seed': per_seed, 'seeds': [r['seed'] for r in per_seed]}


class CompareTest(testing.CompareTests, parameterized.TestCase):
  """The tiny suite end to end; testing.CompareTests: README blocks."""

  PACKAGE = 'examples.noisy_labels'
  # Every suite but tiny (for tests, never published) has its block.
  BLOCKS = tuple(suite for suite in compare.SUITES if suite != 'tiny')

  def test_every_suite_is_a_valid_config(self):
    # The MNIST suites' configs open MNIST's files; TFDS's mock stands in
    # for them here (60,000 training examples, as MNIST has).
    with tfds.testing.mock_data(num_examples=60_000,
                                policy=tfds.testing.MockPolicy.USE_CODE):
      super().test_every_suite_is_a_valid_config()

  def test_run_names(self):
    self.assertEqual(compare.run_name(0.4, 'snr_adam'), 'noise40/snr_adam')
    self.assertEqual(compare.run_name(0.0, 'adam'), 'noise0/adam')
    self.assertEqual(compare.parse_run_name('noise60/streaming'),
                     (0.6, 'streaming'))
    digits = compare.SUITES['digits']
    self.assertLen(digits.runs, 4 * len(compare.OPTIMIZERS))
    for name in digits.runs:
      noise, optimizer = compare.parse_run_name(name)
      config = compare.make_config('digits', name, seed=0)
      self.assertEqual(config.noise_fraction, noise)
      self.assertEqual(compare.OPTIMIZERS[optimizer].OVERRIDES['optimizer'],
                       config.optimizer)
    # The quick suite's runs are the full suite's, config for config: one
    # work directory serves both.
    for name in compare.SUITES['digits40'].runs:
      self.assertEqual(compare.make_config('digits40', name, 1),
                       compare.make_config('digits', name, 1))

  def test_targets_of_hand_made_rows(self):
    rows = {
        'noise40/adam': _row('adam', 0.4, [0.70, 0.60], [0.9, 1.0]),
        'noise40/adam_early_stop': _row('adam_early_stop', 0.4, [0.6, 0.6],
                                        [1.0, 1.0], picks=[0.90, 0.92]),
        # +17 and +22 points over Adam; 1 and 0 below the pick; memorises
        # 0.2 of Adam's 0.95.
        'noise40/snr_adam': _row('snr_adam', 0.4, [0.89, 0.82],
                                 [0.19, 0.19]),
        'noise40/streaming': _row('streaming', 0.4, [0.72, 0.62],
                                  [0.5, 0.5]),
    }
    got = {t['run']: t for t in compare.targets(rows)}
    self.assertEqual(set(got), {'noise40/snr_adam', 'noise40/streaming'})
    snr = got['noise40/snr_adam']
    self.assertAlmostEqual(snr['gain'], (0.19 + 0.22) / 2)
    self.assertAlmostEqual(snr['early_stop_gap'], (-0.01 - 0.10) / 2)
    self.assertAlmostEqual(snr['memorisation_ratio'], 0.19 / 0.95)
    self.assertEqual((snr['gain_met'], snr['early_stop_met'],
                      snr['memorisation_met']), (True, False, True))
    stream = got['noise40/streaming']
    self.assertAlmostEqual(stream['gain'], 0.02)
    self.assertAlmostEqual(stream['memorisation_ratio'], 0.5 / 0.95)
    self.assertEqual((stream['gain_met'], stream['memorisation_met']),
                     (False, False))

  def test_targets_compare_the_seeds_both_runs_have(self):
    # Adam has finished seed 0 only (a partial --table_only): the ratio is
    # seed 0's, 0.2 / 0.8, not the mean of seeds 0 and 1 (0.5) over Adam's
    # seed 0 (0.625); the same for a seed without an early-stopping pick.
    rows = {
        'noise40/adam': _row('adam', 0.4, [0.70], [0.8]),
        'noise40/adam_early_stop': _row('adam_early_stop', 0.4, [0.6, 0.6],
                                        [1.0, 1.0], picks=[0.90, None]),
        'noise40/snr_adam': _row('snr_adam', 0.4, [0.89, 0.82], [0.2, 0.8]),
    }
    (snr,) = compare.targets(rows)
    self.assertAlmostEqual(snr['memorisation_ratio'], 0.2 / 0.8)
    self.assertAlmostEqual(snr['gain'], 0.19)
    self.assertAlmostEqual(snr['early_stop_gap'], -0.01)

  def test_a_partial_table_says_which_seeds_each_run_has(self):
    # --table_only during a sweep: Adam at 40% has not finished, and no run
    # has seed 1. The caption's "seeds 0, 1" must not pass for every row's.
    workdir = self.tiny_runs()
    os.remove(os.path.join(workdir, 'noise40', 'adam', 'seed_0',
                           'result.json'))
    summary = compare.tabulate(workdir, 'tiny', [0, 1])
    table = compare.render(summary)
    self.assertIn(
        '**Not every run has finished every seed** (seeds 0, 1): '
        '`noise0/adam` seed 0 only; `noise40/adam` none; '
        '`noise40/adam_early_stop` seed 0 only; `noise40/snr_adam` seed 0 '
        'only.', table)
    self.assertIn('| `noise40/snr_adam` (seed 0) | ', table)
    self.assertEqual(summary['targets'], [])    # no Adam to compare with
    # A table of the seeds every run has says nothing of the kind.
    complete = compare.render(compare.tabulate(
        self.tiny_runs(), 'tiny', [0]))
    self.assertNotIn('Not every run', complete)
    self.assertIn('| `noise40/snr_adam` | ', complete)

  def test_a_diverged_run_reads_as_diverged(self):
    # A run whose model diverged at once: NaN final metrics, no best step.
    # The table said "nan" (or died formatting the missing step); now it
    # says so, and the targets are not met.
    workdir = self.tiny_runs()
    path = os.path.join(workdir, 'noise40', 'snr_adam', 'seed_0',
                        'result.json')
    with open(path) as f:
      result = json.load(f)
    result.update(best_test_accuracy=None, best_test_step=None,
                  final_test_accuracy=float('nan'),
                  final_memorisation=float('nan'),
                  final_corrupted_true_accuracy=float('nan'))
    with open(path, 'w') as f:
      json.dump(result, f)
    summary = compare.tabulate(workdir, 'tiny', [0])
    table = compare.render(summary)
    self.assertIn('| SNR-Adam, exact, hard, before (`snr_adam`) | - | '
                  'NaN (diverged) / NaN (diverged) |', table)
    self.assertIn('| `noise40/snr_adam` | - | - | NaN (diverged) | ', table)
    for bare in ('| nan', '+nan', 'nan |', 'nan /'):
      self.assertNotIn(bare, table)
    (target,) = summary['targets']
    self.assertFalse(target['gain_met'] or target['memorisation_met'])

  def test_tiny_suite_writes_results_and_publishes(self):
    # compare.run_suite(<a copy>, 'tiny', [0]), trained once per process.
    workdir = self.tiny_runs()
    summary = compare.tabulate(workdir, 'tiny', [0])
    with open(os.path.join(workdir, 'results.json')) as f:
      on_disk = json.load(f)
    self.assertEqual(on_disk, json.loads(json.dumps(summary)))
    names = list(compare.SUITES['tiny'].runs)
    self.assertEqual(list(on_disk['results']), names)
    for name, row in on_disk['results'].items():
      self.assertEqual(row['seeds'], [0])
      self.assertEqual(row['budget'], 20)
      seed = row['per_seed'][0]
      with open(os.path.join(workdir, name, 'seed_0', 'result.json')) as f:
        result = json.load(f)
      for key in ('best_test_accuracy', 'final_test_accuracy',
                  'final_memorisation', 'early_stop_test_accuracy'):
        self.assertEqual(seed[key], result[key], key)
      adam = on_disk['results'][compare.run_name(row['noise_fraction'],
                                                 'adam')]
      self.assertAlmostEqual(row['final_gain'], seed['final_test_accuracy']
                             - adam['per_seed'][0]['final_test_accuracy'])
    clean = on_disk['results']['noise0/adam']
    self.assertIsNone(clean['mean_final_memorisation'])
    # Without label noise 20 steps learn the clusters (chance is 10%).
    self.assertGreater(clean['mean_final_test_accuracy'], 0.5)
    self.assertIsNotNone(
        on_disk['results']['noise40/snr_adam']['mean_mask'])
    self.assertEqual([t['run'] for t in on_disk['targets']],
                     ['noise40/snr_adam'])
    table = open(os.path.join(workdir, 'results.md')).read()
    self.assertIn('| Adam (`adam`) | ', table)
    self.assertIn('| ... its early-stopping pick | - | ', table)
    self.assertIn('| `noise40/snr_adam` | ', table)
    self.assertIn(f'jax {jax.__version__}', table)
    # Finished runs are skipped: a second call trains nothing.
    path = os.path.join(workdir, 'noise40', 'adam', 'seed_0', 'result.json')
    mtime = os.path.getmtime(path)
    compare.run_suite(workdir, 'tiny', [0])
    self.assertEqual(mtime, os.path.getmtime(path))
    # --publish: the files, and the README's two blocks.
    self.assert_publishes(workdir, summary, [
        'accuracy.png', 'memorisation.png', 'noise_levels.png',
        'results.json', 'results.md'])
    # The program: only the table, and where it wrote.
    out = self.compare('--suite=tiny', '--seeds=0', '--table_only',
                       f'--workdir={workdir}')
    self.assertEqual(out.returncode, 0, out.stderr)
    self.assertIn(f'wrote {os.path.join(workdir, "results.md")}', out.stdout)


if __name__ == '__main__':
  absltest.main()
