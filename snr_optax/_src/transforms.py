# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The SNR gradient transformations: optax plumbing around masks and stats."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from snr_optax._src import masks
from snr_optax._src import stats as stats_lib
from snr_optax._src import validation

PyTree = Any
GradStats = stats_lib.GradStats


class SNRMaskState(NamedTuple):
  """State of :func:`snr_mask`.

  Attributes:
    mask_fraction: the mean of q over all coordinates at the last step.
  """
  mask_fraction: jax.Array


class GatedState(NamedTuple):
  """State of :func:`gated`.

  Attributes:
    inner_state: the state of the wrapped transformation.
    mask_fraction: the mean of q over all coordinates at the last step.
  """
  inner_state: optax.OptState
  mask_fraction: jax.Array


class ScaleByStreamingSNRState(NamedTuple):
  """State of :func:`scale_by_streaming_snr`.

  Attributes:
    count: the number of steps taken (int32).
    mu: Adam's first moment m.
    nu: Adam's second moment v.
    s: the extra state vector, an EMA of (g_t - m_{t-1})^2.
    mask_fraction: the mean of q over all coordinates at the last step.
  """
  count: jax.Array
  mu: optax.Updates
  nu: optax.Updates
  s: optax.Updates
  mask_fraction: jax.Array


def _zero_fraction() -> jax.Array:
  return jnp.zeros([], jnp.float32)


def _stats_and_reference(updates, params, grad_stats):
  """Statistics of the step and the tree whose dtypes the output takes."""
  validation.check_not_under_multi_steps()
  if grad_stats is not None:
    # The composable form: batch-mean updates, statistics as an extra arg.
    if not isinstance(grad_stats, GradStats):
      raise ValueError('grad_stats must be a snr_optax.GradStats, got '
                       f'{type(grad_stats).__name__}.')
    validation.check_same_structure(updates, grad_stats.mean,
                                    what='updates',
                                    reference_name='grad_stats.mean')
    return grad_stats, updates
  if isinstance(updates, GradStats):
    if params is not None:
      validation.check_same_structure(updates.mean, params,
                                      what='GradStats.mean')
    return updates, (params if params is not None else updates.mean)
  if params is not None:
    validation.check_per_example_matches_params(updates, params)
    reference = params
  else:
    validation.batch_size_of(updates, what='per-example gradients')
    reference = jax.tree.map(lambda g: g[0], updates)
  return stats_lib.stats_from_per_example(updates), reference


def _cast_like(tree, reference):
  return jax.tree.map(lambda t, r: t.astype(jnp.result_type(r)), tree,
                      reference)


_PER_EXAMPLE_WARNING = """
  .. warning::
    Unlike most transformations, this one expects per-example gradients: each
    leaf of ``updates`` carries a leading batch axis, ``[b, *param.shape]``
    (from :func:`snr_optax.per_example_grads` or ``jax.vmap(jax.grad(...))``),
    or a :class:`snr_optax.GradStats` from
    :func:`snr_optax.value_and_grad_stats`. It must therefore come first in an
    ``optax.chain``. Pass ``params`` to ``update`` so that the per-example
    shapes are checked against them. A third, composable form takes the
    batch-mean gradients as ``updates`` and the statistics as the extra
    argument ``grad_stats=``; use it under wrappers that need ``updates``
    shaped like the parameters, such as ``optax.apply_if_finite``.

  .. warning::
    Generic gradient accumulation (``optax.MultiSteps``, ``optax.apply_every``)
    does not work with this transformation: it would average means and lose
    the per-example statistics (``optax.MultiSteps`` around it is refused with
    a ``ValueError``). Accumulate micro-batches exactly with
    :func:`snr_optax.accumulate_stats` instead, or bound the memory of one
    large batch with ``value_and_grad_stats(..., method="microbatch")``.
"""


