# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The fast exact statistics: which leaf takes which path, and running it.

At trace time the loss is traced once to *discover* the calls of recognised
layers (``capture``) and the program is read to find, for every
differentiated leaf, every operation that reads it. A leaf read only by one
recognised layer call is *tapped*: its statistics come from that call's
input and per-example output gradient by an exact identity (``rules``). A
leaf no operation reads is *unused* (zero statistics). Every other leaf (read
by unrecognised code, shared by two layers, used inside a ``scan``) *falls
back* to exact per-example gradients for that leaf alone.

Then one ``jax.value_and_grad`` pass over the loss with zero probes added to
the tapped layers' outputs yields the loss, the batch gradient and every
per-example output gradient at once.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

from absl import logging
import jax
import jax.extend as jex
import jax.numpy as jnp

from snr_optax._src import per_example
from snr_optax._src import stats as stats_lib
from snr_optax._src.fast import capture
from snr_optax._src.fast import rules

PyTree = Any
GradStats = stats_lib.GradStats

TAPPED = 'tapped'
UNUSED = 'unused'
FALLBACK = 'fallback'

# Elements of per-example gradients one chunk of a materialised layer may
# hold (16 MiB of float32).
_CHUNK_ELEMENTS = 1 << 22


@dataclasses.dataclass(frozen=True)
class LeafPlan:
  """How one differentiated leaf gets its statistics."""
  path: str
  route: str                 # TAPPED, UNUSED or FALLBACK
  rule: str = ''             # for TAPPED: dense, embed or materialize
  layer: str = ''            # the recognised layer it belongs to
  call: int = -1             # index of that layer call
  name: str = ''             # the parameter's name in the layer
  reason: str = ''           # for FALLBACK: why

  def describe(self) -> str:
    if self.route == TAPPED:
      return f'{self.rule} ({self.layer} call {self.call}, {self.name})'
    if self.route == UNUSED:
      return 'unused (zero gradient)'
    return f'per-example fallback: {self.reason}'


@dataclasses.dataclass
class Plan:
  leaves: list[LeafPlan]
  calls: dict[int, capture.LayerCall]   # the tapped calls, by index

  def describe(self) -> dict[str, str]:
    return {leaf.path: leaf.describe() for leaf in self.leaves}

  def summary(self) -> str:
    routes = [leaf.route for leaf in self.leaves]
    return (f'{routes.count(TAPPED)} leaves tapped ({len(self.calls)} layer '
            f'calls), {routes.count(UNUSED)} unused, '
            f'{routes.count(FALLBACK)} per-example fallback')


def _split_args(call_args: Sequence[Any], argnums: tuple[int, ...]):
  diff = tuple(call_args[n] for n in argnums)
  rest = tuple(a for n, a in enumerate(call_args) if n not in argnums)
  return diff, rest


def _join_args(argnums, n_args, diff, rest):
  diff_it, rest_it = iter(diff), iter(rest)
  return tuple(next(diff_it) if n in argnums else next(rest_it)
               for n in range(n_args))


def _leaf_paths(diff, argnums) -> list[str]:
  paths = []
  for path, _ in jax.tree_util.tree_flatten_with_path(diff)[0]:
    # The tuple index of ``diff`` only matters with several argnums.
    head = f'arg{argnums[path[0].idx]}' if len(argnums) > 1 else ''
    paths.append(head + (jax.tree_util.keystr(tuple(path[1:])) or ''))
  return [p or '<root>' for p in paths]


def _reads_of_leaves(jaxpr, n_leaves: int) -> list[list[Any]]:
  """For each of the first ``n_leaves`` inputs, the equations reading it."""
  index = {v: i for i, v in enumerate(jaxpr.invars[:n_leaves])}
  reads = [[] for _ in range(n_leaves)]
  for eqn in jaxpr.eqns:
    for v in eqn.invars:
      if not isinstance(v, jex.core.Literal) and v in index:
        reads[index[v]].append(eqn)
  for v in jaxpr.outvars:
    if not isinstance(v, jex.core.Literal) and v in index:
      reads[index[v]].append(None)   # returned as is: not a layer's read
  return reads


def _tap_index(eqn) -> int | None:
  name = '' if eqn is None else str(eqn.params.get('name', ''))
  if name.startswith(capture.TAP_PREFIX):
    return int(name[len(capture.TAP_PREFIX):])
  return None


