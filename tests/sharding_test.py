# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Sharded training on 8 host CPU devices equals single-device training.

Under pytest, the root conftest.py requests the 8 devices; run alone (as
Bazel does), this module requests them itself before JAX starts.
"""

import os
import sys

if 'jax' not in sys.modules and ('--xla_force_host_platform_device_count'
                                 not in os.environ.get('XLA_FLAGS', '')):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                             ' --xla_force_host_platform_device_count=8')

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl.testing import absltest
from absl.testing import parameterized
from flax import nnx
import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np
import optax

import snr_optax as so

B = 48          # global batch: 6 examples per device, a size no weight has
STEPS = 3
VOCAB, CLASSES = 13, 11


class _Model(nnx.Module):
  """Embeddings, attention, a position-wise MLP and a head: every fast rule.

  Attention has no biases: softmax ignores the key bias, whose gradient is
  then pure rounding noise that Adam would amplify differently on each
  summation order.
  """

  def __init__(self, rngs):
    self.embed = nnx.Embed(VOCAB, 32, rngs=rngs)
    self.norm = nnx.LayerNorm(32, rngs=rngs)
    self.attn = nnx.MultiHeadAttention(2, 32, use_bias=False, decode=False,
                                       keep_rngs=False, rngs=rngs)
    self.mlp = nnx.Linear(32, 32, rngs=rngs)
    self.head = nnx.Linear(32, CLASSES, rngs=rngs)

  def __call__(self, tokens):
    h = self.embed(tokens)
    h = h + self.attn(self.norm(h), mask=nnx.make_causal_mask(tokens))
    h = h + jax.nn.relu(self.mlp(h))
    return self.head(h[:, -1])


def _model_and_loss():
  graphdef, params = nnx.split(_Model(nnx.Rngs(0)), nnx.Param)

  def loss_fn(params, batch):
    logits = nnx.merge(graphdef, params)(batch[0])
    return optax.softmax_cross_entropy_with_integer_labels(
        logits, batch[1]).mean()
  return params, loss_fn


def _batches():
  rng = np.random.default_rng(0)
  return [(rng.integers(0, VOCAB, (B, 4)).astype(np.int32),
           rng.integers(0, CLASSES, B).astype(np.int32))
          for _ in range(STEPS)]


def _optimizer(name, placement='before', reduction='element'):
  if name == 'streaming':
    return so.streaming_snr_adamw(1e-2, reduction=reduction)
  return so.snr_adam(1e-2, mode='snr', placement=placement,
                     reduction=reduction, weight_decay=0.1)


def _train_step(loss_fn, opt, method, out_shardings=None):
  if method == 'plain':
    grads_fn = jax.value_and_grad(loss_fn)
  else:
    grads_fn = so.value_and_grad_stats(
        loss_fn, method=method,
        microbatch_size=16 if method == 'microbatch' else None)

  def step(params, state, batch):
    loss, grads = grads_fn(params, batch)
    updates, state = opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state, loss
  if out_shardings is None:
    return jax.jit(step)
  return jax.jit(step, out_shardings=out_shardings)


def _train(params, opt, step, batches, put_batch=lambda b: b):
  state = opt.init(params)
  states = [state]
  for batch in batches:
    params, state, _ = step(params, state, put_batch(batch))
    states.append(state)
  return params, states


def _assert_trees_close(a, b, rtol=2e-4, atol=2e-6):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol,
                               atol=atol)


def _assert_same_sharding(tree, reference):
  for x, r in zip(jax.tree.leaves(tree), jax.tree.leaves(reference)):
    if np.ndim(x) == np.ndim(r) and np.shape(x) == np.shape(r):
      assert x.sharding.is_equivalent_to(r.sharding, np.ndim(x)), (
          x.sharding, r.sharding)


class DataParallelTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    if jax.device_count() < 8:
      self.skipTest('needs 8 devices')
    self.mesh = so.sharding.make_mesh({'data': 8})

  @parameterized.parameters(('vmap', 'before'), ('microbatch', 'before'),
                            ('fast', 'before'), ('fast', 'after'))
  def test_sharded_equals_single_device(self, method, placement):
    params, loss_fn = _model_and_loss()
    opt = _optimizer('snr_adam', placement)
    step = _train_step(loss_fn, opt, method)
    want, _ = _train(params, opt, step, _batches())
    replicated = jax.device_put(params, so.sharding.replicated(self.mesh))
    got, states = _train(replicated, opt, step, _batches(),
                         lambda b: so.sharding.shard_batch(b, self.mesh))
    _assert_trees_close(got, want)
    _assert_same_sharding(got, replicated)
    for state in states:   # Adam's moments stay replicated like the params
      _assert_same_sharding(optax.tree_utils.tree_get(state, 'mu'),
                            replicated)

  @parameterized.parameters('vmap', 'microbatch', 'fast')
  def test_statistics_cross_devices_as_parameter_sized_all_reduces(
      self, method):
    params, loss_fn = _model_and_loss()
    opt = _optimizer('snr_adam')
    step = _train_step(loss_fn, opt, method)
    replicated = jax.device_put(params, so.sharding.replicated(self.mesh))
    batch = so.sharding.shard_batch(_batches()[0], self.mesh)
    compiled = step.lower(replicated, opt.init(replicated), batch).compile()
    moved = so.sharding.collective_bytes(compiled)
    param_bytes = sum(4 * p.size for p in jax.tree.leaves(params))
    # Statistics reduce with all-reduces, and nothing else crosses devices:
    # no gather of per-example values, no reshuffling of the batch.
    self.assertGreater(moved['all-reduce'], 0)
    others = ('all-gather', 'reduce-scatter', 'all-to-all',
              'collective-permute')
    self.assertEqual({k: moved[k] for k in others}, dict.fromkeys(others, 0))
    # The mean and the sum of squared deviations (plus the loss, and for
    # microbatches one more pair inside the loop over chunks): a few times
    # the parameters, where gathering per-example values would be B times.
    self.assertLess(moved['all-reduce'], 6 * param_bytes)
    # The exact recomputations guarded by lax.cond are parameter-sized too
    # (counted over every branch: unscaled and scaled inputs, each with a
    # centred and a two-pass form), far below B times the parameters.
    self.assertLess(moved['conditional'], 12 * param_bytes)

  def test_streaming_sharded_equals_single_device(self):
    params, loss_fn = _model_and_loss()
    opt = _optimizer('streaming')
    step = _train_step(loss_fn, opt, 'plain')
    want, _ = _train(params, opt, step, _batches())
    replicated = jax.device_put(params, so.sharding.replicated(self.mesh))
    got, _ = _train(replicated, opt, step, _batches(),
                    lambda b: so.sharding.shard_batch(b, self.mesh))
    _assert_trees_close(got, want)

  def test_indivisible_batch_is_rejected_with_its_leaf(self):
    with self.assertRaisesRegex(ValueError, r'\[0\] has shape \(12, 4\).*'
                                'size 8'):
      so.sharding.shard_batch((np.zeros((12, 4)), np.zeros(12)), self.mesh)


class FSDPTest(parameterized.TestCase):
  """Parameters and optimizer states sharded over 'fsdp', batch over 'data'."""

  def setUp(self):
    super().setUp()
    if jax.device_count() < 8:
      self.skipTest('needs 8 devices')
    self.mesh = so.sharding.make_mesh({'data': 4, 'fsdp': 2})

  def _sharded_params(self, params):
    shardings = so.sharding.fsdp_shardings(params, self.mesh, min_size=64)
    sharded = jax.device_put(params, shardings)
    self.assertTrue(any(s.spec != P() for s in jax.tree.leaves(
        shardings, is_leaf=lambda x: isinstance(x, NamedSharding))))
    return sharded

  @parameterized.parameters(
      dict(name='snr_adam', method='fast', reduction='element'),
      dict(name='snr_adam', method='vmap', reduction='tensor'),
      dict(name='streaming', method='plain', reduction='tensor'))
  def test_fsdp_equals_single_device_and_keeps_shardings(
      self, name, method, reduction):
    params, loss_fn = _model_and_loss()
    opt = _optimizer(name, reduction=reduction)
    want, _ = _train(params, opt, _train_step(loss_fn, opt, method),
                     _batches())
    sharded = self._sharded_params(params)
    # The optimizer state made on sharded parameters is sharded like them.
    init_state = opt.init(sharded)
    for key in ('mu', 'nu', 's'):
      try:
        _assert_same_sharding(optax.tree_utils.tree_get(init_state, key),
                              sharded)
      except KeyError:
        pass
    step = _train_step(loss_fn, opt, method, out_shardings=(
        so.sharding.shardings_of(sharded, self.mesh),
        so.sharding.shardings_of(init_state, self.mesh), None))
    got, states = _train(sharded, opt, step, _batches(),
                         lambda b: so.sharding.shard_batch(b, self.mesh,
                                                           'data'))
    _assert_trees_close(got, want)
    _assert_same_sharding(got, sharded)
    # Moments (and the streaming s) have each parameter's sharding, after
    # init and after every update: no silent resharding.
    for state in states:
      for key in ('mu', 'nu', 's'):
        try:
          moment = optax.tree_utils.tree_get(state, key)
        except KeyError:
          continue
        if moment is not None:
          _assert_same_sharding(moment, sharded)


if __name__ == '__main__':
  absltest.main()
