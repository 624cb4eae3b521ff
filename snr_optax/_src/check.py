# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""A self-check of the statistics, in the spirit of ``jax.test_util.check_grads``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from snr_optax._src import exact
from snr_optax._src import partitioner
from snr_optax._src import per_example
from snr_optax._src.fast import engine


def check_stats(loss_fn: Callable[..., Any], params: Any, batch: Any,
                *args: Any, method: str = 'auto',
                argnums: int | Sequence[int] = 0, has_aux: bool = False,
                microbatch_size: int | None = None,
                num_examples: int | None = None, rtol: float = 1e-4,
                atol: float = 1e-6) -> None:
  """Checks a statistics method against an exact loop over examples.

  Takes the first ``num_examples`` examples of ``batch`` (default: all, at
  most 8; all of them where the inputs are on several devices, so that the
  method runs where it will in training), computes their statistics with
  ``method`` (through
  :func:`snr_optax.value_and_grad_stats`, jitted) and with a plain Python
  loop of ``jax.grad`` over one-example batches (example i with its PRNG keys
  folded with i, as every method defines it), reduced in float64 NumPy, and
  compares the mean and the sum of squared deviations M2 of every leaf:
  ``|got - want| <= atol * scale + rtol * |want|`` where ``scale`` is the
  leaf's largest |want|, and at least 1e-2 of the largest per-example
  gradient of any leaf (of its square times the number of examples, for
  M2), so float32 noise on an exactly-zero coordinate passes.

  Args:
    loss_fn: the batch-mean loss, ``loss_fn(params, batch, *args)``.
    params: the parameters (argument 0).
    batch: the batch (argument 1); every leaf has the leading batch axis.
    *args: further arguments of ``loss_fn``.
    method: the method to check (see :func:`snr_optax.value_and_grad_stats`).
    argnums: the argument(s) the statistics are taken for.
    has_aux: whether ``loss_fn`` returns ``(loss, aux)``.
    microbatch_size: passed to the method.
    num_examples: how many leading examples to check (>= 2).
    rtol: relative tolerance.
    atol: absolute tolerance, relative to each leaf's scale.

  Raises:
    AssertionError: naming each leaf (``mean`` or ``M2`` and its path) that
      differs, with the largest difference and where it is.
    ValueError: if the loss is refused by the method (see
      :func:`snr_optax.value_and_grad_stats`), or for bad arguments.

  Examples:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> import snr_optax as so
    >>> model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    >>> graphdef, params = nnx.split(model, nnx.Param)
    >>> def loss(params, x):
    ...   return jnp.mean(nnx.merge(graphdef, params)(x) ** 2)
    >>> so.check_stats(loss, params, jnp.arange(12.0).reshape(4, 3))
  """
  nums = exact.normalize_argnums(argnums)
  b = exact.check_call(batch, nums, args)
  n = min(b, 8) if num_examples is None else num_examples
  if not isinstance(n, int) or not 2 <= n <= b:
    raise ValueError(f'num_examples must be an int in [2, {b}], got '
                     f'{num_examples!r}.')
  stats_fn = jax.jit(per_example.value_and_grad_stats(
      loss_fn, argnums=nums, has_aux=has_aux, method=method,
      microbatch_size=microbatch_size))
  if partitioner.on_several_devices((params, batch, args)):
    # The method on the inputs as placed (partitioned as in training), the
    # reference loop on host values: it slices examples one by one, which
    # sharded (explicit-axis) arrays do not allow without annotations.
    n = b
    _, stats = stats_fn(params, batch, *args)
    params, batch, args = jax.tree.map(_on_host, (params, batch, args))
  else:
    batch = jax.tree.map(lambda x: x[:n], batch)
    _, stats = stats_fn(params, batch, *args)
  call_args = (params, batch) + tuple(args)
  traced, _ = engine.check_loss(loss_fn, call_args, nums, has_aux, n,
                                fast=False)
  grad = jax.jit(jax.grad(loss_fn, argnums=nums, has_aux=has_aux))
  per_example_grads = []
  for i in range(n):
    extra = exact.fold_in_keys(tuple(args), traced.key_mask, i)
    one = jax.tree.map(lambda x, i=i: x[i:i + 1], batch)
    g = grad(params, one, *extra)
    g = g[0] if has_aux else g
    per_example_grads.append(g[0] if len(nums) == 1 else g)
  stacked = jax.tree.map(lambda *g: np.stack([np.asarray(x, np.float64)
                                              for x in g]),
                         *per_example_grads)
  want_mean = jax.tree.map(lambda g: g.mean(0), stacked)
  want_m2 = jax.tree.map(lambda g: ((g - g.mean(0)) ** 2).sum(0), stacked)
  # A leaf whose exact statistics are zero (e.g. a bias whose per-example
  # gradients cancel) holds float32 rounding noise of the other leaves' size.
  g_max = max(float(np.max(np.abs(g), initial=0.0))
              for g in jax.tree.leaves(stacked))
  floors = {'mean': g_max, 'M2': n * g_max ** 2}
  problems = []
  for what, got, want in (('mean', stats.mean, want_mean),
                          ('M2', stats.sum_sq_dev, want_m2)):
    got_leaves = jax.tree_util.tree_flatten_with_path(got)[0]
    for (path, g), w in zip(got_leaves, jax.tree.leaves(want)):
      g = np.asarray(g, np.float64)
      scale = float(np.max(np.abs(w), initial=0.0))
      excess = np.abs(g - w) - (atol * max(scale, 1e-2 * floors[what])
                                + rtol * np.abs(w))
      if np.all(excess <= 0) and np.all(np.isfinite(g)):
        continue
      where = np.unravel_index(np.argmax(np.where(np.isfinite(excess),
                                                  excess, np.inf)),
                               np.shape(w)) if np.ndim(w) else ()
      problems.append(
          f'{what} of {jax.tree_util.keystr(path) or "<root>"}: max '
          f'|got - want| {float(np.max(np.abs(g - w))):.3g} at {where} '
          f'(got {float(g[where]):.6g}, want {float(w[where]):.6g}, '
          f'leaf scale {scale:.3g})')
  if problems:
    raise AssertionError(
        f'method={method!r} differs from the exact per-example loop on {n} '
        'examples:\n  ' + '\n  '.join(problems))


def _on_host(x):
  if not isinstance(x, jax.Array) or len(x.sharding.device_set) == 1:
    return x
  if exact.is_typed_key(x):
    return jax.random.wrap_key_data(np.asarray(jax.random.key_data(x)),
                                    impl=jax.random.key_impl(x))
  return np.asarray(x)
