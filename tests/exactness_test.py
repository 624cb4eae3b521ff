# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Every method returns exact per-example statistics, or raises ValueError.

"Exact" is defined by an independent reference (``model_zoo.loop_reference``):
a Python loop over examples i calling ``jax.grad(loss_fn)`` on the one-example
batch ``batch[i:i + 1]``, with every PRNG key among the extra arguments
replaced by ``jax.random.fold_in(key, i)``, and the mean and sum of squared
deviations taken in NumPy float64. It shares no code with snr_optax.

The inputs below are ones that the first fast engine got silently wrong
(a position table whose length equals the batch size, layers inside
``jax.vmap``/``jax.jit``/``custom_vjp``, a custom ``dot_general``,
out-of-range tokens, cancellation, extreme scales, bfloat16, dropout keys,
non-mean reductions, misleading plans), a zoo of small models crossed with
every method, and seeded random models.

A ValueError ("refused") is accepted from ``method="fast"`` only: the
library's contract (README, "exact or refused") lets the fast path refuse
what it cannot do exactly, while ``"auto"`` must then fall back to an exact
method, and ``"vmap"`` / ``"microbatch"`` are exact by construction.
"""

import itertools
import os

from absl.testing import absltest
from absl.testing import parameterized
from flax import linen as nn
from flax import nnx
import jax
import jax.extend as jex
import jax.numpy as jnp
import numpy as np
import optax

import snr_optax as so
from tests import model_zoo as zoo

METHODS = ('auto', 'fast', 'vmap', 'microbatch')
# "auto" and "fast" are one engine (auto = fast, falling back where fast
# refuses). The zoo runs every method, "fast" with a microbatch size that
# does not divide b (the engine's chunked path; "microbatch" likewise);
# the random models run auto and vmap. The targeted tests run "auto", plus
# "fast" where refusals matter (non-mean losses), plus vmap where an exact
# method is itself at risk (numerics, randomness, vmap inside the loss).
ZOO_METHODS = ('auto', 'fast_chunked', 'vmap', 'microbatch')
RANDOM_METHODS = ('auto', 'vmap')
ENGINE = ('auto', 'fast')
AUTO = ('auto',)
AUTO_AND_VMAP = ('auto', 'vmap')
REFUSABLE = ('fast', 'fast_chunked')   # may raise ValueError instead
# Seeds of random models run by default (SNR_OPTAX_ZOO_SEEDS=n for more).
N_SEEDS = int(os.environ.get('SNR_OPTAX_ZOO_SEEDS', '8'))
FRAMEWORKS = (('nnx', 'nnx'), ('linen', 'linen'))
# The full matrix of the crossed cases below (README: SNR_OPTAX_SLOW=1); the
# default run takes the cases that the zoo does not already run.
SLOW = os.environ.get('SNR_OPTAX_SLOW') == '1'


def _microbatch_size(b: int) -> int:
  """The smallest microbatch size >= 2 that does not divide b (else 1)."""
  for m in range(2, b):
    if b % m:
      return m
  return 1


def _stats_fn(loss, method, b, *, jit=True, **kwargs):
  """value_and_grad_stats(loss, method), "fast_chunked" being "fast" with a
  microbatch size that does not divide b, as "microbatch" gets by default."""
  if method == 'fast_chunked':
    method = 'fast'
    kwargs.setdefault('microbatch_size', _microbatch_size(b))
  if method == 'microbatch' and kwargs.get('microbatch_size') is None:
    kwargs['microbatch_size'] = _microbatch_size(b)
  fn = so.value_and_grad_stats(loss, method=method, **kwargs)
  return jax.jit(fn) if jit else fn


def _loss_close(got, ref: zoo.Reference, rtol) -> bool:
  """The loss equals the mean of the per-example losses, to rtol of their
  mean magnitude (the float32 error of a mean of terms that may cancel)."""
  got, want = float(got), ref.loss
  if np.isnan(want):
    return bool(np.isnan(got))
  return abs(got - want) <= rtol * float(np.mean(np.abs(ref.losses)))


class ExactTestCase(parameterized.TestCase):
  """``assert_exact``: every method against the loop reference."""

  def run_methods(self, case, methods=METHODS, *, argnums=0, has_aux=False,
                  jit=True, calls=1, microbatch_size=None):
    """{method: [(loss, stats) per call] or the exception it raised}."""
    loss, params, batch, args = case
    b = jax.tree.leaves(batch)[0].shape[0]
    results = {}
    for method in methods:
      kwargs = dict(argnums=argnums, has_aux=has_aux)
      if microbatch_size is not None:
        kwargs['microbatch_size'] = microbatch_size
      try:
        fn = _stats_fn(loss, method, b, jit=jit, **kwargs)
        results[method] = [fn(params, batch, *args) for _ in range(calls)]
      except Exception as e:  # pylint: disable=broad-except
        results[method] = e
    return results

  def assert_exact(self, case, methods=METHODS, *, ref=None, rtol=1e-4,
                   rtol_m2=None, delta=1e-5, atol_mean=0.0, loss_rtol=1e-5,
                   argnums=0, has_aux=False, jit=True, calls=1,
                   microbatch_size=None):
    """Each method's loss and statistics equal the loop reference.

    Returns the reference and the results, for further checks.
    """
    loss, params, batch, args = case
    if ref is None:
      ref = zoo.loop_reference(loss, params, batch, *args, argnums=argnums,
                               has_aux=has_aux)
    results = self.run_methods(case, methods, argnums=argnums,
                               has_aux=has_aux, jit=jit, calls=calls,
                               microbatch_size=microbatch_size)
    failures = []
    for method, result in results.items():
      if isinstance(result, ValueError) and method in REFUSABLE:
        continue   # refused: allowed for "fast"
      if isinstance(result, Exception):
        failures.append(f'{method}: raised {type(result).__name__}: '
                        f'{str(result)[:500]}')
        continue
      for call, (value, stats) in enumerate(result):
        value = value[0] if has_aux else value
        where = f'{method} (call {call + 1})' if calls > 1 else method
        if not _loss_close(value, ref, loss_rtol):
          failures.append(f'{where}: loss {float(value)!r}, want the mean of '
                          f'the per-example losses {ref.loss!r}')
        failures += [f'{where}: {e}' for e in zoo.compare_stats(
            stats, ref, rtol=rtol, rtol_m2=rtol_m2, delta=delta,
            atol_mean=atol_mean)]
    if failures:
      self.fail('Not exact:\n' + '\n'.join(failures))
    return ref, results


# ---------------------------------------------------------------------------
# The zoo and random models, every method.
# ---------------------------------------------------------------------------

_ZOO_CACHE = {}


def _zoo_case(name):
  """The zoo entry and its loop reference, computed once per process."""
  if name not in _ZOO_CACHE:
    case = zoo.ZOO[name]()
    _ZOO_CACHE[name] = case, zoo.loop_reference(*case[:3], *case[3])
  return _ZOO_CACHE[name]


class ZooTest(ExactTestCase):

  @parameterized.named_parameters(
      (f'{name}_{method}', name, method)
      for name, method in itertools.product(zoo.ZOO, ZOO_METHODS))
  def test_zoo(self, name, method):
    case, ref = _zoo_case(name)
    self.assert_exact(case, (method,), ref=ref)

  @parameterized.parameters(*range(N_SEEDS))
  def test_random_model(self, seed):
    case, spec = zoo.random_model(seed)
    try:
      self.assert_exact(case, RANDOM_METHODS)
    except AssertionError as e:
      raise AssertionError(f'{spec}\n{e}') from None


# ---------------------------------------------------------------------------
# 1. Reading a parameter along an axis that happens to have size b.
# ---------------------------------------------------------------------------


class NNXPositions(nnx.Module):
  """Token embeddings plus a learned position table Embed(T)(arange(T))."""

  def __init__(self, seq, rngs):
    self.seq = seq
    self.tok = nnx.Embed(9, 6, rngs=rngs)
    self.pos = nnx.Embed(seq, 6, rngs=rngs)
    self.mix = nnx.Linear(6, 6, rngs=rngs)
    self.head = nnx.Linear(6, 9, rngs=rngs)

  def __call__(self, toks):
    h = self.tok(toks) + self.pos(jnp.arange(self.seq))[None]
    return self.head(jnp.tanh(self.mix(h)).mean(axis=1))


def _positions_case(framework, b, seq) -> zoo.Case:
  batch = (zoo.tokens(40, (b, seq), 9), zoo.labels(41, b, 9))
  if framework == 'nnx':
    return zoo.nnx_case(NNXPositions(seq, nnx.Rngs(0)), batch)
  return zoo.linen_case(zoo.LinenPositions(seq=seq), batch)


class NNXVmapConv(nnx.Module):
  """A Conv applied per image inside jax.vmap (its input is [H, W, C])."""

  def __init__(self, rngs):
    self.conv = nnx.Conv(2, 3, (3, 3), rngs=rngs)
    self.head = nnx.Linear(3, 3, rngs=rngs)

  def __call__(self, x):
    h = jax.vmap(self.conv)(x)
    return self.head(jax.nn.relu(h).mean(axis=(1, 2)))


class LinenVmapConv(nn.Module):
  """Linen's lifted nn.vmap of a Conv over images, parameters shared."""

  @nn.compact
  def __call__(self, x):
    conv = nn.vmap(nn.Conv, in_axes=0, out_axes=0,
                   variable_axes={'params': None},
                   split_rngs={'params': False})(3, (3, 3))
    return nn.Dense(3)(jax.nn.relu(conv(x)).mean(axis=(1, 2)))


