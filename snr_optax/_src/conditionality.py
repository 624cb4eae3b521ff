# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Skipping non-finite steps: ``optax.apply_if_finite`` that sees statistics."""

from __future__ import annotations

import operator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

PyTree = Any


class ApplyIfFiniteState(NamedTuple):
  """State of :func:`apply_if_finite` (the fields of optax's own).

  Attributes:
    notfinite_count: the number of consecutive non-finite steps (int32); reset
      to 0 by a finite step.
    last_finite: whether the last step was finite (bool).
    total_notfinite: the number of non-finite steps since ``init`` (int32),
      never reset.
    inner_state: the state of the wrapped transformation.
  """
  notfinite_count: jax.Array
  last_finite: jax.Array
  total_notfinite: jax.Array
  inner_state: optax.OptState


def _all_finite(tree: PyTree) -> jax.Array:
  """Whether every inexact leaf of ``tree`` is finite (a bool scalar).

  A ``GradStats`` is a pytree, so its ``mean`` and ``sum_sq_dev`` are checked
  (its integer ``count`` is skipped).
  """
  checks = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)
            if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact)]
  if not checks:
    return jnp.asarray(True)
  return jax.tree_util.tree_reduce(operator.and_, checks)


def _stays_finite(old: PyTree, new: PyTree) -> jax.Array:
  """Whether no inexact leaf finite in ``old`` is non-finite in ``new``.

  (A state may hold infinities by design, e.g. a best value initialised to
  inf; only a value the step turns non-finite counts.)
  """
  checks = [jnp.all(jnp.isfinite(n) | ~jnp.isfinite(o))
            for o, n in zip(jax.tree.leaves(old), jax.tree.leaves(new))
            if jnp.issubdtype(jnp.result_type(n), jnp.inexact)]
  if not checks:
    return jnp.asarray(True)
  return jax.tree_util.tree_reduce(operator.and_, checks)


def apply_if_finite(
    inner: optax.GradientTransformation,
    max_consecutive_errors: int,
) -> optax.GradientTransformationExtraArgs:
  r"""Skips steps whose gradients, statistics or update are not finite.

  ``optax.apply_if_finite`` for the per-example transformations. A step is
  finite when every inexact leaf of

  * ``updates`` (per-example gradients, a :class:`snr_optax.GradStats` with
    its ``mean`` and ``sum_sq_dev``, or batch-mean gradients),
  * the ``grad_stats=`` extra argument, if given,
  * the update ``inner`` returns, and
  * ``inner``'s new state, where its old state was finite (Adam's second
    moment of a finite gradient near sqrt(max float) overflows while its
    update looks finite)

  is finite. A non-finite step returns zeros shaped like the update (the
  parameters' shapes and dtypes) and keeps ``inner``'s state as it was; after
  more than ``max_consecutive_errors`` consecutive non-finite steps the
  update goes through, as with optax's. With :math:`n` the count of
  consecutive non-finite steps,

  .. math::
    \text{apply} = \text{finite} \lor (n > \text{max\_consecutive\_errors}).

  ``optax.apply_if_finite`` checks only ``updates``: in the ``grad_stats=``
  form it sees the batch mean, which stays finite while the sum of squared
  deviations overflows (per-example gradients of +-3e19 in float32), and its
  zero update for a ``GradStats`` input is a ``GradStats`` of zeros. Checking
  the inner update as well catches whatever the masks turned into NaN
  (they give NaN for any non-finite statistic), in every form. Works with any
  ``inner``, e.g. ``optax.adamw`` or :func:`snr_optax.streaming_snr_adamw`.

  Args:
    inner: the transformation to wrap (e.g. :func:`snr_optax.snr_adam`).
    max_consecutive_errors: how many consecutive non-finite steps to skip
      before giving up and applying one (an int >= 0).

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose state is
    :class:`ApplyIfFiniteState`.

  Raises:
    ValueError: if ``max_consecutive_errors`` is not an int >= 0.

  References:
    ``optax.apply_if_finite`` (`optax/transforms/_conditionality.py
    <https://github.com/google-deepmind/optax>`_), whose semantics and state
    fields this follows.

  Examples:
    >>> import jax.numpy as jnp, optax
    >>> import snr_optax as so
    >>> params = {'w': jnp.zeros(2)}
    >>> opt = so.apply_if_finite(so.snr_adam(0.1), max_consecutive_errors=3)
    >>> state = opt.init(params)
    >>> g = {'w': jnp.array([[3e19, 1.0], [-3e19, 1.0]])}  # finite, M2 = inf
    >>> updates, state = opt.update(g, state, params)
    >>> updates['w'], bool(state.last_finite), int(state.notfinite_count)
    (Array([0., 0.], dtype=float32), False, 1)
  """
  if (isinstance(max_consecutive_errors, bool)
      or not isinstance(max_consecutive_errors, int)
      or max_consecutive_errors < 0):
    raise ValueError('max_consecutive_errors must be an int >= 0, got '
                     f'{max_consecutive_errors!r}.')
  inner = optax.with_extra_args_support(inner)

  def init_fn(params):
    return ApplyIfFiniteState(
        notfinite_count=jnp.zeros([], jnp.int32),
        last_finite=jnp.asarray(True, jnp.bool_),
        total_notfinite=jnp.zeros([], jnp.int32),
        inner_state=inner.init(params))

  def update_fn(updates, state, params=None, **extra_args):
    inputs_finite = _all_finite((updates, extra_args.get('grad_stats')))
    new_updates, new_inner_state = inner.update(
        updates, state.inner_state, params, **extra_args)
    isfinite = (inputs_finite & _all_finite(new_updates)
                & _stays_finite(state.inner_state, new_inner_state))
    notfinite_count = jnp.where(
        isfinite, jnp.zeros([], jnp.int32),
        optax.safe_increment(state.notfinite_count))
    apply = isfinite | (notfinite_count > max_consecutive_errors)
    out, inner_state = jax.lax.cond(
        apply,
        lambda: (new_updates, new_inner_state),
        lambda: (optax.tree_utils.tree_zeros_like(new_updates),
                 state.inner_state))
    return out, ApplyIfFiniteState(
        notfinite_count=notfinite_count,
        last_finite=isfinite,
        total_notfinite=jnp.where(
            isfinite, state.total_notfinite,
            optax.safe_increment(state.total_notfinite)),
        inner_state=inner_state)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
