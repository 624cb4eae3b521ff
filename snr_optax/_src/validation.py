# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Trace-time checks that turn bad input into a ValueError naming what is wrong.

Everything here runs on static shapes while a function is traced, so the
checks cost nothing at run time and fire before JAX would fail deep inside.
"""

from __future__ import annotations

from collections.abc import Sequence
import functools
import sys
from typing import Any

import jax
import numpy as np
import optax

PyTree = Any


def leaf_name(path) -> str:
  """A readable name for a pytree key path, e.g. ``['dense']['kernel']``."""
  return jax.tree_util.keystr(tuple(path)) or '<root>'


def check_choice(name: str, value: Any, valid: Sequence[str]) -> str:
  """Returns ``value`` if it is one of ``valid``, else raises ValueError."""
  if not isinstance(value, str) or value not in valid:
    raise ValueError(
        f'Unknown {name}={value!r}; valid values are '
        + ', '.join(repr(v) for v in valid) + '.')
  return value


def check_nonnegative(name: str, value: Any) -> None:
  """Raises ValueError for a concrete negative (or NaN) hyperparameter.

  Traced values (``optax.inject_hyperparams``, schedules) pass unchecked:
  they cannot be inspected without a host round trip.
  """
  if callable(value) or isinstance(value, jax.core.Tracer):
    return
  v = _real(name, value)
  if v.shape == () and not v >= 0:  # `not >=` also rejects NaN.
    raise ValueError(f'{name} must be >= 0, got {value!r}.')


def batch_size_of(tree: PyTree, *, what: str, min_batch_size: int = 2) -> int:
  """The common leading-axis size b of every leaf, at least ``min_batch_size``.

  The default 2 is what the leave-one-out noise of one batch needs; a
  micro-batch of :func:`snr_optax.accumulate_stats` may hold one example.
  """
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  if not leaves:
    raise ValueError(f'The {what} tree has no leaves.')
  sizes = {}
  for path, leaf in leaves:
    shape = np.shape(leaf)
    if len(shape) == 0:
      raise ValueError(
          f'The {what} must carry a leading batch axis, but leaf '
          f'{leaf_name(path)} is a scalar (shape ()). Pass per-example '
          'gradients with shape [batch, *param.shape], e.g. from '
          'snr_optax.per_example_grads.')
    sizes.setdefault(shape[0], (path, shape))
  if len(sizes) > 1:
    described = '; '.join(f'{leaf_name(p)} has shape {s}'
                          for p, s in sizes.values())
    raise ValueError(
        f'The leaves of the {what} disagree on the leading batch axis: '
        f'{described}.')
  (b,) = sizes
  if b < min_batch_size:
    path, shape = sizes[b]
    needs = ('the leave-one-out noise needs at least 2 examples'
             if min_batch_size == 2 else
             f'at least {min_batch_size} example'
             + ('s are' if min_batch_size > 1 else ' is') + ' needed')
    raise ValueError(
        f'The {what}: batch size {b} (leaf {leaf_name(path)} has shape '
        f'{shape}), but {needs}.')
  return int(b)


_ACCUMULATION_HINT = (
    ' Generic gradient accumulation (optax.MultiSteps, optax.apply_every) '
    'averages or sums gradients and cannot feed a per-example '
    'transformation; accumulate micro-batches exactly with '
    'snr_optax.accumulate_stats(opt, k).')


def check_per_example_matches_params(per_example: PyTree, params: PyTree, *,
                                     min_batch_size: int = 2) -> int:
  """Checks per-example leaves are [b, *param.shape]; returns b.

  Where a mismatch looks like the output of a gradient accumulator (a leaf
  shaped like its parameter, or micro-batches stacked as ``[k, b, ...]``),
  the message points at :func:`snr_optax.accumulate_stats`.
  """
  b = batch_size_of(per_example, what='per-example gradients',
                    min_batch_size=min_batch_size)
  ex_leaves, ex_def = jax.tree_util.tree_flatten_with_path(per_example)
  p_leaves, p_def = jax.tree_util.tree_flatten_with_path(params)
  if ex_def != p_def:
    raise ValueError(
        'The per-example gradients do not have the structure of params: '
        f'got {ex_def}, expected {p_def}.')
  for (path, g), (_, p) in zip(ex_leaves, p_leaves):
    if tuple(np.shape(g)) != (b,) + tuple(np.shape(p)):
      hint = ''
      if tuple(np.shape(g)) == tuple(np.shape(p)):
        hint = (' It looks already averaged over the batch; pass per-example '
                'gradients (a leading batch axis) instead.'
                + _ACCUMULATION_HINT)
      elif tuple(np.shape(g)[2:]) == tuple(np.shape(p)):
        hint = (' It looks like micro-batches stacked on two leading axes '
                '([k, b, *param.shape]); pass one batch per call (or reshape '
                'to [k * b, *param.shape]).' + _ACCUMULATION_HINT)
      raise ValueError(
          f'Per-example gradient leaf {leaf_name(path)} has shape '
          f'{tuple(np.shape(g))}, but params has shape {tuple(np.shape(p))}; '
          f'expected {(b,) + tuple(np.shape(p))} (batch {b}).{hint}')
  return b


def check_same_structure(tree: PyTree, reference: PyTree, *, what: str,
                         reference_name: str = 'params') -> None:
  """Checks ``tree`` has the structure and leaf shapes of ``reference``."""
  t_leaves, t_def = jax.tree_util.tree_flatten_with_path(tree)
  r_leaves, r_def = jax.tree_util.tree_flatten_with_path(reference)
  if t_def != r_def:
    raise ValueError(f'The {what} do not have the structure of '
                     f'{reference_name}: got {t_def}, expected {r_def}.')
  for (path, t), (_, r) in zip(t_leaves, r_leaves):
    if np.shape(t) != np.shape(r):
      hint = ''
      if np.shape(t)[1:] == np.shape(r):
        hint = (' It looks like per-example gradients (a leading batch axis); '
                'this transformation takes batch-mean gradients.')
      raise ValueError(
          f'The {what} leaf {leaf_name(path)} has shape {np.shape(t)}, but '
          f'{reference_name} has shape {np.shape(r)}.{hint}')


def _real(name: str, value: Any) -> np.ndarray:
  """``value`` as float64; complex with zero imaginary part is taken as real
  (``optax.inject_hyperparams`` casts hyperparameters to complex parameters'
  dtype)."""
  try:
    v = np.asarray(value)
  except (TypeError, ValueError):
    raise ValueError(f'{name} must be a number, got {value!r}.') from None
  if np.iscomplexobj(v):
    if np.any(v.imag != 0):
      raise ValueError(f'{name} must be real, got {value!r}.')
    v = v.real
  try:
    return v.astype(np.float64)
  except (TypeError, ValueError):
    raise ValueError(f'{name} must be a number, got {value!r}.') from None


def check_in_range(name: str, value: Any, low: float, high: float) -> None:
  """Raises ValueError unless a concrete ``value`` lies in [low, high)."""
  if callable(value) or isinstance(value, jax.core.Tracer):
    return
  v = _real(name, value)
  if v.shape == () and not low <= v < high:
    raise ValueError(f'{name} must lie in [{low}, {high}), got {value!r}.')


def check_decay_dtypes(**decays: Any) -> None:
  """Refuses decay rates held in a float narrower than float32.

  ``optax.inject_hyperparams`` casts float hyperparameters to the parameters'
  dtype unless told otherwise, and bfloat16 holds 0.999 as exactly 1.0 (so a
  bias correction 1 - b2^t becomes 0 and the update inf or NaN). The dtype is
  static, so this runs at trace time, for traced values too.

  Args:
    **decays: the decay rates by name, e.g. ``b1=..., b2=...``.

  Raises:
    ValueError: naming every decay rate that is a bfloat16 or float16 array,
      with its rounded value where it is concrete, and the fix.
  """
  narrow = []
  for name, value in decays.items():
    dtype = getattr(value, 'dtype', None)
    if callable(value) or dtype is None:
      continue
    dtype = np.dtype(dtype)
    if (not jax.dtypes.issubdtype(dtype, np.floating)
        or jax.dtypes.finfo(dtype).bits >= 32):
      continue
    if isinstance(value, jax.core.Tracer):
      shown = 'traced'
    else:
      shown = f'{float(np.asarray(value, np.float32))!r} after rounding'
    narrow.append((name, dtype, shown))
  if not narrow:
    return
  described = ', '.join(f'{name} ({dtype.name}, {shown})'
                        for name, dtype, shown in narrow)
  dtype = narrow[0][1]
  one = float(np.asarray(np.asarray(0.999, dtype), np.float32))
  raise ValueError(
      f'Decay rates in a float narrower than float32: {described}; '
      f'{dtype.name} rounds 0.999 to {one!r}, so the bias correction breaks. '
      'optax.inject_hyperparams casts hyperparameters to the parameters\' '
      'dtype: pass optax.inject_hyperparams(..., '
      'hyperparam_dtype=jnp.float32), or give the decay rates as float32.')


@functools.cache
def _multi_steps_code_objects() -> frozenset:
  """Code objects of ``optax.MultiSteps.init`` and ``optax.MultiSteps.update``.

  These are the methods that call the wrapped transformation (``update``'s
  nested branches run below its frame).
  """
  return frozenset(getattr(optax.MultiSteps, name).__code__
                   for name in ('init', 'update'))


def check_not_under_multi_steps() -> None:
  """Refuses a per-example transformation called from ``optax.MultiSteps``.

  ``optax.MultiSteps`` averages the mean gradients of its micro-steps and
  forwards extra arguments such as ``grad_stats=`` unchanged, so a
  per-example transformation inside it would see only the last micro-batch's
  statistics (and fails on per-example gradients or a ``GradStats``, which it
  cannot average). It calls the wrapped ``init`` and ``update`` from its own
  methods, so one of their frames is on the Python stack while ours runs
  (``init`` runs eagerly, ``update`` at trace time): that is what is checked,
  by code object (cheap: a walk up the stack, no names compared).

  Raises:
    ValueError: when called, directly or not, from ``optax.MultiSteps``.
  """
  codes = _multi_steps_code_objects()
  frame = sys._getframe(1)   # pylint: disable=protected-access
  while frame is not None:
    if frame.f_code in codes:
      raise ValueError(
          'optax.MultiSteps cannot wrap a snr_optax per-example '
          'transformation: it averages the micro-batches\' mean gradients '
          'and would keep only the last micro-batch\'s statistics; use '
          'snr_optax.accumulate_stats(opt, k) instead, which merges them '
          'exactly.')
    frame = frame.f_back