class BatchSizedAxesTest(ExactTestCase):

  @parameterized.named_parameters(
      ('nnx_t_eq_b', 'nnx', 5, 5), ('nnx_t_ne_b', 'nnx', 5, 3),
      ('linen_t_eq_b', 'linen', 4, 4), ('linen_t_ne_b', 'linen', 4, 6))
  def test_position_table(self, framework, b, seq):
    self.assert_exact(_positions_case(framework, b, seq), AUTO)

  @parameterized.named_parameters(*FRAMEWORKS)
  def test_conv_inside_vmap_with_height_b(self, framework):
    b = 4
    batch = (zoo.normal(42, (b, b, 5, 2)), zoo.labels(43, b, 3))   # H == b
    case = (zoo.nnx_case(NNXVmapConv(nnx.Rngs(1)), batch)
            if framework == 'nnx' else zoo.linen_case(LinenVmapConv(), batch))
    ref, _ = self.assert_exact(case, AUTO_AND_VMAP)
    if framework == 'nnx':   # eagerly too (Linen's eager nn.vmap is slow)
      self.assert_exact(case, ('auto',), ref=ref, jit=False)


# ---------------------------------------------------------------------------
# 2. Layers behind transformations: jit, checkpoint, custom_vjp, named_call.
# ---------------------------------------------------------------------------


