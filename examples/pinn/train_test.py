# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Fast tests of the PINN example: operator, data, losses, optimizers, binary.

The tests every example passes (resume, Ctrl-C, refusals, --help) are
examples/common/testing.py's, mixed in below.
"""

import json
import math
import os

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from examples.common import schema
from examples.common import testing
from examples.pinn import compare
from examples.pinn import config_schema
from examples.pinn import configs
from examples.pinn import problem
from examples.pinn import train
from examples.pinn.configs import tiny


class ProblemTest(parameterized.TestCase):

  @parameterized.parameters(5.0, 30.0)
  def test_the_exact_solution_has_zero_residual(self, beta):
    # The operator as implemented (one jvp per point along (beta, 1)), on
    # u = sin(x - beta t): zero to float32 rounding of its two terms.
    u = lambda p: jnp.sin(p[0] - beta * p[1])
    points = jnp.asarray(np.random.default_rng(0).uniform(
        [0, 0], [problem.X_MAX, 1], (200, 2)), jnp.float32)
    r = problem.residual_operator(u, beta)(points)
    self.assertLess(float(jnp.max(jnp.abs(r))), 1e-5 * beta)
    # It is u_t + beta u_x: on u = x t, x + beta t; on u = t^2, 2 t.
    np.testing.assert_allclose(
        problem.residual_operator(lambda p: p[0] * p[1], beta)(points),
        points[:, 0] + beta * points[:, 1], rtol=1e-5)
    np.testing.assert_allclose(
        problem.residual_operator(lambda p: p[1] ** 2, beta)(points),
        2 * points[:, 1], rtol=1e-5, atol=1e-6)
    # Periodic and the initial condition: u(0, t) = u(2 pi, t), sin(x).
    t = np.linspace(0, 1, 7)
    np.testing.assert_allclose(problem.exact(0.0, t, beta),
                               problem.exact(problem.X_MAX, t, beta),
                               atol=1e-12)
    x = np.linspace(0, 6, 7)
    np.testing.assert_allclose(problem.exact(x, 0.0, beta), np.sin(x))

  def test_initial_noise_is_seeded_with_the_stated_sigma(self):
    x, clean, noisy = problem.initial_values(20000, 0.1, seed=3)
    again = problem.initial_values(20000, 0.1, seed=3)
    np.testing.assert_array_equal(noisy, again[2])
    self.assertFalse(np.array_equal(noisy,
                                    problem.initial_values(20000, 0.1, 4)[2]))
    np.testing.assert_allclose(clean, np.sin(x), atol=1e-6)
    self.assertTrue(np.all((x >= 0) & (x < problem.X_MAX)))
    noise = noisy.astype(np.float64) - clean
    # Standard error of the std: sigma / sqrt(2n), 0.05%.
    self.assertAlmostEqual(noise.std(), 0.1, delta=3e-3)
    self.assertAlmostEqual(noise.mean(), 0.0, delta=5 * 0.1 / math.sqrt(20000))
    _, clean0, noisy0 = problem.initial_values(50, 0.0, seed=0)
    np.testing.assert_array_equal(clean0, noisy0)

  def test_task_and_grid(self):
    task = problem.make_task(tiny.get_config())
    self.assertEqual(task.collocation.shape, (64, 2))
    self.assertEqual(task.initial.shape, (16, 2))
    np.testing.assert_array_equal(task.initial[:, 1], 0.0)
    self.assertEqual(task.grid_exact.shape, (5, 16))
    np.testing.assert_allclose(
        task.grid_exact[2], np.sin(task.grid_x - 5.0 * task.grid_t[2]),
        atol=1e-6)
    self.assertEqual(problem.grid_points(task).shape, (80, 2))
    self.assertAlmostEqual(problem.relative_l2(task.grid_exact,
                                               task.grid_exact), 0.0)
    self.assertAlmostEqual(problem.relative_l2(0 * task.grid_exact,
                                               task.grid_exact), 1.0)

  def test_noise_fit(self):
    x, clean, noisy = problem.initial_values(100, 0.1, seed=0)
    del x
    self.assertAlmostEqual(train.noise_fit(noisy, clean, noisy), 1.0)
    self.assertAlmostEqual(train.noise_fit(clean, clean, noisy), 0.0)
    half = clean + 0.5 * (noisy - clean)
    self.assertAlmostEqual(train.noise_fit(half, clean, noisy), 0.5,
                           places=5)
    self.assertIsNone(train.noise_fit(clean, clean, clean))


class LossTest(parameterized.TestCase):

  def test_terms_and_their_statistics_by_a_loop(self):
    # The three terms as written, and snr_adam's combined statistics
    # against a loop over points with the term's weights.
    config = configs.build(tiny.TASK, {'weights.initial': 10.0,
                                       'weights.boundary': 0.5})
    run = train.setup(config)
    params = run.state['params']
    batches = run.batch(0)
    w = train.weights(config)
    import snr_optax as so  # pylint: disable=g-import-not-at-top
    _, stats = jax.jit(so.multi_term_value_and_grad_stats(
        run.losses, w, method='vmap'))(params, batches)
    mu = nu = 0.0
    for name, loss in run.losses.items():
      batch = batches[name]
      b = jax.tree.leaves(batch)[0].shape[0]
      grad = jax.jit(jax.grad(loss))
      g = np.stack([np.concatenate([np.ravel(x) for x in jax.tree.leaves(
          grad(params, jax.tree.map(lambda a, i=i: a[i:i + 1], batch)))])
                    for i in range(b)]).astype(np.float64)
      mu = mu + w[name] * g.mean(0)
      nu = nu + w[name] ** 2 * g.var(0, ddof=1) / b
    flat = lambda t: np.concatenate([np.ravel(x) for x in jax.tree.leaves(t)])
    np.testing.assert_allclose(flat(stats.mean), mu, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(flat(stats.loo_noise), nu, rtol=1e-4,
                               atol=1e-10)
    # The boundary term of a periodic function is 0, the initial term of
    # the noisy values themselves is 0.
    u_exact = lambda points: jnp.sin(points[:, 0] - config.beta * points[:, 1])
    losses = train.make_losses(lambda p, x: u_exact(x[None])[0],
                               lambda p, x: u_exact(x), config.beta)
    self.assertLess(float(losses['boundary'](None, batches['boundary'])),
                    1e-10)
    self.assertLess(float(losses['residual'](None, batches['residual'])),
                    1e-9)
    points, _ = batches['initial']
    self.assertLess(float(losses['initial'](
        None, (points, jnp.sin(points[:, 0])))), 1e-12)


class TrainTest(testing.TrainTests, parameterized.TestCase):
  """A few steps per optimizer; testing.TrainTests: resume, Ctrl-C, refusals."""

  PACKAGE = 'examples.pinn'
  RESUMED_METRICS = ('rel_l2', 'ic_error_clean', 'ic_error_noisy',
                     'mask_fraction')
  ANOTHER_CONFIG = ('beta', 30.0, 'config.beta: 5.0 there, 30.0 here')
  BAD_CONFIG = ({'n_initial': 0}, r'config.n_initial must be an integer >= '
                r'2; got 0')

  def test_summary_of_hand_made_rows(self):
    config = tiny.get_config()
    rows = [{'step': s, 'rel_l2': e, 'residual_rms': 0.1,
             'ic_error_clean': 0.1, 'ic_error_noisy': 0.2, 'noise_fit': 0.3,
             'train_seconds': float(s)}
            for s, e in ((5, 0.9), (10, 0.4), (15, 0.3), (20, 0.35))]
    result = train.summarize(config, rows, 20)
    self.assertEqual(result['steps_to_target'], 10)   # first <= 0.40
    self.assertEqual((result['best_rel_l2'], result['best_rel_l2_step']),
                     (0.3, 15))
    self.assertEqual(result['final_rel_l2'], 0.35)
    self.assertIsNone(train.summarize(config, rows[:1], 5)['steps_to_target'])

  def test_lbfgs_takes_over_and_resumes_exactly(self):
    # SNR-Adam for 10 steps, then L-BFGS on the full batch: the mask is no
    # longer reported, result.json has the error at the switch, and a run
    # stopped inside the L-BFGS phase resumes to the uninterrupted result.
    config = tiny.get_config()
    config.update_from_flattened_dict(
        {'optimizer': 'snr_adam', 'lbfgs_after': 10})
    whole = self.create_tempdir().full_path
    result = train.train_and_evaluate(config, whole)
    rows = testing.read_metrics(whole)
    self.assertEqual([r['mask_fraction'] is None for r in rows],
                     [False, False, True, True])
    self.assertEqual(result['lbfgs_after'], 10)
    self.assertEqual(result['first_phase_rel_l2'], rows[1]['rel_l2'])
    self.assertNotEqual(rows[-1]['rel_l2'], rows[1]['rel_l2'])
    parts = self.create_tempdir().full_path
    config.num_steps = 15
    train.train_and_evaluate(config, parts)
    config.num_steps = 20
    resumed = train.train_and_evaluate(config, parts)
    self.assertEqual(resumed['final_rel_l2'], result['final_rel_l2'])
    self.assertEqual(train.summarize(tiny.get_config(), rows, 20)[
        'first_phase_rel_l2'], None)


class SchemaTest(testing.SchemaTests, parameterized.TestCase):

  PACKAGE = 'examples.pinn'

  @parameterized.named_parameters(
      ('no_collocation', 'n_collocation', 0,
       'config.n_collocation must be an integer >= 2; got 0'),
      ('one_boundary', 'n_boundary', 1,
       'config.n_boundary must be an integer >= 2; got 1'),
      ('negative_sigma', 'noise_sigma', -0.1,
       'config.noise_sigma must be a number >= 0; got -0.1'),
      ('zero_beta', 'beta', 0.0, 'config.beta must be a number > 0; got 0.0'),
      ('zero_weight', 'weights.initial', 0.0,
       'config.weights.initial must be a number > 0; got 0.0'),
      ('batch_of_one', 'collocation_batch', 1,
       'config.collocation_batch must be an integer >= 0, 0 or >= 2; got 1'),
      ('big_batch', 'boundary_batch', 17,
       'config.boundary_batch 17 exceeds config.n_boundary 16'),
      ('adam_decay', 'weight_decay', 0.1,
       "config.weight_decay 0.1 with optimizer 'adam', which has none"),
      ('optimizer', 'optimizer', 'sgd',
       "config.optimizer must be one of 'adam', 'adamw', 'snr_adam', "
       "'streaming_snr_adamw'; got 'sgd'"),
      ('b2', 'b2', 1.0, r'config.b2 must be a number in \[0, 1\); got 1.0'),
      ('lbfgs_never', 'lbfgs_after', 20,
       'config.lbfgs_after 20 is not below config.num_steps 20: L-BFGS would '
       'never start; 0 turns it off'),
      ('population', 'snr.population_risk', True,
       'config.snr.population_risk: the PINN example does not log the '
       'population-loss estimate; leave it False'))
  def test_bad_config(self, key, value, message):
    config = tiny.get_config()
    config.update_from_flattened_dict({key: value})
    with self.assertRaisesRegex(schema.ConfigError, message):
      config_schema.validate(config)


class CompareTest(testing.CompareTests, parameterized.TestCase):
  """The tiny suite end to end; testing.CompareTests: README blocks."""

  PACKAGE = 'examples.pinn'
  # Every suite but tiny (for tests, never published) has its block.
  BLOCKS = tuple(suite for suite in compare.SUITES if suite != 'tiny')

  def test_tiny_suite_trains_every_optimizer_and_tabulates(self):
    # compare.run_suite('tiny', [0]), trained once per process.
    workdir = self.tiny_runs()
    summary = compare.tabulate(workdir, 'tiny', [0])
    names = list(compare.SUITES['tiny'].runs)
    self.assertEqual(list(summary['results']), names)
    self.assertEqual(sorted(c['overrides']['optimizer']
                            for c in summary['results'].values()),
                     sorted(config_schema.OPTIMIZERS))
    for name, row in summary['results'].items():
      rows = testing.read_metrics(os.path.join(workdir, name, 'seed_0'))
      self.assertEqual([r['step'] for r in rows], [5, 10, 15, 20])
      for r in rows:
        self.assertTrue(np.isfinite(r['rel_l2']))
        self.assertTrue(np.isfinite(r['ic_error_clean']))
      masks = row['overrides']['optimizer'] in ('snr_adam',
                                                'streaming_snr_adamw')
      self.assertEqual(row['mean_mask'] is not None, masks)
      self.assertEqual(row['budget'], 20)
    for name in compare.EXAMPLE.files:
      self.assertTrue(os.path.exists(os.path.join(workdir, name)), name)
    table = compare.render(summary)
    self.assertIn('| Adam (`adam`) |', table)
    # The best baseline: the fewest steps to the target of any Adam/AdamW
    # run on the seed, over the run's (here made up: 10 for adamw).
    result = os.path.join(workdir, 'adamw', 'seed_0', 'result.json')
    with open(result) as f:
      edited = json.load(f)
    edited['steps_to_target'] = 10
    with open(result, 'w') as f:
      json.dump(edited, f)
    snr = os.path.join(workdir, 'snr_adam', 'seed_0', 'result.json')
    with open(snr) as f:
      edited = json.load(f)
    edited['steps_to_target'] = 5
    with open(snr, 'w') as f:
      json.dump(edited, f)
    summary = compare.tabulate(workdir, 'tiny', [0])
    self.assertEqual(summary['best_baseline_steps'], {0: 10})
    self.assertEqual(summary['results']['snr_adam']['best_baseline_ratios'],
                     [2.0])
    self.assertEqual(summary['results']['adamw']['best_baseline_ratios'],
                     [1.0])
    self.assertEqual(summary['results']['adam']['best_baseline_ratios'],
                     [None])


  def test_error_figure_with_one_panel_per_optimizer(self):
    # A swept suite's figure: panels by optimizer, colours by learning rate.
    from examples.pinn import figures  # pylint: disable=g-import-not-at-top
    rows = [[{'step': s, 'rel_l2': 1.0 / s} for s in (50, 100, 150)]]
    curves = {'adam': rows, 'adam_lr3e-3': rows, 'snr_adam': rows * 2}
    path = os.path.join(self.create_tempdir().full_path, 'errors.png')
    figures.compare_errors(
        curves, path, title='t', target=0.4,
        panel_of={'adam': 'adam', 'adam_lr3e-3': 'adam',
                  'snr_adam': 'snr_adam'},
        colour_of={'adam': '', 'adam_lr3e-3': 0.003, 'snr_adam': ''})
    self.assertGreater(os.path.getsize(path), 0)


class MainTest(testing.MainTests, parameterized.TestCase):
  """The binary: bad input ends in one line, nothing written; --help."""

  PACKAGE = 'examples.pinn'

  @parameterized.named_parameters(
      ('zero_points', ['--config.n_collocation=0'],
       'error: config.n_collocation must be an integer >= 2; got 0'),
      ('negative_sigma', ['--config.noise_sigma=-0.1'],
       'error: config.noise_sigma must be a number >= 0; got -0.1'),
      ('unknown_optimizer', ['--config.optimizer=sgd'],
       "error: config.optimizer must be one of 'adam', 'adamw', 'snr_adam', "
       "'streaming_snr_adamw'; got 'sgd'"),
  )
  def test_bad_input_is_one_line_and_writes_nothing(self, args, message):
    self.assert_refused(args, message, whole=True)


if __name__ == '__main__':
  absltest.main()
