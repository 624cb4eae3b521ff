# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Per-example gradient statistics: the batch mean and the LOO noise.

Pure mathematics on pytrees; nothing here knows of optax or Flax.

Conventions (pinned by the tests): for per-example gradients g_1..g_b of one
coordinate,

  mean        mu     = (1/b) sum_i g_i
  sum_sq_dev  M2     = sum_i (g_i - mu)^2             (two-pass, never E[g^2]-mu^2)
  variance    sigma2 = M2 / b                          (biased, within-batch)
  loo_noise   nu     = sigma2 / (b - 1) = M2 / (b (b - 1))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from snr_optax._src import axis_types
from snr_optax._src import validation

PyTree = Any


def accumulation_dtype(dtype) -> jnp.dtype:
  """The dtype statistics are accumulated and kept in: at least float32."""
  return jnp.promote_types(dtype, jnp.float32)


class GradStats(NamedTuple):
  """Sufficient statistics of a batch of per-example gradients.

  A pytree (so it passes through ``jax.jit``, ``jax.lax.scan`` and sharding).
  ``mean`` and ``sum_sq_dev`` have the structure and shapes of the parameters
  and are kept in at least float32; ``count`` is the batch size b as an int32
  array.

  The fields map onto the names of optax's experimental aggregators, whose
  ``optax.experimental.aggregating.get_per_element_mean_and_sum_sq_diff_grads``
  returns ``(mean_grads, {'sum_sq_diff_grads': ..., 'sample_size': ...})``:
  ``mean`` is their ``mean_grads``, ``sum_sq_dev`` their ``sum_sq_diff_grads``
  and ``count`` their ``sample_size``; both merge batches by Chan's formula.
  Their variance (``track_per_element_mean_and_variance_with_ema``) is the
  unbiased per-example variance M2 / (b - 1); :attr:`variance` here is the
  biased M2 / b, and :attr:`loo_noise` is the variance of the *mean*, theirs
  divided by b.

  The statistics of a loss with several terms, each a mean over its own
  batch (:func:`snr_optax.combine_stats`), have no single b: they carry
  their leave-one-out noise explicitly in ``noise``, which
  :attr:`loo_noise` (and so every mask) then reads. ``noise`` is None for
  the statistics of one batch.

  Attributes:
    mean: mu = (1/b) sum_i g_i, per coordinate.
    sum_sq_dev: M2 = sum_i (g_i - mu)^2, per coordinate.
    count: b, the number of examples (int32 scalar array).
    noise: None (the default) for one batch, whose noise is
      M2 / (b (b - 1)); for combined statistics, the leave-one-out noise
      nu itself, per coordinate (see :func:`snr_optax.combine_stats`).

  Examples:
    >>> import jax.numpy as jnp
    >>> import snr_optax as so
    >>> stats = so.GradStats(mean={'w': jnp.array([2.0])},
    ...                      sum_sq_dev={'w': jnp.array([8.0])},
    ...                      count=jnp.asarray(4, jnp.int32))
    >>> stats.variance['w'], stats.loo_noise['w']   # M2 / b, M2 / (b (b - 1))
    (Array([2.], dtype=float32), Array([0.6666667], dtype=float32))
  """

  mean: PyTree
  sum_sq_dev: PyTree
  count: jax.Array
  noise: PyTree = None

  @property
  def variance(self) -> PyTree:
    """The biased within-batch variance sigma2 = M2 / b.

    For combined statistics, M2 / n with n the examples of all terms and M2
    the weighted within-term sum (see :func:`snr_optax.combine_stats`).
    """
    count = jnp.asarray(self.count)
    return jax.tree.map(lambda m2: m2 / count.astype(m2.dtype),
                        self.sum_sq_dev)

  @property
  def loo_noise(self) -> PyTree:
    """The leave-one-out noise of the mean, nu = M2 / (b (b - 1)).

    Equal to sigma2 / (b - 1), to the unbiased s^2 / b, and to the jackknife
    variance of the mean. Divided in two steps so that float32 keeps its range
    for large b. Undefined for b < 2: it is then NaN, never a finite guess.
    Where ``noise`` is set (combined statistics), it is ``noise``.
    """
    if self.noise is not None:
      return self.noise
    count = jnp.asarray(self.count)

    def nu(m2):
      b = count.astype(m2.dtype)
      return m2 / b / (b - 1)
    return jax.tree.map(nu, self.sum_sq_dev)


