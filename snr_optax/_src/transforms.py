# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The SNR gradient transformations: optax plumbing around masks and stats."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
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

  The fields ``count``, ``mu`` and ``nu`` keep the names of
  ``optax.ScaleByAdamState``, so that code which finds Adam's moments by name
  (``optax.tree_utils.tree_get(state, 'nu')``, checkpoints, sharding rules)
  finds them here too. Hence a clash of notation: here ``nu`` is Adam's
  second moment v, not the leave-one-out noise nu = sigma^2 / (b - 1) of the
  masks (:attr:`snr_optax.GradStats.loo_noise`), whose streaming estimate is
  the bias-corrected ``s``.

  Attributes:
    count: the number of steps taken (int32).
    mu: Adam's first moment m (``mu_dtype`` if given, else the parameters'
      dtype, at least float32; complex for complex parameters).
    nu: Adam's second moment v, an EMA of |g_t|^2 (real, at least float32);
      not the leave-one-out noise.
    s: the extra state vector, an EMA of |g_t - m_{t-1}|^2 (real, at least
      float32).
    mask_fraction: the mean of q over all coordinates at the last step.
  """
  count: jax.Array
  mu: optax.Updates
  nu: optax.Updates
  s: optax.Updates
  mask_fraction: jax.Array


def _zero_fraction() -> jax.Array:
  return jnp.zeros([], jnp.float32)


def stats_and_reference(updates, params, grad_stats, *,
                        min_batch_size: int = 2):
  """Statistics of the step and the tree whose dtypes the output takes.

  Reads the three input forms of the per-example transformations (and of
  :func:`snr_optax.accumulate_stats`, whose micro-batches may hold one
  example: ``min_batch_size=1``).
  """
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
    validation.check_per_example_matches_params(
        updates, params, min_batch_size=min_batch_size)
    reference = params
  else:
    validation.batch_size_of(updates, what='per-example gradients',
                             min_batch_size=min_batch_size)
    reference = jax.tree.map(lambda g: g[0], updates)
  return stats_lib.stats_on_any_mesh(updates), reference


def _cast_like(tree, reference):
  return jax.tree.map(lambda t, r: t.astype(jnp.result_type(r)), tree,
                      reference)


def _output_reference(reference, params):
  """The parameters where given: updates come back in their dtype.

  In every input form (per-example, ``GradStats``, ``grad_stats=``); without
  ``params`` the reference of :func:`stats_and_reference` (the updates').
  """
  return reference if params is None else params


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


_NON_FINITE_NOTE = """
  .. note::
    A non-finite per-example gradient or statistic gives a NaN update, never
    a finite-looking one. To skip such steps, wrap the optimizer in
    :func:`snr_optax.apply_if_finite`: it checks the statistics in every input
    form and the output, and leaves the state untouched.
    (``optax.apply_if_finite`` checks only ``updates``, so in the
    ``grad_stats=`` form it misses non-finite statistics, and it cannot take
    a ``GradStats`` as ``updates``.)
"""


def _per_example_doc(fn):
  """Puts the per-example warnings where a docstring says ``<per-example notes>``.

  (A docstring must be one literal, so the shared text is put in here.)
  """
  fn.__doc__ = fn.__doc__.replace('  <per-example notes>\n',
                                  _PER_EXAMPLE_WARNING + _NON_FINITE_NOTE
                                  + '\n')
  return fn


@_per_example_doc
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
  ``optax.scale_by_adam`` this is the "before" placement (the default of
  :func:`snr_optax.snr_adam`): Adam's moments see only ``q * mu``.
  <per-example notes>
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
    stats, reference = stats_and_reference(updates, params, grad_stats)
    reference = _output_reference(reference, params)
    q = masks.compute_mask(stats, mode=mode, alpha=alpha, softness=softness,
                           reduction=reduction)
    masked = jax.tree.map(lambda qi, m: qi * m, q, stats.mean)
    return (_cast_like(masked, reference),
            SNRMaskState(mask_fraction=masks.mask_fraction(q)))

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


@_per_example_doc
def gated(
    inner: optax.GradientTransformation,
    *,
    mode: str = 'hard',
    alpha: jax.typing.ArrayLike = 1.0,
    softness: jax.typing.ArrayLike = 1.0,
    reduction: str = 'element',
) -> optax.GradientTransformationExtraArgs:
  r"""Feeds the batch mean to ``inner`` and gates its output by q.

  This is the "after" placement, that of the paper's Algorithm 1: ``inner``
  (for example ``optax.scale_by_adam()``) sees the ordinary mean gradient
  :math:`\mu`, so its moments are those of plain Adam, and its output
  direction is multiplied by the mask q computed from the same batch's
  per-example statistics.
  <per-example notes>
  Args:
    inner: the transformation whose output is gated.
    mode: ``"hard"``, ``"soft"`` or ``"snr"``.
    alpha: threshold multiplier alpha >= 0.
    softness: softness s >= 0 of the ``"snr"`` mask.
    reduction: ``"element"`` or ``"tensor"``.

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose state is
    :class:`GatedState`.

  References:
    Litman and Guo, `A Theory of Generalization in Deep Learning
    <https://arxiv.org/abs/2605.01172>`_, 2026 (Algorithm 1).

  Examples:
    >>> import jax.numpy as jnp, optax
    >>> import snr_optax as so
    >>> params = {'w': jnp.zeros(2)}
    >>> per_example = {'w': jnp.array([[1.0, 1.0], [1.0, -1.0]])}
    >>> tx = so.gated(optax.scale_by_adam(), mode='hard')
    >>> updates, state = tx.update(per_example, tx.init(params), params)
    >>> updates['w'].round(4)   # Adam's first step: sign(mu); q zeroes w[1]
    Array([1., 0.], dtype=float32)
  """
  masks.check_mask_args(mode, alpha, softness, reduction)
  inner = optax.with_extra_args_support(inner)

  def init_fn(params):
    validation.check_not_under_multi_steps()
    return GatedState(inner_state=inner.init(params),
                      mask_fraction=_zero_fraction())

  def update_fn(updates, state, params=None, *, grad_stats=None, **extra_args):
    stats, reference = stats_and_reference(updates, params, grad_stats)
    reference = _output_reference(reference, params)
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


def _update_moment_sq(updates, moments, decay):
  """``optax.tree.update_moment_per_elem_norm(updates, moments, decay, 2)``.

  The EMA of |x|^2, bit for bit optax's where |x| < sqrt(max)/2. Beyond,
  |x|^2 would overflow although ``(1 - decay) |x|^2`` may not, so that term
  is formed as ``((1 - decay) |x|) |x|``.
  """
  ema = optax.tree.update_moment_per_elem_norm(updates, moments, decay, 2)

  def guard(x, moment, ema):
    a = jnp.abs(x)
    big = float(np.sqrt(jnp.finfo(a.dtype).max)) / 2
    return jnp.where(a < big, ema, ((1 - decay) * a) * a + decay * moment)
  return jax.tree.map(guard, updates, moments, ema)


def scale_by_streaming_snr(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    rho: jax.typing.ArrayLike = 0.99,
    *,
    eps_root: jax.typing.ArrayLike = 0.0,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nesterov: bool = False,
    mode: str = 'snr',
    alpha: jax.typing.ArrayLike = 1.0,
    softness: jax.typing.ArrayLike = 1.0,
    reduction: str = 'element',
    warmup_steps: jax.typing.ArrayLike = 10,
) -> optax.GradientTransformation:
  r"""Adam gated by a streaming SNR mask: the paper's one-extra-vector form.

  Takes ordinary batch-mean gradients :math:`g_t`, no per-example cost:

  .. math::
    s_t &= \rho s_{t-1} + (1-\rho)|g_t - m_{t-1}|^2 \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
    v_t = \beta_2 v_{t-1} + (1-\beta_2) |g_t|^2 \\
    \hat m, \hat v, \hat s &= m_t/(1-\beta_1^t),\ v_t/(1-\beta_2^t),\
      s_t/(1-\rho^t) \\
    q &= \mathrm{mask}(\mu := \hat m, \nu := \hat s) \\
    u_t &= q \cdot \hat m / (\sqrt{\hat v + \epsilon_{root}} + \epsilon)

  where :math:`m_{t-1}` is Adam's first moment before this step. The variance
  of the batch-mean gradient is what :math:`\hat s` estimates, so it is used
  as :math:`\nu` directly (no further division by b - 1). For the first
  ``warmup_steps`` steps q is held at 1 while s fills (at t = 1,
  :math:`\hat s = \hat m^2`). With q = 1 this is ``optax.scale_by_adam``
  with the same ``b1, b2, eps, eps_root, mu_dtype, nesterov``; with
  ``nesterov=True`` the direction uses Dozat's
  :math:`\beta_1 m_t/(1-\beta_1^{t+1}) + (1-\beta_1) g_t/(1-\beta_1^t)`
  in place of :math:`\hat m` (the mask still reads :math:`\hat m`).

  Complex gradients are handled as optax does: :math:`|\cdot|^2` is the
  squared modulus, v and s are real, m and the output complex. Moments are
  kept in at least float32 (``mu_dtype``, if given, is the dtype m is stored
  in), so float16 parameters cannot underflow them into NaN; the output
  takes the updates' dtype. A non-finite statistic gives a NaN update (also
  during warm-up), never a finite-looking one: wrap the optimizer in
  :func:`snr_optax.apply_if_finite` to skip such steps.

  Args:
    b1: decay of the first moment.
    b2: decay of the second moment.
    eps: added to the denominator.
    rho: decay of the centred variance s (usually shorter than b2).
    eps_root: added to :math:`\hat v` inside the square root, as in
      ``optax.scale_by_adam``.
    mu_dtype: the dtype the first moment is stored in (``None``: the
      parameters' dtype, at least float32).
    nesterov: Nesterov momentum in the direction, as ``optax.scale_by_adam``.
    mode: ``"hard"``, ``"soft"`` or ``"snr"``.
    alpha: threshold multiplier alpha >= 0.
    softness: softness s >= 0 of the ``"snr"`` mask.
    reduction: ``"element"`` or ``"tensor"``.
    warmup_steps: number of first steps with q = 1.

  Returns:
    An ``optax.GradientTransformation`` whose state is
    :class:`ScaleByStreamingSNRState`.

  Raises:
    ValueError: for an unknown ``mode`` or ``reduction``, a decay outside
      [0, 1), a negative ``eps``, ``eps_root``, ``alpha``, ``softness`` or
      ``warmup_steps``, or a decay rate held in bfloat16/float16 (as
      ``optax.inject_hyperparams`` makes it for such parameters unless given
      ``hyperparam_dtype=jnp.float32``); from ``init``, for a real
      ``mu_dtype`` with complex parameters.

  References:
    Litman and Guo, `A Theory of Generalization in Deep Learning
    <https://arxiv.org/abs/2605.01172>`_, 2026 (Algorithm 1).
    Kingma and Ba, `Adam: A Method for Stochastic Optimization
    <https://arxiv.org/abs/1412.6980>`_, 2014.
    Dozat, `Incorporating Nesterov Momentum into Adam
    <https://openreview.net/pdf?id=OM0jvwB8jIp57ZJjtNEZ>`_, 2016.

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
  # The dtype first: a bfloat16 0.999 is 1.0, which the range refuses.
  validation.check_decay_dtypes(b1=b1, b2=b2, rho=rho)
  for name, value in (('b1', b1), ('b2', b2), ('rho', rho)):
    validation.check_in_range(name, value, 0.0, 1.0)
  validation.check_nonnegative('eps', eps)
  validation.check_nonnegative('eps_root', eps_root)
  validation.check_nonnegative('warmup_steps', warmup_steps)
  if mu_dtype is not None:
    mu_dtype = jax.dtypes.canonicalize_dtype(mu_dtype)

  def init_fn(params):
    def zeros(path, p, real):
      dtype = stats_lib.accumulation_dtype(p.dtype)
      if real:
        dtype = jnp.finfo(dtype).dtype
      elif mu_dtype is not None:
        if (jnp.issubdtype(dtype, jnp.complexfloating)
            and not jnp.issubdtype(mu_dtype, jnp.complexfloating)):
          raise ValueError(
              f'mu_dtype={mu_dtype.name} is real, but parameter leaf '
              f'{validation.leaf_name(path)} is {jnp.dtype(p.dtype).name}: '
              'the first moment would lose its imaginary part; pass a complex '
              'mu_dtype or None.')
        dtype = mu_dtype
      # zeros_like keeps an array's sharding and takes a ShapeDtypeStruct.
      return jnp.zeros_like(p, dtype)
    return ScaleByStreamingSNRState(
        count=jnp.zeros([], jnp.int32),
        mu=jax.tree_util.tree_map_with_path(
            lambda k, p: zeros(k, p, False), params),
        nu=jax.tree_util.tree_map_with_path(
            lambda k, p: zeros(k, p, True), params),
        s=jax.tree_util.tree_map_with_path(
            lambda k, p: zeros(k, p, True), params),
        mask_fraction=_zero_fraction())

  def update_fn(updates, state, params=None):
    del params
    validation.check_same_structure(
        updates, state.mu, what='updates',
        reference_name='the parameters the state was initialised with')
    count = optax.safe_increment(state.count)
    in_warmup = count <= warmup_steps
    # v and s are real: the real part of decay rates that
    # optax.inject_hyperparams made complex for complex parameters.
    b2_, rho_ = (jnp.real(d) if jnp.iscomplexobj(d) else d for d in (b2, rho))
    # The gradients in the moments' precision (at least float32).
    g = jax.tree.map(
        lambda u, s: u.astype(jnp.promote_types(
            stats_lib.accumulation_dtype(u.dtype), s.dtype)),
        updates, state.s)
    # s reads m_{t-1}, Adam's first moment before this step.
    s = _update_moment_sq(jax.tree.map(jnp.subtract, g, state.mu), state.s,
                          rho_)
    # As optax.scale_by_adam: b1 * m in m's stored dtype (mu_dtype).
    mu = optax.tree.update_moment(g, state.mu, b1, 1)
    nu = _update_moment_sq(g, state.nu, b2_)
    m_hat = optax.tree.bias_correction(mu, b1, count)
    v_hat = optax.tree.bias_correction(nu, b2_, count)
    s_hat = optax.tree.bias_correction(s, rho_, count)
    if nesterov:
      direction = jax.tree.map(
          lambda m, g: b1 * m + (1 - b1) * g,
          optax.tree.bias_correction(mu, b1, optax.safe_increment(count)),
          optax.tree.bias_correction(g, b1, count))
    else:
      direction = m_hat
    # 1 - decay^t, the factor optax.tree.bias_correction divides by.
    bc2, bc3 = 1 - b2_ ** count, 1 - rho_ ** count

    def guard(m_hat, v, v_hat, s, s_hat):
      # v_hat and s_hat can exceed the float range where v and s do not
      # (early steps, gradients near sqrt(max)); there sqrt(v_hat) is formed
      # as sqrt(v) / sqrt(1 - b2^t), and the mask, which depends only on
      # nu / mu^2, reads (m_hat sqrt(1 - rho^t), s) instead of (m_hat, s_hat).
      real = v.dtype
      denominator = jnp.where(
          jnp.isfinite(v_hat) | ~jnp.isfinite(v),
          jnp.sqrt(v_hat + eps_root),
          jnp.sqrt(v) / jnp.sqrt(bc2).astype(real)) + eps
      over = jnp.isfinite(s) & ~jnp.isfinite(s_hat)
      if reduction == 'tensor':
        over = jnp.any(over)
      mask_mu = jnp.where(over, m_hat * jnp.sqrt(bc3).astype(real), m_hat)
      mask_nu = jnp.where(over, s, s_hat)
      return mask_mu, mask_nu, denominator

    guarded = jax.tree.map(guard, m_hat, nu, v_hat, s, s_hat)
    is_out = lambda x: isinstance(x, tuple) and len(x) == 3
    mask_mu, mask_nu, denominator = (
        jax.tree.map(lambda x, k=k: x[k], guarded, is_leaf=is_out)
        for k in range(3))
    q = masks.compute_mask(mask_mu, mask_nu, mode=mode, alpha=alpha,
                           softness=softness, reduction=reduction)
    # Warm-up holds q at 1, but a non-finite statistic still shows (NaN).
    q = jax.tree.map(
        lambda qi: jnp.where(in_warmup & jnp.isfinite(qi), 1, qi).astype(
            qi.dtype), q)
    # (A complex mu_dtype with real gradients: the imaginary part is 0.)
    direction = jax.tree.map(jnp.divide, direction, denominator)
    direction = jax.tree.map(
        lambda qi, d, u: qi * (d if jnp.iscomplexobj(u) else jnp.real(d)),
        q, direction, updates)
    new_state = ScaleByStreamingSNRState(
        count=count, mu=_cast_like(mu, state.mu), nu=_cast_like(nu, state.nu),
        s=_cast_like(s, state.s), mask_fraction=masks.mask_fraction(q))
    return _cast_like(direction, updates), new_state

  return optax.GradientTransformation(init_fn, update_fn)


def _abstract_or_cast_up(x):
  """``x`` in at least float32; a ``jax.ShapeDtypeStruct`` stays abstract."""
  dtype = stats_lib.accumulation_dtype(x.dtype)
  if isinstance(x, jax.ShapeDtypeStruct):
    return jax.ShapeDtypeStruct(x.shape, dtype,
                                sharding=getattr(x, 'sharding', None))
  return jnp.asarray(x).astype(dtype)


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
    return inner.init(jax.tree.map(_abstract_or_cast_up, params))

  def update_fn(updates, state, params=None):
    out, state = inner.update(up(updates), state,
                              None if params is None else up(params))
    return _cast_like(out, updates), state

  return optax.GradientTransformation(init_fn, update_fn)