def _linen_jit_helper(b=6) -> zoo.Case:
  """zoo.jit_helper in Linen: a jitted helper applying a Dense."""
  enc, mid, head = nn.Dense(6), nn.Dense(6), nn.Dense(6)
  x = zoo.normal(44, (b, 6))
  pe = enc.init(jax.random.key(0), x)['params']
  pm = mid.init(jax.random.key(1), jnp.ones((1, 6)))['params']
  ph = head.init(jax.random.key(2), jnp.ones((1, 6)))['params']

  @jax.jit
  def encode(p, h):
    return jnp.tanh(enc.apply({'params': p}, h))

  def loss_fn(params, batch):
    x, y = batch
    h = encode(params['enc'], x)
    h = jax.nn.relu(mid.apply({'params': params['mid']}, h))
    return zoo.xent(head.apply({'params': params['head']}, h), y)

  encode(pe, x)   # an eager call first: encode's cache is filled
  loss_fn.encode = encode
  return loss_fn, {'enc': pe, 'mid': pm, 'head': ph}, (
      x, zoo.labels(45, b, 6)), ()


class NNXWrapped(nnx.Module):
  """Three Linear layers, the first behind a transformation ``how``."""

  def __init__(self, how, rngs):
    self.how = how
    self.l1 = nnx.Linear(5, 6, rngs=rngs)
    self.l2 = nnx.Linear(6, 6, rngs=rngs)
    self.l3 = nnx.Linear(6, 3, rngs=rngs)

  def first(self, x):
    if self.how == 'checkpoint':
      return jax.checkpoint(self.l1)(x)
    if self.how == 'named_call':
      return jax.named_call(self.l1, name='encoder')(x)
    if self.how == 'custom_vjp':
      graphdef, state = nnx.split(self.l1)

      def apply(state, x):
        return nnx.merge(graphdef, state)(x)

      @jax.custom_vjp
      def layer(state, x):
        return apply(state, x)

      def fwd(state, x):
        return jax.vjp(apply, state, x)

      def bwd(vjp, g):
        return vjp(g)

      layer.defvjp(fwd, bwd)
      return layer(state, x)
    raise ValueError(self.how)

  def __call__(self, x):
    return self.l3(jax.nn.relu(self.l2(jnp.tanh(self.first(x)))))


class LinenWrapped(nn.Module):
  how: str

  @nn.compact
  def __call__(self, x):
    if self.how == 'checkpoint':
      x = nn.remat(nn.Dense)(6)(x)
    elif self.how == 'jit':
      x = nn.jit(nn.Dense)(6)(x)
    else:
      x = nn.Dense(6)(x)
    x = jax.nn.relu(nn.Dense(6)(jnp.tanh(x)))
    return nn.Dense(3)(x)


class TransformedLayersTest(ExactTestCase):

  @parameterized.named_parameters(('nnx_eager_first', 'nnx', True),
                                  ('nnx_traced_first', 'nnx', False),
                                  ('linen_eager_first', 'linen', True))
  def test_jitted_helper_called_repeatedly(self, framework, eager_first):
    # encode is a jax.jit function, called eagerly before (its trace cache
    # then holds an ordinary trace) or first traced by the statistics. They
    # are taken under jax.jit, encode is called eagerly, then "auto" is
    # called without jax.jit twice (each call traces the loss, and encode,
    # again).
    case = (zoo.jit_helper(eager_first=eager_first) if framework == 'nnx'
            else _linen_jit_helper())
    loss, params, batch, _ = case
    ref = zoo.loop_reference(loss, params, batch)
    self.assert_exact(case, AUTO, ref=ref)
    loss.encode(params['enc'], batch[0])
    self.assert_exact(case, ('auto',), ref=ref, calls=2, jit=False)

  @parameterized.named_parameters(*FRAMEWORKS)
  def test_model_under_jit(self, framework):
    batch = (zoo.normal(46, (6, 5)), zoo.labels(47, 6, 3))
    if framework == 'nnx':
      model = NNXWrapped('none', nnx.Rngs(2))
      graphdef, params = nnx.split(model, nnx.Param)
      apply = nnx.jit(lambda m, x: m.l3(jax.nn.relu(m.l2(jnp.tanh(m.l1(x))))))

      def loss(params, batch):
        return zoo.xent(apply(nnx.merge(graphdef, params), batch[0]),
                        batch[1])
    else:
      model = LinenWrapped('none')
      params = model.init(jax.random.key(0), batch[0])['params']
      apply = jax.jit(model.apply)

      def loss(params, batch):
        return zoo.xent(apply({'params': params}, batch[0]), batch[1])
    self.assert_exact((loss, params, batch, ()), AUTO)

  def test_linen_lifted_jit(self):
    batch = (zoo.normal(48, (6, 5)), zoo.labels(49, 6, 3))
    self.assert_exact(zoo.linen_case(LinenWrapped('jit'), batch), AUTO)

  @parameterized.named_parameters(*FRAMEWORKS)
  def test_layer_under_checkpoint(self, framework):
    batch = (zoo.normal(50, (6, 5)), zoo.labels(51, 6, 3))
    case = (zoo.nnx_case(NNXWrapped('checkpoint', nnx.Rngs(3)), batch)
            if framework == 'nnx'
            else zoo.linen_case(LinenWrapped('checkpoint'), batch))
    self.assert_exact(case, AUTO)

  def test_layer_inside_custom_vjp(self):
    batch = (zoo.normal(52, (6, 5)), zoo.labels(53, 6, 3))
    self.assert_exact(zoo.nnx_case(NNXWrapped('custom_vjp', nnx.Rngs(4)),
                                   batch), AUTO)

  def test_linen_apply_inside_custom_vjp(self):
    dense = nn.Dense(6)
    model = LinenWrapped('none')
    batch = (zoo.normal(54, (6, 5)), zoo.labels(55, 6, 3))
    params = {'first': dense.init(jax.random.key(0), batch[0])['params'],
              'rest': model.init(jax.random.key(1),
                                 jnp.ones((1, 6)))['params']}

    def apply(p, x):
      return dense.apply({'params': p}, x)

    @jax.custom_vjp
    def first(p, x):
      return apply(p, x)

    first.defvjp(lambda p, x: jax.vjp(apply, p, x), lambda vjp, g: vjp(g))

    def loss(params, batch):
      h = first(params['first'], batch[0])
      return zoo.xent(model.apply({'params': params['rest']}, h), batch[1])
    self.assert_exact((loss, params, batch, ()), AUTO)

  @parameterized.named_parameters(*FRAMEWORKS)
  def test_layer_under_named_call(self, framework):
    batch = (zoo.normal(56, (6, 5)), zoo.labels(57, 6, 3))
    if framework == 'nnx':
      case = zoo.nnx_case(NNXWrapped('named_call', nnx.Rngs(5)), batch)
    else:
      model = LinenWrapped('none')
      params = model.init(jax.random.key(0), batch[0])['params']
      apply = jax.named_call(model.apply, name='model')
      case = (lambda p, batch: zoo.xent(apply({'params': p}, batch[0]),
                                        batch[1]), params, batch, ())
    self.assert_exact(case, AUTO)


