# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of mask_terms.py: the noise split by term, against a NumPy reference."""

import json
import os

from absl.testing import absltest
import jax
import numpy as np

from examples.common import cli
from examples.common import testing
from examples.pinn import config_schema
from examples.pinn import mask_terms
from examples.pinn import train
from examples.pinn.configs import tiny

TERMS = config_schema.TERMS


def per_example_grads(loss, params, batch):
  """Each example's gradient as a row, by a loop (no library code)."""
  n = len(jax.tree.leaves(batch)[0])
  grad_fn = jax.jit(jax.grad(loss))
  rows = []
  for i in range(n):
    one = jax.tree.map(lambda a, i=i: a[i:i + 1], batch)
    grad = grad_fn(params, one)
    rows.append(np.concatenate([np.ravel(np.asarray(g, np.float64))
                                for g in jax.tree.leaves(grad)]))
  return np.stack(rows)


class SplitTest(absltest.TestCase):

  def test_split_equals_a_per_example_reference(self):
    config = tiny.get_config()
    config.optimizer = 'snr_adam'
    config.weights.initial = 10.0     # unequal weights
    run = train.setup(config)
    params, batches = run.state['params'], run.batch(3)
    got = jax.device_get(mask_terms.make_split(config, run.losses)(
        params, batches))
    w = train.weights(config)
    noise, mean = {}, 0
    for t in TERMS:
      g = per_example_grads(run.losses[t], params, batches[t])
      b = len(g)
      mean = mean + w[t] * g.mean(0)
      noise[t] = w[t] ** 2 * g.var(0, ddof=1) / b    # M2 / (b (b - 1))
    nu = sum(noise.values())
    mu2 = mean ** 2
    # Coordinates within rounding of a decision are left out of the check.
    near = np.isclose(mu2, nu, rtol=1e-4, atol=1e-12)
    slack = near.mean()
    self.assertLess(slack, 0.05)
    self.assertAlmostEqual(float(got['passes']), (mu2 > nu).mean(),
                           delta=slack + 1e-6)
    self.assertEqual(float(got['passes']), float(got['passes_hard']))
    self.assertLess(float(got['nu_error']), 1e-6)
    for t in TERMS:
      self.assertAlmostEqual(float(got['passes_without'][t]),
                             (mu2 > nu - noise[t]).mean(), delta=slack + 1e-6)
      self.assertAlmostEqual(float(got['closes_alone'][t]),
                             (noise[t] >= mu2).mean(), delta=slack + 1e-6)
      share = np.median(np.where(nu > 0, noise[t] / np.where(nu > 0, nu, 1),
                                 0))
      np.testing.assert_allclose(float(got['noise_share'][t]), share,
                                 rtol=1e-4, atol=1e-6)
    # Without the initial term's noise (weighted 100) more coordinates pass.
    self.assertGreater(float(got['passes_without']['initial']),
                       float(got['passes']))


