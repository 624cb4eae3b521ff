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
# mu^2 / sigma^2 > ~40, the layer is recomputed with a centred formula.
GUARD_RATIO = 1e-5 / (4 * float(jnp.finfo(jnp.float32).eps))


def _mm(a, b):
  """a^T b over the batch axis, in float32 at full precision."""
  return jnp.dot(a.T, b, precision=_HIGHEST,
                 preferred_element_type=jnp.float32)


def dense_kernel_sum_sq_dev(x: jax.Array, d: jax.Array,
                            mean: jax.Array) -> jax.Array:
  """M2 of the kernel of y = x @ W (+ bias), x: [b, n_in], d: [b, n_out].

  g_i = x_i d_i^T, so sum_i g_i^2 = (x^2)^T (d^2): one extra matrix product
  and no [b, n_in, n_out] tensor. ``mean`` is the batch gradient x^T d / b,
  which the ordinary backward pass has already formed. When the one-pass
  result is not trustworthy to float32 tolerance (see ``GUARD_RATIO``) the
  layer is recomputed, under ``lax.cond``, by the centred form

    sum_i (g_i - K)^2 - b C^2,   K = xbar dbar^T,   C = mu - K = dx^T d / b,
    sum_i (g_i - K)^2 = xbar^2 (sum_i dd_i^2)^T + (dx^2)^T (d^2)
                        + 2 xbar * (dx^T (dd * d))

  with dx = x - xbar and dd = d - dbar, which removes the large mean before
  anything is squared (three matrix products instead of one).
  """
  x = x.astype(jnp.float32)
  d = d.astype(jnp.float32)
  mean = mean.astype(jnp.float32)
  b = x.shape[0]
  sum_sq = _mm(jnp.square(x), jnp.square(d))
  one_pass = sum_sq - b * jnp.square(mean)
  untrustworthy = jnp.any(sum_sq > GUARD_RATIO * one_pass)
  m2 = jax.lax.cond(untrustworthy,
                    lambda: centred_dense_kernel_sum_sq_dev(x, d),
                    lambda: one_pass)
  return jnp.maximum(m2, 0)


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

  with n_v the number of examples holding v: exact two-pass, computed with a
  sort of the b*T (example, token) pairs and segment sums. Memory O(b T D),
  never b x V x D.
  """
  b = tokens.shape[0]
  vocab, dim = mean.shape
  tokens = tokens.reshape(b, -1)
  d = d.reshape(b, -1, dim).astype(jnp.float32)
  mean = mean.astype(jnp.float32)
  n = tokens.size
  keys = (jnp.arange(b, dtype=jnp.int32)[:, None] * vocab
          + tokens.astype(jnp.int32)).reshape(-1)
  unique, segment = jnp.unique(keys, return_inverse=True, size=n,
                               fill_value=-1)
  segment = segment.reshape(-1)
  per_pair = jax.ops.segment_sum(d.reshape(n, dim), segment, num_segments=n)
  valid = unique >= 0
  token_of_pair = jnp.where(valid, unique % vocab, 0)
  deviation = jnp.square(per_pair - mean[token_of_pair])
  deviation = jnp.where(valid[:, None], deviation, 0)
  held = jax.ops.segment_sum(deviation, token_of_pair, num_segments=vocab)
  n_holding = jax.ops.segment_sum(valid.astype(jnp.float32), token_of_pair,
                                  num_segments=vocab)
  return held + (b - n_holding)[:, None] * jnp.square(mean)


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
