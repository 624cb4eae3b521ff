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
                         positions=[1, 3, rules.PAIR_MAX_POSITIONS + 3])
  def test_matches_loop(self, offset, b, positions):
    # offset 30 makes |mean| >> std, where only the guarded forms survive.
    rng = np.random.default_rng(b + positions)
    x = (offset + rng.normal(size=(b, positions, 5))).astype(np.float32)
    d = (offset + rng.normal(size=(b, positions, 3))).astype(np.float32)
    per_example = np.einsum('bti,bto->bio', x.astype(np.float64), d)
    want = _m2(per_example)
    mean = jnp.asarray(per_example.mean(0), jnp.float32)
    got = jax.jit(functools.partial(rules.dense_kernel_sum_sq_dev, chunk=3))(
        x, d, mean)
    # With offset 30 each g_i is ~1e4 with a spread of ~1e2: float32
    # rounding of the g_i themselves limits any method to ~1e-4.
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6 * want.max())

  @parameterized.parameters(0.0, 30.0)
  def test_centred_form_matches_loop(self, offset):
    rng = np.random.default_rng(3)
    x = (offset + rng.normal(size=(16, 5))).astype(np.float32)
    d = (offset + rng.normal(size=(16, 3))).astype(np.float32)
    want = _m2(np.einsum('bi,bo->bio', x.astype(np.float64), d))
    centred = jax.jit(rules.centred_dense_kernel_sum_sq_dev)(x, d)
    np.testing.assert_allclose(centred, want, rtol=2e-5,
                               atol=1e-6 * want.max())

  def test_centred_form_keeps_digits_the_one_pass_form_loses(self):
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
    centred = rules.centred_dense_kernel_sum_sq_dev(x, d)
    np.testing.assert_allclose(centred, want, rtol=1e-3)
    guarded = rules.dense_kernel_sum_sq_dev(x[:, None], d[:, None], mean,
                                            chunk=8)
    np.testing.assert_allclose(guarded, want, rtol=1e-3)


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
