# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Exact gradient accumulation: micro-batch statistics merged, never averaged.

``optax.MultiSteps`` accumulates the *mean* gradients of its micro-steps. A
per-example transformation needs more than the mean of the large batch: it
needs its leave-one-out noise, i.e. the sum of squared deviations of every
example from the large batch's mean, and that is not a function of the
micro-batches' means. :func:`accumulate_stats` keeps instead the running
:class:`snr_optax.GradStats` of all the examples seen since the last update,
merged exactly (Chan et al.) with :func:`snr_optax.merge_stats`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax

from snr_optax._src import axis_types
from snr_optax._src import stats as stats_lib
from snr_optax._src import transforms
from snr_optax._src import validation

PyTree = Any
GradStats = stats_lib.GradStats


class AccumulateStatsState(NamedTuple):
  """State of :func:`accumulate_stats`.

  Attributes:
    mini_step: the number of micro-batches merged since the last update
      (int32); it returns to 0 at each update.
    gradient_step: the number of updates applied so far (int32), the argument
      of ``every_k_schedule``.
    inner_state: the state of the wrapped transformation; it changes only at
      an update, so its own counters and schedules advance once per update.
    acc_stats: the :class:`snr_optax.GradStats` of the micro-batches merged
      since the last update, in at least float32; ``acc_stats.count`` is the
      running number of examples.
    effective_batch_size: the number of examples behind the last applied
      update (int32; 0 before the first).
    skip_state: what ``should_skip_update_fn`` returned at the last call
      (``()`` without one).
  """
  mini_step: jax.Array
  gradient_step: jax.Array
  inner_state: optax.OptState
  acc_stats: GradStats
  effective_batch_size: jax.Array
  skip_state: PyTree = ()

  @property
  def has_updated(self) -> jax.Array:
    """Whether the call that returned this state applied an update.

    As ``optax.MultiSteps.has_updated``: true when the micro-step counter is
    back at 0 after at least one update.
    """
    return jnp.logical_and(self.mini_step == 0, self.gradient_step > 0)


def _every_k(every_k_schedule) -> Callable[[jax.Array], Any]:
  if callable(every_k_schedule):
    return every_k_schedule
  if (isinstance(every_k_schedule, (bool, np.bool_))
      or not isinstance(every_k_schedule, (int, np.integer))
      or every_k_schedule < 1):
    raise ValueError(
        'every_k_schedule must be an int >= 1 or a schedule of the gradient '
        f'step, got {every_k_schedule!r}.')
  k = int(every_k_schedule)
  return lambda gradient_step: k


def _real_dtype(dtype) -> jnp.dtype:
  if jnp.issubdtype(dtype, jnp.complexfloating):
    return jnp.finfo(dtype).dtype
  return jnp.dtype(dtype)


def _empty_stats(params: PyTree) -> GradStats:
  """Statistics of no examples, in the accumulation dtype of each parameter.

  ``zeros_like`` keeps each parameter's sharding and accepts
  ``jax.ShapeDtypeStruct`` leaves (abstract ``init``).
  """
  def mean(p):
    return jnp.zeros_like(p, stats_lib.accumulation_dtype(jnp.result_type(p)))

  def m2(p):
    return jnp.zeros_like(p, _real_dtype(
        stats_lib.accumulation_dtype(jnp.result_type(p))))
  return GradStats(jax.tree.map(mean, params), jax.tree.map(m2, params),
                   jnp.zeros([], jnp.int32))


def _cast_stats_like(stats: GradStats, like: GradStats) -> GradStats:
  return GradStats(optax.tree.cast_like(stats.mean, like.mean),
                   optax.tree.cast_like(stats.sum_sq_dev, like.sum_sq_dev),
                   jnp.asarray(stats.count, jnp.int32))


def _micro_batch_stats(updates, params, grad_stats, acc_stats):
  """One micro-batch's statistics and the tree whose dtypes the mean takes.

  The three input forms of the SNR transformations; per-example gradients
  may hold a single example here (its M2 is 0; the merged batch has more).
  """
  stats, reference = transforms.stats_and_reference(
      updates, params, grad_stats, min_batch_size=1)
  if stats.noise is not None:
    raise ValueError(
        'accumulate_stats cannot merge statistics combined from several terms '
        '(GradStats.noise is set, e.g. by snr_optax.combine_stats): their '
        'noise is not that of one batch. Accumulate each term\'s statistics '
        'with snr_optax.merge_stats, combine them, and update once.')
  validation.check_same_structure(
      stats.mean, acc_stats.mean, what="the micro-batch statistics' mean",
      reference_name='the parameters the state was initialised with')
  return _cast_stats_like(stats, acc_stats), reference