class ProgramTest(absltest.TestCase):

  def test_replays_a_run_exactly_and_writes_its_rows(self):
    workdir = testing.reference_run('examples.pinn', 'snr_adam')
    out = os.path.join(self.create_tempdir().full_path, 'report.json')
    printed = mask_terms.run([workdir], every=5, out=out)
    self.assertIn('| run | mask passes |', printed)
    with open(out) as f:
      report = json.load(f)['runs'][workdir]
    self.assertEqual([r['step'] for r in report['rows']], [5, 10, 15, 20])
    summary = report['summary']
    self.assertEqual(summary['split_error'], 0.0)
    self.assertEqual(summary['replay_error'], 0.0)    # the run, bit for bit
    for row in report['rows']:
      self.assertEqual(row['passes'], row['logged_mask_fraction'])

  def test_publishes_an_earlier_report_in_a_readme_block(self):
    workdir = testing.reference_run('examples.pinn', 'snr_adam')
    out = os.path.join(self.create_tempdir().full_path, 'report.json')
    mask_terms.run([workdir], every=10, num_steps=10, out=out)
    readme = self.create_tempfile(content=(
        'before\n<!-- generated: mask_terms (do not edit; see the command '
        'below it) -->\nold\n'
        '<!-- end generated: mask_terms -->\nafter\n')).full_path
    printed = mask_terms.run(report_from=out, readme=readme)
    with open(readme) as f:
      text = f.read()
    self.assertNotIn('old', text)
    self.assertIn(printed.split('\n')[2], text)   # a table row
    self.assertIn('python -m examples.pinn.mask_terms --runs=', text)
    self.assertIn('--num_steps=10', text)
    self.assertTrue(text.startswith('before\n') and text.endswith('after\n'))
    with self.assertRaisesRegex(cli.UsageError, '--readme='):
      mask_terms.run(report_from=out, readme=out + '.md')

  def test_bad_input_is_refused(self):
    workdir = self.create_tempdir().full_path
    for flags, message in (
        ({}, '--runs: give at least one run directory'),
        ({'runs': [workdir]}, f'--runs: {workdir} has no config.json'),
        ({'runs': ['x'], 'every': 0},
         '--every must be >= 1 and --num_steps >= 0; got 0 and 0')):
      with self.assertRaises(cli.UsageError) as e:
        mask_terms.run(**flags)
      self.assertStartsWith(str(e.exception), message)

  def test_bad_input_is_one_line_from_the_program(self):
    proc = testing.run_module('examples.pinn.mask_terms', '--every=0',
                              '--runs=x')
    self.assertEqual(proc.returncode, 2, proc.stderr)
    self.assertEqual(proc.stderr.strip().splitlines()[-1],
                     'error: --every must be >= 1 and --num_steps >= 0; got '
                     '0 and 0')
    self.assertNotIn('Traceback', proc.stderr)

  def test_runs_it_cannot_split_are_refused_in_one_line(self):
    def run_with(config_json):
      workdir = self.create_tempdir().full_path
      with open(os.path.join(workdir, 'config.json'), 'w') as f:
        f.write(config_json)
      return workdir

    config = tiny.get_config()
    config.optimizer = 'snr_adam'
    config.snr.mode = 'soft'
    soft = run_with(config.to_json())
    with self.assertRaisesRegex(cli.UsageError, "ran snr.mode='soft'"):
      mask_terms.load_config(soft)
    config.snr.mode, config.snr.reduction = 'hard', 'tensor'
    tensor = run_with(config.to_json())
    with self.assertRaisesRegex(cli.UsageError, "snr.reduction='tensor'"):
      mask_terms.load_config(tensor)
    other = run_with(json.dumps({'optimizer': 'snr_adam', 'image': 'x.png'}))
    with self.assertRaisesRegex(cli.UsageError, r'has fields the PINN '
                                r'example does not \(image\)'):
      mask_terms.load_config(other)
    torn = run_with('{"optimizer": "snr_ad')
    with self.assertRaisesRegex(cli.UsageError, 'cannot read'):
      mask_terms.load_config(torn)

  def test_a_torn_last_line_of_the_log_is_left_out(self):
    workdir = self.create_tempdir().full_path
    with open(os.path.join(workdir, 'metrics.jsonl'), 'w') as f:
      f.write('{"step": 5, "mask_fraction": 0.5}\n{"step": 10, "mask_fr')
    self.assertEqual(mask_terms.logged_masks(workdir), {5: 0.5})

  def test_a_run_without_statistics_is_refused(self):
    config = tiny.get_config()
    config.num_steps = 5
    workdir = self.create_tempdir().full_path
    train.train_and_evaluate(config, workdir)     # Adam
    with self.assertRaisesRegex(cli.UsageError,
                                'takes no per-example statistics'):
      mask_terms.load_config(workdir)


if __name__ == '__main__':
  absltest.main()