# ---------------------------------------------------------------------------
# 3. What a recognised layer computes: dot_general, precision, dtype.
# ---------------------------------------------------------------------------


class LinenOdd(nn.Module):
  kwargs: tuple = ()

  @nn.compact
  def __call__(self, x):
    x = jnp.tanh(nn.Dense(3, **dict(self.kwargs))(x))
    return nn.Dense(3)(x)


class NNXOdd(nnx.Module):

  def __init__(self, rngs, **kwargs):
    self.odd = nnx.Linear(6, 3, rngs=rngs, **kwargs)
    self.head = nnx.Linear(3, 3, rngs=rngs)

  def __call__(self, x):
    return self.head(jnp.tanh(self.odd(x)))


def _odd_case(framework, **kwargs) -> zoo.Case:
  batch = (zoo.normal(60, (6, 6)), zoo.labels(61, 6, 3))
  if framework == 'nnx':
    return zoo.nnx_case(NNXOdd(nnx.Rngs(6), **kwargs), batch)
  return zoo.linen_case(LinenOdd(tuple(kwargs.items())), batch)


class LayerVariantsTest(ExactTestCase):

  def test_custom_dot_general_linen(self):
    # The layer computes 2 x W: its per-example kernel gradients are twice
    # what a plain dense rule assumes (M2 four times). (NNX: the zoo's
    # custom_dot_general, every method.)
    self.assert_exact(
        _odd_case('linen', dot_general=zoo.twice_dot_general), AUTO)

  @parameterized.named_parameters(*FRAMEWORKS)
  def test_precision_highest(self, framework):
    self.assert_exact(
        _odd_case(framework, precision=jax.lax.Precision.HIGHEST), AUTO)

  @parameterized.named_parameters(*FRAMEWORKS)
  def test_bfloat16_compute(self, framework):
    # The first layer computes in bfloat16 (float32 parameters): each
    # per-example gradient is exact only to bf16 rounding of its products
    # (relative 2^-8), whether taken one example at a time or in a batch, so
    # delta (the per-example relative error allowed) is 1e-2 and rtol 2e-2.
    self.assert_exact(_odd_case(framework, dtype=jnp.bfloat16),
                      AUTO_AND_VMAP, rtol=2e-2, delta=1e-2,
                      loss_rtol=1e-2)


# ---------------------------------------------------------------------------
# 4. Tokens outside [0, vocab).
# ---------------------------------------------------------------------------


class NNXTokenHead(nnx.Module):

  def __init__(self, rngs):
    self.embed = nnx.Embed(11, 8, rngs=rngs)
    self.head = nnx.Linear(8, 3, rngs=rngs)

  def __call__(self, toks):
    return self.head(self.embed(toks).mean(axis=1))


class LinenTokenHead(nn.Module):

  @nn.compact
  def __call__(self, toks):
    return nn.Dense(3)(nn.Embed(11, 8)(toks).mean(axis=1))


def _linear_loss(out, c):
  """mean_i sum_k out_ik c_ik: the output gradient is c, finite always."""
  return jnp.mean(jnp.sum(out * c, axis=-1))


