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
import contextlib

from absl.testing import absltest
from absl.testing import parameterized
from flax import nnx
import jax
import jax.numpy as jnp
from jax.sharding import AxisType
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


def _train_step(loss_fn, opt, method, microbatch_size=16, out_shardings=None,
                param_shardings=None):
  if method == 'plain':
    grads_fn = jax.value_and_grad(loss_fn)
    if param_shardings is not None:
      # Explicit FSDP: this plain model has no out_sharding annotations,
      # which explicit typing needs where a sharded axis is contracted; run
      # its gradient as Auto, as a user would.
      mesh = jax.tree.leaves(param_shardings)[0].mesh
      grads_fn = jax.sharding.auto_axes(
          grads_fn, out_sharding=(NamedSharding(mesh, P()), param_shardings))
  else:
    grads_fn = so.value_and_grad_stats(
        loss_fn, method=method,
        microbatch_size=microbatch_size if method == 'microbatch' else None)

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


# (axis type, whether the mesh is also set with jax.set_mesh)
MESHES = (('auto', False), ('auto', True), ('explicit', False),
          ('explicit', True))
_TYPES = {'auto': AxisType.Auto, 'explicit': AxisType.Explicit}


def _mesh(axes, kind):
  return jax.make_mesh(tuple(axes.values()), tuple(axes),
                       axis_types=(_TYPES[kind],) * len(axes))


def _in_mesh(mesh, set_mesh):
  return jax.set_mesh(mesh) if set_mesh else contextlib.nullcontext()


# The default run takes each case on one kind of mesh, the kinds in turn
# (every case and every kind run); SNR_OPTAX_SLOW=1 runs every case on every
# kind.
_EVERY_MESH = os.environ.get('SNR_OPTAX_SLOW') == '1'


def _named(params, every_mesh=False, first=0):
  cases = []
  for k, (name, kwargs) in enumerate(params):
    for m, (kind, set_mesh) in enumerate(MESHES):
      if every_mesh or _EVERY_MESH or m == (first + k) % len(MESHES):
        cases.append(dict(
            testcase_name=f'{kind}{"_set_mesh" if set_mesh else ""}_{name}',
            kind=kind, set_mesh=set_mesh, **kwargs))
  return cases