def accumulate_stats(
    inner: optax.GradientTransformation,
    every_k_schedule: Union[int, Callable[[jax.Array], jax.typing.ArrayLike]],
    *,
    should_skip_update_fn: Optional[optax.ShouldSkipUpdateFunction] = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Accumulates micro-batches exactly and updates ``inner`` every k calls.

  The gradient accumulation of ``optax.MultiSteps`` for the SNR
  transformations. Each call takes one micro-batch, in any of the three forms
  that :func:`snr_optax.snr_mask` takes (per-example gradients with a leading
  batch axis, a :class:`snr_optax.GradStats`, or the batch-mean gradients with
  ``grad_stats=``), and merges its statistics into those of the micro-batches
  seen since the last update. With counts n_a, n_b, means
  :math:`\mu_a, \mu_b` and sums of squared deviations :math:`M_a, M_b`,

  .. math::
    n = n_a + n_b, \quad
    \mu = \mu_a + (\mu_b - \mu_a) \frac{n_b}{n}, \quad
    M = M_a + M_b + (\mu_b - \mu_a)^2 \frac{n_a n_b}{n}

  (:func:`snr_optax.merge_stats`), which are exactly the mean and the sum of
  squared deviations of the concatenated examples, so the leave-one-out noise
  :math:`\nu = M / (n (n-1))` is that of the whole batch of n examples. Means
  are never averaged: micro-batches may have different sizes, and a
  micro-batch of per-example gradients may hold one example.

  On the k-th call the merged statistics go to ``inner`` (as
  ``inner.update(mean, state, params, grad_stats=merged)``, the composable
  form, so ``inner`` may be :func:`snr_optax.snr_adam`, a chain starting with
  :func:`snr_optax.snr_mask`, :func:`snr_optax.gated`,
  ``optax.inject_hyperparams(snr_adam)(...)``, or any optax transformation,
  which then sees the exact mean of the whole batch) and their output is
  returned; the statistics are then reset. The other calls return zeros
  shaped like ``inner``'s output (the parameters' shapes and dtypes for the
  SNR transformations) and leave ``inner``'s state alone, so the update after
  k micro-batches equals one update of ``inner`` on their concatenation, and
  ``inner``'s counters and schedules advance once per update. The statistics
  are accumulated in at least float32 (bfloat16 and float16 parameters
  included). Runs under ``jax.jit`` and ``jax.lax.scan``: the update is a
  ``jax.lax.cond``, with no Python branching on traced values.

  ``optax.tree_utils.tree_get(state, "mask_fraction")`` and
  ``optax.tree_utils.tree_set(state, learning_rate=...)`` reach ``inner``'s
  state; ``state.effective_batch_size`` is the number of examples behind the
  last update, ``state.acc_stats.count`` the running count, and
  ``state.has_updated`` is true after a call that applied an update.

  Args:
    inner: the transformation to update every k micro-batches.
    every_k_schedule: k, the number of micro-batches per update: an int >= 1,
      or a function of the gradient step (the number of updates so far)
      returning k, to vary the effective batch size over training (as in
      ``optax.MultiSteps``; values below 1 act as 1).
    should_skip_update_fn: optional, as in ``optax.MultiSteps``: called as
      ``fn(micro_stats, gradient_step, params)`` with the micro-batch's
      :class:`snr_optax.GradStats`, it returns a boolean scalar and a pytree
      stored as ``skip_state``; a micro-batch it rejects is ignored, as if
      the call never happened (``optax.skip_not_finite`` drops micro-batches
      with non-finite statistics).

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose state is
    :class:`AccumulateStatsState`.

  Raises:
    ValueError: for an ``every_k_schedule`` that is neither an int >= 1 nor
      callable; at trace time for micro-batches whose shapes do not match the
      parameters, and when called from ``optax.MultiSteps``.

  References:
    Chan, Golub and LeVeque, `Updating formulae and a pairwise algorithm for
    computing sample variances <https://doi.org/10.1007/978-3-642-51461-6_3>`_,
    COMPSTAT 1982.
    Litman and Guo, `A Theory of Generalization in Deep Learning
    <https://arxiv.org/abs/2605.01172>`_, 2026.

  Examples:
    >>> import jax, jax.numpy as jnp, optax
    >>> import snr_optax as so
    >>> def loss(params, batch):                  # an ordinary batch-mean loss
    ...   x, y = batch
    ...   return jnp.mean((x @ params['w'] - y) ** 2)
    >>> x = jax.random.normal(jax.random.key(0), (32, 3))
    >>> batch = (x, x @ jnp.array([1.0, -2.0, 0.5]))
    >>> params = {'w': jnp.zeros(3)}
    >>> stats_fn = so.value_and_grad_stats(loss)
    >>> opt = so.accumulate_stats(so.snr_adam(0.05), every_k_schedule=4)
    >>> state = opt.init(params)
    >>> for i in range(4):                        # 4 micro-batches of 8
    ...   micro = jax.tree.map(lambda a: a[8 * i:8 * (i + 1)], batch)
    ...   _, stats = stats_fn(params, micro)
    ...   updates, state = opt.update(stats, state, params)
    >>> int(state.effective_batch_size), bool(state.has_updated)
    (32, True)
    >>> whole = so.snr_adam(0.05)                 # one step on all 32 examples
    >>> expected, _ = whole.update(stats_fn(params, batch)[1],
    ...                            whole.init(params), params)
    >>> bool(jnp.allclose(updates['w'], expected['w']))
    True
  """
  inner = optax.with_extra_args_support(inner)
  every_k = _every_k(every_k_schedule)

  def init_fn(params):
    validation.check_not_under_multi_steps()
    acc_stats = _empty_stats(params)
    if should_skip_update_fn is None:
      skip_state = ()
    else:
      _, skip_state = should_skip_update_fn(
          acc_stats, jnp.zeros([], jnp.int32), params)
    return AccumulateStatsState(
        mini_step=jnp.zeros([], jnp.int32),
        gradient_step=jnp.zeros([], jnp.int32),
        inner_state=inner.init(params),
        acc_stats=acc_stats,
        effective_batch_size=jnp.zeros([], jnp.int32),
        skip_state=skip_state)

  def update_fn(updates, state, params=None, *, grad_stats=None,
                **extra_args):
    micro, reference = _micro_batch_stats(updates, params, grad_stats,
                                          state.acc_stats)

    def apply_inner(acc, inner_state):
      mean = optax.tree.cast_like(acc.mean, reference)
      out, new_inner_state = inner.update(mean, inner_state, params,
                                          grad_stats=acc, **extra_args)
      # Fixed dtypes, so that both branches of the cond (and a scan's carry)
      # agree.
      return out, optax.tree.cast_like(new_inner_state, inner_state)

    out_shapes, _ = jax.eval_shape(apply_inner, state.acc_stats,
                                   state.inner_state)

    def zero_updates():
      return jax.tree.map(axis_types.zeros, out_shapes)

    def hold_inner(acc, inner_state):
      del acc
      return zero_updates(), inner_state

    def accumulate(micro, state, skip_state):
      acc = _cast_stats_like(stats_lib.merge_stats(state.acc_stats, micro),
                             state.acc_stats)
      k = every_k(state.gradient_step)
      emit = state.mini_step + 1 >= k
      out, inner_state = jax.lax.cond(emit, apply_inner, hold_inner, acc,
                                      state.inner_state)
      empty = GradStats(optax.tree.zeros_like(acc.mean),
                        optax.tree.zeros_like(acc.sum_sq_dev),
                        jnp.zeros([], jnp.int32))
      new_state = AccumulateStatsState(
          mini_step=jnp.where(emit, 0, state.mini_step + 1).astype(jnp.int32),
          gradient_step=jnp.where(
              emit, optax.safe_increment(state.gradient_step),
              state.gradient_step).astype(jnp.int32),
          inner_state=inner_state,
          acc_stats=optax.tree.where(emit, empty, acc),
          effective_batch_size=jnp.where(
              emit, acc.count, state.effective_batch_size).astype(jnp.int32),
          skip_state=skip_state)
      return out, new_state

    if should_skip_update_fn is None:
      return accumulate(micro, state, state.skip_state)

    should_skip, skip_state = should_skip_update_fn(
        micro, state.gradient_step, params)
    should_skip = jnp.asarray(should_skip)
    if (should_skip.dtype, should_skip.shape) != (jnp.bool_, ()):
      raise ValueError(
          'should_skip_update_fn must return a boolean scalar, got an array '
          f'of dtype {should_skip.dtype} and shape {should_skip.shape}.')

    def skip(micro, state, skip_state):
      del micro
      return zero_updates(), state._replace(skip_state=skip_state)

    return jax.lax.cond(should_skip, skip, accumulate, micro, state,
                        skip_state)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