def build_plan(loss_fn, call_args: Sequence[Any], argnums: tuple[int, ...],
               has_aux: bool, batch_size: int) -> Plan:
  """Traces the loss once and decides each differentiated leaf's route."""
  diff, rest = _split_args(call_args, argnums)
  flat, treedef = jax.tree.flatten(diff)
  sessions = []

  def traced(leaves, rest):
    args = _join_args(argnums, len(call_args),
                      jax.tree.unflatten(treedef, leaves), rest)
    with capture.active(capture.Discover(batch_size, leaves)) as session:
      sessions.append(session)
      out = loss_fn(*args)
    return out[0] if has_aux else out

  closed = jax.make_jaxpr(traced)(flat, rest)
  calls = {call.index: call for call in sessions[0].calls}
  reads = _reads_of_leaves(closed.jaxpr, len(flat))
  paths = _leaf_paths(diff, argnums)
  leaves, tapped = [], {}
  for i, (path, leaf_reads) in enumerate(zip(paths, reads)):
    taps = [_tap_index(eqn) for eqn in leaf_reads]
    if not leaf_reads:
      leaves.append(LeafPlan(path, UNUSED))
    elif len(taps) == 1 and taps[0] is not None:
      call = calls[taps[0]]
      name = call.param_names[call.leaf_index.index(i)]
      leaves.append(LeafPlan(path, TAPPED, _rule_name(call), call.layer,
                             call.index, name))
      tapped[call.index] = call
    else:
      leaves.append(LeafPlan(path, FALLBACK,
                             reason=_fallback_reason(i, calls, leaf_reads,
                                                    taps)))
  return Plan(leaves, tapped)


def _rule_name(call: capture.LayerCall) -> str:
  if call.kind != capture.DENSE:
    return call.kind
  positions = math.prod(call.x_shape[1:len(call.x_shape) - call.contracted])
  if positions == 1:
    return 'dense'
  if positions <= rules.PAIR_MAX_POSITIONS:
    return f'dense-pairs, {positions} positions'
  return f'dense-chunked, {positions} positions'


def _fallback_reason(i, calls, reads, taps) -> str:
  untappable = [c for c in calls.values()
                if i in c.leaf_index and not c.tappable]
  if untappable:
    call = untappable[0]
    return f'{call.layer} call {call.index}: {call.reason}'
  n_taps = sum(t is not None for t in taps)
  if n_taps > 1:
    return 'read by more than one layer call (shared weights)'
  if n_taps == 1:
    return 'read by its layer and also outside it (e.g. tied weights)'
  if all(eqn is not None and eqn.primitive.name == 'convert_element_type'
         for eqn in reads):
    return 'cast (e.g. to bfloat16) before a layer reads it'
  return 'read by operations outside any recognised layer'


def stats_plan(loss_fn: Callable[..., Any], *call_args: Any,
               argnums: int | Sequence[int] = 0,
               has_aux: bool = False) -> dict[str, str]:
  """Which statistics path each differentiated leaf takes with ``"fast"``.

  Traces ``loss_fn(*call_args)`` abstractly (nothing is computed) and reports,
  per leaf path, ``dense``, ``embed`` or ``materialize`` with the layer it
  belongs to, ``unused``, or ``per-example fallback`` with the reason.

  Args:
    loss_fn: the batch-mean loss, ``loss_fn(params, batch, *args)``.
    *call_args: the arguments of a call, ``params, batch, *args``.
    argnums: which argument(s) the statistics are taken for.
    has_aux: whether ``loss_fn`` returns ``(loss, aux)``.

  Returns:
    A dict from leaf path to a one-line description.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> from flax import nnx
    >>> import snr_optax as so
    >>> model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    >>> graphdef, params = nnx.split(model, nnx.Param)
    >>> def loss(params, batch):
    ...   return jnp.mean(nnx.merge(graphdef, params)(batch) ** 2)
    >>> plan = so.stats_plan(loss, params, jnp.ones((4, 3)))
    >>> for path, route in plan.items():
    ...   print(path, '->', route)
    ['bias'].value -> dense (Linear call 0, bias)
    ['kernel'].value -> dense (Linear call 0, kernel)
  """
  nums = per_example.normalize_argnums(argnums)
  batch_size = per_example.check_call(call_args[1], nums, call_args[2:])
  return build_plan(loss_fn, call_args, nums, has_aux, batch_size).describe()