def batch_sum(x: jax.Array) -> jax.Array:
  """Sums over the leading (batch) axis.

  On the CPU backend this is a matrix-vector product with a vector of ones:
  XLA:CPU (jaxlib 0.10) reduces a [64, 65536] float32 array over axis 0 about
  70x slower than it multiplies it by ones (73 ms against 0.9 ms on a 2-core
  machine), and these batch reductions are the whole cost of the statistics.
  Other backends reduce natively. Both accumulate in the input's dtype.
  """
  if jax.default_backend() != 'cpu' or x.ndim < 2:
    return jnp.sum(x, axis=0)
  # Contracting only the batch axis (no flattening reshape, which would
  # gather a parameter axis split over devices, as in FSDP).
  ones = jnp.ones((x.shape[0],), x.dtype)
  return jnp.tensordot(ones, x, axes=(0, 0),
                       precision=jax.lax.Precision.HIGHEST)


def _leaf_stats(g: jax.Array) -> tuple[jax.Array, jax.Array]:
  g = g.astype(accumulation_dtype(g.dtype))
  b = g.shape[0]
  # The mean is summed from examples scaled by 2^-k <= 1/b: exact in the
  # float's normal range (the same bits as the unscaled sum), and b finite
  # examples can no longer overflow the sum where their mean is representable
  # (examples near the largest float). The scaling fuses into the sum (no
  # extra pass or buffer); its cost is that examples below 2^(k-126) in
  # float32 are flushed, far below the 2^-63 limit of the squares below.
  # The deviations need no scaling: |g_i - mu| and (g_i - mu)^2 are at most
  # sqrt(M2) and M2, so they overflow only where M2 does, and an M2 beyond
  # the float range is honestly inf (the masks then give NaN, which
  # snr_optax.apply_if_finite sees).
  k = (b - 1).bit_length()                       # 2^k >= b
  real = jnp.finfo(g.dtype).dtype
  mean = (batch_sum(g * jnp.asarray(2.0 ** -k, real)) / b
          * jnp.asarray(2.0 ** k, real))
  deviation = g - mean
  if jnp.iscomplexobj(deviation):   # |g - mu|^2, as optax treats complex
    deviation = jnp.abs(deviation)
  # Squares of deviations below 2^-63 are below float32's normal range (XLA
  # flushes them to zero on CPU): a documented limit of the two-pass form,
  # which scaling would lift at the price of another pass and buffer over
  # every per-example gradient.
  return mean, batch_sum(jnp.square(deviation))


def stats_from_per_example(per_example_grads: PyTree) -> GradStats:
  """Two-pass mean and sum of squared deviations of per-example gradients.

  Args:
    per_example_grads: a pytree whose leaves all carry the same leading batch
      axis of size b >= 2, e.g. the output of :func:`snr_optax.per_example_grads`
      or of ``jax.vmap(jax.grad(loss), in_axes=(None, 0))``.

  Returns:
    A :class:`GradStats` whose ``mean`` and ``sum_sq_dev`` have the shapes of
    one example's gradient, accumulated in at least float32 (float16 and
    bfloat16 inputs give float32 statistics).

  Raises:
    ValueError: if a leaf has no leading axis, the leading axes differ, or
      b < 2.

  Examples:
    >>> import jax.numpy as jnp
    >>> import snr_optax as so
    >>> g = {'w': jnp.array([[1.0, 2.0], [3.0, 2.0]])}   # b = 2 examples
    >>> s = so.stats_from_per_example(g)
    >>> s.mean['w'], s.sum_sq_dev['w'], int(s.count)
    (Array([2., 2.], dtype=float32), Array([2., 0.], dtype=float32), 2)
    >>> s.loo_noise['w']                                 # M2 / (b (b - 1))
    Array([1., 0.], dtype=float32)
  """
  validation.batch_size_of(per_example_grads, what='per-example gradients')
  return stats_on_any_mesh(per_example_grads)