class DataParallelTest(parameterized.TestCase):
  """Batch split over 'data' (8 devices), parameters replicated."""

  def setUp(self):
    super().setUp()
    if jax.device_count() < 8:
      self.skipTest('needs 8 devices')

  # Microbatch sizes: a multiple of the device count; 20 (two full chunks and
  # a partial one of 8); 4, fewer examples per chunk than devices.
  @parameterized.named_parameters(_named([
      ('vmap', dict(method='vmap', placement='before', microbatch_size=None)),
      ('microbatch16', dict(method='microbatch', placement='before',
                            microbatch_size=16)),
      ('microbatch20', dict(method='microbatch', placement='after',
                            microbatch_size=20)),
      ('microbatch4', dict(method='microbatch', placement='before',
                           microbatch_size=4)),
      ('fast', dict(method='fast', placement='before', microbatch_size=None)),
      ('auto_after', dict(method='auto', placement='after',
                          microbatch_size=None)),
  ]))
  def test_sharded_equals_single_device(self, kind, set_mesh, method,
                                        placement, microbatch_size):
    mesh = _mesh({'data': 8}, kind)
    params, loss_fn = _model_and_loss()
    opt = _optimizer('snr_adam', placement)
    step = _train_step(loss_fn, opt, method, microbatch_size)
    want, _ = _train(params, opt, step, _batches())
    with _in_mesh(mesh, set_mesh):
      replicated = jax.device_put(params, NamedSharding(mesh, P()))
      got, states = _train(replicated, opt, step, _batches(),
                           lambda b: so.sharding.shard_batch(b, mesh))
    _assert_trees_close(got, want)
    _assert_same_sharding(got, replicated)
    for state in states:   # Adam's moments stay replicated like the params
      _assert_same_sharding(optax.tree_utils.tree_get(state, 'mu'),
                            replicated)

  @parameterized.named_parameters(_named([
      ('vmap', dict(method='vmap')), ('fast', dict(method='fast'))]))
  def test_statistics_and_per_example_values_keep_their_shardings(
      self, kind, set_mesh, method):
    mesh = _mesh({'data': 8}, kind)
    params, loss_fn = _model_and_loss()

    def loss_with_aux(params, batch):   # per-example aux: leading axis B
      return loss_fn(params, batch), {'tokens': batch[0], 'b': B}
    # The single-device references, jitted (eagerly, the fast path's
    # checks dispatch op by op: four times the compile of the whole).
    want = jax.jit(so.value_and_grad_stats(loss_with_aux, method=method,
                                           has_aux=True))(params, _batches()[0])
    want_pe = jax.jit(so.per_example_grads(loss_fn))(params, _batches()[0])
    with _in_mesh(mesh, set_mesh):
      replicated = jax.device_put(params, NamedSharding(mesh, P()))
      batch = so.sharding.shard_batch(_batches()[0], mesh)
      (loss, aux), stats = jax.jit(so.value_and_grad_stats(
          loss_with_aux, method=method, has_aux=True))(replicated, batch)
      per_example = jax.jit(so.per_example_grads(loss_fn))(replicated, batch)
    _assert_trees_close((loss, stats), (want[0][0], want[1]))
    _assert_trees_close(per_example, want_pe, rtol=1e-4, atol=1e-6)
    _assert_same_sharding(stats.mean, replicated)
    _assert_same_sharding(stats.sum_sq_dev, replicated)
    np.testing.assert_array_equal(aux['tokens'], _batches()[0][0])
    if kind == 'explicit':   # explicit types say where each value lives
      self.assertEqual(aux['tokens'].sharding.spec, P('data', None))
      for leaf in jax.tree.leaves(per_example):
        self.assertEqual(leaf.sharding.spec[0], 'data')

  @parameterized.named_parameters(_named([
      ('vmap', dict(method='vmap')), ('microbatch', dict(method='microbatch')),
      ('fast', dict(method='fast'))]))
  def test_statistics_cross_devices_as_parameter_sized_all_reduces(
      self, kind, set_mesh, method):
    mesh = _mesh({'data': 8}, kind)
    params, loss_fn = _model_and_loss()
    opt = _optimizer('snr_adam')
    step = _train_step(loss_fn, opt, method)
    with _in_mesh(mesh, set_mesh):
      replicated = jax.device_put(params, NamedSharding(mesh, P()))
      batch = so.sharding.shard_batch(_batches()[0], mesh)
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

  @parameterized.named_parameters(_named([('streaming', {})], every_mesh=True))
  def test_streaming_sharded_equals_single_device(self, kind, set_mesh):
    # An MLP: plain jax.grad of the embedding model fails on explicit axes
    # in JAX itself (its gather asks for an out_sharding).
    mesh = _mesh({'data': 8}, kind)
    params, loss_fn = _mlp_model_and_loss()
    opt = _optimizer('streaming')
    step = _train_step(loss_fn, opt, 'plain')
    want, _ = _train(params, opt, step, _mlp_batches())
    with _in_mesh(mesh, set_mesh):
      replicated = jax.device_put(params, NamedSharding(mesh, P()))
      got, _ = _train(replicated, opt, step, _mlp_batches(),
                      lambda b: so.sharding.shard_batch(b, mesh))
    _assert_trees_close(got, want)

  @parameterized.named_parameters(_named([('conv', {})], every_mesh=True))
  def test_convolutions_on_several_devices_are_refused(self, kind, set_mesh):
    # XLA's partitioner computes vmap'd convolution gradients wrongly on a
    # split batch (see _src/partitioner.py); every method must refuse.
    mesh = _mesh({'data': 8}, kind)
    params, loss_fn = _conv_model_and_loss()
    with _in_mesh(mesh, set_mesh):
      replicated = jax.device_put(params, NamedSharding(mesh, P()))
      batch = so.sharding.shard_batch(_conv_batch(), mesh)
      for method in ('vmap', 'microbatch', 'fast', 'auto'):
        with self.assertRaisesRegex(ValueError, 'grouped convolution.*one '
                                    'device'):
          jax.jit(so.value_and_grad_stats(
              loss_fn, method=method, microbatch_size=8))(replicated, batch)
      with self.assertRaisesRegex(ValueError, 'grouped convolution'):
        jax.jit(so.per_example_grads(loss_fn))(replicated, batch)
      with self.assertRaisesRegex(ValueError, 'grouped convolution'):
        so.check_stats(loss_fn, replicated, batch, method='vmap')

  @parameterized.named_parameters(_named([('depthwise', {})],
                                        every_mesh=True))
  def test_a_models_own_grouped_convolution_does_not_hide_the_examples(
      self, kind, set_mesh):
    # A frozen depthwise convolution with as many groups as examples: its
    # group count equals that of the per-example kernel gradients.
    mesh = _mesh({'data': 8}, kind)
    blur = nnx.Conv(8, 8, (3, 3), feature_group_count=8, rngs=nnx.Rngs(5))
    conv = nnx.Conv(1, 8, (3, 3), rngs=nnx.Rngs(6))
    frozen = nnx.state(blur, nnx.Param)
    graphdef, params = nnx.split(conv, nnx.Param)
    blur_def = nnx.graphdef(blur)

    def loss_fn(params, batch):
      h = nnx.merge(graphdef, params)(batch)
      return jnp.mean(nnx.merge(blur_def, frozen)(h) ** 2)
    batch = np.random.default_rng(7).normal(size=(8, 6, 6, 1)).astype(
        np.float32)
    with _in_mesh(mesh, set_mesh):
      replicated = jax.device_put(params, NamedSharding(mesh, P()))
      sharded = so.sharding.shard_batch(batch, mesh)
      with self.assertRaisesRegex(ValueError, 'grouped convolution'):
        jax.jit(so.value_and_grad_stats(loss_fn, method='vmap'))(
            replicated, sharded)

  def test_the_partitioner_bug_behind_the_refusal_is_still_there(self):
    # When this fails, XLA computes vmap'd convolution gradients on a split
    # batch correctly: lift the refusal in _src/partitioner.py.
    mesh = _mesh({'data': 8}, 'auto')
    params, loss_fn = _conv_model_and_loss()
    batch = _conv_batch()
    one = lambda p, x, y: loss_fn(p, (x[None], y[None]))
    textbook = jax.jit(jax.vmap(jax.grad(one), in_axes=(None, 0, 0)))
    want = textbook(params, *batch)
    got = textbook(jax.device_put(params, NamedSharding(mesh, P())),
                   *so.sharding.shard_batch(batch, mesh))
    differs = [not np.allclose(x, y, rtol=1e-4, atol=1e-5)
               for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(want))]
    self.assertTrue(any(differs))

  def test_conv_statistics_on_one_device_still_work(self):
    params, loss_fn = _conv_model_and_loss()
    so.check_stats(loss_fn, params, _conv_batch(), method='vmap')

  def test_indivisible_batch_is_rejected_with_its_leaf(self):
    mesh = _mesh({'data': 8}, 'explicit')
    with self.assertRaisesRegex(ValueError, r'\[0\] has shape \(12, 4\).*'
                                'size 8'):
      so.sharding.shard_batch((np.zeros((12, 4)), np.zeros(12)), mesh)

  def test_make_mesh_takes_either_axis_type(self):
    for kind, axis_type in _TYPES.items():
      mesh = so.sharding.make_mesh({'data': -1, 'model': 2},
                                   axis_type=axis_type)
      self.assertEqual(dict(mesh.shape), {'data': 4, 'model': 2}, kind)
      self.assertEqual(mesh.axis_types, (axis_type, axis_type))
    self.assertEqual(so.sharding.make_mesh().axis_types,
                     jax.make_mesh((8,), ('data',)).axis_types)


