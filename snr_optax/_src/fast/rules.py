# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Exact per-example statistics of one layer from its inputs and output grads.

Pure mathematics: nothing here knows of Flax. Every rule receives, for a
batch of b examples, the layer input ``x`` (leading axis b) and the
per-example output gradient ``d`` (the gradient of example i's own loss with
respect to the layer output, leading axis b), and returns the sum of squared
deviations M2 = sum_i (g_i - mu)^2 of the per-example parameter gradients
g_i, without forming the b per-example gradients where an identity allows.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from snr_optax._src import stats as stats_lib

_HIGHEST = jax.lax.Precision.HIGHEST

# The one-pass identity M2 = sum_i g_i^2 - b mu^2 loses about
# eps * sum_i g_i^2 to float32 rounding (a few ulps of the larger term). Where
# that could exceed 1e-5 of M2 for some coordinate of a layer, i.e. where
# mu^2 / sigma^2 > ~40, the layer is recomputed exactly.
GUARD_RATIO = 1e-5 / (4 * float(jnp.finfo(jnp.float32).eps))

# Up to this many positions per example the position-pair identity is used
# for a dense kernel shared across positions; beyond it, chunked
# per-example gradients (measured by benchmarks/dense_rules.py).
PAIR_MAX_POSITIONS = 12


def _mm(a, b):
  """a^T b over the batch axis, in float32 at full precision."""
  return jnp.dot(a.T, b, precision=_HIGHEST,
                 preferred_element_type=jnp.float32)


def dense_kernel_sum_sq_dev(x: jax.Array, d: jax.Array, mean: jax.Array, *,
                            chunk: int) -> jax.Array:
  """M2 of the kernel of y = x @ W (+ bias); x: [b, T, n_in], d: [b, T, n_out].

  Example i's kernel gradient is g_i = sum_t x_it d_it^T, a sum over its T
  positions (T = 1 for a plain dense layer). ``mean`` is the batch gradient,
  which the ordinary backward pass has already formed.

  * T = 1: sum_i g_i^2 = (x^2)^T (d^2), one extra matrix product and no
    [b, n_in, n_out] tensor.
  * 1 < T <= ``PAIR_MAX_POSITIONS``: g_i^2 = sum_{t,s} (x_it x_is)(d_it d_is),
    so sum_i g_i^2 is one product of [b T(T+1)/2, n_in] and
    [b T(T+1)/2, n_out] position-pair matrices (t <= s, off-diagonal pairs
    counted twice).
  * larger T: the g_i are formed ``chunk`` examples at a time (a batched
    product) and reduced two-pass (``materialized_dense``).

  The first two are one-pass, M2 = sum_i g_i^2 - b mu^2, which loses about
  eps * sum_i g_i^2 to float32 rounding. Where that could exceed 1e-5 of M2
  for some coordinate of the layer (``GUARD_RATIO``), the layer is
  recomputed under ``lax.cond``: centred (T = 1, three products) or
  materialised, so the result always matches the two-pass statistics.
  """
  b, positions = x.shape[0], x.shape[1]
  x = x.astype(jnp.float32)
  d = d.astype(jnp.float32)
  if positions > PAIR_MAX_POSITIONS:
    return materialized_dense(x, d, chunk)
  if positions == 1:
    sum_sq = _mm(jnp.square(x[:, 0]), jnp.square(d[:, 0]))
    exact = lambda: centred_dense_kernel_sum_sq_dev(x[:, 0], d[:, 0])
  else:
    t, s = jnp.triu_indices(positions)
    twice = jnp.where(t == s, 1.0, 2.0)[None, :, None]
    pairs_x = (x[:, t] * x[:, s]).reshape(-1, x.shape[-1])
    pairs_d = (twice * d[:, t] * d[:, s]).reshape(-1, d.shape[-1])
    sum_sq = _mm(pairs_x, pairs_d)
    exact = lambda: materialized_dense(x, d, chunk)
  one_pass = sum_sq - b * jnp.square(mean.astype(jnp.float32))
  untrustworthy = jnp.any(sum_sq > GUARD_RATIO * one_pass)
  m2 = jax.lax.cond(untrustworthy, exact, lambda: one_pass)
  return jnp.maximum(m2, 0)


