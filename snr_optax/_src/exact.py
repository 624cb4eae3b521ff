# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Exact per-example gradients: the definition every method must agree with.

Example i's gradient is the gradient of the user's loss on the one-example
batch ``batch[i:i+1]``. Where the loss takes PRNG keys among its extra
arguments, example i gets its own randomness: every such key is replaced by
``jax.random.fold_in(key, i)`` (as differential-privacy libraries derive
per-example noise), so examples never share a dropout mask.

The lowest module of the statistics engine: ``fast`` and ``per_example``
both build on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from snr_optax._src import stats as stats_lib
from snr_optax._src import validation

PyTree = Any
GradStats = stats_lib.GradStats
_LOSS = '__snr_optax_loss__'


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


def is_typed_key(x) -> bool:
  dtype = getattr(x, 'dtype', None)
  return dtype is not None and jax.dtypes.issubdtype(dtype,
                                                     jax.dtypes.prng_key)


def fold_in_keys(args: tuple, key_mask: tuple[bool, ...], index) -> tuple:
  """``args`` with every key leaf (``key_mask`` over its leaves) folded."""
  if not any(key_mask):
    return args
  leaves, treedef = jax.tree.flatten(args)

  def fold(key):
    one = () if is_typed_key(key) else (2,)
    if key.shape == one:
      return jax.random.fold_in(key, index)
    flat = key.reshape((-1,) + one)
    return jax.vmap(lambda k: jax.random.fold_in(k, index))(flat).reshape(
        key.shape)

  return jax.tree.unflatten(treedef, [fold(x) if m else x
                                      for x, m in zip(leaves, key_mask)])


def example_loss(loss_fn, has_aux: bool, key_mask: tuple[bool, ...]):
  """``f(example, index, params, *args) -> (loss, aux)``: the definition.

  The loss on the one-example batch ``example[None]``, with every PRNG key
  among ``args`` (``key_mask`` over their leaves) folded with ``index``;
  ``aux`` is None without ``has_aux``.
  """
  def fn(example, index, params, *args):
    extra = fold_in_keys(tuple(args), key_mask, index)
    out = loss_fn(params, jax.tree.map(lambda x: x[None], example), *extra)
    return out if has_aux else (out, None)
  return fn


def mean_of_examples(loss_fn, has_aux: bool, key_mask: tuple[bool, ...],
                     microbatch_size: int | None = None):
  """``f(params, batch, indices, *args) -> (mean loss, per-example aux)``.

  The mean over the examples of :func:`example_loss`, example i with index
  ``indices[i]`` (``microbatch_size`` at a time with ``lax.map``).
  """
  one = example_loss(loss_fn, has_aux, key_mask)

  def fn(params, batch, indices, *args):
    pairs = (batch, indices)
    apply = lambda pair: one(pair[0], pair[1], params, *args)
    if microbatch_size is None:
      values, aux = jax.vmap(apply)(pairs)
    else:
      values, aux = jax.lax.map(apply, pairs, batch_size=microbatch_size)
    mean = jnp.mean(values.astype(jnp.promote_types(values.dtype,
                                                    jnp.float32)))
    return mean.astype(values.dtype), aux
  return fn


def example_value_and_grad(loss_fn, argnums: tuple[int, ...], has_aux: bool,
                           key_mask: tuple[bool, ...]):
  """``f(example, index, params, *args) -> ((loss, aux), grads)``.

  The loss on the one-example batch ``example[None]`` with example
  ``index``'s keys; ``grads`` is a tuple for a tuple ``argnums`` of length
  > 1 (``aux`` is None without ``has_aux``).
  """
  on_example = example_loss(loss_fn, has_aux, key_mask)

  # The example and its index come first, so params (0) becomes 2 and every
  # extra argument n >= 2 moves to n + 1.
  grad = jax.value_and_grad(on_example, argnums=tuple(
      2 if n == 0 else n + 1 for n in argnums), has_aux=True)

  def fn(example, index, *fn_args):
    (value, aux), grads = grad(example, index, *fn_args)
    grads = grads[0] if len(argnums) == 1 else grads
    return (value, aux), grads

  return fn


def exact_stats_fn(loss_fn, argnums: tuple[int, ...], has_aux: bool,
                   microbatch_size: int | None,
                   key_mask: tuple[bool, ...] = ()):
  """``f(params, batch, *args) -> GradStats`` from per-example gradients.

  ``microbatch_size`` examples at a time (None: all at once), merged
  exactly.
  """
  value_and_grad = example_value_and_grad(loss_fn, argnums, has_aux,
                                          key_mask)

  def fn(params, batch, *args):
    def stats_of_chunk(pair):
      chunk, index = pair
      _, grads = jax.vmap(
          lambda ex, i: value_and_grad(ex, i, params, *args))(chunk, index)
      return stats_lib.stats_of_chunk(grads)

    b = jax.tree.leaves(batch)[0].shape[0]
    pairs = (batch, jnp.arange(b, dtype=jnp.int32))
    if microbatch_size is None or microbatch_size >= b:
      return stats_of_chunk(pairs)
    return stats_lib.chunked_stats(stats_of_chunk, pairs, microbatch_size)

  return fn
