# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of GradStats, stats_from_per_example and merge_stats."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

import snr_optax as so
from tests import numpy_reference as ref


def _per_example(seed, b, shapes, dtype=np.float32, offset=0.0):
  rng = np.random.default_rng(seed)
  return {name: (rng.normal(size=(b,) + shape) + offset).astype(dtype)
          for name, shape in shapes.items()}


class StatsTest(parameterized.TestCase):

  @parameterized.product(b=[2, 3, 17, 64], dtype=['float32', 'float16',
                                                    'bfloat16'])
  def test_matches_numpy_reference(self, b, dtype):
    g = _per_example(b, b, {'w': (3, 4), 'b': (4,), 's': ()})
    g = jax.tree.map(lambda x: jnp.asarray(x, dtype), g)
    s = jax.jit(so.stats_from_per_example)(g)
    tol = 1e-5 if dtype == 'float32' else 1e-6  # inputs are exact in f32
    for name, leaf in g.items():
      mean, m2, n = ref.stats(np.asarray(leaf, np.float64))
      np.testing.assert_allclose(s.mean[name], mean, rtol=tol, atol=tol)
      np.testing.assert_allclose(s.sum_sq_dev[name], m2, rtol=tol, atol=tol)
      np.testing.assert_allclose(s.variance[name], m2 / n, rtol=tol, atol=tol)
      np.testing.assert_allclose(s.loo_noise[name], ref.loo_noise(m2, n),
                                 rtol=tol, atol=tol)
      # Low-precision inputs are accumulated and kept in float32.
      self.assertEqual(s.mean[name].dtype, jnp.float32)
      self.assertEqual(s.sum_sq_dev[name].dtype, jnp.float32)
    self.assertEqual(int(s.count), b)
    self.assertEqual(s.count.dtype, jnp.int32)

  def test_two_pass_survives_large_mean(self):
    # |mean| >> std: E[g^2] - mean^2 in float32 would lose every digit.
    g = {'w': _per_example(0, 32, {'w': (50,)}, offset=1e4)['w']}
    s = so.stats_from_per_example(g)
    _, m2, _ = ref.stats(g['w'])
    np.testing.assert_allclose(s.sum_sq_dev['w'], m2, rtol=1e-3)

  def test_loo_noise_conventions(self):
    # nu = sigma2 / (b - 1) = unbiased s^2 / b = jackknife variance of mu.
    g = np.random.default_rng(1).normal(size=(9, 5))
    s = so.stats_from_per_example({'w': jnp.asarray(g)})
    unbiased = g.var(0, ddof=1)
    np.testing.assert_allclose(s.loo_noise['w'], unbiased / 9, rtol=1e-5)
    loo_means = np.stack([np.delete(g, i, 0).mean(0) for i in range(9)])
    jackknife = 8 / 9 * ((loo_means - g.mean(0)) ** 2).sum(0)
    np.testing.assert_allclose(s.loo_noise['w'], jackknife, rtol=1e-5)
    np.testing.assert_allclose(s.variance['w'], g.var(0), rtol=1e-5)

  def test_gradstats_is_a_pytree_with_python_count(self):
    s = so.GradStats({'w': jnp.ones(2)}, {'w': jnp.full(2, 6.0)}, 4)
    np.testing.assert_allclose(s.loo_noise['w'], 0.5)
    leaves = jax.tree.leaves(jax.jit(lambda t: t)(
        so.GradStats({'w': jnp.ones(2)}, {'w': jnp.ones(2)}, jnp.int32(3))))
    self.assertLen(leaves, 3)

  def test_loo_noise_of_one_example_is_nan_not_a_guess(self):
    s = so.GradStats({'w': jnp.ones(2)}, {'w': jnp.zeros(2)}, jnp.int32(1))
    self.assertTrue(np.all(np.isnan(s.loo_noise['w'])))

  @parameterized.parameters(2, 5, 31)
  def test_merge_of_random_splits_equals_whole(self, seed):
    rng = np.random.default_rng(seed)
    b = 40
    g = _per_example(seed, b, {'w': (3, 2), 'v': (5,)}, offset=3.0)
    whole = so.stats_from_per_example(g)
    # Even cut points keep every piece at two or more examples.
    cuts = np.sort(rng.choice(np.arange(2, b - 1, 2), size=3, replace=False))
    pieces = np.split(np.arange(b), cuts)
    merged = None
    for idx in pieces:
      part = so.stats_from_per_example(jax.tree.map(lambda x: x[idx], g))
      merged = part if merged is None else so.merge_stats(merged, part)
    self.assertEqual(int(merged.count), b)
    for name in g:
      np.testing.assert_allclose(merged.mean[name], whole.mean[name],
                                 rtol=1e-5, atol=1e-6)
      np.testing.assert_allclose(merged.sum_sq_dev[name],
                                 whole.sum_sq_dev[name], rtol=1e-5)

  def test_merge_is_symmetric_and_jittable(self):
    g = _per_example(3, 10, {'w': (4,)})
    a = so.stats_from_per_example(jax.tree.map(lambda x: x[:3], g))
    c = so.stats_from_per_example(jax.tree.map(lambda x: x[3:], g))
    ab = jax.jit(so.merge_stats)(a, c)
    ba = jax.jit(so.merge_stats)(c, a)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6),
                 ab, ba)

  def test_merge_with_empty_batch_is_identity(self):
    g = _per_example(4, 6, {'w': (3,)})
    s = so.stats_from_per_example(g)
    empty = so.GradStats({'w': jnp.zeros(3)}, {'w': jnp.zeros(3)},
                         jnp.int32(0))
    merged = so.merge_stats(empty, s)
    jax.tree.map(np.testing.assert_allclose, merged, s)

  def test_scalar_leaf_is_rejected_with_its_path(self):
    with self.assertRaisesRegex(ValueError, r"\['w'\].*scalar"):
      so.stats_from_per_example({'w': jnp.ones(()), 'v': jnp.ones((3,))})

  def test_batch_of_one_is_rejected(self):
    with self.assertRaisesRegex(ValueError, r'batch size 1.*at least 2'):
      so.stats_from_per_example({'w': jnp.ones((1, 3))})

  def test_disagreeing_batch_axes_are_rejected(self):
    with self.assertRaisesRegex(ValueError, r"disagree.*\['a'\].*\(4, 2\)"):
      so.stats_from_per_example({'a': jnp.ones((4, 2)), 'b': jnp.ones((3,))})


if __name__ == '__main__':
  absltest.main()