def materialized_dense(x: jax.Array, d: jax.Array, chunk: int) -> jax.Array:
  """Two-pass M2 of g_i = sum_t x_it d_it^T, ``chunk`` examples at a time."""
  def stats_of_chunk(pair):
    xs, ds = pair
    g = jnp.einsum('bti,bto->bio', xs, ds, precision=_HIGHEST,
                   preferred_element_type=jnp.float32)
    return stats_lib.stats_of_chunk(g)
  return stats_lib.chunked_stats(stats_of_chunk, (x, d), chunk).sum_sq_dev


def centred_dense_kernel_sum_sq_dev(x: jax.Array, d: jax.Array) -> jax.Array:
  """The centred form of ``dense_kernel_sum_sq_dev`` (see there)."""
  x = x.astype(jnp.float32)
  d = d.astype(jnp.float32)
  b = x.shape[0]
  x_bar = stats_lib.batch_sum(x) / b
  d_bar = stats_lib.batch_sum(d) / b
  dx = x - x_bar
  dd = d - d_bar
  cross, c_times_b = jnp.split(_mm(dx, jnp.concatenate([dd * d, d], 1)), 2,
                               axis=1)
  about_k = (jnp.outer(jnp.square(x_bar), stats_lib.batch_sum(
      jnp.square(dd))) + _mm(jnp.square(dx), jnp.square(d))
             + 2 * x_bar[:, None] * cross)
  return about_k - jnp.square(c_times_b) / b


def embed_sum_sq_dev(tokens: jax.Array, d: jax.Array,
                     mean: jax.Array) -> jax.Array:
  """M2 of an embedding table [V, D] read as table[tokens].

  Example i's gradient of row v is G_i[v] = sum of d over the positions of i
  holding token v, and is zero for tokens i does not hold. So

    M2[v] = sum_{i holds v} (G_i[v] - mu[v])^2 + (b - n_v) mu[v]^2

  with n_v the number of examples holding v: exact two-pass. Each example's
  positions are sorted by token and summed per distinct token on their own
  (no sort across examples, so a sharded batch stays where it is), and the
  rows are then added into the table by token. Memory O(b T D), never
  b x V x D.
  """
  b = tokens.shape[0]
  vocab, dim = mean.shape
  tokens = tokens.reshape(b, -1).astype(jnp.int32)
  positions = tokens.shape[1]
  d = d.reshape(b, positions, dim).astype(jnp.float32)
  mean = mean.astype(jnp.float32)

  def per_example(tok, rows):
    order = jnp.argsort(tok)
    tok, rows = tok[order], rows[order]
    first = jnp.concatenate([jnp.ones(1, bool), tok[1:] != tok[:-1]])
    segment = jnp.cumsum(first) - 1          # distinct-token index
    sums = jax.ops.segment_sum(rows, segment, num_segments=positions)
    token = jax.ops.segment_max(tok, segment, num_segments=positions)
    held = jnp.arange(positions) < jnp.sum(first)
    return sums, jnp.where(held, token, 0), held

  sums, token, held = jax.vmap(per_example)(tokens, d)
  deviation = jnp.where(held[..., None],
                        jnp.square(sums - mean[token]), 0).reshape(-1, dim)
  token, held = token.reshape(-1), held.reshape(-1)
  m2_held = jax.ops.segment_sum(deviation, token, num_segments=vocab)
  n_holding = jax.ops.segment_sum(held.astype(jnp.float32), token,
                                  num_segments=vocab)
  return m2_held + (b - n_holding)[:, None] * jnp.square(mean)


def materialized_stats(
    layer_fn: Callable[[dict[str, jax.Array], jax.Array], jax.Array],
    theta: dict[str, jax.Array], x: jax.Array, d: jax.Array,
    chunk: int) -> stats_lib.GradStats:
  """Statistics of a layer's parameters from per-example VJPs, by chunks.

  For layers whose per-example gradient is a sum over positions (a kernel
  shared across a sequence or an image), g_i = VJP of the layer on example i
  alone at d_i. They are formed ``chunk`` examples at a time as batched
  products, reduced two-pass within the chunk and merged exactly across
  chunks, so memory is chunk x (layer parameters).
  """
  def per_example(xi, di):
    _, vjp = jax.vjp(lambda th: layer_fn(th, xi[None]), theta)
    return vjp(di[None])[0]

  def stats_of_chunk(pair):
    xs, ds = pair
    return stats_lib.stats_of_chunk(jax.vmap(per_example)(xs, ds))

  return stats_lib.chunked_stats(stats_of_chunk, (x, d), chunk)
