# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The population report on runs of the noisy-labels example (tiny)."""

import json
import os

from absl.testing import absltest

from examples.common import population
from examples.common import population_report
from examples.common import tables
from examples.noisy_labels import configs
from examples.noisy_labels import train
from examples.noisy_labels.configs import tiny


class ReportTest(absltest.TestCase):

  def test_table_figure_and_readme_block_of_real_runs(self):
    root = self.create_tempdir().full_path
    for optimizer in ('adam', 'snr_adam'):
      config = configs.build(tiny.TASK, {'optimizer': optimizer,
                                         'snr.population_risk': True,
                                         'noise_fraction': 0.0})
      train.train_and_evaluate(config, os.path.join(root, optimizer,
                                                    'seed_0'))
    out = os.path.join(root, 'report')
    text, records = population_report.report(
        [os.path.join(root, '*', 'seed_0')], out)
    self.assertLen(records, 2)
    for name in ('population.md', 'population.json', 'population.png'):
      self.assertTrue(os.path.exists(os.path.join(out, name)), name)
    run = population_report.read_run(os.path.join(root, 'adam', 'seed_0'))
    want = population.assess(run['rows'], run['batch_fraction'])
    got = next(r for r in records if r['path'].endswith('/adam/seed_0'))
    self.assertEqual(got['pearson_changes'], want['pearson_changes'])
    self.assertIn('noisy_labels: adam, seed 0', text)
    # both runs share seed 0: a choice of optimizer and checkpoint at once,
    # whose held-out side is the least measured loss of either run
    self.assertIn('Choosing the optimizer and the checkpoint at once', text)
    least = min(min(r['population_loss'] for r in population_report.read_run(
        os.path.join(root, o, 'seed_0'))['rows']) for o in ('adam',
                                                            'snr_adam'))
    self.assertIn(f': {least:.4g} |', text.split('excess')[-1])
    with open(os.path.join(out, 'population.json')) as f:
      self.assertEqual(json.load(f), records)
    readme = os.path.join(root, 'README.md')
    with open(readme, 'w') as f:
      f.write('# x\n<!-- generated: population (do not edit; see the '
              'command below it) -->\n<!-- end generated: population -->\n')
    tables.replace_block(readme, 'population', text)
    self.assertIn(text, tables.read_block(readme, 'population'))

  def test_runs_without_the_estimate_are_refused(self):
    with self.assertRaisesRegex(ValueError, 'population_risk=True'):
      population_report.report([self.create_tempdir().full_path], '/tmp/x')


if __name__ == '__main__':
  absltest.main()
