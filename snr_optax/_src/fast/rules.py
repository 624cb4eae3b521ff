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
import numpy as np

from snr_optax._src import stats as stats_lib

_HIGHEST = jax.lax.Precision.HIGHEST

# The one-pass identity M2 = sum_i g_i^2 - b mu^2 loses accuracy to rounding
# in proportion to the size of its terms, not to M2. In the probabilistic
# model of Higham and Mary (2019), summing n terms in a dtype of unit
# roundoff u errs by about u sqrt(n) times their absolute sum, so the
# identity errs by about GUARD_FACTOR * u * (sqrt(b) sum_i g_i^2 + T^2
# sum_{i,t} x_it^2 d_it^2): the first term is the sum over the
# examples and the mean (itself a sum over them), the second bounds the
# cancellation of T positions within an example (T = 1: none). Where that could exceed
# GUARD_TOLERANCE of M2 for some coordinate of a layer, the layer is
# recomputed by a form that does not cancel, under lax.cond.
GUARD_FACTOR = 4.0
GUARD_TOLERANCE = 1e-4

# Up to this many positions per example the position-pair identity is used
# for a dense kernel shared across positions; beyond it, chunked
# per-example gradients (measured by benchmarks/dense_rules.py).
PAIR_MAX_POSITIONS = 12

# Elements of per-example gradients the guarded exact recomputation holds at
# once (2 MiB of float32).
_EXACT_CHUNK_ELEMENTS = 1 << 19


def _mm(a, b):
  """a^T b over the leading axis, at full precision, accumulating in a's dtype."""
  return jnp.dot(a.T, b, precision=_HIGHEST, preferred_element_type=a.dtype)


def compute_dtype(*arrays) -> jnp.dtype:
  """At least float32: the dtype the statistics are computed in."""
  return jnp.result_type(jnp.float32, *[a.dtype for a in arrays])


def power_of_two_scale(x: jax.Array, axis) -> jax.Array:
  """Per column, the power of two at or above max |x| (1 where x is 0).

  Dividing by a power of two is exact, and squares of the scaled values lie
  in [0, 1]: they cannot overflow, and underflow only where a value is below
  2^-126 of its column's largest, which cannot change M2 at float32
  tolerance.
  """
  big = jnp.max(jnp.abs(x), axis=axis)
  finite = jnp.isfinite(big) & (big > 0)
  _, exponent = jnp.frexp(jnp.where(finite, big, 1))
  return jnp.where(finite, jnp.ldexp(jnp.ones_like(big), exponent), 1)


def dense_kernel_stats(x: jax.Array, d: jax.Array, mean: jax.Array | None,
                       *, chunk: int) -> tuple[jax.Array, jax.Array]:
  """(mean, M2) of the kernel of y = x @ W (+ bias); x: [b, T, n_in], d: [b, T, n_out].

  Example i's kernel gradient is g_i = sum_t x_it d_it^T, a sum over its T
  positions (T = 1 for a plain dense layer). ``mean`` is the batch gradient
  if the backward pass formed it in the compute dtype (None: formed here).

  * T = 1: sum_i g_i^2 = (x^2)^T (d^2), one extra matrix product and no
    [b, n_in, n_out] tensor.
  * 1 < T <= ``PAIR_MAX_POSITIONS``: g_i^2 = sum_{t,s} (x_it x_is)(d_it d_is),
    so sum_i g_i^2 is one product of [b T(T+1)/2, n_in] and
    [b T(T+1)/2, n_out] position-pair matrices (t <= s, off-diagonal pairs
    counted twice).
  * larger T: the g_i are formed ``chunk`` examples at a time (a batched
    product) and reduced two-pass (``materialized_dense``).

  Squares are formed of x and d scaled per column by powers of two
  (``power_of_two_scale``) where some column is far from 1, so they neither
  overflow nor underflow while the per-example gradients are representable,
  and M2 is scaled back at the end. The one-pass forms are guarded: where their rounding error bound
  (see ``GUARD_FACTOR``) could exceed ``GUARD_TOLERANCE`` of M2 for some
  coordinate, the layer is recomputed two-pass.
  """
  dtype = compute_dtype(x, d)
  x = x.astype(dtype)
  d = d.astype(dtype)
  sx = power_of_two_scale(x, (0, 1))
  sd = power_of_two_scale(d, (0, 1))
  # Scaling costs passes over [n_in, n_out]: skip it where no column is far
  # enough from 1 for a product of squares to leave the normal range.
  safe = (jnp.all((sx >= _SAFE_LOW) & (sx <= _SAFE_HIGH))
          & jnp.all((sd >= _SAFE_LOW) & (sd <= _SAFE_HIGH)))
  return jax.lax.cond(
      safe, lambda: _dense_kernel_stats(x, d, mean, chunk),
      lambda: _dense_kernel_stats(x, d, mean, chunk, sx, sd))