def snr_mask(
    *,
    mode: str = 'hard',
    alpha: jax.typing.ArrayLike = 1.0,
    softness: jax.typing.ArrayLike = 1.0,
    reduction: str = 'element',
) -> optax.GradientTransformationExtraArgs:
  r"""Aggregates per-example gradients into the SNR-masked mean q * mu.

  For each coordinate, the batch mean :math:`\mu` is kept where its signal
  beats its leave-one-out noise :math:`\nu = \sigma^2/(b-1)` and shrunk or
  zeroed where it does not; q is :func:`snr_optax.compute_mask`. Chained before
  ``optax.scale_by_adam`` this is the design card's "before" placement: Adam's
  moments see only ``q * mu``.
  """ + _PER_EXAMPLE_WARNING + r"""
  Args:
    mode: ``"hard"``, ``"soft"`` or ``"snr"`` (see
      :func:`snr_optax.compute_mask`).
    alpha: threshold multiplier alpha >= 0.
    softness: softness s >= 0 of the ``"snr"`` mask.
    reduction: ``"element"`` or ``"tensor"``.

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose state is
    :class:`SNRMaskState`. Its output has the shapes of the parameters and
    their dtype (the statistics themselves are accumulated in float32).

  References:
    Litman and Guo, `A Theory of Generalization in Deep Learning
    <https://arxiv.org/abs/2605.01172>`_, 2026.

  Examples:
    >>> import jax, jax.numpy as jnp, optax
    >>> import snr_optax as so
    >>> params = {'w': jnp.zeros(3)}
    >>> per_example = {'w': jnp.array([[1.0, 1.0, -1.0],
    ...                                [1.0, -1.0, 1.0]])}   # b = 2
    >>> tx = so.snr_mask(mode='hard')
    >>> updates, state = tx.update(per_example, tx.init(params), params)
    >>> updates['w']          # only the agreeing coordinate survives
    Array([1., 0., 0.], dtype=float32)
    >>> round(float(state.mask_fraction), 3)
    0.333
  """
  masks.check_mask_args(mode, alpha, softness, reduction)

  def init_fn(params):
    del params
    validation.check_not_under_multi_steps()
    return SNRMaskState(mask_fraction=_zero_fraction())

  def update_fn(updates, state, params=None, *, grad_stats=None, **extra_args):
    del state, extra_args
    stats, reference = _stats_and_reference(updates, params, grad_stats)
    q = masks.compute_mask(stats, mode=mode, alpha=alpha, softness=softness,
                           reduction=reduction)
    masked = jax.tree.map(lambda qi, m: qi * m, q, stats.mean)
    return (_cast_like(masked, reference),
            SNRMaskState(mask_fraction=masks.mask_fraction(q)))

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def gated(
    inner: optax.GradientTransformation,
    *,
    mode: str = 'hard',
    alpha: jax.typing.ArrayLike = 1.0,
    softness: jax.typing.ArrayLike = 1.0,
    reduction: str = 'element',
) -> optax.GradientTransformationExtraArgs:
  r"""Feeds the batch mean to ``inner`` and gates its output by q.

  This is the "after" placement of Algorithm 1: ``inner`` (for example
  ``optax.scale_by_adam()``) sees the ordinary mean gradient :math:`\mu`, so its
  moments are those of plain Adam, and its output direction is multiplied by
  the mask q computed from the same batch's per-example statistics.
  """ + _PER_EXAMPLE_WARNING + r"""
  Args:
    inner: the transformation whose output is gated.
    mode: ``"hard"``, ``"soft"`` or ``"snr"``.
    alpha: threshold multiplier alpha >= 0.
    softness: softness s >= 0 of the ``"snr"`` mask.
    reduction: ``"element"`` or ``"tensor"``.

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose state is
    :class:`GatedState`.

  Examples:
    >>> import jax.numpy as jnp, optax
    >>> import snr_optax as so
    >>> params = {'w': jnp.zeros(2)}
    >>> per_example = {'w': jnp.array([[1.0, 1.0], [1.0, -1.0]])}
    >>> tx = so.gated(optax.scale_by_adam(), mode='hard')
    >>> updates, state = tx.update(per_example, tx.init(params), params)
    >>> updates['w']   # Adam's first step is sign(mu); q zeroes coordinate 1
    Array([1., 0.], dtype=float32)
  """
  masks.check_mask_args(mode, alpha, softness, reduction)
  inner = optax.with_extra_args_support(inner)

  def init_fn(params):
    validation.check_not_under_multi_steps()
    return GatedState(inner_state=inner.init(params),
                      mask_fraction=_zero_fraction())

  def update_fn(updates, state, params=None, *, grad_stats=None, **extra_args):
    stats, reference = _stats_and_reference(updates, params, grad_stats)
    q = masks.compute_mask(stats, mode=mode, alpha=alpha, softness=softness,
                           reduction=reduction)
    mean = _cast_like(stats.mean, reference)
    direction, inner_state = inner.update(mean, state.inner_state, params,
                                          **extra_args)
    gated_direction = jax.tree.map(
        lambda qi, d: (qi * d).astype(d.dtype), q, direction)
    return gated_direction, GatedState(inner_state=inner_state,
                                       mask_fraction=masks.mask_fraction(q))

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def scale_by_streaming_snr(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    rho: jax.typing.ArrayLike = 0.99,
    *,
    mode: str = 'snr',
    alpha: jax.typing.ArrayLike = 1.0,
    softness: jax.typing.ArrayLike = 1.0,
    reduction: str = 'element',
    warmup_steps: jax.typing.ArrayLike = 10,
) -> optax.GradientTransformation:
  r"""Adam gated by a streaming SNR mask: the paper's one-extra-vector form.

  Takes ordinary batch-mean gradients :math:`g_t`, no per-example cost:

  .. math::
    s_t &= \rho s_{t-1} + (1-\rho)(g_t - m_{t-1})^2 \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
    v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \\
    \hat m, \hat v, \hat s &= m_t/(1-\beta_1^t),\ v_t/(1-\beta_2^t),\
      s_t/(1-\rho^t) \\
    q &= \mathrm{mask}(\mu := \hat m, \nu := \hat s) \\
    u_t &= q \cdot \hat m / (\sqrt{\hat v} + \epsilon)

  where :math:`m_{t-1}` is Adam's first moment before this step. The variance
  of the batch-mean gradient is what :math:`\hat s` estimates, so it is used
  as :math:`\nu` directly (no further division by b - 1). For the first
  ``warmup_steps`` steps q is held at 1 while s fills (at t = 1,
  :math:`\hat s = \hat m^2`). Moments are kept in at least float32, so
  float16 parameters cannot underflow them into NaN; the output takes the
  updates' dtype.

  Args:
    b1: decay of the first moment.
    b2: decay of the second moment.
    eps: added to the denominator.
    rho: decay of the centred variance s (usually shorter than b2).
    mode: ``"hard"``, ``"soft"`` or ``"snr"``.
    alpha: threshold multiplier alpha >= 0.
    softness: softness s >= 0 of the ``"snr"`` mask.
    reduction: ``"element"`` or ``"tensor"``.
    warmup_steps: number of first steps with q = 1.

  Returns:
    An ``optax.GradientTransformation`` whose state is
    :class:`ScaleByStreamingSNRState`.

  References:
    Litman and Guo, `A Theory of Generalization in Deep Learning
    <https://arxiv.org/abs/2605.01172>`_, 2026 (Algorithm 1).

  Examples:
    >>> import jax.numpy as jnp, optax
    >>> import snr_optax as so
    >>> params = {'w': jnp.zeros(2)}
    >>> tx = so.scale_by_streaming_snr(warmup_steps=0)
    >>> updates, state = tx.update({'w': jnp.array([1.0, -2.0])},
    ...                            tx.init(params))
    >>> print(updates['w'].round(4))  # t = 1: s_hat = m_hat^2, so q = 1/2
    [ 0.5 -0.5]
  """
  masks.check_mask_args(mode, alpha, softness, reduction)
  for name, value in (('b1', b1), ('b2', b2), ('rho', rho)):
    validation.check_in_range(name, value, 0.0, 1.0)
  validation.check_nonnegative('eps', eps)
  validation.check_nonnegative('warmup_steps', warmup_steps)

  def init_fn(params):
    # zeros_like keeps each parameter's sharding.
    zeros = jax.tree.map(
        lambda p: jnp.zeros_like(
            p, stats_lib.accumulation_dtype(jnp.result_type(p))), params)
    return ScaleByStreamingSNRState(
        count=jnp.zeros([], jnp.int32), mu=zeros, nu=zeros, s=zeros,
        mask_fraction=_zero_fraction())

  def update_fn(updates, state, params=None):
    del params
    validation.check_same_structure(
        updates, state.mu, what='updates',
        reference_name='the parameters the state was initialised with')
    count = optax.safe_increment(state.count)
    t = count.astype(jnp.float32)
    # Bias corrections as scalar reciprocals, so that each leaf is one pass.
    c1, c2, c3 = (1 / (1 - jnp.asarray(decay, jnp.float32) ** t)
                  for decay in (b1, b2, rho))
    in_warmup = count <= warmup_steps

    def moments(g, m, v, s):
      g = g.astype(m.dtype)
      s = rho * s + (1 - rho) * jnp.square(g - m)
      m = b1 * m + (1 - b1) * g
      v = b2 * v + (1 - b2) * jnp.square(g)
      return m, v, s

    new = jax.tree.map(moments, updates, state.mu, state.nu, state.s)
    is_triple = lambda x: isinstance(x, tuple) and len(x) == 3
    mu, nu, s = (jax.tree.map(lambda x, k=k: x[k], new, is_leaf=is_triple)
                 for k in range(3))
    m_hat = jax.tree.map(lambda m: m * c1.astype(m.dtype), mu)
    s_hat = jax.tree.map(lambda v: v * c3.astype(v.dtype), s)
    q = masks.compute_mask(m_hat, s_hat, mode=mode, alpha=alpha,
                           softness=softness, reduction=reduction)
    q = jax.tree.map(lambda qi: jnp.where(in_warmup, 1, qi).astype(qi.dtype),
                     q)
    direction = jax.tree.map(
        lambda qi, m, v: qi * m / (jnp.sqrt(v * c2.astype(v.dtype)) + eps),
        q, m_hat, nu)
    new_state = ScaleByStreamingSNRState(
        count=count, mu=_cast_like(mu, state.mu), nu=_cast_like(nu, state.nu),
        s=_cast_like(s, state.s), mask_fraction=masks.mask_fraction(q))
    return _cast_like(direction, updates), new_state

  return optax.GradientTransformation(init_fn, update_fn)


def with_float32_moments(
    inner: optax.GradientTransformation) -> optax.GradientTransformation:
  """Runs ``inner`` on float32 copies of float16/bfloat16 leaves.

  Keeps the wrapped transformation's state in float32 (so, e.g., Adam's
  second moment of float16 gradients cannot underflow to zero and turn the
  update into NaN) and returns updates in the dtype they came in.
  """
  def up(tree):
    return jax.tree.map(
        lambda x: x.astype(stats_lib.accumulation_dtype(jnp.result_type(x))),
        tree)

  def init_fn(params):
    return inner.init(up(params))

  def update_fn(updates, state, params=None):
    out, state = inner.update(up(updates), state,
                              None if params is None else up(params))
    return _cast_like(out, updates), state

  return optax.GradientTransformation(init_fn, update_fn)
