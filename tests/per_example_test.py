# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of per_example_grads and value_and_grad_stats (vmap, microbatch)."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

import snr_optax as so
from tests import numpy_reference as ref


def _mlp_params(seed=0, sizes=(4, 8, 3)):
  keys = jax.random.split(jax.random.key(seed), len(sizes))
  return {f'layer{i}': {'w': jax.random.normal(k, (m, n)) / np.sqrt(m),
                        'b': jnp.full((n,), 0.1)}
          for i, (k, m, n) in enumerate(zip(keys, sizes[:-1], sizes[1:]))}


def _loss(params, batch, temperature=1.0):
  h = batch['x']
  for i in range(len(params)):
    layer = params[f'layer{i}']
    h = h @ layer['w'] + layer['b']
    if i < len(params) - 1:
      h = jnp.tanh(h)
  logp = jax.nn.log_softmax(h / temperature)
  return -jnp.mean(jnp.take_along_axis(logp, batch['y'][:, None], 1))


def _loss_with_aux(params, batch):
  value = _loss(params, batch)
  return value, {'n': batch['x'].shape[0], 'value': value}


def _batch(b, seed=1):
  rng = np.random.default_rng(seed)
  return {'x': jnp.asarray(rng.normal(size=(b, 4)), jnp.float32),
          'y': jnp.asarray(rng.integers(0, 3, size=b))}


def _loop_grads(loss, params, batch, *args, argnums=0):
  """The reference: jax.grad on each one-example batch, in a Python loop."""
  b = batch['y'].shape[0]
  per = [jax.grad(loss, argnums=argnums)(
      params, jax.tree.map(lambda x: x[i:i + 1], batch), *args)
         for i in range(b)]
  return jax.tree.map(lambda *xs: np.stack(xs), *per)


class PerExampleGradsTest(parameterized.TestCase):

  @parameterized.parameters(None, 1, 3, 4, 10)
  def test_matches_loop_over_examples(self, microbatch_size):
    params, batch = _mlp_params(), _batch(10)
    got = jax.jit(so.per_example_grads(
        _loss, microbatch_size=microbatch_size))(params, batch)
    want = _loop_grads(_loss, params, batch)
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-5,
                                                         atol=1e-6), got, want)

  def test_mean_equals_batch_gradient(self):
    params, batch = _mlp_params(), _batch(12)
    got = so.per_example_grads(_loss)(params, batch)
    want = jax.grad(_loss)(params, batch)
    jax.tree.map(lambda g, w: np.testing.assert_allclose(
        g.mean(0), w, rtol=1e-5, atol=1e-6), got, want)

  def test_extra_args_and_tuple_argnums(self):
    params, batch = _mlp_params(), _batch(6)
    temperature = jnp.float32(2.0)
    grads = so.per_example_grads(_loss, argnums=(0, 2))(params, batch,
                                                         temperature)
    want = _loop_grads(_loss, params, batch, temperature, argnums=(0, 2))
    self.assertLen(grads, 2)
    self.assertEqual(grads[1].shape, (6,))
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-5,
                                                         atol=1e-6),
                 grads, want)

  def test_has_aux_returns_per_example_aux(self):
    params, batch = _mlp_params(), _batch(5)
    grads, aux = so.per_example_grads(_loss_with_aux, has_aux=True)(params,
                                                                    batch)
    self.assertEqual(aux['value'].shape, (5,))
    np.testing.assert_array_equal(aux['n'], np.ones(5))
    self.assertEqual(grads['layer0']['w'].shape, (5, 4, 8))

  def test_argnums_batch_is_rejected(self):
    with self.assertRaisesRegex(ValueError, 'argument 1 is the batch'):
      so.per_example_grads(_loss, argnums=(0, 1))

  def test_argnums_out_of_range(self):
    with self.assertRaisesRegex(ValueError, 'refers to argument 3'):
      so.per_example_grads(_loss, argnums=3)(_mlp_params(), _batch(4))

  def test_bad_microbatch_size(self):
    with self.assertRaisesRegex(ValueError, 'microbatch_size must be'):
      so.per_example_grads(_loss, microbatch_size=0)

  def test_batch_of_one_is_rejected(self):
    with self.assertRaisesRegex(ValueError, r"batch: batch size 1 \(leaf \['x'\]"):
      so.per_example_grads(_loss)(_mlp_params(), _batch(1))


class ValueAndGradStatsTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ('vmap', 'vmap', None), ('auto', 'auto', None),
      ('microbatch_divides', 'microbatch', 4),
      ('microbatch_remainder', 'microbatch', 5),
      ('microbatch_remainder_one', 'microbatch', 7),
      ('microbatch_larger_than_batch', 'microbatch', 64))
  def test_matches_numpy_statistics_of_loop(self, method, microbatch_size):
    params, batch = _mlp_params(), _batch(15)
    value, stats = jax.jit(so.value_and_grad_stats(
        _loss, method=method, microbatch_size=microbatch_size))(params, batch)
    np.testing.assert_allclose(value, _loss(params, batch), rtol=1e-6)
    self.assertEqual(int(stats.count), 15)
    loop = _loop_grads(_loss, params, batch)
    for got_mean, got_m2, g in zip(jax.tree.leaves(stats.mean),
                                   jax.tree.leaves(stats.sum_sq_dev),
                                   jax.tree.leaves(loop)):
      mean, m2, _ = ref.stats(g)
      np.testing.assert_allclose(got_mean, mean, rtol=1e-5, atol=1e-6)
      np.testing.assert_allclose(got_m2, m2, rtol=1e-4, atol=1e-6)

  @parameterized.parameters('vmap', 'microbatch')
  def test_tuple_argnums_statistics(self, method):
    params, batch = _mlp_params(), _batch(9)
    temperature = jnp.float32(0.7)
    _, stats = so.value_and_grad_stats(
        _loss, argnums=(0, 2), method=method, microbatch_size=4)(
            params, batch, temperature)
    loop = _loop_grads(_loss, params, batch, temperature, argnums=(0, 2))
    self.assertEqual(jax.tree.structure(stats.mean),
                     jax.tree.structure(jax.tree.map(lambda g: g[0], loop)))
    for got, g in zip(jax.tree.leaves(stats.sum_sq_dev),
                      jax.tree.leaves(loop)):
      np.testing.assert_allclose(got, ref.stats(g)[1], rtol=1e-4, atol=1e-7)

  def test_has_aux_returns_the_batch_call_aux(self):
    params, batch = _mlp_params(), _batch(6)
    (value, aux), stats = so.value_and_grad_stats(
        _loss_with_aux, has_aux=True, method='vmap')(params, batch)
    self.assertEqual(aux['n'], 6)
    np.testing.assert_allclose(value, aux['value'])
    self.assertEqual(stats.mean['layer1']['w'].shape, (8, 3))

  def test_unknown_method_lists_valid_values(self):
    with self.assertRaisesRegex(ValueError, "method='exact'.*'auto', 'fast', "
                                "'vmap', 'microbatch'"):
      so.value_and_grad_stats(_loss, method='exact')

  def test_microbatch_needs_size(self):
    with self.assertRaisesRegex(ValueError, 'needs microbatch_size'):
      so.value_and_grad_stats(_loss, method='microbatch')


if __name__ == '__main__':
  absltest.main()
