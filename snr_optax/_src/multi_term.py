# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The loss and statistics of a loss with several terms, each over its batch.

A physics-informed network's loss (the residual at collocation points, the
initial and boundary conditions at their own points), an auxiliary loss or
multi-task training: ``L = sum_t w_t L_t``, each ``L_t`` the mean over its
own independent batch. Each term's statistics come from
:func:`snr_optax.value_and_grad_stats` (any method) and are combined exactly
by :func:`snr_optax.combine_stats`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax

from snr_optax._src import exact
from snr_optax._src import per_example
from snr_optax._src import stats as stats_lib
from snr_optax._src import validation

PyTree = Any


def multi_term_value_and_grad_stats(
    loss_fns: Mapping[Any, Callable[..., Any]] | Sequence[Callable[..., Any]],
    weights: Mapping[Any, jax.typing.ArrayLike]
    | Sequence[jax.typing.ArrayLike] | None = None,
    *,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    method: str = 'auto',
    microbatch_size: int | None = None,
) -> Callable[..., Any]:
  r"""The loss and exact gradient statistics of a weighted sum of mean losses.

  For :math:`L = \sum_t w_t L_t`, each term ``loss_fns[t](params, batch_t,
  *args)`` an ordinary mean over its own batch of :math:`b_t \ge 2`
  examples (the batches independent, of any sizes), this returns L and the
  statistics of its gradient,

  .. math::
    \mu = \sum_t w_t \mu_t, \qquad
    \nu = \sum_t w_t^2 \frac{M_t}{b_t (b_t - 1)},

  each term's statistics computed by :func:`snr_optax.value_and_grad_stats`
  with the given ``method`` and ``microbatch_size`` (so exact, or refused,
  as there) and combined by :func:`snr_optax.combine_stats`, whose
  docstring says what the leave-one-out noise of several terms is (each
  example held out against the rest of its own term) and what a term with
  few examples gives. The result goes to every transformation unchanged:
  ``so.snr_adam(...).update(stats, state, params)``.

  ``args`` are passed to every term. PRNG keys among them are made
  independent across terms: a typed key (``jax.random.key``) is folded with
  the term's position t (0, 1, ... in the order of ``loss_fns``) before the
  term's own per-example folding, so example i of term t draws from
  ``fold_in(fold_in(key, t), i)``. Raw ``uint32[2]`` keys are passed
  unchanged (example i of every term then shares its key); use typed keys.

  Args:
    loss_fns: the terms' batch-mean losses, a dict (name -> loss) or a list
      or tuple, each ``loss(params, batch, *args)``.
    weights: the weights :math:`w_t > 0`, keyed or ordered like
      ``loss_fns`` (None: all 1); numbers or scalar arrays, possibly traced
      (e.g. adaptive PINN weights).
    argnums: which positional argument(s) to take statistics for (not 1).
    has_aux: whether every loss returns ``(loss, aux)``.
    method: ``"auto"``, ``"fast"``, ``"vmap"`` or ``"microbatch"``, for every
      term.
    microbatch_size: examples per chunk, for every term (required by
      ``"microbatch"``).

  Returns:
    ``f(params, batches, *args) -> (loss, GradStats)``, or
    ``((loss, aux), GradStats)`` with ``has_aux``, where ``batches`` holds
    one batch per term (keyed or ordered like ``loss_fns``), ``loss`` is
    :math:`\sum_t w_t L_t` and ``aux`` holds the terms' aux, keyed or ordered
    like ``loss_fns``. The statistics are those of
    :func:`snr_optax.combine_stats` (``noise`` set).

  Raises:
    ValueError: for containers that are not a dict, list or tuple, batches
      or weights that do not match the terms, a concrete weight that is not
      a finite number > 0, a term's batch of fewer than 2 examples, or
      whatever :func:`snr_optax.value_and_grad_stats` refuses for a term;
      the message names the term.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> import snr_optax as so
    >>> def fit(w, batch):        # 0.5 (w x - y)^2 at the data points
    ...   return jnp.mean(0.5 * (batch['x'] * w - batch['y']) ** 2)
    >>> def prior(w, batch):      # 0.5 (w - z)^2, z noisy guesses of w
    ...   return jnp.mean(0.5 * (w - batch) ** 2)
    >>> f = so.multi_term_value_and_grad_stats(
    ...     {'fit': fit, 'prior': prior}, {'fit': 1.0, 'prior': 0.1},
    ...     method='vmap')
    >>> batches = {'fit': {'x': jnp.array([1.0, 2.0, 3.0]),
    ...                    'y': jnp.array([1.0, 2.5, 2.5])},
    ...            'prior': jnp.array([0.0, 2.0])}
    >>> loss, stats = f(jnp.array(1.0), batches)
    >>> # L = 1/12 + 0.1 * 1/2; mu = 1/6 + 0.1 * 0; nu = 19/36 + 0.1^2 * 1
    >>> print(f'{loss:.4f} {stats.mean:.4f} {stats.loo_noise:.4f}')
    0.1333 0.1667 0.5378
  """
  validation.check_choice('method', method, per_example.METHODS)
  names, fns = _named(loss_fns, 'loss_fns')
  for name, fn in zip(names, fns):
    if not callable(fn):
      raise ValueError(f'loss_fns{name} is a {type(fn).__name__}, not a '
                       'callable loss.')
  if weights is None:
    ordered_weights = [1.0] * len(fns)
  else:
    ordered_weights = stats_lib.matching_weights(weights, loss_fns, names,
                                                 what='loss_fns')
  term_fns = [per_example.value_and_grad_stats(
      fn, argnums=argnums, has_aux=has_aux, method=method,
      microbatch_size=microbatch_size) for fn in fns]

  def fn(params, batches, *args):
    ordered_batches = _matching_batches(batches, loss_fns, names)
    leaves = jax.tree.leaves(args)
    key_mask = tuple(exact.is_typed_key(x) for x in leaves)
    values, auxes, stats = [], [], []
    for t, (name, term_fn, batch) in enumerate(
        zip(names, term_fns, ordered_batches)):
      validation.batch_size_of(batch, what=f'batch of term {name}')
      term_args = exact.fold_in_keys(tuple(args), key_mask, t)
      try:
        value, term_stats = term_fn(params, batch, *term_args)
      except ValueError as e:
        raise ValueError(f'Term {name}: {e}') from e
      if has_aux:
        value, aux = value
        auxes.append(aux)
      values.append(value)
      stats.append(term_stats)
    loss = sum(w * v for w, v in zip(ordered_weights, values))
    combined = stats_lib.combine_stats(stats, ordered_weights)
    if not has_aux:
      return loss, combined
    if isinstance(loss_fns, Mapping):
      aux = dict(zip(loss_fns, auxes))
    else:
      aux = type(loss_fns)(auxes)
    return (loss, aux), combined

  return fn


