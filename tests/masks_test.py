# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of compute_mask against the NumPy reference and its properties."""

import itertools

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

import snr_optax as so
from tests import numpy_reference as ref

MODES = ('hard', 'soft', 'snr')
REDUCTIONS = ('element', 'tensor')


def _random_per_example(seed, b=8, shape=(5, 7)):
  rng = np.random.default_rng(seed)
  # Per-coordinate signal from none to strong, so every mode meets both sides.
  signal = rng.normal(size=shape) * rng.choice([0.0, 0.3, 3.0], size=shape)
  return (signal + rng.normal(size=(b,) + shape)).astype(np.float32)


class MaskReferenceTest(parameterized.TestCase):

  @parameterized.product(mode=MODES, reduction=REDUCTIONS,
                         alpha=[0.0, 0.3, 1.0, 4.0], softness=[0.5, 1.0, 3.0])
  def test_matches_numpy_reference(self, mode, reduction, alpha, softness):
    g = _random_per_example(7)
    stats = so.stats_from_per_example({'w': g})
    q = jax.jit(lambda s: so.compute_mask(
        s, mode=mode, alpha=alpha, softness=softness,
        reduction=reduction))(stats)['w']
    mu, m2, b = ref.stats(g)
    expected = ref.mask(mu, ref.loo_noise(m2, b), mode=mode, alpha=alpha,
                        softness=softness, reduction=reduction)
    if mode == 'hard':
      # Compare away from the boundary, where float32 rounding may decide.
      margin = np.abs(mu ** 2 - alpha * ref.loo_noise(m2, b)) > 1e-4
      if reduction == 'tensor':
        margin = np.full(mu.shape, True)
      np.testing.assert_array_equal(np.asarray(q)[margin], expected[margin])
    else:
      np.testing.assert_allclose(q, expected, rtol=1e-4, atol=1e-5)

  def test_mean_and_noise_form_equals_stats_form(self):
    g = _random_per_example(3)
    stats = so.stats_from_per_example({'w': g})
    a = so.compute_mask(stats, mode='snr')
    b = so.compute_mask(stats.mean, stats.loo_noise, mode='snr')
    np.testing.assert_array_equal(a['w'], b['w'])

  def test_boundary_values(self):
    mu = jnp.array([2.0, 1.0, 0.0, 3.0, 0.0])
    nu = jnp.array([1.0, 1.0, 0.0, 0.0, 5.0])
    np.testing.assert_array_equal(so.compute_mask(mu, nu, mode='hard'),
                                  [1, 0, 0, 1, 0])
    np.testing.assert_allclose(so.compute_mask(mu, nu, mode='soft'),
                               [0.75, 0, 0, 1, 0])
    np.testing.assert_allclose(so.compute_mask(mu, nu, mode='snr'),
                               [0.8, 0.5, 0, 1, 0])
    np.testing.assert_allclose(
        so.compute_mask(mu, nu, mode="snr", softness=3.0), [4 / 7, 0.25, 0, 1, 0],
        rtol=1e-6)

  def test_tensor_reduction_uses_sums(self):
    mu = {'a': jnp.array([1.0, 1.0]), 'b': jnp.array([0.1, 0.0, 0.0])}
    nu = {'a': jnp.array([0.5, 0.5]), 'b': jnp.array([1.0, 1.0, 1.0])}
    q = so.compute_mask(mu, nu, mode='snr', reduction='tensor')
    np.testing.assert_allclose(q['a'], [2 / 3, 2 / 3], rtol=1e-6)
    np.testing.assert_allclose(q['b'], [0.01 / 3.01] * 3, rtol=1e-5)
    self.assertEqual(q['b'].shape, (3,))


class MaskPropertyTest(parameterized.TestCase):

  @parameterized.product(mode=MODES, reduction=REDUCTIONS,
                         scale=[1e-12, 1e-3, 7.0, 1e6, 1e12])
  def test_invariant_to_scaling_all_gradients(self, mode, reduction, scale):
    g = _random_per_example(11).astype(np.float64)
    base = so.compute_mask(so.stats_from_per_example({'w': jnp.asarray(
        g, jnp.float32)}), mode=mode, reduction=reduction)['w']
    scaled = so.compute_mask(so.stats_from_per_example({'w': jnp.asarray(
        g * scale, jnp.float32)}), mode=mode, reduction=reduction)['w']
    np.testing.assert_allclose(scaled, base, atol=1e-4)

  @parameterized.product(mode=MODES, reduction=REDUCTIONS)
  def test_invariant_to_permuting_the_batch(self, mode, reduction):
    g = _random_per_example(5)
    perm = np.random.default_rng(0).permutation(g.shape[0])
    q = so.compute_mask(so.stats_from_per_example({'w': g}), mode=mode,
                        reduction=reduction)['w']
    q_perm = so.compute_mask(so.stats_from_per_example({'w': g[perm]}),
                             mode=mode, reduction=reduction)['w']
    np.testing.assert_allclose(q_perm, q, atol=1e-6)

  @parameterized.product(mode=MODES, reduction=REDUCTIONS)
  def test_monotone_non_increasing_in_alpha(self, mode, reduction):
    stats = so.stats_from_per_example({'w': _random_per_example(9)})
    qs = [so.compute_mask(stats, mode=mode, alpha=a, reduction=reduction)['w']
          for a in (0.0, 0.1, 0.5, 1.0, 2.0, 10.0, 1e3)]
    for lo, hi in itertools.pairwise(qs):
      self.assertTrue(np.all(np.asarray(hi) <= np.asarray(lo) + 1e-7))
    self.assertLess(float(jnp.mean(qs[-1])), float(jnp.mean(qs[0])))

  @parameterized.parameters(*MODES)
  def test_q_lies_in_unit_interval(self, mode):
    q = so.compute_mask(so.stats_from_per_example(
        {'w': _random_per_example(1)}), mode=mode)['w']
    self.assertTrue(np.all((np.asarray(q) >= 0) & (np.asarray(q) <= 1)))

  def test_hard_is_one_on_identical_examples_with_nonzero_mean(self):
    g = jnp.tile(jnp.array([[0.5, -2.0, 1e-3]]), (6, 1))
    q = so.compute_mask(so.stats_from_per_example({'w': g}), mode='hard')
    np.testing.assert_array_equal(q['w'], [1.0, 1.0, 1.0])

  @parameterized.parameters(*MODES)
  def test_zero_on_symmetric_pairs(self, mode):
    row = jnp.array([0.5, -2.0, 3.0])
    g = jnp.stack([row, -row, 2 * row, -2 * row])
    q = so.compute_mask(so.stats_from_per_example({'w': g}), mode=mode)
    np.testing.assert_array_equal(q['w'], [0.0, 0.0, 0.0])