def stats_on_any_mesh(per_example_grads: PyTree) -> GradStats:
  """:func:`stats_of_chunk` of values that may be on explicit mesh axes.

  The two-pass statistics regroup the batch axis, which explicit typing
  refuses; they run with the axes as Auto (see ``axis_types``) and each
  statistic keeps its parameter's sharding (the per-example leaf's, less
  the batch axis).
  """
  def out_specs(stats):
    del stats
    specs = jax.tree.map(lambda g: jax.sharding.PartitionSpec(
        *axis_types.spec_of(g)[1:]), per_example_grads)
    return GradStats(specs, specs, jax.sharding.PartitionSpec())
  return axis_types.call_with_auto_axes(stats_of_chunk, (per_example_grads,),
                                        out_specs)


def stats_of_chunk(per_example_grads: PyTree) -> GradStats:
  """Like :func:`stats_from_per_example` for any b >= 1, without checks.

  For chunks of a larger batch (a one-example chunk has M2 = 0), which are
  then combined with :func:`merge_stats`.
  """
  leaves, treedef = jax.tree.flatten(per_example_grads)
  pairs = [_leaf_stats(g) for g in leaves]
  return GradStats(treedef.unflatten([m for m, _ in pairs]),
                   treedef.unflatten([s for _, s in pairs]),
                   jnp.asarray(leaves[0].shape[0], jnp.int32))


def merge_stats(a: GradStats, b: GradStats) -> GradStats:
  """Exactly merges the statistics of two disjoint batches (Chan et al.).

  With n = n_a + n_b and delta = mu_b - mu_a,

    mu = mu_a + delta * n_b / n
    M2 = M2_a + M2_b + delta^2 * n_a * n_b / n

  which is exact in real arithmetic and numerically stable (no difference of
  raw second moments). Merging with an empty batch (count 0) returns the other.
  Statistics of several terms (from :func:`snr_optax.combine_stats`) are
  refused: merge each term's, then combine.

  Raises:
    ValueError: if either side is combined statistics (``noise`` set).

  References:
    Chan, Golub and LeVeque, `Updating formulae and a pairwise algorithm for
    computing sample variances <https://doi.org/10.1007/978-3-642-51461-6_3>`_,
    COMPSTAT 1982.

  Examples:
    >>> import jax.numpy as jnp
    >>> import snr_optax as so
    >>> g = jnp.array([[1.0], [2.0], [4.0], [7.0]])
    >>> whole = so.stats_from_per_example(g)
    >>> merged = so.merge_stats(so.stats_from_per_example(g[:2]),
    ...                         so.stats_from_per_example(g[2:]))
    >>> bool(jnp.allclose(merged.sum_sq_dev, whole.sum_sq_dev))
    True
  """
  for name, side in (('a', a), ('b', b)):
    if side.noise is not None:
      raise ValueError(
          f'merge_stats: {name} is a combination of several terms '
          '(GradStats.noise is set), which Chan\'s formula cannot merge; '
          'merge the statistics of each term, then combine them with '
          'snr_optax.combine_stats.')
  # Weights in the statistics' own precision (float64 with x64); an empty
  # side gets weight 0, not 0/0.
  dtype = jnp.result_type(jnp.float32, *jax.tree.leaves(a.mean))
  if jnp.issubdtype(dtype, jnp.complexfloating):
    dtype = jnp.finfo(dtype).dtype
  n_a = jnp.asarray(a.count).astype(dtype)
  n_b = jnp.asarray(b.count).astype(dtype)
  n = n_a + n_b
  safe_n = jnp.where(n > 0, n, 1.0)
  w_b = n_b / safe_n
  w_ab = n_a * n_b / safe_n

  def merge_mean(m_a, m_b):
    return m_a + (m_b - m_a) * w_b.astype(m_a.dtype)

  def merge_m2(m_a, m_b, s_a, s_b):
    delta = m_b - m_a
    if jnp.iscomplexobj(delta):   # |delta|^2, as the two-pass M2 of complex
      delta = jnp.abs(delta)
    return s_a + s_b + jnp.square(delta) * w_ab.astype(s_a.dtype)

  mean = jax.tree.map(merge_mean, a.mean, b.mean)
  sum_sq_dev = jax.tree.map(merge_m2, a.mean, b.mean, a.sum_sq_dev,
                            b.sum_sq_dev)
  return GradStats(mean, sum_sq_dev,
                   jnp.asarray(a.count, jnp.int32) + jnp.asarray(b.count, jnp.int32))