# Columns whose largest |value| lies in [2^-30, 2^30] have products of
# squares within 2^+-120, inside float32's normal range: no scaling needed.
_SAFE_LOW, _SAFE_HIGH = 2.0 ** -30, 2.0 ** 30


def _dense_kernel_stats(x, d, mean, chunk, sx=None, sd=None):
  """``dense_kernel_stats``, with x and d divided by sx and sd if given."""
  b, positions = x.shape[0], x.shape[1]
  dtype = x.dtype
  if sx is not None:
    x, d = x * (1 / sx), d * (1 / sd)   # powers of two: exact
    if mean is not None:
      mean = mean.astype(dtype) * (1 / sx)[:, None] * (1 / sd)[None, :]
  if mean is None:
    mean = _mm(x.reshape(-1, x.shape[-1]), d.reshape(-1, d.shape[-1])) / b
  mean = mean.astype(dtype)
  if positions > PAIR_MAX_POSITIONS:
    mean, m2 = materialized_dense(x, d, chunk)
  else:
    u = float(jnp.finfo(dtype).eps) / 2
    # Exact two-pass per-example gradients, a few examples at a time: only
    # reached when the identities cannot be trusted, so kept small in memory.
    # It also gives the mean from per-example gradients: where positions
    # cancel within an example, the batch product loses the digits the
    # one-pass M2 does.
    exact_chunk = max(1, min(chunk, _EXACT_CHUNK_ELEMENTS // (
        x.shape[-1] * d.shape[-1])))
    exact = lambda: materialized_dense(x, d, exact_chunk)
    if positions == 1:
      x1, d1 = x[:, 0], d[:, 0]
      sum_sq = _mm(jnp.square(x1), jnp.square(d1))
      bound = GUARD_FACTOR * u * (b ** 0.5) * sum_sq
      fallback = lambda: _centred_or_exact(x1, d1, mean, u, exact)
    else:
      t, s = np.triu_indices(positions)
      twice = jnp.asarray(np.where(t == s, 1.0, 2.0), dtype)[None, :, None]
      pairs_x = (x[:, t] * x[:, s]).reshape(-1, x.shape[-1])
      pairs_d = (twice * d[:, t] * d[:, s]).reshape(-1, d.shape[-1])
      sum_sq = _mm(pairs_x, pairs_d)
      fallback = lambda: _within_or_exact(x, d, mean, one_pass, sum_sq, u,
                                          exact)
      # Cancellation within example i: its pair terms sum in absolute value
      # to (sum_t |x_it d_it|)^2 <= (sum_t x_it^2)(sum_t d_it^2), a product
      # over b rows (the pairs take b T (T + 1) / 2); where that bound is
      # too loose to pass, a tighter one is tried before the exact form.
      within = positions * _mm(jnp.sum(jnp.square(x), 1),
                               jnp.sum(jnp.square(d), 1))
      bound = GUARD_FACTOR * u * ((b ** 0.5) * sum_sq + within)
    one_pass = sum_sq - b * jnp.square(mean)
    untrustworthy = jnp.any(bound > GUARD_TOLERANCE * one_pass)
    mean, m2 = jax.lax.cond(untrustworthy, fallback,
                            lambda: (mean, one_pass))
  m2 = jnp.maximum(m2, 0)
  if sx is not None:
    # (M2 f) f: no intermediate overflows unless M2 itself does.
    f = sx[:, None] * sd[None, :]
    mean, m2 = mean * f, (m2 * f) * f
  return mean, m2


def _within_or_exact(x, d, mean, one_pass, sum_sq, u, exact):
  """The pair identity's guard with (sum_t |x d|)^2 <= T sum_t x^2 d^2."""
  b, positions = x.shape[0], x.shape[1]
  within = positions * positions * _mm(
      jnp.square(x).reshape(-1, x.shape[-1]),
      jnp.square(d).reshape(-1, d.shape[-1]))
  bound = GUARD_FACTOR * u * ((b ** 0.5) * sum_sq + within)
  return jax.lax.cond(jnp.any(bound > GUARD_TOLERANCE * one_pass), exact,
                      lambda: (mean, one_pass))


