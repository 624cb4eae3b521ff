# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of the examples' population-estimate bookkeeping."""

from absl.testing import absltest
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

import snr_optax as so
from examples.common import population


def _rows(train, population_loss, gap, predicted=None):
  predicted = gap if predicted is None else predicted
  return [{'step': 10 * (i + 1), 'train_loss': t, 'population_loss': p,
           'estimated_train_change': e - g,
           'estimated_population_change': e, 'diagonal_error': 0.0}
          for i, (t, p, g, e) in enumerate(zip(train, population_loss, gap,
                                                predicted))]


class PopulationTest(absltest.TestCase):

  def test_estimate_is_train_plus_batch_fraction_of_the_gap(self):
    train = np.array([1.0, 0.8, 0.6, 0.5, 0.4])
    gap = np.array([0.0, 1.0, 2.0, 4.0, 8.0])
    measured = train + 0.1 * gap
    c = population.curves(_rows(train, measured, gap), batch_fraction=0.1)
    np.testing.assert_allclose(c['estimated_population_loss'], measured)
    np.testing.assert_allclose(c['estimated_gap'], 0.1 * gap)
    a = population.assess(_rows(train, measured, gap), batch_fraction=0.1)
    self.assertAlmostEqual(a['pearson_changes'], 1.0)
    self.assertAlmostEqual(a['curve_error'], 0.0)
    self.assertAlmostEqual(a['gap_ratio'], 1.0)
    # measured is least at the last-but-one evaluation (0.5 + 0.4 = 0.9 >
    # 0.7 + ...): the estimate picks the same one
    self.assertEqual(a['estimate_pick_step'], a['holdout_pick_step'])
    self.assertEqual(a['pick_excess'], 0.0)

  def test_a_wrong_pick_costs_its_measured_excess(self):
    train = np.array([1.0, 0.5, 0.4, 0.3])
    measured = np.array([1.1, 0.8, 0.9, 1.0])
    gap = np.zeros(4)                       # no gap: picks the last row
    a = population.assess(_rows(train, measured, gap), batch_fraction=1.0)
    self.assertEqual(a['estimate_pick_step'], 40)
    self.assertEqual(a['holdout_pick_step'], 20)
    self.assertAlmostEqual(a['pick_excess'], 1.0 / 0.8 - 1)
    # The changes differ by a constant (-0.2 per interval): Pearson cannot
    # see a constant drift, which is why the curve error and the pick are
    # reported beside it.
    self.assertAlmostEqual(a['pearson_changes'], 1.0)
    self.assertGreater(a['curve_error'], 0.5)

  def test_a_nan_estimate_says_from_which_step(self):
    gap = np.array([0.0, 1.0, np.nan, np.nan])
    a = population.assess(_rows([1, 0.5, 0.4, 0.3], [1, 0.8, 0.9, 1], gap),
                          batch_fraction=1.0)
    self.assertEqual(a, {'evaluations': 4, 'not_finite_from_step': 30})

  def test_rows_without_the_estimate_are_skipped(self):
    self.assertEqual(population.assess([{'step': 1}], 1.0), {})

  def test_row_fields_read_the_tracker_state(self):
    params = {'w': jnp.zeros(2)}
    stats = so.GradStats(mean={'w': jnp.array([1.0, -1.0])},
                         sum_sq_dev={'w': jnp.array([3.0, 3.0])},
                         count=jnp.asarray(4, jnp.int32))
    snr = ml_collections.ConfigDict({'population_risk': True})
    opt = population.wrap(optax.sgd(0.1), snr)
    _, state = opt.update(stats, opt.init(params), params)
    row = population.row_fields(state, 'toy')
    self.assertEqual(row['example'], 'toy')
    self.assertAlmostEqual(row['estimated_train_change'], -0.2, places=6)
    # gap = lr * sum(nu) = 0.1 * 0.5
    self.assertAlmostEqual(row['estimated_population_change'], -0.15,
                           places=6)
    self.assertEqual(population.row_fields(optax.sgd(0.1).init(params), 'toy'), {})
    snr.population_risk = False
    self.assertIsInstance(population.wrap(optax.sgd(0.1), snr).init(params),
                          tuple)


if __name__ == '__main__':
  absltest.main()