def _named(terms, what: str) -> tuple[list[str], list[Any]]:
  """The terms in order and their names for messages (``['ic']``, ``[1]``)."""
  if isinstance(terms, Mapping):
    names, values = [f'[{k!r}]' for k in terms], list(terms.values())
  elif isinstance(terms, (list, tuple)):
    names, values = [f'[{k}]' for k in range(len(terms))], list(terms)
  else:
    raise ValueError(f'{what} must be a dict, list or tuple (one entry per '
                     f'term), got {type(terms).__name__}.')
  if not values:
    raise ValueError(f'{what} needs at least one term, got none.')
  return names, values


def _matching_batches(batches, loss_fns, names) -> list[PyTree]:
  """``batches`` in the order of the terms."""
  if isinstance(loss_fns, Mapping):
    if not isinstance(batches, Mapping) or set(batches) != set(loss_fns):
      got = (sorted(map(repr, batches)) if isinstance(batches, Mapping)
             else type(batches).__name__)
      raise ValueError(
          'The batches must be a dict with the keys of loss_fns '
          f'{sorted(map(repr, loss_fns))}, got {got}.')
    return [batches[k] for k in loss_fns]
  if not isinstance(batches, (list, tuple)) or len(batches) != len(names):
    got = (f'{len(batches)} batches' if isinstance(batches, (list, tuple))
           else type(batches).__name__)
    raise ValueError(f'The batches must be a list or tuple of {len(names)} '
                     f'batches, one per term, got {got}.')
  return list(batches)