class MaskNumericsTest(parameterized.TestCase):

  @parameterized.product(mode=MODES, reduction=REDUCTIONS,
                         dtype=['float32', 'float16', 'bfloat16'])
  def test_finite_for_every_finite_input(self, mode, reduction, dtype):
    finfo = jnp.finfo(dtype)
    special = np.array([0.0, finfo.tiny, float(finfo.smallest_subnormal),
                        1e-30, 1.0, float(finfo.max) / 4, float(finfo.max),
                        -float(finfo.max)])
    mu = jnp.asarray(np.repeat(special, len(special)), dtype)
    nu = jnp.asarray(np.tile(np.abs(special), len(special)), dtype)
    q = so.compute_mask(mu, nu, mode=mode, reduction=reduction,
                        alpha=0.5, softness=2.0)
    self.assertTrue(np.all(np.isfinite(np.asarray(q, np.float32))))
    self.assertTrue(np.all((np.asarray(q) >= 0) & (np.asarray(q) <= 1)))

  @parameterized.product(mode=MODES, alpha=[0.0, 1.0], softness=[0.0, 1.0])
  def test_zero_hyperparameters_stay_finite(self, mode, alpha, softness):
    mu = jnp.array([0.0, 0.0, 1.0, 1e-20])
    nu = jnp.array([0.0, 1.0, 0.0, 1.0])
    q = so.compute_mask(mu, nu, mode=mode, alpha=alpha, softness=softness)
    self.assertTrue(np.all(np.isfinite(q)))

  def test_huge_means_do_not_overflow(self):
    # mu^2 = 4e38 overflows float32; the scaled comparison does not.
    q = so.compute_mask(jnp.array([2e19, 3e38]), jnp.array([1e38, 1e30]),
                        mode='snr')
    np.testing.assert_allclose(q, [0.8, 1.0], rtol=1e-5)

  @parameterized.product(mode=MODES, reduction=REDUCTIONS)
  def test_non_finite_statistics_give_nan_not_a_finite_mask(self, mode,
                                                            reduction):
    mu = jnp.array([1.0, jnp.nan, 1.0, jnp.inf])
    nu = jnp.array([jnp.inf, 1.0, jnp.nan, 1.0])
    q = np.asarray(so.compute_mask(mu, nu, mode=mode, reduction=reduction))
    self.assertTrue(np.all(np.isnan(q)))

  def test_mask_dtype_is_float32_for_low_precision(self):
    q = so.compute_mask(jnp.ones(3, jnp.bfloat16), jnp.ones(3, jnp.bfloat16))
    self.assertEqual(q.dtype, jnp.float32)


class MaskErrorTest(parameterized.TestCase):

  def test_unknown_mode_lists_valid_values(self):
    with self.assertRaisesRegex(ValueError, "mode='median'.*'hard', 'soft', "
                                "'snr'"):
      so.compute_mask(jnp.ones(2), jnp.ones(2), mode='median')

  def test_unknown_reduction_lists_valid_values(self):
    with self.assertRaisesRegex(ValueError, "'element', 'tensor'"):
      so.compute_mask(jnp.ones(2), jnp.ones(2), reduction='layer')

  @parameterized.parameters('alpha', 'softness')
  def test_negative_hyperparameter(self, name):
    with self.assertRaisesRegex(ValueError, f'{name} must be >= 0'):
      so.compute_mask(jnp.ones(2), jnp.ones(2), **{name: -1.0})

  def test_missing_loo_noise(self):
    with self.assertRaisesRegex(ValueError, 'needs loo_noise'):
      so.compute_mask({'w': jnp.ones(2)})

  def test_stats_and_noise_together(self):
    s = so.stats_from_per_example({'w': jnp.ones((2, 2))})
    with self.assertRaisesRegex(ValueError, 'not both'):
      so.compute_mask(s, s.loo_noise)

  def test_mismatched_noise_shape_names_leaf(self):
    with self.assertRaisesRegex(ValueError, r"\['w'\] has shape \(3,\)"):
      so.compute_mask({'w': jnp.ones(2)}, {'w': jnp.ones(3)})


if __name__ == '__main__':
  absltest.main()
