# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""A differential harness for per-example gradient statistics.

* ``loop_reference``: the exact statistics by definition, a Python loop over
  the examples calling ``jax.grad`` of the user's loss on one-example batches
  (PRNG keys among the extra arguments folded with the example's index), then
  mean and sum of squared deviations in NumPy float64. It shares no code with
  snr_optax, so tests compare two implementations, not one with itself.
* ``compare_stats``: a library ``GradStats`` against a reference, leaf by
  leaf, with a tolerance derived from float rounding of per-example
  gradients (see there).
* ``ZOO``: small models, each a function returning
  ``(loss_fn, params, batch, args)`` for a call ``loss_fn(params, batch,
  *args)`` of an ordinary batch-mean loss: MLPs, CNNs with GroupNorm and
  LayerNorm, attention, embeddings and position tables, ``nnx.scan`` and
  ``jax.lax.scan`` over layers, ``nnx.remat``, shared and tied weights,
  jitted helpers, a custom ``dot_general``, dropout with a key argument, a
  mean over tokens, and sizes that coincide with the batch size.
* ``random_model(seed)``: a seeded generator of small NNX and Linen models.

Not a test module (no ``_test`` suffix): importable as ``tests.model_zoo``
and, under Bazel, as ``model_zoo``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from flax import linen as nn
from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import optax

Case = tuple[Callable[..., Any], Any, Any, tuple[Any, ...]]


# ---------------------------------------------------------------------------
# The loop reference.
# ---------------------------------------------------------------------------


def is_key(x) -> bool:
  """A typed PRNG key array, or a raw ``jax.random.PRNGKey`` (uint32[2])."""
  if not hasattr(x, 'dtype'):
    return False
  if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
    return True
  return x.dtype == np.uint32 and tuple(np.shape(x)) == (2,)


def example_args(args, i: int, per_example_keys: bool = True):
  """The extra arguments of example i: each PRNG key folded with i."""
  def one(a):
    if per_example_keys and is_key(a):
      return jax.random.fold_in(a, i)
    return a
  return tuple(jax.tree.map(one, a) for a in args)


@dataclasses.dataclass
class Reference:
  """Exact per-example quantities, in float64 where numeric."""
  grads: list[Any]          # per example: the jax.grad tree, as returned
  losses: np.ndarray        # [b] per-example losses
  mean: Any                 # tree of float64 arrays
  sum_sq_dev: Any           # tree of float64 arrays (M2)
  sum_sq: Any               # tree of float64 arrays, sum_i g_i^2
  count: int

  @property
  def loss(self) -> float:
    return float(np.mean(self.losses))


def loop_reference(loss_fn, params, batch, *args, argnums=0, has_aux=False,
                   per_example_keys=True, jit=True) -> Reference:
  """Per-example gradients by a loop over one-example batches.

  Example i is ``batch`` with every leaf sliced ``[i:i + 1]``; its extra
  arguments are ``args`` with every PRNG key ``k`` replaced by
  ``jax.random.fold_in(k, i)`` (unless ``per_example_keys`` is False, which
  gives every example the same key: the "shared mask" definition).
  """
  b = jax.tree.leaves(batch)[0].shape[0]
  vg = jax.value_and_grad(loss_fn, argnums=argnums, has_aux=has_aux)
  if jit:
    vg = jax.jit(vg)
  grads, losses = [], []
  for i in range(b):
    batch_i = jax.tree.map(lambda x, i=i: x[i:i + 1], batch)
    value, g = vg(params, batch_i, *example_args(args, i, per_example_keys))
    value = value[0] if has_aux else value
    losses.append(float(value))
    grads.append(g)
  stacked = jax.tree.map(
      lambda *gs: np.stack([np.asarray(g).astype(np.float64) for g in gs]),
      *grads)
  mean = jax.tree.map(lambda g: g.mean(0), stacked)
  m2 = jax.tree.map(lambda g, m: ((g - m) ** 2).sum(0), stacked, mean)
  s2 = jax.tree.map(lambda g: (g ** 2).sum(0), stacked)
  return Reference(grads, np.asarray(losses), mean, m2, s2, b)


def compare_stats(got, ref: Reference, *, rtol: float = 1e-4,
                  rtol_m2: float | None = None, delta: float = 1e-5,
                  atol_mean: float = 0.0) -> list[str]:
  """Where ``got`` (a GradStats) and ``ref`` differ; [] when they agree.

  ``delta`` is the relative rounding error allowed in each per-example
  gradient (float32 programs that differ in operation order: ~1e-6; bf16:
  ~1e-2). An error of delta |g_i| in every g_i moves the mean by at most
  delta sqrt(S2 / b) and M2 by at most 2 delta sqrt(M2 S2) + delta^2 S2
  (Cauchy-Schwarz), S2 = sum_i g_i^2; so the tolerance is, elementwise,

    mean: rtol |mu| + delta sqrt(S2 / b)
    M2:   rtol M2  + 2 delta sqrt(M2 S2) + delta^2 S2

  (``rtol_m2``, default ``rtol``, in place of rtol for M2), plus 1e-6 of
  the leaf's largest value and 1e-7 of the largest of all leaves (a leaf
  whose exact value is 0 holds only rounding noise), plus ``atol_mean`` for
  the mean. A one-pass E[g^2] - E[g]^2 in float32 loses ~1e-7 S2 of M2,
  which this tolerance rejects wherever |mu| / sigma exceeds ~1e3 (for
  delta 1e-5).
  """
  errors = []
  if int(got.count) != ref.count:
    errors.append(f'count {int(got.count)} != {ref.count}')
  flat_s2 = jax.tree.leaves(ref.sum_sq)
  for name, got_tree, want_tree in (('mean', got.mean, ref.mean),
                                    ('sum_sq_dev', got.sum_sq_dev,
                                     ref.sum_sq_dev)):
    flat_g = jax.tree_util.tree_flatten_with_path(got_tree)[0]
    flat_w = jax.tree.leaves(want_tree)
    if len(flat_g) != len(flat_w):
      errors.append(f'{name}: {len(flat_g)} leaves, reference has '
                    f'{len(flat_w)}')
      continue
    scale = max([float(np.max(np.abs(w), initial=0)) for w in flat_w],
                default=0.0)
    for (path, g), w, s2 in zip(flat_g, flat_w, flat_s2):
      where = f'{name} of {jax.tree_util.keystr(path)}'
      g = np.asarray(g).astype(np.float64)
      if g.shape != w.shape:
        errors.append(f'{where}: shape {g.shape} != {w.shape}')
        continue
      atol = 1e-6 * float(np.max(np.abs(w), initial=0)) + 1e-7 * scale
      if name == 'mean':
        tol = (rtol * np.abs(w) + delta * np.sqrt(s2 / ref.count) + atol
               + atol_mean)
      else:
        tol = ((rtol if rtol_m2 is None else rtol_m2) * np.abs(w)
               + 2 * delta * np.sqrt(np.abs(w) * s2) + delta ** 2 * s2
               + atol)
      bad = ~(np.abs(g - w) <= tol)   # NaN where one side is NaN: bad
      bad &= ~(np.isnan(g) & np.isnan(w))
      bad &= ~(np.isinf(g) & np.isinf(w) & (np.sign(g) == np.sign(w)))
      if np.any(bad):
        k = np.unravel_index(np.argmax(np.where(bad, np.abs(g - w), -1)),
                             g.shape) if g.ndim else ()
        errors.append(
            f'{where}: {int(np.sum(bad))} of {g.size} elements differ; e.g. '
            f'at {tuple(int(j) for j in k)}: got {g[k]!r}, want {w[k]!r} '
            f'(tol {tol[k] if np.ndim(tol) else tol:.3g})')
  return errors


# ---------------------------------------------------------------------------
# Helpers.
# ---------------------------------------------------------------------------


def xent(logits, labels):
  return optax.softmax_cross_entropy_with_integer_labels(logits,
                                                         labels).mean()


def normal(seed, shape, scale=1.0):
  rng = np.random.default_rng(seed)
  return jnp.asarray(scale * rng.normal(size=shape), jnp.float32)


def labels(seed, b, n_classes):
  return jnp.asarray(np.random.default_rng(seed).integers(0, n_classes, b))


def tokens(seed, shape, vocab):
  return jnp.asarray(np.random.default_rng(seed).integers(0, vocab, shape))


def nnx_case(model, batch, args=(), *, loss=xent) -> Case:
  """``loss(model(x, *args), y)`` with the model's nnx.Param leaves."""
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)

  def loss_fn(params, batch, *args):
    x, y = batch
    return loss(nnx.merge(graphdef, params, rest)(x, *args), y)
  return loss_fn, params, batch, tuple(args)