class OutOfRangeTokensTest(ExactTestCase):

  @parameterized.named_parameters(
      ('nnx_negative', 'nnx', -1), ('nnx_too_large', 'nnx', 11),
      ('linen_negative', 'linen', -1), ('linen_too_large', 'linen', 11))
  def test_embed_token(self, framework, bad):
    # jnp.take (what the layers use) wraps -1 to the last row and fills a
    # token >= vocab with NaN. The loss is linear in the layer outputs, so
    # output gradients stay finite and the embedding table's per-example
    # gradients are finite whatever the lookup does; the head's are NaN for
    # an example holding token 11, in the reference and so in the result.
    b = 6
    toks = np.array(zoo.tokens(62, (b, 4), 11))
    toks[1, 2] = toks[4, 0] = toks[4, 3] = bad
    batch = (jnp.asarray(toks), zoo.normal(63, (b, 3)))
    model = (NNXTokenHead(nnx.Rngs(7)) if framework == 'nnx'
             else LinenTokenHead())
    case = (zoo.nnx_case(model, batch, loss=_linear_loss)
            if framework == 'nnx'
            else zoo.linen_case(model, batch, loss=_linear_loss))
    ref = zoo.loop_reference(*case[:3])
    table = [m for p, m in jax.tree_util.tree_flatten_with_path(
        ref.sum_sq_dev)[0] if 'embedding' in jax.tree_util.keystr(p)]
    self.assertLen(table, 1)
    self.assertTrue(np.all(np.isfinite(table[0])))   # the test's premise
    self.assert_exact(case, AUTO, ref=ref)


# ---------------------------------------------------------------------------
# 5. Numerics: cancellation, extreme scales, bfloat16 parameters.
# ---------------------------------------------------------------------------


class NumericsTest(ExactTestCase):

  @parameterized.named_parameters(*FRAMEWORKS)
  def test_dpo_pairs(self, framework):
    # r = head(feats) on the two responses of each prompt, feats[:, 1] =
    # feats[:, 0] + 1e-3 noise; each per-example kernel gradient is
    # s_i (x_i0 - x_i1): a difference 1e3 times smaller than its terms. In
    # float32 it is exact only to ~1e-4 relative (the loop's own rounding),
    # hence delta 2e-4; an identity that squares the terms before cancelling
    # loses ~1e-1 of M2.
    b, width = 6, 5
    x0 = np.asarray(zoo.normal(64, (b, width)))
    x1 = x0 + 1e-3 * np.asarray(zoo.normal(65, (b, width)))
    feats = jnp.asarray(np.stack([x0, x1], axis=1), jnp.float32)

    def dpo(r, _):
      r = r[..., 0]
      return -jnp.mean(jax.nn.log_sigmoid(r[:, 0] - r[:, 1]))

    batch = (feats, jnp.zeros(b))
    case = (zoo.nnx_case(nnx.Linear(width, 1, rngs=nnx.Rngs(8)), batch,
                         loss=dpo) if framework == 'nnx'
            else zoo.linen_case(nn.Dense(1), batch, loss=dpo))
    # A mean taken from the batch's backward pass sums 2b position terms
    # x_p d_p (|d_p| <= 1/b) that cancel in pairs: float32 leaves
    # ~eps max|x| ~ 1e-7 of rounding in it (the bias's exact mean is 0),
    # allowed as atol_mean; M2 is held to the tolerance above.
    self.assert_exact(case, AUTO_AND_VMAP, delta=2e-4,
                      atol_mean=2.0 ** -23 * float(jnp.max(jnp.abs(feats))))

  @parameterized.named_parameters(
      ('nnx_1e20', 'nnx', 1e20, 1e-22), ('nnx_1e2', 'nnx', 1e2, 1e-20),
      ('linen_1e20', 'linen', 1e20, 1e-22),
      ('linen_1e2', 'linen', 1e2, 1e-20))
  def test_extreme_scales(self, framework, x_scale, grad_scale):
    # Per-example gradients x_i c_i^T are ~1e-2 and ~1e-18: representable in
    # float32, and so is M2 (>= 1e-37); x^2 (1e40) and c^2 (1e-40) are not.
    # At 1e-18 some squared deviations fall below float32's normal range
    # (1.2e-38), which XLA on CPU flushes to zero: ~5% of M2 is lost unless
    # the deviations are scaled before squaring. The fast rules scale; the
    # vmap method's two-pass form does not (README: a documented limit, as
    # scaling costs it a pass and a buffer over every per-example gradient),
    # so it is held to this only where the squares stay normal.
    methods = AUTO_AND_VMAP if x_scale * grad_scale > 1e-10 else AUTO
    b = 5
    batch = (zoo.normal(66, (b, 4), x_scale),
             zoo.normal(67, (b, 3), grad_scale))
    case = (zoo.nnx_case(nnx.Linear(4, 3, use_bias=False, rngs=nnx.Rngs(9)),
                         batch, loss=_linear_loss) if framework == 'nnx'
            else zoo.linen_case(nn.Dense(3, use_bias=False), batch,
                                loss=_linear_loss))
    ref = zoo.loop_reference(*case[:3])
    for leaf in jax.tree.leaves((ref.mean, ref.sum_sq_dev)):
      self.assertTrue(np.all(np.isfinite(leaf)) and np.any(leaf != 0))
    _, results = self.assert_exact(case, methods, ref=ref)
    for method, result in results.items():
      if isinstance(result, list):
        for leaf in jax.tree.leaves(result[0][1]):
          self.assertTrue(np.all(np.isfinite(leaf)), method)

  @parameterized.named_parameters(
      ('nnx_representable', 'nnx', True), ('nnx_rounded', 'nnx', False),
      ('linen_representable', 'linen', True),
      ('linen_rounded', 'linen', False))
  def test_bfloat16_parameters_large_mean(self, framework, representable):
    # A bias-free Linear with param_dtype=bfloat16 (computing in float32)
    # and a loss linear in its output with c = 1/4 for every example: the
    # per-example kernel gradients are x_ij / 4, |mean| >> std.
    # representable: x = 1 + k 2^-7 with |k| <= 3, exactly bfloat16, so
    #   every per-example gradient is exact in any precision and
    #   |mu| / sigma ~ 60.
    # rounded: x = 1 + 1e-2 noise, so jax.grad rounds each per-example
    #   gradient to bfloat16 (the parameters' dtype; spacing 2^-7 near 1,
    #   comparable to the spread; with 1e-3 noise most columns would round
    #   to one value and have M2 = 0), |mu| / sigma ~ 100. The statistics
    #   are those of these bfloat16 gradients (as vmap and the loop take
    #   them), not of the unrounded products (M2 differs by ~5%).
    # Either way the per-example gradients are exact bfloat16 numbers, so
    # the only error left is float32 accumulation: delta = 2^-23. Two-pass
    # statistics meet rtol 1e-4; a one-pass E[g^2] - E[g]^2 in float32 is off
    # by ~1e-7 (mu / sigma)^2 (~1e-3), statistics of the unrounded
    # gradients by ~5%, and statistics kept in bfloat16 by ~1e-2.
    b = 8
    rng = np.random.default_rng(68)
    if representable:
      x = 1 + rng.integers(-3, 4, (b, 4)) * 2.0 ** -7
    else:
      x = 1 + 1e-2 * rng.normal(size=(b, 4))
    batch = (jnp.asarray(x, jnp.float32), jnp.full((b, 3), 0.25))
    case = (zoo.nnx_case(nnx.Linear(4, 3, use_bias=False,
                                    param_dtype=jnp.bfloat16,
                                    rngs=nnx.Rngs(10)),
                         batch, loss=_linear_loss) if framework == 'nnx'
            else zoo.linen_case(nn.Dense(3, use_bias=False,
                                         param_dtype=jnp.bfloat16),
                                batch, loss=_linear_loss))
    ref = zoo.loop_reference(*case[:3])
    self.assertGreater(float(np.min(jax.tree.leaves(ref.sum_sq_dev)[0])), 0)
    # The mean may be the batch gradient as jax.grad returns it, rounded to
    # bfloat16 (2^-9 relative): rtol 2^-8 for it, 1e-4 for M2.
    self.assert_exact(case, AUTO_AND_VMAP, rtol=2.0 ** -8, rtol_m2=1e-4,
                      delta=2.0 ** -23, loss_rtol=1e-3)