def _chunk_size(theta, batch_size: int, requested: int | None) -> int:
  if requested is not None:
    return requested
  size = sum(p.size for p in jax.tree.leaves(theta))
  return max(1, min(batch_size, _CHUNK_ELEMENTS // max(size, 1)))


def _tapped_stats(plan: Plan, flat, grads, inputs, out_grads, batch_size,
                  microbatch_size):
  """Mean and M2 of every tapped leaf, by its layer call's rule."""
  mean, m2 = {}, {}
  by_call: dict[int, list[tuple[int, LeafPlan]]] = {}
  for i, leaf in enumerate(plan.leaves):
    if leaf.route == TAPPED:
      by_call.setdefault(leaf.call, []).append((i, leaf))
  for index, members in by_call.items():
    call = plan.calls[index]
    x = inputs[index]
    d = out_grads[index] * batch_size   # gradients of per-example losses
    if call.kind == capture.MATERIALIZE:
      theta = {n: flat[call.leaf_index[k]]
               for k, n in enumerate(call.param_names)}
      stats = rules.materialized_stats(
          call.layer_fn, theta, x, d,
          _chunk_size(theta, batch_size, microbatch_size))
      for i, leaf in members:
        mean[i] = stats.mean[leaf.name]
        m2[i] = stats.sum_sq_dev[leaf.name]
      continue
    for i, leaf in members:
      g = grads[i].astype(stats_lib.accumulation_dtype(grads[i].dtype))
      mean[i] = g
      if call.kind == capture.EMBED:
        m2[i] = rules.embed_sum_sq_dev(x, d, g)
        continue
      # A dense layer: flatten to [b, positions, features] on both sides.
      n_in = math.prod(x.shape[x.ndim - call.contracted:])
      n_out = g.size // n_in if leaf.name != 'bias' else g.size
      x3 = x.reshape(batch_size, -1, n_in)
      d3 = d.reshape(batch_size, x3.shape[1], n_out)
      if leaf.name == 'bias':
        per_example = jnp.sum(d3.astype(jnp.float32), axis=1)
        m2[i] = stats_lib.stats_of_chunk(per_example).sum_sq_dev.reshape(
            g.shape)
      else:
        m2[i] = rules.dense_kernel_sum_sq_dev(
            x3, d3, g.reshape(n_in, n_out),
            chunk=_chunk_size(g, batch_size, microbatch_size)).reshape(
                g.shape)
  return mean, m2


def fast_value_and_grad_stats(loss_fn, *, argnums: tuple[int, ...],
                              has_aux: bool, microbatch_size: int | None,
                              log_plan: bool = False):
  """``value_and_grad_stats`` with the fast exact statistics."""

  def fn(*call_args):
    batch_size = per_example.check_call(call_args[1], argnums, call_args[2:])
    plan = build_plan(loss_fn, call_args, argnums, has_aux, batch_size)
    logging.log(logging.INFO if log_plan else logging.DEBUG,
                'snr_optax fast statistics: %s', plan.summary())
    for path, route in plan.describe().items():
      logging.debug('snr_optax statistics of %s: %s', path, route)
    diff, rest = _split_args(call_args, argnums)
    flat, treedef = jax.tree.flatten(diff)
    if not plan.calls:   # nothing recognised: the exact path, unchanged
      exact = per_example.exact_stats_fn(loss_fn, argnums, has_aux,
                                         microbatch_size)
      return loss_fn(*call_args), exact(*call_args)
    probes = {k: capture.zeros_probe(call) for k, call in plan.calls.items()}

    def probed_loss(leaves, probes, rest):
      args = _join_args(argnums, len(call_args),
                        jax.tree.unflatten(treedef, leaves), rest)
      with capture.active(capture.Tap(batch_size, probes)) as session:
        out = loss_fn(*args)
      loss, aux = out if has_aux else (out, None)
      return loss, (aux, session.inputs)

    (loss, (aux, inputs)), (grads, out_grads) = jax.value_and_grad(
        probed_loss, argnums=(0, 1), has_aux=True)(flat, probes, rest)
    mean, m2 = _tapped_stats(plan, flat, grads, inputs, out_grads,
                             batch_size, microbatch_size)
    fallback = [i for i, leaf in enumerate(plan.leaves)
                if leaf.route == FALLBACK]
    if fallback:
      exact = _fallback_stats(loss_fn, call_args, argnums, has_aux, flat,
                              treedef, fallback, microbatch_size)
      for j, i in enumerate(fallback):
        mean[i], m2[i] = exact.mean[j], exact.sum_sq_dev[j]
    for i, leaf in enumerate(plan.leaves):
      if leaf.route == UNUSED:
        zero = jnp.zeros(jnp.shape(flat[i]), stats_lib.accumulation_dtype(
            jnp.result_type(flat[i])))
        mean[i], m2[i] = zero, zero
    order = range(len(flat))
    stats = GradStats(
        _unflatten(treedef, [mean[i] for i in order], argnums),
        _unflatten(treedef, [m2[i] for i in order], argnums),
        jnp.asarray(batch_size, jnp.int32))
    return ((loss, aux) if has_aux else loss), stats

  return fn


def _unflatten(treedef, leaves, argnums):
  tree = jax.tree.unflatten(treedef, leaves)
  return tree[0] if len(argnums) == 1 else tree


def _fallback_stats(loss_fn, call_args, argnums, has_aux, flat, treedef,
                    fallback, microbatch_size) -> GradStats:
  """Exact per-example statistics of the ``fallback`` leaves only."""
  _, rest = _split_args(call_args, argnums)
  batch_at = 0 if 0 in argnums else 1   # the batch's position within rest
  others = rest[:batch_at] + rest[batch_at + 1:]

  def sub_loss(sub, batch, others):
    leaves = list(flat)
    for j, i in enumerate(fallback):
      leaves[i] = sub[j]
    rest = others[:batch_at] + (batch,) + others[batch_at:]
    return loss_fn(*_join_args(argnums, len(call_args),
                               jax.tree.unflatten(treedef, leaves), rest))

  stats_fn = per_example.exact_stats_fn(sub_loss, (0,), has_aux,
                                        microbatch_size)
  return stats_fn([flat[i] for i in fallback], call_args[1], others)