def linen_case(model, batch, args=(), *, loss=xent, rng_name=None) -> Case:
  """``loss(model.apply(params, x), y)``; args[0] feeds ``rng_name``."""
  x, _ = batch
  init_rngs = {'params': jax.random.key(0)}
  if rng_name:
    init_rngs[rng_name] = jax.random.key(1)
  params = model.init(init_rngs, x)['params']

  def loss_fn(params, batch, *args):
    x, y = batch
    rngs = {rng_name: args[0]} if rng_name else None
    return loss(model.apply({'params': params}, x, rngs=rngs), y)
  return loss_fn, params, batch, tuple(args)


# ---------------------------------------------------------------------------
# The zoo.
# ---------------------------------------------------------------------------


class NNXMLP(nnx.Module):

  def __init__(self, sizes, rngs):
    self.layers = nnx.List([nnx.Linear(m, n, rngs=rngs)
                            for m, n in zip(sizes[:-1], sizes[1:])])

  def __call__(self, x):
    for i, layer in enumerate(self.layers):
      x = layer(x)
      if i < len(self.layers) - 1:
        x = jnp.tanh(x) if i % 2 == 0 else jax.nn.gelu(x)
    return x


def nnx_mlp() -> Case:
  b = 6   # the hidden width equals b
  model = NNXMLP((5, 6, 6, 4), nnx.Rngs(0))
  return nnx_case(model, (normal(1, (b, 5)), labels(2, b, 4)))