def combine_stats(
    stats: Mapping[Any, GradStats] | Sequence[GradStats],
    weights: Mapping[Any, jax.typing.ArrayLike]
    | Sequence[jax.typing.ArrayLike] | None = None,
) -> GradStats:
  r"""Exact statistics of a weighted sum of mean losses over independent batches.

  A loss with several terms, :math:`L = \sum_t w_t L_t`, each term the mean
  over its own batch of :math:`b_t` examples (a PINN's residual at
  collocation points, its initial- and boundary-condition points; an
  auxiliary loss; the tasks of multi-task training). With each term's mean
  :math:`\mu_t` and leave-one-out noise
  :math:`\nu_t = M_t / (b_t (b_t - 1))`, per coordinate,

  .. math::
    \mu = \sum_t w_t \mu_t, \qquad \nu = \sum_t w_t^2 \nu_t.

  :math:`\mu` is the gradient of L, and :math:`\nu` the leave-one-out noise
  of :math:`\mu`: each example is held out against the rest of *its own
  term's* batch, and as the batches are independent their noises add with
  the weights squared. :math:`\nu` is the stratified (delete-one within
  each term) jackknife variance of :math:`\mu` and, like one batch's, an
  unbiased estimate of its variance, so :math:`\mu^2 - \nu` is an unbiased
  estimate of the signal energy and every mask compares :math:`\mu^2` with
  this :math:`\nu`. (Pooling all the examples into one batch of
  :math:`\sum_t b_t` would be wrong: the terms' examples are not draws of
  one distribution.) With one term of weight w this is the statistics of
  :math:`w L_1`.

  A term with few examples estimates its :math:`\nu_t` from
  :math:`b_t - 1` degrees of freedom (its relative spread is about
  :math:`\sqrt{2/(b_t - 1)}` for Gaussian gradients), and where its
  weighted noise dominates, the mask is that noisy too. A term needs
  :math:`b_t \ge 2`; one of a single example has no leave-one-out noise
  (refused where its count is concrete, NaN where it is traced, never a
  finite guess). A term evaluated on the same points every step still has
  :math:`\nu_t > 0`: it measures how much the gradient depends on which
  points were drawn from the term's domain.

  The result is a :class:`snr_optax.GradStats` that every transformation
  takes (:func:`snr_optax.snr_adam`, :func:`snr_optax.snr_mask`,
  :func:`snr_optax.gated`, :func:`snr_optax.compute_mask`,
  :func:`snr_optax.apply_if_finite`): ``mean`` is :math:`\mu`, ``noise``
  (what :attr:`~snr_optax.GradStats.loo_noise` returns) is :math:`\nu`,
  ``count`` is :math:`\sum_t b_t` and ``sum_sq_dev`` is
  :math:`\sum_t w_t^2 M_t`, the sum of squared deviations of the weighted
  per-example gradients :math:`w_t g_{ti}` from their terms' means.
  Combined statistics cannot be merged with Chan's formula
  (:func:`snr_optax.merge_stats` and :func:`snr_optax.accumulate_stats`
  refuse them): merge each term's, then combine. Combining combined
  statistics is exact (their noises add likewise).

  Args:
    stats: the terms' statistics, a dict (name -> :class:`GradStats`) or a
      list or tuple, every term's ``mean`` with the same structure and
      shapes.
    weights: the weights :math:`w_t > 0`, keyed or ordered like ``stats``
      (None: all 1); Python numbers or scalar arrays, which may be traced
      (then unchecked).

  Returns:
    A :class:`GradStats` with ``noise`` set, in at least float32.

  Raises:
    ValueError: for no terms, a container that is not a dict, list or tuple
      of :class:`GradStats`, weights that do not match the terms, a concrete
      weight that is not a finite number > 0, terms whose means differ in
      structure or shapes, or a concrete count below 2; the message names
      the term.

  References:
    Efron and Stein, `The jackknife estimate of variance
    <https://doi.org/10.1214/aos/1176345462>`_, Annals of Statistics 1981.
    Litman and Guo, `A Theory of Generalization in Deep Learning
    <https://arxiv.org/abs/2605.01172>`_, 2026.

  Examples:
    >>> import jax.numpy as jnp
    >>> import snr_optax as so
    >>> residual = so.stats_from_per_example(
    ...     {'w': jnp.array([[1.0], [3.0], [2.0]])})   # mu 2, nu 1/3
    >>> initial = so.stats_from_per_example(
    ...     {'w': jnp.array([[0.0], [2.0]])})          # mu 1, nu 1
    >>> s = so.combine_stats({'residual': residual, 'initial': initial},
    ...                      {'residual': 1.0, 'initial': 10.0})
    >>> print(s.mean['w'], s.loo_noise['w'], int(s.count))  # 2 + 10 * 1
    [12.] [100.333336] 5
    >>> print(so.compute_mask(s)['w'])                  # 144 > 100.3
    [1.]
  """
  names, terms = _named_terms(stats)
  if weights is None:
    weights = [1.0] * len(terms)
  else:
    weights = matching_weights(weights, stats, names, what='stats')
  first = names[0]
  for name, term in zip(names, terms):
    validation.check_same_structure(
        term.mean, terms[0].mean, what=f'statistics of term {name}',
        reference_name=f'those of term {first}')
    if term.noise is not None:
      validation.check_same_structure(
          term.noise, term.mean, what=f'GradStats.noise of term {name}',
          reference_name='its mean')
    if term.noise is None and not isinstance(term.count, jax.core.Tracer):
      count = np.asarray(term.count)
      if count.shape == () and count < 2:
        raise ValueError(
            f'combine_stats: term {name} has {int(count)} example'
            f'{"" if count == 1 else "s"}, but its leave-one-out noise needs '
            'at least 2.')

  def weighted(leaves, power):
    total = None
    for w, leaf in zip(weights, leaves):
      real = jnp.finfo(leaf.dtype).dtype
      w = jnp.asarray(w)
      w = (jnp.real(w) if jnp.iscomplexobj(w) else w).astype(real)
      part = leaf * (w ** power)
      total = part if total is None else total + part
    return total

  def over_terms(field, power):
    return jax.tree.map(lambda *leaves: weighted(leaves, power),
                        *[field(t) for t in terms])

  up = lambda tree: jax.tree.map(
      lambda x: jnp.asarray(x).astype(accumulation_dtype(jnp.result_type(x))),
      tree)
  count = sum(jnp.asarray(t.count, jnp.int32) for t in terms)
  return GradStats(mean=over_terms(lambda t: up(t.mean), 1),
                   sum_sq_dev=over_terms(lambda t: up(t.sum_sq_dev), 2),
                   count=jnp.asarray(count, jnp.int32),
                   noise=over_terms(lambda t: up(t.loo_noise), 2))