def _squared_error(model):
  """(params, loss_fn) of a model fitted by mean squared error."""
  graphdef, params = nnx.split(model, nnx.Param)

  def loss_fn(params, batch):
    out = nnx.merge(graphdef, params)(batch[0])
    return jnp.mean((out - batch[1]) ** 2)
  return params, loss_fn


def _mlp_model_and_loss():
  return _squared_error(nnx.Sequential(
      nnx.Linear(6, 32, rngs=nnx.Rngs(0)), jax.nn.tanh,
      nnx.Linear(32, 4, rngs=nnx.Rngs(1))))


def _mlp_batches():
  rng = np.random.default_rng(2)
  return [(rng.normal(size=(B, 6)).astype(np.float32),
           rng.normal(size=(B, 4)).astype(np.float32)) for _ in range(STEPS)]


def _conv_model_and_loss():
  return _squared_error(nnx.Sequential(
      nnx.Conv(1, 4, (3, 3), rngs=nnx.Rngs(0)), jax.nn.relu,
      lambda h: h.reshape(h.shape[0], -1),
      nnx.Linear(4 * 6 * 6, 3, rngs=nnx.Rngs(1))))


def _conv_batch():
  rng = np.random.default_rng(1)
  return (rng.normal(size=(16, 6, 6, 1)).astype(np.float32),
          rng.normal(size=(16, 3)).astype(np.float32))