class LinenMLP(nn.Module):

  @nn.compact
  def __call__(self, x):
    x = jnp.tanh(nn.Dense(7)(x))
    x = nn.DenseGeneral((2, 3))(x).reshape(x.shape[0], 6)
    x = nn.RMSNorm()(jax.nn.relu(x))
    return nn.Dense(4)(x)


def linen_mlp() -> Case:
  b = 7
  return linen_case(LinenMLP(), (normal(3, (b, 7)), labels(4, b, 4)))


class NNXCNN(nnx.Module):

  def __init__(self, b, rngs):
    self.conv1 = nnx.Conv(3, 4, (3, 3), rngs=rngs)
    self.gn = nnx.GroupNorm(4, num_groups=2, rngs=rngs)
    self.conv2 = nnx.Conv(4, b, (3, 3), strides=(2, 2), rngs=rngs)
    self.ln = nnx.LayerNorm(b, rngs=rngs)
    self.head = nnx.Linear(b, 3, rngs=rngs)

  def __call__(self, x):
    x = jax.nn.relu(self.gn(self.conv1(x)))
    x = self.ln(jax.nn.relu(self.conv2(x)))
    return self.head(x.mean(axis=(1, 2)))


def nnx_cnn() -> Case:
  b = 5   # channels of conv2 equal b
  return nnx_case(NNXCNN(b, nnx.Rngs(1)),
                  (normal(5, (b, 6, 6, 3)), labels(6, b, 3)))


class LinenCNN(nn.Module):

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(4, (3, 3))(x)
    x = jax.nn.relu(nn.GroupNorm(num_groups=2)(x))
    x = nn.Conv(4, (2, 2), strides=2, padding='VALID')(x)
    x = nn.LayerNorm()(jax.nn.relu(x))
    return nn.Dense(3)(x.reshape(x.shape[0], -1))


def linen_cnn() -> Case:
  b = 4   # the image height equals b
  return linen_case(LinenCNN(), (normal(7, (b, 4, 6, 2)), labels(8, b, 3)))


