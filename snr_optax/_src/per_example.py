# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Per-example gradients and their statistics from an ordinary loss.

The user writes the loss they already have, ``loss_fn(params, batch, *args)``,
the mean over a batch whose leaves share a leading batch axis. Per-example
gradients are gradients of that same function on one-example batches, with
example i's own PRNG keys ``fold_in(key, i)`` (see ``exact``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from snr_optax._src import exact
from snr_optax._src import stats as stats_lib
from snr_optax._src import validation
from snr_optax._src.fast import engine

PyTree = Any
GradStats = stats_lib.GradStats

METHODS = ('auto', 'fast', 'vmap', 'microbatch')


def per_example_grads(
    loss_fn: Callable[..., Any],
    *,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    microbatch_size: int | None = None,
) -> Callable[..., Any]:
  """Per-example gradients of an ordinary batch-mean loss.

  ``loss_fn(params, batch, *args)`` is evaluated on one-example batches (each
  batch leaf sliced to a leading axis of size 1) and differentiated with
  ``jax.grad``, vectorised with ``jax.vmap``. PRNG keys among ``args`` (typed
  keys, or raw ``uint32[2]`` keys the loss uses as keys) are per example:
  example i gets ``jax.random.fold_in(key, i)``. With ``microbatch_size`` the
  batch is processed ``microbatch_size`` examples at a time with
  ``jax.lax.map``, bounding the memory of the intermediate values.

  Args:
    loss_fn: the batch-mean loss, ``loss_fn(params, batch, *args)``.
    argnums: which positional argument(s) to differentiate (not 1, the batch).
    has_aux: whether ``loss_fn`` returns ``(loss, aux)``.
    microbatch_size: examples per vectorised chunk (None: the whole batch).

  Returns:
    ``f(params, batch, *args)`` returning per-example gradients, each leaf of
    shape ``[b, *param.shape]`` (a tuple of trees for a tuple ``argnums``),
    and with ``has_aux`` a pair ``(grads, aux)`` with per-example ``aux``.

  Raises:
    ValueError: for a loss that is not the mean of per-example losses (a sum
      over the batch, a weighted mean), or that draws randomness for the
      whole batch from a key that is not an argument.

  Examples:
    >>> import jax.numpy as jnp
    >>> import snr_optax as so
    >>> loss = lambda w, batch: jnp.mean((batch['x'] * w - batch['y']) ** 2)
    >>> batch = {'x': jnp.array([1.0, 2.0]), 'y': jnp.array([0.0, 0.0])}
    >>> print(so.per_example_grads(loss)(jnp.array(1.0), batch))   # 2 x^2 w
    [2. 8.]
  """
  nums = exact.normalize_argnums(argnums)
  exact.check_microbatch_size(microbatch_size)

  def fn(params, batch, *args):
    call_args = (params, batch) + args
    b = exact.check_call(batch, nums, args)
    traced, _ = engine.check_loss(loss_fn, call_args, nums, has_aux, b,
                                  fast=False)
    value_and_grad = exact.example_value_and_grad(loss_fn, nums, has_aux,
                                                  traced.key_mask)

    def one(pair):
      (_, aux), grads = value_and_grad(pair[0], pair[1], params, *args)
      return (grads, aux) if has_aux else grads

    pairs = (batch, jnp.arange(b, dtype=jnp.int32))
    if microbatch_size is None:
      return jax.vmap(one)(pairs)
    return jax.lax.map(one, pairs, batch_size=microbatch_size)

  return fn