def _centred_or_exact(x, d, mean, u, exact):
  """The centred one-pass form of a T = 1 kernel's M2, guarded in turn.

  With x_i = x_bar + dx_i and a_i = x_bar dd_i + dx_i d_i (dd_i = d_i -
  d_bar), g_i - mu = a_i - c with c = mean_i(a_i), so
  M2 = sum_i a_i^2 - b c^2: the same one-pass identity on centred terms,
  which cancels only where the covariance of x and d dominates its own
  spread. Its terms are bounded by A = 2 (x_bar^2 sum dd^2 + sum dx^2 d^2);
  where u sqrt(b) A could exceed the tolerance it is recomputed two-pass.
  """
  b = x.shape[0]
  x_bar = stats_lib.batch_sum(x) / b
  d_bar = stats_lib.batch_sum(d) / b
  dx = x - x_bar
  dd = d - d_bar
  cross, c_times_b = jnp.split(_mm(dx, jnp.concatenate([dd * d, d], 1)), 2,
                               axis=1)
  first = jnp.outer(jnp.square(x_bar), stats_lib.batch_sum(jnp.square(dd)))
  second = _mm(jnp.square(dx), jnp.square(d))
  m2 = first + second + 2 * x_bar[:, None] * cross - jnp.square(c_times_b) / b
  bound = GUARD_FACTOR * u * (b ** 0.5) * 2 * (first + second)
  return jax.lax.cond(jnp.any(bound > GUARD_TOLERANCE * m2), exact,
                      lambda: (mean, m2))


def materialized_dense(x: jax.Array, d: jax.Array,
                       chunk: int) -> tuple[jax.Array, jax.Array]:
  """Two-pass (mean, M2) of g_i = sum_t x_it d_it^T, ``chunk`` examples at a time."""
  def stats_of_chunk(pair):
    xs, ds = pair
    g = jnp.einsum('bti,bto->bio', xs, ds, precision=_HIGHEST,
                   preferred_element_type=xs.dtype)
    return stats_lib.stats_of_chunk(g)
  st = stats_lib.chunked_stats(stats_of_chunk, (x, d), chunk)
  return st.mean, st.sum_sq_dev


def embed_sum_sq_dev(rows: jax.Array, d: jax.Array,
                     mean: jax.Array) -> jax.Array:
  """M2 of an embedding table [V, D] whose position p of example i read row
  rows[i, p] (-1: no row, e.g. an out-of-range index the lookup dropped).

  Example i's gradient of row v is G_i[v] = sum of d over the positions of i
  holding token v, and is zero for tokens i does not hold. So

    M2[v] = sum_{i holds v} (G_i[v] - mu[v])^2 + (b - n_v) mu[v]^2

  with n_v the number of examples holding v: exact two-pass. Each example's
  positions are sorted by token and summed per distinct token on their own
  (no sort across examples, so a sharded batch stays where it is), and the
  rows are then added into the table by token. Memory O(b T D), never
  b x V x D.
  """
  b = rows.shape[0]
  vocab, dim = mean.shape
  rows = rows.reshape(b, -1).astype(jnp.int32)
  positions = rows.shape[1]
  dtype = compute_dtype(d, mean)
  d = d.reshape(b, positions, dim).astype(dtype)
  # A position that read no row contributes no gradient.
  d = jnp.where((rows >= 0)[..., None], d, 0)
  tokens = jnp.maximum(rows, 0)
  mean = mean.astype(dtype)

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
  n_holding = jax.ops.segment_sum(held.astype(dtype), token,
                                  num_segments=vocab)
  return m2_held + (b - n_holding)[:, None] * jnp.square(mean)


def materialized_stats(
    layer_fn: Callable[[dict[str, jax.Array], jax.Array], jax.Array],
    theta: dict[str, jax.Array], x: jax.Array, d: jax.Array,
    chunk: int) -> stats_lib.GradStats:
  """Statistics of a layer's parameters from per-example VJPs, by chunks.

  ``layer_fn(theta, x[i])`` is the layer on example i alone (its output
  shaped like ``d[i]``); g_i is its VJP at d_i. They are formed ``chunk`` examples at a time as batched
  products, reduced two-pass within the chunk and merged exactly across
  chunks, so memory is chunk x (layer parameters).
  """
  def per_example(xi, di):
    y, vjp = jax.vjp(lambda th: layer_fn(th, xi), theta)
    return vjp(di.astype(y.dtype))[0]

  def stats_of_chunk(pair):
    xs, ds = pair
    return stats_lib.stats_of_chunk(jax.vmap(per_example)(xs, ds))

  return stats_lib.chunked_stats(stats_of_chunk, (x, d), chunk)
