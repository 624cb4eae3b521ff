# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The layer identities of the fast path against float64 NumPy loops."""

import functools

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from snr_optax._src.fast import rules


def _m2(per_example):
  g = np.asarray(per_example, np.float64)
  return ((g - g.mean(0)) ** 2).sum(0)


class DenseRuleTest(parameterized.TestCase):

  @parameterized.product(offset=[0.0, 1.0, 30.0], b=[2, 7, 64],
                         positions=[1, 3, rules.PAIR_MAX_POSITIONS + 3],
                         given_mean=[True, False])
  def test_matches_loop(self, offset, b, positions, given_mean):
    # offset 30 makes |mean| >> std, where only the guarded forms survive.
    rng = np.random.default_rng(b + positions)
    x = (offset + rng.normal(size=(b, positions, 5))).astype(np.float32)
    d = (offset + rng.normal(size=(b, positions, 3))).astype(np.float32)
    per_example = np.einsum('bti,bto->bio', x.astype(np.float64), d)
    want = _m2(per_example)
    mean = (jnp.asarray(per_example.mean(0), jnp.float32) if given_mean
            else None)
    got_mean, got = jax.jit(functools.partial(rules.dense_kernel_stats,
                                              chunk=3))(x, d, mean)
    # With offset 30 each g_i is ~1e4 with a spread of ~1e2: float32
    # rounding of the g_i themselves limits any method to ~1e-4.
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6 * want.max())
    np.testing.assert_allclose(got_mean, per_example.mean(0), rtol=1e-5)

  def test_guard_keeps_digits_the_one_pass_form_loses(self):
    rng = np.random.default_rng(0)
    b = 32
    x = (1.0 + 1e-3 * rng.normal(size=(b, 4))).astype(np.float32)
    d = (2.0 + 1e-3 * rng.normal(size=(b, 3))).astype(np.float32)
    want = _m2(np.einsum('bi,bo->bio', x.astype(np.float64),
                         d.astype(np.float64)))
    mean = jnp.asarray((x.astype(np.float64).T @ d / b).astype(np.float32))
    sum_sq = np.square(x.astype(np.float32)).T @ np.square(d)
    one_pass = sum_sq - b * np.square(np.asarray(mean))
    self.assertGreater(np.max(np.abs(one_pass - want) / want), 1e-2)
    _, guarded = rules.dense_kernel_stats(x[:, None], d[:, None], mean,
                                          chunk=8)
    np.testing.assert_allclose(guarded, want, rtol=1e-4)

  def test_positions_that_cancel(self):
    # The DPO pattern: two positions per example whose gradients nearly
    # cancel, so each g_i is ~1e-3 of its terms.
    rng = np.random.default_rng(1)
    b = 16
    x0 = 3 + rng.normal(size=(b, 5))
    x = np.stack([x0, x0 + 1e-3 * rng.normal(size=(b, 5))], 1)
    d0 = rng.normal(size=(b, 1))
    d = np.stack([d0, -d0], 1)
    x, d = x.astype(np.float32), d.astype(np.float32)
    per_example = np.einsum('bti,bto->bio', x.astype(np.float64),
                            d.astype(np.float64))
    got_mean, got = rules.dense_kernel_stats(x, d, None, chunk=4)
    # Forming each g_i in float32 loses ~1e3 eps to the cancellation, in any
    # method; the unguarded pair identity was 40% off here.
    np.testing.assert_allclose(got, _m2(per_example), rtol=1e-3)
    np.testing.assert_allclose(got_mean, per_example.mean(0), rtol=1e-3,
                               atol=1e-4 * np.abs(per_example).max())

  @parameterized.parameters((1e20, 1e-22), (1e2, 1e-20), (1e-20, 1e18),
                            (1e30, 1e-30))
  def test_squares_cannot_overflow_or_underflow(self, x_scale, d_scale):
    rng = np.random.default_rng(2)
    b = 8
    x = (x_scale * (1 + rng.uniform(size=(b, 1, 3)))).astype(np.float32)
    d = (d_scale * rng.normal(size=(b, 1, 2))).astype(np.float32)
    per_example = np.einsum('bti,bto->bio', x.astype(np.float64),
                            d.astype(np.float64))
    got_mean, got = rules.dense_kernel_stats(x, d, None, chunk=4)
    self.assertTrue(np.all(np.isfinite(got)))
    np.testing.assert_allclose(got, _m2(per_example), rtol=1e-4)
    np.testing.assert_allclose(got_mean, per_example.mean(0), rtol=1e-4)


class EmbedRuleTest(parameterized.TestCase):

  @parameterized.parameters((4, 1), (6, 5), (3, 9))
  def test_matches_loop(self, b, seq):
    vocab, dim = 7, 3
    rng = np.random.default_rng(seq)
    tokens = rng.integers(0, vocab, (b, seq))
    d = rng.normal(size=(b, seq, dim)).astype(np.float32)
    per_example = np.zeros((b, vocab, dim))
    for i in range(b):
      for t in range(seq):
        per_example[i, tokens[i, t]] += d[i, t]
    mean = jnp.asarray(per_example.mean(0), jnp.float32)
    got = jax.jit(rules.embed_sum_sq_dev)(jnp.asarray(tokens), d, mean)
    np.testing.assert_allclose(got, _m2(per_example), rtol=1e-5, atol=1e-6)

  def test_positions_that_read_no_row(self):
    # rows -1: the lookup read nothing there (e.g. an out-of-range index
    # dropped); such positions contribute no gradient.
    vocab, dim, b, seq = 5, 2, 4, 3
    rng = np.random.default_rng(7)
    rows = rng.integers(-1, vocab, (b, seq))
    d = rng.normal(size=(b, seq, dim)).astype(np.float32)
    per_example = np.zeros((b, vocab, dim))
    for i in range(b):
      for t in range(seq):
        if rows[i, t] >= 0:
          per_example[i, rows[i, t]] += d[i, t]
    mean = jnp.asarray(per_example.mean(0), jnp.float32)
    got = rules.embed_sum_sq_dev(jnp.asarray(rows), d, mean)
    np.testing.assert_allclose(got, _m2(per_example), rtol=1e-5, atol=1e-6)


class MaterializedRuleTest(parameterized.TestCase):

  @parameterized.parameters(1, 3, 4, 10)
  def test_matches_loop(self, chunk):
    rng = np.random.default_rng(chunk)
    b, seq, n_in, n_out = 10, 4, 3, 2
    x = rng.normal(size=(b, seq, n_in)).astype(np.float32)
    d = rng.normal(size=(b, seq, n_out)).astype(np.float32)
    theta = {'kernel': jnp.asarray(rng.normal(size=(n_in, n_out)),
                                   jnp.float32),
             'bias': jnp.zeros(n_out)}
    layer = lambda th, x: x @ th['kernel'] + th['bias']
    stats = rules.materialized_stats(layer, theta, jnp.asarray(x),
                                     jnp.asarray(d), chunk)
    kernel = np.einsum('bti,bto->bio', x.astype(np.float64), d)
    bias = d.astype(np.float64).sum(1)
    np.testing.assert_allclose(stats.mean['kernel'], kernel.mean(0),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats.sum_sq_dev['kernel'], _m2(kernel),
                               rtol=1e-5)
    np.testing.assert_allclose(stats.sum_sq_dev['bias'], _m2(bias),
                               rtol=1e-5)
    self.assertEqual(int(stats.count), b)


if __name__ == '__main__':
  absltest.main()