class NNXTransformer(nnx.Module):
  """Token embeddings plus a learned position table read as Embed(arange)."""

  def __init__(self, vocab, seq, width, rngs):
    self.seq = seq
    self.embed = nnx.Embed(vocab, width, rngs=rngs)
    self.pos = nnx.Embed(seq, width, rngs=rngs)
    self.ln1 = nnx.LayerNorm(width, rngs=rngs)
    self.attn = nnx.MultiHeadAttention(2, width, decode=False, rngs=rngs)
    self.ln2 = nnx.LayerNorm(width, rngs=rngs)
    self.up = nnx.Linear(width, 2 * width, rngs=rngs)
    self.down = nnx.Linear(2 * width, width, rngs=rngs)
    self.ln_f = nnx.RMSNorm(width, rngs=rngs)
    self.head = nnx.Linear(width, vocab, rngs=rngs)

  def __call__(self, toks):
    h = self.embed(toks) + self.pos(jnp.arange(self.seq))[None]
    h = h + self.attn(self.ln1(h), mask=nnx.make_causal_mask(toks))
    h = h + self.down(jax.nn.gelu(self.up(self.ln2(h))))
    return self.head(self.ln_f(h[:, -1]))


def nnx_transformer() -> Case:
  b = 5   # sequence length (the position table's rows) equals b
  model = NNXTransformer(vocab=7, seq=b, width=8, rngs=nnx.Rngs(2))
  return nnx_case(model, (tokens(9, (b, b), 7), labels(10, b, 7)))


class LinenTiedLM(nn.Module):
  """Tied embeddings (embed.attend), self-attention, a raw parameter."""
  vocab: int

  @nn.compact
  def __call__(self, toks):
    embed = nn.Embed(self.vocab, 8)
    h = embed(toks) * self.param('gain', nn.initializers.ones, (8,))
    h = h + nn.SelfAttention(num_heads=2)(nn.LayerNorm()(h))
    h = nn.Dense(8)(h[:, -1])
    return embed.attend(h)


def linen_tied_lm() -> Case:
  b = 6   # the vocabulary size equals b
  return linen_case(LinenTiedLM(vocab=b), (tokens(11, (b, 4), b),
                                           labels(12, b, b)))


class LinenPositions(nn.Module):
  """Linen: a learned position table read as nn.Embed(T, D)(arange(T))."""
  seq: int

  @nn.compact
  def __call__(self, toks):
    h = nn.Embed(9, 6)(toks) + nn.Embed(self.seq, 6)(
        jnp.arange(self.seq))[None]
    h = jnp.tanh(nn.Dense(6)(h))
    return nn.Dense(9)(h.mean(axis=1))


def linen_positions() -> Case:
  b = 4
  return linen_case(LinenPositions(seq=b), (tokens(13, (b, b), 9),
                                            labels(14, b, 9)))


class Block(nnx.Module):

  def __init__(self, width, rngs):
    self.linear = nnx.Linear(width, width, rngs=rngs)

  def __call__(self, x):
    return jnp.tanh(self.linear(x))


class NNXScan(nnx.Module):
  """nnx.scan over layers created with nnx.vmap (stacked parameters)."""

  def __init__(self, width, depth, rngs):
    @nnx.split_rngs(splits=depth)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def create(rngs):
      return Block(width, rngs)
    self.blocks = create(rngs)
    self.head = nnx.Linear(width, 3, rngs=rngs)

  def __call__(self, x):
    @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
    def forward(x, block):
      return block(x)
    return self.head(forward(x, self.blocks))


def nnx_scan() -> Case:
  b = 4   # the width equals b
  return nnx_case(NNXScan(b, 3, nnx.Rngs(3)),
                  (normal(15, (b, b)), labels(16, b, 3)))


def lax_scan() -> Case:
  """jax.lax.scan over the stacked states of three nnx.Linear layers."""
  b, width, depth = 5, 5, 3
  layers = [nnx.Linear(width, width, rngs=nnx.Rngs(i)) for i in range(depth)]
  graphdef = nnx.graphdef(layers[0])
  stacked = jax.tree.map(lambda *xs: jnp.stack(xs),
                         *[nnx.state(layer, nnx.Param) for layer in layers])
  head = nnx.Linear(width, 3, rngs=nnx.Rngs(9))
  head_def, head_params = nnx.split(head, nnx.Param)
  params = {'layers': stacked, 'head': head_params}

  def loss_fn(params, batch):
    x, y = batch

    def body(h, p):
      return jnp.tanh(nnx.merge(graphdef, p)(h)), None
    h, _ = jax.lax.scan(body, x, params['layers'])
    return xent(nnx.merge(head_def, params['head'])(h), y)
  return loss_fn, params, (normal(17, (b, width)), labels(18, b, 3)), ()