# ---------------------------------------------------------------------------
# 6. Randomness: each example its own key, fold_in(key, i).
# ---------------------------------------------------------------------------


class NNXDropoutRngs(nnx.Module):
  """Dropout fed an nnx.Rngs built from the key argument."""

  def __init__(self, rngs):
    self.l1 = nnx.Linear(5, 8, rngs=rngs)
    self.drop = nnx.Dropout(0.5)
    self.l2 = nnx.Linear(8, 3, rngs=rngs)

  def __call__(self, x, key):
    h = self.drop(jax.nn.relu(self.l1(x)), rngs=nnx.Rngs(dropout=key))
    return self.l2(h)


def _dropout_case(framework, key) -> zoo.Case:
  b = 6
  batch = (zoo.normal(70, (b, 5)), zoo.labels(71, b, 3))
  if framework == 'nnx':
    return zoo.nnx_case(NNXDropoutRngs(nnx.Rngs(11)), batch, (key,))
  return zoo.linen_case(zoo.LinenDropout(), batch, (key,),
                        rng_name='dropout')   # as zoo.linen_dropout_raw_key


class RandomnessTest(ExactTestCase):

  # Which framework consumes the key and which kind of key it is are
  # separate paths: the default run takes each framework and each kind
  # once, crossed, and the zoo adds its own dropout models (an NNX typed
  # key, passed to nnx.Dropout itself; a Linen raw key) with every method.
  # SNR_OPTAX_SLOW=1 runs all four.
  @parameterized.named_parameters(
      *[case for case in (
          ('nnx_typed_key', 'nnx', True), ('nnx_raw_key', 'nnx', False),
          ('linen_typed_key', 'linen', True),
          ('linen_raw_key', 'linen', False))
        if SLOW or case[0] in ('nnx_raw_key', 'linen_typed_key')])
  def test_dropout_key_per_example(self, framework, typed):
    key = jax.random.key(3) if typed else jax.random.PRNGKey(3)
    case = _dropout_case(framework, key)
    ref, results = self.assert_exact(case)   # every method, the same way
    # Not one mask for all: with the same key for every example the
    # statistics are different ones, and no method gives those.
    shared = zoo.loop_reference(*case[:3], *case[3], per_example_keys=False)
    self.assertNotEmpty(zoo.compare_stats(shared, ref))   # the premise
    for method, result in results.items():
      if isinstance(result, list):
        self.assertNotEmpty(zoo.compare_stats(result[0][1], shared), method)

  def test_dropout_microbatches_use_global_indices(self):
    # Microbatches of 2 over 6 examples (ZooTest runs 4: a remainder chunk):
    # example i still gets fold_in(key, i), whichever chunk it lands in.
    case = zoo.nnx_dropout_key()
    self.assert_exact(case, ('microbatch', 'fast'), microbatch_size=2)

  def test_key_and_scalar_arguments_together(self):
    # A key and a differentiated temperature, argnums=(0, 2), has_aux.
    model = zoo.NNXDropout(nnx.Rngs(12))
    graphdef, params = nnx.split(model, nnx.Param)

    def loss(params, batch, temperature, key):
      logits = nnx.merge(graphdef, params)(batch[0], key) * temperature
      return zoo.xent(logits, batch[1]), logits

    batch = (zoo.normal(72, (6, 5)), zoo.labels(73, 6, 3))
    self.assert_exact((loss, params, batch, (1.5, jax.random.key(4))),
                      argnums=(0, 2), has_aux=True)


