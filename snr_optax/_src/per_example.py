# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Per-example gradients and their statistics from an ordinary loss.

The user writes the loss they already have, ``loss_fn(params, batch, *args)``,
the mean over a batch whose leaves share a leading batch axis. Per-example
gradients are gradients of that same function on one-example batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax

from snr_optax._src import stats as stats_lib
from snr_optax._src import validation

PyTree = Any
GradStats = stats_lib.GradStats

METHODS = ('auto', 'fast', 'vmap', 'microbatch')


def normalize_argnums(argnums: int | Sequence[int]) -> tuple[int, ...]:
  """``argnums`` as a tuple, rejecting the batch (argument 1)."""
  nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
  if not nums or not all(isinstance(n, int) and n >= 0 for n in nums):
    raise ValueError('argnums must be a non-negative int or a tuple of them, '
                     f'got {argnums!r}.')
  if 1 in nums:
    raise ValueError('argnums must not include 1: argument 1 is the batch, '
                     'which per-example gradients are taken over.')
  return nums


def check_microbatch_size(microbatch_size: int | None) -> None:
  if microbatch_size is not None and (
      not isinstance(microbatch_size, int) or microbatch_size < 1):
    raise ValueError('microbatch_size must be a positive int or None, got '
                     f'{microbatch_size!r}.')


def check_call(batch, argnums, args) -> int:
  """Validates a call ``f(params, batch, *args)``; returns the batch size."""
  if max(argnums) > 1 + len(args):
    raise ValueError(f'argnums {argnums} refers to argument {max(argnums)}, '
                     f'but the function got {2 + len(args)} arguments.')
  return validation.batch_size_of(batch, what='batch')


def example_grad_fn(loss_fn, argnums: tuple[int, ...], has_aux: bool):
  """``g(example, params, *args)``: the gradient on a one-example batch.

  Returns ``(grads, aux)`` with ``has_aux``; ``grads`` is a tuple for a
  tuple ``argnums`` of length > 1.
  """
  def on_example(example, *fn_args):
    one = jax.tree.map(lambda x: x[None], example)
    return loss_fn(fn_args[0], one, *fn_args[1:])

  # The example moves to position 0, so params (0) becomes 1 and every
  # extra argument n >= 2 keeps its index.
  grad = jax.grad(on_example, argnums=tuple(1 if n == 0 else n
                                            for n in argnums),
                  has_aux=has_aux)

  def fn(example, *fn_args):
    out = grad(example, *fn_args)
    grads, aux = out if has_aux else (out, None)
    grads = grads[0] if len(argnums) == 1 else grads
    return (grads, aux) if has_aux else grads

  return fn


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
  ``jax.grad``, vectorised with ``jax.vmap``. With ``microbatch_size`` the
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

  Examples:
    >>> import jax.numpy as jnp
    >>> import snr_optax as so
    >>> loss = lambda w, batch: jnp.mean((batch['x'] * w - batch['y']) ** 2)
    >>> batch = {'x': jnp.array([1.0, 2.0]), 'y': jnp.array([0.0, 0.0])}
    >>> print(so.per_example_grads(loss)(jnp.array(1.0), batch))   # 2 x^2 w
    [2. 8.]
  """
  nums = normalize_argnums(argnums)
  check_microbatch_size(microbatch_size)
  example_grad = example_grad_fn(loss_fn, nums, has_aux)

  def fn(params, batch, *args):
    check_call(batch, nums, args)
    one = lambda ex: example_grad(ex, params, *args)
    if microbatch_size is None:
      return jax.vmap(one)(batch)
    return jax.lax.map(one, batch, batch_size=microbatch_size)

  return fn


def exact_stats_fn(loss_fn, argnums: tuple[int, ...], has_aux: bool,
                   microbatch_size: int | None):
  """``f(params, batch, *args) -> GradStats`` from per-example gradients."""
  example_grad = example_grad_fn(loss_fn, argnums, has_aux)

  def fn(params, batch, *args):
    def stats_of_chunk(chunk):
      grads = jax.vmap(lambda ex: example_grad(ex, params, *args))(chunk)
      return stats_lib.stats_of_chunk(grads[0] if has_aux else grads)

    b = jax.tree.leaves(batch)[0].shape[0]
    if microbatch_size is None or microbatch_size >= b:
      return stats_of_chunk(batch)
    return stats_lib.chunked_stats(stats_of_chunk, batch, microbatch_size)

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

  The returned loss (and ``aux``) is that of the ordinary call
  ``loss_fn(params, batch, *args)`` on the whole batch, whatever the method.
  The statistics are those of :func:`per_example_grads`; their ``mean``
  equals ``jax.grad(loss_fn)`` when the loss is a batch mean.

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
  nums = normalize_argnums(argnums)
  check_microbatch_size(microbatch_size)
  if method == 'microbatch' and microbatch_size is None:
    raise ValueError('method="microbatch" needs microbatch_size.')
  if method in ('auto', 'fast'):
    from snr_optax._src.fast import engine  # pylint: disable=g-import-not-at-top
    return engine.fast_value_and_grad_stats(
        loss_fn, argnums=nums, has_aux=has_aux,
        microbatch_size=microbatch_size)
  exact_microbatch = microbatch_size if method != 'vmap' else None
  stats_fn = exact_stats_fn(loss_fn, nums, has_aux, exact_microbatch)

  def fn(params, batch, *args):
    check_call(batch, nums, args)
    return loss_fn(params, batch, *args), stats_fn(params, batch, *args)

  return fn