class NNXRemat(nnx.Module):

  def __init__(self, rngs):
    self.l1 = nnx.Linear(4, 8, rngs=rngs)
    self.ln = nnx.LayerNorm(8, rngs=rngs)
    self.l2 = nnx.Linear(8, 3, rngs=rngs)

  def __call__(self, x):
    block = nnx.remat(lambda m, h: m.ln(jax.nn.gelu(m.l1(h))))
    return self.l2(block(self, x))


def nnx_remat() -> Case:
  b = 8   # the hidden width equals b
  return nnx_case(NNXRemat(nnx.Rngs(4)), (normal(19, (b, 4)),
                                         labels(20, b, 3)))


class Shared(nnx.Module):
  """One layer applied twice, and another once."""

  def __init__(self, rngs):
    self.shared = nnx.Linear(5, 5, rngs=rngs)
    self.head = nnx.Linear(5, 3, rngs=rngs)

  def __call__(self, x):
    return self.head(jnp.tanh(self.shared(jnp.tanh(self.shared(x)))))


def shared_weights() -> Case:
  b = 5
  return nnx_case(Shared(nnx.Rngs(5)), (normal(21, (b, 5)), labels(22, b, 3)))


def jit_helper(b=6, eager_first=True) -> Case:
  """A jax.jit-decorated helper (merge + Linear) inside the loss.

  Every layer maps 6 features to 6 (and b = 6), so a layer call mistaken
  for another has the same shapes. ``loss_fn.encode`` is the helper.
  """
  encoder = nnx.Linear(6, 6, rngs=nnx.Rngs(6))
  ge, pe = nnx.split(encoder, nnx.Param)
  mid = nnx.Linear(6, 6, rngs=nnx.Rngs(7))
  gm, pm = nnx.split(mid, nnx.Param)
  head = nnx.Linear(6, 6, rngs=nnx.Rngs(8))
  gh, ph = nnx.split(head, nnx.Param)

  @jax.jit
  def encode(p, h):
    return jnp.tanh(nnx.merge(ge, p)(h))

  def loss_fn(params, batch):
    x, y = batch
    h = encode(params['enc'], x)
    h = jax.nn.relu(nnx.merge(gm, params['mid'])(h))
    return xent(nnx.merge(gh, params['head'])(h), y)

  params = {'enc': pe, 'mid': pm, 'head': ph}
  batch = (normal(23, (b, 6)), labels(24, b, 6))
  if eager_first:
    encode(pe, batch[0])   # an eager call first: encode's cache is filled
  loss_fn.encode = encode
  return loss_fn, params, batch, ()


def twice_dot_general(lhs, rhs, dimension_numbers, precision=None,
                      preferred_element_type=None, **kwargs):
  return 2 * jax.lax.dot_general(lhs, rhs, dimension_numbers,
                                 precision=precision,
                                 preferred_element_type=preferred_element_type,
                                 **kwargs)


class CustomDot(nnx.Module):

  def __init__(self, rngs):
    self.odd = nnx.Linear(6, 3, dot_general=twice_dot_general, rngs=rngs)
    self.head = nnx.Linear(3, 3, rngs=rngs)

  def __call__(self, x):
    return self.head(jnp.tanh(self.odd(x)))


def custom_dot_general() -> Case:
  b = 6
  return nnx_case(CustomDot(nnx.Rngs(9)), (normal(25, (b, 6)),
                                          labels(26, b, 3)))


class NNXDropout(nnx.Module):

  def __init__(self, rngs):
    self.l1 = nnx.Linear(5, 8, rngs=rngs)
    self.drop = nnx.Dropout(0.5)
    self.l2 = nnx.Linear(8, 3, rngs=rngs)

  def __call__(self, x, key):
    return self.l2(self.drop(jax.nn.relu(self.l1(x)), rngs=key))


def nnx_dropout_key() -> Case:
  b = 6
  return nnx_case(NNXDropout(nnx.Rngs(10)), (normal(27, (b, 5)),
                                            labels(28, b, 3)),
                  (jax.random.key(42),))