def _named_terms(stats) -> tuple[list[str], list[GradStats]]:
  """The terms of ``stats`` and their names for messages (``['ic']``, ``[1]``)."""
  if isinstance(stats, GradStats):
    raise ValueError('combine_stats takes a dict, list or tuple of GradStats '
                     '(one per term), got a single GradStats.')
  if isinstance(stats, Mapping):
    names, terms = [f'[{k!r}]' for k in stats], list(stats.values())
  elif isinstance(stats, (list, tuple)):
    names, terms = [f'[{k}]' for k in range(len(stats))], list(stats)
  else:
    raise ValueError('combine_stats takes a dict, list or tuple of GradStats '
                     f'(one per term), got {type(stats).__name__}.')
  if not terms:
    raise ValueError('combine_stats needs at least one term, got none.')
  for name, term in zip(names, terms):
    if not isinstance(term, GradStats):
      raise ValueError(f'combine_stats: term {name} is a '
                       f'{type(term).__name__}, not a snr_optax.GradStats.')
  return names, terms


def matching_weights(weights, terms, names, *, what: str) -> list[Any]:
  """``weights`` in the order of ``terms``, each checked where concrete."""
  if isinstance(terms, Mapping):
    if not isinstance(weights, Mapping) or set(weights) != set(terms):
      got = (sorted(map(repr, weights)) if isinstance(weights, Mapping)
             else type(weights).__name__)
      raise ValueError(
          f'The weights must be a dict with the keys of {what} '
          f'{sorted(map(repr, terms))}, got {got}.')
    ordered = [weights[k] for k in terms]
  else:
    if (not isinstance(weights, (list, tuple))
        or len(weights) != len(terms)):
      got = (f'{len(weights)} weights' if isinstance(weights, (list, tuple))
             else type(weights).__name__)
      raise ValueError(f'The weights must be a list or tuple of {len(terms)} '
                       f'numbers, one per term, got {got}.')
    ordered = list(weights)
  for name, w in zip(names, ordered):
    check_weight(f'weights{name}', w)
  return ordered