class FSDPTest(parameterized.TestCase):
  """Parameters and optimizer states sharded over 'fsdp', batch over 'data'."""

  def setUp(self):
    super().setUp()
    if jax.device_count() < 8:
      self.skipTest('needs 8 devices')

  def _sharded_params(self, params, mesh):
    shardings = so.sharding.fsdp_shardings(params, mesh, min_size=64)
    sharded = jax.device_put(params, shardings)
    self.assertTrue(any(s.spec != P() for s in jax.tree.leaves(
        shardings, is_leaf=lambda x: isinstance(x, NamedSharding))))
    return sharded

  @parameterized.named_parameters(_named([
      ('snr_adam_fast', dict(name='snr_adam', method='fast',
                             reduction='element')),
      ('snr_adam_microbatch', dict(name='snr_adam', method='microbatch',
                                   reduction='tensor')),
      ('snr_adam_vmap', dict(name='snr_adam', method='vmap',
                             reduction='tensor')),
      ('streaming', dict(name='streaming', method='plain',
                         reduction='tensor')),
  ]))
  def test_fsdp_equals_single_device_and_keeps_shardings(
      self, kind, set_mesh, name, method, reduction):
    mesh = _mesh({'data': 4, 'fsdp': 2}, kind)
    # Plain jax.grad of the embedding model fails on explicit axes in JAX
    # itself, so the streaming optimizer (which takes it) trains the MLP.
    params, loss_fn = (_mlp_model_and_loss() if name == 'streaming'
                       else _model_and_loss())
    batches = _mlp_batches() if name == 'streaming' else _batches()
    opt = _optimizer(name, reduction=reduction)
    want, _ = _train(params, opt, _train_step(loss_fn, opt, method, 12),
                     batches)
    with _in_mesh(mesh, set_mesh):
      sharded = self._sharded_params(params, mesh)
      # The optimizer state made on sharded parameters is sharded like them.
      init_state = opt.init(sharded)
      for key in ('mu', 'nu', 's'):
        try:
          _assert_same_sharding(optax.tree_utils.tree_get(init_state, key),
                                sharded)
        except KeyError:
          pass
      explicit_plain = kind == 'explicit' and method == 'plain'
      step = _train_step(loss_fn, opt, method, 12, out_shardings=(
          so.sharding.shardings_of(sharded, mesh),
          so.sharding.shardings_of(init_state, mesh), None),
                         param_shardings=jax.tree.map(lambda x: x.sharding,
                                                      sharded)
                         if explicit_plain else None)
      got, states = _train(sharded, opt, step, batches,
                           lambda b: so.sharding.shard_batch(b, mesh, 'data'))
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

  @parameterized.named_parameters(_named([
      ('vmap', dict(method='vmap')), ('microbatch', dict(method='microbatch')),
      ('fast', dict(method='fast'))]))
  def test_per_example_values_are_not_gathered(self, kind, set_mesh, method):
    # Per-example gradients of split parameters are reduced where they are:
    # what is gathered is at most the parameters (FSDP's own gathers).
    mesh = _mesh({'data': 2, 'fsdp': 4}, kind)
    params, loss_fn = _mlp_model_and_loss()
    params = jax.tree.map(lambda p: np.tile(p, (1,) * (p.ndim - 1) + (4,))
                          if p.shape[-1] == 4 else p, params)
    with _in_mesh(mesh, set_mesh):
      sharded = jax.device_put(params, so.sharding.fsdp_shardings(
          params, mesh, 'fsdp', min_size=64))
      batch = so.sharding.shard_batch(_mlp_batches()[0], mesh)
      fn = jax.jit(so.value_and_grad_stats(
          lambda p, b: loss_fn(p, (b[0], jnp.tile(b[1], (1, 4)))),
          method=method, microbatch_size=12))
      moved = so.sharding.collective_bytes(fn.lower(sharded, batch).compile())
    param_bytes = sum(4 * p.size for p in jax.tree.leaves(params))
    # FSDP gathers parameters for the forward and backward passes (a few
    # times their size); gathering per-example gradients would be 24 times
    # (B / 2 examples per data shard).
    self.assertLess(moved['all-gather'], 3 * param_bytes)
    self.assertLess(moved['all-reduce'], 6 * param_bytes)

  # Explicit axes by default (the kind the wrappers were written against);
  # every kind with SNR_OPTAX_SLOW=1.
  @parameterized.named_parameters(_named([('wrappers', {})], first=2))
  def test_keys_aux_diagnostics_and_wrappers(self, kind, set_mesh):
    # Dropout keys and aux, check_stats, stats_plan, accumulate_stats and
    # apply_if_finite on an FSDP mesh, the model unannotated.
    mesh = _mesh({'data': 4, 'fsdp': 2}, kind)
    model = nnx.Sequential(nnx.Linear(6, 32, rngs=nnx.Rngs(0)),
                           nnx.LayerNorm(32, rngs=nnx.Rngs(1)), jax.nn.relu,
                           nnx.Linear(32, 4, rngs=nnx.Rngs(2)))
    graphdef, params = nnx.split(model, nnx.Param)

    def loss_fn(params, batch, key):
      h = nnx.merge(graphdef, params)(batch[0])
      h = h * jax.random.bernoulli(key, 0.8, h.shape) / 0.8
      return jnp.mean((h - batch[1]) ** 2), h
    batch, key = _mlp_batches()[0], jax.random.key(4)
    stats_fn = so.value_and_grad_stats(loss_fn, has_aux=True)
    (_, want_aux), want = stats_fn(params, batch, key)
    opt = so.accumulate_stats(so.apply_if_finite(so.snr_adam(0.1), 2), 2)
    want_updates, _ = opt.update(want, opt.init(params), params)
    want_updates, _ = opt.update(want, _, params)
    with _in_mesh(mesh, set_mesh):
      sharded = jax.device_put(params, so.sharding.fsdp_shardings(
          params, mesh, 'fsdp', min_size=64))
      sharded_batch = so.sharding.shard_batch(batch, mesh)
      so.check_stats(loss_fn, sharded, sharded_batch, key, has_aux=True)
      plan = so.stats_plan(loss_fn, sharded, sharded_batch, key,
                           has_aux=True)
      (_, aux), stats = jax.jit(stats_fn)(sharded, sharded_batch, key)
      state = opt.init(sharded)
      update = jax.jit(opt.update)
      for _ in range(2):
        updates, state = update(stats.mean, state, sharded, grad_stats=stats)
    self.assertTrue(plan["['layers'][0]['kernel'].value"].startswith('dense'))
    _assert_trees_close((aux, stats), (want_aux, want))
    _assert_trees_close(updates, want_updates, rtol=1e-5, atol=1e-7)
    if kind == 'explicit':   # on Auto axes the compiler places outputs
      _assert_same_sharding(stats.mean, sharded)
      _assert_same_sharding(updates, sharded)

  @parameterized.named_parameters(_named([
      ('before', dict(transform='before')), ('after', dict(transform='after')),
      ('mask', dict(transform='mask')),
      ('accumulate', dict(transform='accumulate'))]))
  def test_per_example_gradients_of_sharded_parameters(self, kind, set_mesh,
                                                       transform):
    # Per-example gradients P(None, None, 'fsdp') straight into update.
    mesh = _mesh({'data': 4, 'fsdp': 2}, kind)
    rng = np.random.default_rng(3)
    params = {'w': rng.normal(size=(3, 8)).astype(np.float32),
              'b': np.zeros(8, np.float32)}
    per_example = {'w': rng.normal(size=(6, 3, 8)).astype(np.float32),
                   'b': rng.normal(size=(6, 8)).astype(np.float32)}
    opt = {'before': so.snr_adam(0.1, mode='snr', reduction='tensor'),
           'after': so.snr_adam(0.1, placement='after'),
           'mask': so.snr_mask(mode='soft'),
           'accumulate': so.accumulate_stats(so.snr_adam(0.1), 1)}[transform]
    want, _ = opt.update(per_example, opt.init(params), params)
    with _in_mesh(mesh, set_mesh):
      specs = {'w': P(None, 'fsdp'), 'b': P('fsdp')}
      sharded = jax.device_put(params, jax.tree.map(
          lambda s: NamedSharding(mesh, s), specs))
      sharded_pe = jax.device_put(per_example, jax.tree.map(
          lambda s: NamedSharding(mesh, P(None, *s)), specs))
      got, _ = jax.jit(opt.update)(sharded_pe, opt.init(sharded), sharded)
      stats = jax.jit(so.stats_from_per_example)(sharded_pe)
    _assert_trees_close(got, want, rtol=1e-5, atol=1e-7)
    _assert_same_sharding(got, sharded)
    _assert_same_sharding(stats.mean, sharded)


if __name__ == '__main__':
  absltest.main()