class LinenDropout(nn.Module):

  @nn.compact
  def __call__(self, x):
    x = jax.nn.relu(nn.Dense(8)(x))
    x = nn.Dropout(0.5, deterministic=False)(x)
    return nn.Dense(3)(x)


def linen_dropout_raw_key() -> Case:
  b = 5
  return linen_case(LinenDropout(), (normal(29, (b, 5)), labels(30, b, 3)),
                    (jax.random.PRNGKey(7),), rng_name='dropout')


class TokenLM(nnx.Module):

  def __init__(self, vocab, rngs):
    self.embed = nnx.Embed(vocab, 6, rngs=rngs)
    self.mix = nnx.Linear(6, 6, rngs=rngs)
    self.head = nnx.Linear(6, vocab, rngs=rngs)

  def __call__(self, toks):
    return self.head(jnp.tanh(self.mix(self.embed(toks))))


def token_mean() -> Case:
  """A mean over [b, T] token losses (documented as a batch mean)."""
  b, seq, vocab = 4, 3, 5

  def token_xent(logits, targets):
    return optax.softmax_cross_entropy_with_integer_labels(
        logits, targets).mean()   # over b and T
  return nnx_case(TokenLM(vocab, nnx.Rngs(11)),
                  (tokens(31, (b, seq), vocab), tokens(32, (b, seq), vocab)),
                  loss=token_xent)


class LinearGeneralNet(nnx.Module):

  def __init__(self, b, rngs):
    self.lg = nnx.LinearGeneral((2, 3), (b,), axis=(-2, -1), rngs=rngs)
    self.head = nnx.Linear(b, 3, rngs=rngs)

  def __call__(self, x):
    return self.head(jnp.tanh(self.lg(x)))


def nnx_linear_general() -> Case:
  b = 3   # the output features and an input axis (of the two) have size b
  return nnx_case(LinearGeneralNet(b, nnx.Rngs(12)),
                  (normal(33, (b, 2, 3)), labels(34, b, 3)))


# (linen_positions and linen_dropout_raw_key are run by exactness_test's
# targeted tests, every method where it matters, so they are not repeated.)
ZOO: dict[str, Callable[[], Case]] = {
    'nnx_mlp': nnx_mlp,
    'linen_mlp': linen_mlp,
    'nnx_cnn': nnx_cnn,
    'linen_cnn': linen_cnn,
    'nnx_transformer': nnx_transformer,
    'linen_tied_lm': linen_tied_lm,
    'nnx_scan': nnx_scan,
    'lax_scan': lax_scan,
    'nnx_remat': nnx_remat,
    'shared_weights': shared_weights,
    'jit_helper': jit_helper,
    'custom_dot_general': custom_dot_general,
    'nnx_dropout_key': nnx_dropout_key,
    'token_mean': token_mean,
    'nnx_linear_general': nnx_linear_general,
}


# ---------------------------------------------------------------------------
# Random models.
# ---------------------------------------------------------------------------

ACTIVATIONS = {'tanh': jnp.tanh, 'relu': jax.nn.relu, 'gelu': jax.nn.gelu}


@dataclasses.dataclass(frozen=True)
class Spec:
  """A random model: framework, input, layers, head and loss."""
  framework: str                 # 'nnx' or 'linen'
  b: int
  kind: str                      # 'vector', 'image' or 'tokens'
  in_shape: tuple[int, ...]      # per example (tokens: (T,))
  vocab: int                     # tokens only
  layers: tuple[tuple[Any, ...], ...]   # ('linear', n) ('conv', n, k)
  #                                       ('embed', n) ('layernorm',)
  #                                       ('act', name)
  classes: int
  loss: str                      # 'xent' or 'mse'