def check_weight(name: str, value: Any) -> None:
  """Refuses a concrete weight that is not a finite number > 0."""
  if isinstance(value, jax.core.Tracer):
    if jnp.shape(value) != ():
      raise ValueError(f'{name} must be a scalar, got shape '
                       f'{jnp.shape(value)}.')
    return
  try:
    v = np.asarray(value)
    # Strings ('1'), booleans and objects (a Python int beyond float64) are
    # not weights: refused here rather than failing later in the arithmetic.
    if v.dtype.kind not in 'iufc':
      raise TypeError
    if np.iscomplexobj(v):
      v = v.real if not np.any(v.imag) else np.asarray(np.nan)
    v = v.astype(np.float64)
  except (TypeError, ValueError, OverflowError):
    raise ValueError(f'{name} must be a number > 0, got {value!r}.') from None
  if v.shape != ():
    raise ValueError(f'{name} must be a scalar, got shape {v.shape}.')
  if not (np.isfinite(v) and v > 0):
    raise ValueError(f'{name} must be a finite number > 0, got {value!r}.')


def chunked_stats(stats_of_chunk: Callable[[PyTree], GradStats],
                  batch: PyTree, chunk_size: int) -> GradStats:
  """Statistics over ``batch``, ``chunk_size`` examples at a time.

  Full chunks run in a ``lax.scan`` carrying the running statistics; a final
  partial chunk, if any, is merged after it. Within a chunk the statistics
  are two-pass; across chunks they are merged exactly
  (:func:`snr_optax.merge_stats`), never from raw second moments.

  Chunk k holds examples k, k + n, k + 2n, ... (n chunks): the batch is
  viewed as [chunk_size, n] and scanned over its second axis. When the batch
  axis is sharded over devices in contiguous blocks (and ``chunk_size`` is a
  multiple of the number of devices), every chunk then takes the same
  number of examples from each device's own block, so each device works
  through its shard in chunks and nothing is moved between devices.
  """
  # Why not optax.microbatching.microbatch (optax 0.2.8)? Its built-in
  # accumulators (SUM, MEAN, RUNNING_MEAN, CONCAT) cannot merge variances; a
  # custom Accumulator whose update is merge_stats would be exact and would
  # take the same strided chunks (its reshape_batch_axis is column-major).
  # But it refuses a batch that chunk_size does not divide, and on explicit
  # mesh axes a chunk_size that the number of batch shards does not divide,
  # where this takes any chunk size (the last, partial chunk merged after the
  # scan), as value_and_grad_stats(method="microbatch") promises.
  b = jax.tree.leaves(batch)[0].shape[0]
  m = min(chunk_size, b)
  n_full, rest = divmod(b, m)
  chunks = jax.tree.map(
      lambda x: jnp.swapaxes(x[:n_full * m].reshape((m, n_full)
                                                    + x.shape[1:]), 0, 1),
      batch)

  def body(carry, chunk):
    return merge_stats(carry, stats_of_chunk(chunk)), None

  first = stats_of_chunk(jax.tree.map(lambda x: x[0], chunks))
  total, _ = jax.lax.scan(body, first, jax.tree.map(lambda x: x[1:], chunks))
  if rest:
    last = jax.tree.map(lambda x: x[n_full * m:], batch)
    total = merge_stats(total, stats_of_chunk(last))
  return total
