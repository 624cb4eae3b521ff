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
import numpy as np
from jax.sharding import PartitionSpec as P

from snr_optax._src import axis_types
from snr_optax._src import exact
from snr_optax._src import partitioner
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

  return _on_meshes(fn, nums, has_aux, per_example=True)


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
    return _on_meshes(engine.fast_value_and_grad_stats(
        loss_fn, argnums=nums, has_aux=has_aux,
        microbatch_size=microbatch_size), nums, has_aux)
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

  return _on_meshes(fn, nums, has_aux)


def _on_meshes(fn, argnums, has_aux, *, per_example=False):
  """``fn`` made safe on device meshes.

  On explicit mesh axes it runs with the axes as Auto and its results are
  typed back (see ``axis_types``): statistics take their parameters'
  shardings, per-example values (leading axis b: per-example gradients,
  per-example ``aux``) the batch's, and the rest (the loss, batch-level
  ``aux``) are replicated. On any mesh of several devices, the program is
  first checked for what XLA's partitioner computes wrongly (see
  ``partitioner``).
  """
  def wrapped(params, batch, *args):
    call_args = (params, batch) + args
    b = exact.check_call(batch, argnums, args)
    batch_axes = axis_types.leading_axis_spec(batch)
    wrt = tuple(call_args[n] for n in argnums)
    wrt_specs = jax.tree.map(axis_types.spec_of, wrt)
    if len(argnums) == 1:
      wrt, wrt_specs = wrt[0], wrt_specs[0]

    def example_spec(x, inner=P()):
      rest = tuple(inner) + (None,) * (jnp.ndim(x) - 1 - len(inner))
      if batch_axes is None or any(
          set(_names(batch_axes)) & set(_names(entry)) for entry in rest):
        return P(None, *rest)
      return P(batch_axes, *rest)

    def aux_specs(aux):
      return jax.tree.map(
          lambda x: example_spec(x) if jnp.ndim(x) and jnp.shape(x)[0] == b
          else P(), aux)

    def out_specs(out):
      if per_example:
        grads = out[0] if has_aux else out
        specs = jax.tree.map(lambda spec, g: example_spec(g, spec), wrt_specs,
                             grads, is_leaf=_is_spec)
        return (specs, aux_specs(out[1])) if has_aux else specs
      stats_specs = GradStats(wrt_specs, wrt_specs, P())
      if has_aux:
        return (P(), aux_specs(out[0][1])), stats_specs
      return P(), stats_specs

    run = fn
    if partitioner.on_several_devices(call_args):
      run = _checked(fn)
    return axis_types.call_with_auto_axes(run, call_args, out_specs)
  return wrapped


def _checked(fn):
  """``fn``, traced once, checked by ``partitioner``, then run as traced."""
  def run(*call_args):
    leaves, tree = jax.tree.flatten(call_args)
    arrays = [k for k, x in enumerate(leaves)
              if isinstance(x, (jax.Array, np.ndarray, np.generic))]

    def on_arrays(f):
      # Other leaves (Python values) stay static, as in a direct call.
      def g(*values):
        full = list(leaves)
        for k, v in zip(arrays, values):
          full[k] = v
        return f(*jax.tree.unflatten(tree, full))
      return g
    values = [leaves[k] for k in arrays]
    program, shape = jax.make_jaxpr(on_arrays(fn), return_shape=True)(*values)
    partitioner.check_no_grouped_convolutions(program.jaxpr)
    out = jax.core.eval_jaxpr(program.jaxpr, program.consts, *values)
    return jax.tree.unflatten(jax.tree.structure(shape), out)
  return run


def _is_spec(x) -> bool:
  return isinstance(x, P)


def _names(entry) -> tuple[str, ...]:
  if entry is None:
    return ()
  return (entry,) if isinstance(entry, str) else tuple(entry)