# ---------------------------------------------------------------------------
# 7. The loss must be a batch mean of per-example losses.
# ---------------------------------------------------------------------------


def _reduction_case(framework, reduce) -> zoo.Case:
  """An MLP whose per-example losses l [b] are reduced by reduce(l, w)."""
  b = 6
  rng = np.random.default_rng(74)
  batch = (zoo.normal(75, (b, 5)), zoo.labels(76, b, 3),
           jnp.asarray(rng.uniform(0.5, 2.0, b), jnp.float32))
  if framework == 'nnx':
    model = zoo.NNXMLP((5, 6, 3), nnx.Rngs(13))
    graphdef, params = nnx.split(model, nnx.Param)
    apply = lambda p, x: nnx.merge(graphdef, p)(x)
  else:
    model = zoo.LinenMLP()
    params = model.init(jax.random.key(0), batch[0])['params']
    apply = lambda p, x: model.apply({'params': p}, x)

  def loss(params, batch):
    x, y, w = batch
    l = optax.softmax_cross_entropy_with_integer_labels(apply(params, x), y)
    return reduce(params, l, w)
  return loss, params, batch, ()


class TwoHeads(nnx.Module):

  def __init__(self, rngs):
    self.body = nnx.Linear(5, 6, rngs=rngs)
    self.cls = nnx.Linear(6, 3, rngs=rngs)
    self.reg = nnx.Linear(6, 2, rngs=rngs)

  def __call__(self, x):
    h = jnp.tanh(self.body(x))
    return self.cls(h), self.reg(h)


def _l2(params):
  return sum(jnp.sum(p ** 2) for p in jax.tree.leaves(params))


class ReductionTest(ExactTestCase):

  @parameterized.named_parameters(
      ('nnx_sum', 'nnx', lambda p, l, w: jnp.sum(l)),
      ('linen_sum', 'linen', lambda p, l, w: jnp.sum(l)),
      ('nnx_weighted', 'nnx', lambda p, l, w: jnp.sum(w * l) / jnp.sum(w)),
      ('linen_weighted', 'linen',
       lambda p, l, w: jnp.sum(w * l) / jnp.sum(w)))
  def test_non_mean_reduction_raises(self, framework, reduce):
    loss, params, batch, _ = _reduction_case(framework, reduce)
    for method in ENGINE:
      with self.subTest(method):
        with self.assertRaisesRegex(ValueError, r'(?i)batch|mean'):
          jax.block_until_ready(_stats_fn(loss, method, 6)(params, batch))

  # A mean over [b, T] token losses: the zoo's token_mean, every method.

  def test_sum_of_two_means(self):
    b = 6
    batch = (zoo.normal(77, (b, 5)), (zoo.labels(78, b, 3),
                                      zoo.normal(79, (b, 2))))

    def loss(outputs, targets):
      (logits, pred), (y, t) = outputs, targets
      return zoo.xent(logits, y) + 0.5 * jnp.mean((pred - t) ** 2)
    self.assert_exact(zoo.nnx_case(TwoHeads(nnx.Rngs(14)), batch, loss=loss),
                      AUTO)

  @parameterized.named_parameters(*FRAMEWORKS)
  def test_mean_plus_l2_penalty(self, framework):
    case = _reduction_case(framework,
                           lambda p, l, w: jnp.mean(l) + 1e-2 * _l2(p))
    self.assert_exact(case, AUTO)


# ---------------------------------------------------------------------------
# 8. stats_plan describes what the engine does.
# ---------------------------------------------------------------------------


def _only(plan, *parts):
  """The one description whose path contains every one of ``parts``."""
  hits = [d for p, d in plan.items() if all(s in p for s in parts)]
  assert len(hits) == 1, (parts, plan)
  return hits[0]


def _temperature_case(temperature) -> zoo.Case:
  """A Linear whose logits are scaled by a differentiated extra argument."""
  model = nnx.Linear(4, 3, rngs=nnx.Rngs(15))
  graphdef, params = nnx.split(model, nnx.Param)

  def loss(params, batch, temperature):
    return zoo.xent(nnx.merge(graphdef, params)(batch[0]) * temperature,
                    batch[1])

  batch = (zoo.normal(80, (5, 4)), zoo.labels(81, 5, 3))
  return loss, params, batch, (temperature,)


class LinenKeywordInput(nn.Module):

  @nn.compact
  def __call__(self, x):
    h = jnp.tanh(nn.Dense(4)(x))        # Dense_0
    return nn.Dense(3)(inputs=h)        # Dense_1, its input by keyword