def value_and_grad_stats(
    loss_fn: Callable[..., Any],
    *,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    method: str = 'auto',
    microbatch_size: int | None = None,
) -> Callable[..., Any]:
  """The loss and the per-example gradient statistics of a batch-mean loss.

  Methods:

  * ``"vmap"``: per-example gradients with ``jax.vmap`` of ``jax.grad``, then
    two-pass statistics. Exact and generic; memory b x params.
  * ``"microbatch"``: the same, ``microbatch_size`` examples at a time in a
    ``lax.scan``, merged exactly with Chan's formula. Memory
    microbatch_size x params.
  * ``"fast"``: exact statistics without materialising per-example weight
    gradients for recognised Flax layers (see the README); other parameters
    fall back to per-example gradients.
  * ``"auto"``: the best available of the above.

  Every method computes the same statistics, those of
  :func:`per_example_grads`, exactly (to float rounding) or raises: the loss
  must be the mean over the batch of per-example losses (checked from its
  traced program: a sum over the batch or a weighted mean is refused), and
  ``"fast"``/``"auto"`` also refuse a batch call that mixes examples. Then
  ``mean`` equals ``jax.grad(loss_fn)``. The returned loss (and ``aux``) is
  that of the ordinary call ``loss_fn(params, batch, *args)``, except where
  the loss takes PRNG keys: each example then has its own key
  (``fold_in(key, i)``), the loss returned is the mean of the per-example
  losses and ``aux`` is per example (leading axis b).

  Args:
    loss_fn: the batch-mean loss, ``loss_fn(params, batch, *args)``.
    argnums: which positional argument(s) to take statistics for (not 1).
    has_aux: whether ``loss_fn`` returns ``(loss, aux)``.
    method: ``"auto"``, ``"fast"``, ``"vmap"`` or ``"microbatch"``.
    microbatch_size: examples per chunk (required by ``"microbatch"``).

  Returns:
    ``f(params, batch, *args) -> (loss, GradStats)``, or
    ``((loss, aux), GradStats)`` with ``has_aux``. For a tuple ``argnums``
    the statistics' ``mean`` and ``sum_sq_dev`` are tuples of trees.

  Raises:
    ValueError: for an unknown ``method``, a batch with b < 2, a loss that is
      not a mean of per-example losses, batch-wide randomness from a key that
      is not an argument, or (``"fast"``, ``"auto"``) a batch call that mixes
      examples; the message names what is wrong.

  Examples:
    >>> import jax.numpy as jnp
    >>> import snr_optax as so
    >>> loss = lambda w, batch: jnp.mean((batch['x'] * w - batch['y']) ** 2)
    >>> batch = {'x': jnp.array([1.0, 2.0, 3.0]), 'y': jnp.zeros(3)}
    >>> value, stats = so.value_and_grad_stats(loss, method='vmap')(
    ...     jnp.array(1.0), batch)
    >>> print(f'{value:.4f} {stats.mean:.4f} {stats.loo_noise:.4f}')
    4.6667 9.3333 21.7778
  """
  validation.check_choice('method', method, METHODS)
  nums = exact.normalize_argnums(argnums)
  exact.check_microbatch_size(microbatch_size)
  if method == 'microbatch' and microbatch_size is None:
    raise ValueError('method="microbatch" needs microbatch_size.')
  if method in ('auto', 'fast'):
    return engine.fast_value_and_grad_stats(
        loss_fn, argnums=nums, has_aux=has_aux,
        microbatch_size=microbatch_size)
  exact_microbatch = microbatch_size if method != 'vmap' else None

  def fn(params, batch, *args):
    call_args = (params, batch) + args
    b = exact.check_call(batch, nums, args)
    traced, _ = engine.check_loss(loss_fn, call_args, nums, has_aux, b,
                                  fast=False)
    stats = exact.exact_stats_fn(loss_fn, nums, has_aux, exact_microbatch,
                                 traced.key_mask)(params, batch, *args)
    if any(traced.key_mask):
      value, aux = exact.mean_of_examples(
          loss_fn, has_aux, traced.key_mask, exact_microbatch)(
              params, batch, jnp.arange(b, dtype=jnp.int32), *args)
      value = (value, aux) if has_aux else value
    else:
      value = loss_fn(params, batch, *args)
    return value, stats

  return fn