def random_spec(seed: int) -> Spec:
  rng = np.random.default_rng(seed)
  b = int(rng.integers(2, 10))

  def size(lo=1):
    return b if rng.random() < 0.25 else int(rng.integers(lo, 8))

  kind = str(rng.choice(['vector', 'image', 'tokens']))
  vocab = 0
  layers = []
  if kind == 'vector':
    in_shape = (size(),)
  elif kind == 'image':
    in_shape = (size(), int(rng.integers(1, 5)), size())
  else:
    vocab = size(lo=2)
    in_shape = (size(),)
    layers.append(('embed', size()))
  depth = int(rng.integers(1, 4))
  for _ in range(depth):
    choices = ['linear', 'layernorm', 'act']
    if kind != 'vector':
      choices.append('conv')
    what = str(rng.choice(choices))
    if what == 'linear':
      layers.append(('linear', size()))
    elif what == 'conv':
      layers.append(('conv', size(), int(rng.integers(1, 4))))
    elif what == 'layernorm':
      layers.append(('layernorm',))
    else:
      layers.append(('act', str(rng.choice(sorted(ACTIVATIONS)))))
  loss = str(rng.choice(['xent', 'mse']))
  classes = size(lo=2) if loss == 'xent' else size()
  framework = 'nnx' if seed % 2 == 0 else 'linen'
  return Spec(framework, b, kind, in_shape, vocab, tuple(layers), classes,
              loss)


def _spatial(spec: Spec) -> int:
  return {'vector': 0, 'image': 2, 'tokens': 1}[spec.kind]


class RandomNNX(nnx.Module):

  def __init__(self, spec: Spec, rngs):
    self.spec = spec
    feat = spec.in_shape[-1] if spec.kind != 'tokens' else None
    nd = _spatial(spec)
    for i, layer in enumerate(spec.layers):
      if layer[0] == 'embed':
        setattr(self, f'l{i}', nnx.Embed(spec.vocab, layer[1], rngs=rngs))
        feat = layer[1]
      elif layer[0] == 'linear':
        setattr(self, f'l{i}', nnx.Linear(feat, layer[1], rngs=rngs))
        feat = layer[1]
      elif layer[0] == 'conv':
        setattr(self, f'l{i}', nnx.Conv(feat, layer[1], (layer[2],) * nd,
                                        rngs=rngs))
        feat = layer[1]
      elif layer[0] == 'layernorm':
        setattr(self, f'l{i}', nnx.LayerNorm(feat, rngs=rngs))
    self.head = nnx.Linear(feat, spec.classes, rngs=rngs)

  def __call__(self, x):
    for i, layer in enumerate(self.spec.layers):
      if layer[0] == 'act':
        x = ACTIVATIONS[layer[1]](x)
      else:
        x = getattr(self, f'l{i}')(x)
    x = x.reshape(x.shape[0], -1, x.shape[-1]).mean(axis=1)
    return self.head(x)


class RandomLinen(nn.Module):
  spec: Spec

  @nn.compact
  def __call__(self, x):
    spec = self.spec
    nd = _spatial(spec)
    for layer in spec.layers:
      if layer[0] == 'embed':
        x = nn.Embed(spec.vocab, layer[1])(x)
      elif layer[0] == 'linear':
        x = nn.Dense(layer[1])(x)
      elif layer[0] == 'conv':
        x = nn.Conv(layer[1], (layer[2],) * nd)(x)
      elif layer[0] == 'layernorm':
        x = nn.LayerNorm()(x)
      else:
        x = ACTIVATIONS[layer[1]](x)
    x = x.reshape(x.shape[0], -1, x.shape[-1]).mean(axis=1)
    return nn.Dense(spec.classes)(x)


def _mse(pred, target):
  return jnp.mean(jnp.sum((pred - target) ** 2, axis=-1))


def random_model(seed: int) -> tuple[Case, Spec]:
  """A seeded random small model: ((loss_fn, params, batch, args), spec)."""
  spec = random_spec(seed)
  if spec.kind == 'tokens':
    x = tokens(seed + 100, (spec.b,) + spec.in_shape, spec.vocab)
  else:
    x = normal(seed + 100, (spec.b,) + spec.in_shape)
  if spec.loss == 'xent':
    y, loss = labels(seed + 200, spec.b, spec.classes), xent
  else:
    y, loss = normal(seed + 200, (spec.b, spec.classes)), _mse
  if spec.framework == 'nnx':
    case = nnx_case(RandomNNX(spec, nnx.Rngs(seed)), (x, y), loss=loss)
  else:
    case = linen_case(RandomLinen(spec), (x, y), loss=loss)
  return case, spec