class PlanTest(parameterized.TestCase):

  @parameterized.named_parameters(('nnx', 'nnx', ('pos', 'embedding')),
                                  ('linen', 'linen', ('Embed_1',)))
  def test_position_table_of_length_b_is_not_an_embedding(self, framework,
                                                           parts):
    loss, params, batch, _ = _positions_case(framework, 5, 5)
    plan = so.stats_plan(loss, params, batch)
    self.assertFalse(_only(plan, *parts).startswith('embed'), plan)

  @parameterized.named_parameters(('python_float', 'python'),
                                  ('weak_array', 'weak'),
                                  ('strong_array', 'strong'))
  def test_differentiated_scalar_is_not_called_a_cast(self, kind):
    temperature = {'python': 1.5, 'weak': jnp.asarray(1.5),
                   'strong': jnp.float32(1.5)}[kind]
    loss, params, batch, _ = _temperature_case(temperature)
    plan = so.stats_plan(loss, params, batch, temperature, argnums=(0, 2))
    self.assertLen(plan, 3)
    for path, description in plan.items():
      self.assertNotIn('cast', description, path)

  def test_linen_keyword_input_is_tapped(self):
    model = LinenKeywordInput()
    batch = (zoo.normal(82, (5, 6)), zoo.labels(83, 5, 3))
    loss, params, batch, _ = zoo.linen_case(model, batch)
    plan = so.stats_plan(loss, params, batch)
    for name in ('kernel', 'bias'):
      self.assertTrue(_only(plan, 'Dense_1', name).startswith('dense'), plan)


class PlanExactnessTest(ExactTestCase):
  """The plan tests' inputs also give exact statistics."""

  def test_differentiated_scalar(self):
    self.assert_exact(_temperature_case(1.5), AUTO, argnums=(0, 2))

  def test_linen_keyword_input(self):
    batch = (zoo.normal(82, (5, 6)), zoo.labels(83, 5, 3))
    self.assert_exact(zoo.linen_case(LinenKeywordInput(), batch), AUTO)


# ---------------------------------------------------------------------------
# check_stats.
# ---------------------------------------------------------------------------


class CheckStatsTest(parameterized.TestCase):
  """so.check_stats: None when a method agrees with the loop, else raises.

  (Written before check_stats exists: a missing function fails each test
  with AttributeError, without breaking collection.)
  """

  @parameterized.named_parameters(
      (f'{name}_{method}', name, method) for name, method in (
          ('nnx_mlp', 'fast'), ('linen_cnn', 'vmap'),
          ('nnx_transformer', 'auto'), ('nnx_dropout_key', 'auto')))
  def test_agrees_on_zoo(self, name, method):
    loss, params, batch, args = zoo.ZOO[name]()
    self.assertIsNone(so.check_stats(loss, params, batch, *args,
                                     method=method))

  def test_microbatch_and_num_examples(self):
    loss, params, batch, args = zoo.nnx_cnn()
    self.assertIsNone(so.check_stats(loss, params, batch, *args,
                                     method='microbatch', microbatch_size=2,
                                     num_examples=3))

  def test_sum_reduced_loss_raises_value_error(self):
    loss, params, batch, _ = _reduction_case('nnx',
                                             lambda p, l, w: jnp.sum(l))
    with self.assertRaisesRegex(ValueError, r'(?i)batch|mean'):
      so.check_stats(loss, params, batch)

  def test_names_the_leaf_that_differs(self):
    # The loss scales its 'extra' term by 3 when traced under jax.vmap, so
    # the vmap method's statistics of params['extra'] cannot match the
    # loop's (which calls jax.grad outside any vmap); params['w'] is
    # untouched by it.
    rng = np.random.default_rng(84)
    params = {'w': jnp.asarray(rng.normal(size=(4, 3)), jnp.float32),
              'extra': jnp.asarray(rng.normal(size=(4,)), jnp.float32)}
    batch = (zoo.normal(85, (6, 4)), zoo.labels(86, 6, 3))

    def loss(params, batch):
      x, y = batch
      scale = 3.0 if jex.core.unsafe_am_i_under_a_vmap_DO_NOT_USE() else 1.0
      return zoo.xent(x @ params['w'], y) + scale * jnp.mean(
          x @ params['extra'])

    with self.assertRaises(AssertionError) as raised:
      so.check_stats(loss, params, batch, method='vmap')
    message = str(raised.exception)
    self.assertIn('extra', message)
    self.assertNotIn("'w'", message)
    self.assertRegex(message, r'\d')   # by how much

  def test_tolerances_are_used(self):
    # A discrepancy of 1e-3 under vmap fails the default rtol (1e-4) and
    # passes rtol 0.5.
    params = {'w': jnp.ones((4, 3)), 'extra': jnp.ones((4,))}
    batch = (zoo.normal(87, (6, 4)), zoo.labels(88, 6, 3))

    def loss(params, batch):
      x, y = batch
      scale = (1 + 1e-3 if jex.core.unsafe_am_i_under_a_vmap_DO_NOT_USE()
               else 1.0)
      return zoo.xent(x @ params['w'], y) + scale * jnp.mean(
          x @ params['extra'])

    with self.assertRaises(AssertionError):
      so.check_stats(loss, params, batch, method='vmap')
    self.assertIsNone(so.check_stats(loss, params, batch, method='vmap',
                                     rtol=0.5, atol=1e-6))


if __name__ == '__main__':
  absltest.main()
