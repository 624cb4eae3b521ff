# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Trace-time checks that turn bad input into a ValueError naming what is wrong.

Everything here runs on static shapes while a function is traced, so the
checks cost nothing at run time and fire before JAX would fail deep inside.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

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
  try:
    v = np.asarray(value, dtype=np.float64)
  except (TypeError, ValueError):
    raise ValueError(f'{name} must be a number, got {value!r}.') from None
  if v.shape == () and not v >= 0:  # `not >=` also rejects NaN.
    raise ValueError(f'{name} must be >= 0, got {value!r}.')


def batch_size_of(tree: PyTree, *, what: str) -> int:
  """The common leading-axis size b of every leaf; b must be at least 2."""
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
  if b < 2:
    path, shape = sizes[b]
    raise ValueError(
        f'The {what}: batch size {b} (leaf {leaf_name(path)} has shape '
        f'{shape}), but the leave-one-out noise needs at least 2 examples.')
  return int(b)


def check_per_example_matches_params(per_example: PyTree,
                                     params: PyTree) -> int:
  """Checks per-example leaves are [b, *param.shape]; returns b."""
  b = batch_size_of(per_example, what='per-example gradients')
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
                'gradients (a leading batch axis) instead.')
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


def check_in_range(name: str, value: Any, low: float, high: float) -> None:
  """Raises ValueError unless a concrete ``value`` lies in [low, high)."""
  if callable(value) or isinstance(value, jax.core.Tracer):
    return
  v = np.asarray(value, dtype=np.float64)
  if v.shape == () and not low <= v < high:
    raise ValueError(f'{name} must lie in [{low}, {high}), got {value!r}.')
