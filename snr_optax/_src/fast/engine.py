# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The fast exact statistics: which leaf takes which path, and running it.

Exact or refused. The loss is traced once with the recognised Flax layers
wrapped as named ``jit`` calls (``capture``); everything the shortcuts rely
on is then read from that traced program (``program``):

* where the examples are: the example axis of every layer input and output
  is followed through the program by data flow, never matched by size;
* that the loss is a mean of per-example losses: its batch reductions, traced
  at batch sizes b and b + 1, must scale as 1/b, and nothing else that meets
  an example may change with b; a sum or a weighted mean raises a
  ``ValueError``, and so (for ``"fast"``) does a batch call that mixes
  examples;
* which operations read each differentiated leaf, through nested ``jit``
  calls: a leaf read only by one layer call, whose input and output carry
  the example axis, is *tapped*; one no operation reads is *unused*; every
  other leaf *falls back* to exact per-example gradients of that leaf alone;
* what the layer computes: the dense rules only for a call whose own
  program is exactly x . K (+ b), the embedding rule only for a pure
  lookup, whose rows are found by running the layer's own lookup;
  otherwise per-example VJPs of the layer itself.

Then the *same* program is run once under ``jax.value_and_grad`` with zero
probes added to the tapped calls' outputs, which yields the loss, the batch
gradient and every per-example output gradient at once.

Where the loss takes PRNG keys, the program run is the mean over the
examples (a ``vmap``) of the loss on one example with its own key,
``fold_in(key, i)``: the definition of per-example randomness shared by
every method (see ``exact``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from snr_optax._src import axis_types
from snr_optax._src import exact
from snr_optax._src import stats as stats_lib
from snr_optax._src.fast import capture
from snr_optax._src.fast import program
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
  rule: str = ''             # for TAPPED: dense..., embed or materialize
  layer: str = ''            # the recognised layer it belongs to
  site: tuple[int, ...] = ()  # the layer call's path in the program
  position: int = -1         # the leaf's operand position in that call
  role: str = ''             # kernel, bias, table or a parameter name
  reason: str = ''           # for FALLBACK: why

  def describe(self) -> str:
    if self.route == TAPPED:
      return f'{self.rule} ({self.layer} call at {_site(self.site)}, ' \
             f'{self.role})'
    if self.route == UNUSED:
      return 'unused (zero gradient)'
    return f'per-example fallback: {self.reason}'


def _site(path) -> str:
  return 'eqn ' + '/'.join(str(k) for k in path)


@dataclasses.dataclass
class Site:
  """A tapped layer call: where it is and how its statistics are formed."""
  path: tuple[int, ...]
  call: capture.LayerCall
  eqn: Any
  x_axis: int
  y_axis: int
  rule: str                         # dense, embed, materialize
  dense: program.DenseMatch | None = None


@dataclasses.dataclass
class Plan:
  leaves: list[LeafPlan]
  sites: dict[tuple[int, ...], Site]
  traced: 'Traced'

  def describe(self) -> dict[str, str]:
    return {leaf.path: leaf.describe() for leaf in self.leaves}

  def summary(self) -> str:
    routes = [leaf.route for leaf in self.leaves]
    return (f'{routes.count(TAPPED)} leaves tapped ({len(self.sites)} layer '
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


# --------------------------------------------------------------------------
# Tracing.


@dataclasses.dataclass
class Traced:
  """The program the statistics are read from and run."""
  closed: Any                    # ClosedJaxpr
  n_leaves: int                  # its first inputs: the differentiated leaves
  leaf_treedef: Any
  rest_treedef: Any
  out_treedef: Any               # of (loss, aux)
  batch_size: int
  key_mask: tuple[bool, ...]     # over the leaves of the extra arguments
  per_example_keys: bool         # the program is the vmap over examples
  analysis: program.Analysis
  unverified: str = ''           # why the loss is not known to be a mean


def _extra_key_mask(call_args, argnums, raw_keys: set[int]) -> tuple[bool, ...]:
  """Key leaves among the extra arguments (positions 2...)."""
  mask = []
  offset = 0
  for n, arg in enumerate(call_args[2:], start=2):
    for x in jax.tree.leaves(arg):
      mask.append(n not in argnums and (exact.is_typed_key(x) or
                                        (n, offset) in raw_keys))
      offset += 1
  return tuple(mask)


def _rest_leaf_owner(call_args, argnums):
  """For each leaf of ``rest``: (argument index, index among the extras)."""
  owners, extra = [], 0
  for n, arg in enumerate(call_args):
    for _ in jax.tree.leaves(arg):
      if n not in argnums:
        owners.append((n, extra if n >= 2 else None))
      if n >= 2:
        extra += 1
  return owners


def _trace(fast: bool, fn, *args):
  """``fn``'s program with the recognised layer calls wrapped (``capture``)."""
  with capture.active(capture.Discover(refuse_mixing=fast)):
    closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*args)
  return closed, jax.tree.structure(out_shape)


def trace_loss(loss_fn, call_args: Sequence[Any], argnums: tuple[int, ...],
               has_aux: bool, batch_size: int, *, fast: bool = True
               ) -> tuple[Traced, str, str]:
  """Traces the loss; returns it and why it is refused ('' if it is not).

  The second string is a definite reason to refuse any method (not a mean,
  randomness from a key that is not an argument); the third is the
  fast path's own (examples mixed).
  """
  diff, rest = _split_args(call_args, argnums)
  flat, leaf_treedef = jax.tree.flatten(diff)
  rest_flat, rest_treedef = jax.tree.flatten(rest)
  n_args = len(call_args)

  def args_of(leaves, rest_leaves):
    return _join_args(argnums, n_args, jax.tree.unflatten(leaf_treedef,
                                                          leaves),
                      jax.tree.unflatten(rest_treedef, rest_leaves))

  def ordinary(leaves, rest_leaves):
    out = loss_fn(*args_of(leaves, rest_leaves))
    if has_aux and not (isinstance(out, (tuple, list)) and len(out) == 2):
      raise ValueError('has_aux=True, but the loss returned '
                       f'{type(out).__name__}, not a pair (loss, aux).')
    return out if has_aux else (out, None)

  closed, out_treedef = _trace(fast, ordinary, flat, rest_flat)
  owners = _rest_leaf_owner(call_args, argnums)
  batch_leaf = [n == 1 for n, _ in owners]
  n = len(flat)
  raw = program.raw_key_inputs(closed.jaxpr)
  raw_keys = {(owners[j - n][0], owners[j - n][1]) for j in raw
              if j >= n and owners[j - n][1] is not None}
  key_mask = _extra_key_mask(call_args, argnums, raw_keys)
  states = ([program.CONST] * n + [program.Batch(0) if is_b else
                                   program.CONST for is_b in batch_leaf])
  # The same loss at another batch size: its sums over the examples must
  # scale as 1/b, and nothing else that meets an example may change with b,
  # for it to be a mean of per-example losses.
  other = batch_size + 1
  other_rest = [jax.ShapeDtypeStruct((other,) + x.shape[1:], x.dtype) if is_b
                else x for x, is_b in zip(rest_flat, batch_leaf)]
  try:
    closed_c, _ = _trace(fast, ordinary, flat, other_rest)
    loss_c = program.analyse(closed_c, states, other,
                             capture.tap_name).outputs[0]
  except Exception as e:  # pylint: disable=broad-exception-caught
    closed_c = None
    loss_c = program.Unknown(f'it cannot be traced at batch size {other} '
                             f'({type(e).__name__})')
  ordinary_analysis = program.analyse(closed, states, batch_size,
                                      capture.tap_name, twin=closed_c)
  if ordinary_analysis.twin_lost and not isinstance(
      loss_c, program.Unknown):
    loss_c = program.Unknown(ordinary_analysis.twin_lost)
  verdict, why = program.mean_check(ordinary_analysis.outputs[0], loss_c,
                                    batch_size, other)
  refuse = ''
  if verdict == program.NOT_MEAN:
    refuse = f'the loss is not the mean over the batch of per-example ' \
             f'losses: {why}'
  elif ordinary_analysis.random_aligned and not any(key_mask):
    refuse = (f'the loss draws {ordinary_analysis.random_aligned[0]}: every '
              'example would share it. Pass the PRNG key as an argument of '
              'the loss, loss(params, batch, key); example i then gets '
              'fold_in(key, i)')
  unverified = why if verdict == program.UNVERIFIED else ''
  loss_state = ordinary_analysis.outputs[0]
  mixing = loss_state.reason if isinstance(loss_state, program.Mixed) else ''

  # Only the fast path runs the program; the exact methods need the keys.
  if not any(key_mask) or not fast:
    return Traced(closed, n, leaf_treedef, rest_treedef, out_treedef,
                  batch_size, key_mask, False, ordinary_analysis,
                  unverified), refuse, mixing

  mean = exact.mean_of_examples(loss_fn, has_aux, key_mask)

  def per_example(leaves, rest_leaves, indices):
    # The indices are an input, so that the analysis sees them (and the
    # keys folded with them) as per-example values.
    args = args_of(leaves, rest_leaves)
    return mean(args[0], args[1], indices, *args[2:])

  indices = jax.ShapeDtypeStruct((batch_size,), jnp.int32)
  closed, out_treedef = _trace(fast, per_example, flat, rest_flat, indices)
  analysis = program.analyse(closed, states + [program.Batch(0)], batch_size,
                             capture.tap_name)
  loss_state = analysis.outputs[0]
  mixing = loss_state.reason if isinstance(loss_state, program.Mixed) else ''
  return Traced(closed, n, leaf_treedef, rest_treedef, out_treedef,
                batch_size, key_mask, True, analysis), refuse, mixing


# --------------------------------------------------------------------------
# The plan.


def _site_of(traced: Traced, tap: program.TapSite) -> tuple[Site | None, str]:
  """The tap as a Site with its rule, or why it cannot be tapped."""
  call = capture.lookup(tap.name)
  n_params = len(call.param_names)
  x_state = tap.in_states[n_params]
  y_state = tap.out_states[0] if tap.out_states else None
  if not isinstance(x_state, program.Batch):
    return None, (f'{call.layer} call at {_site(tap.path)}: its input does '
                  'not depend on the examples (e.g. a table read at '
                  'jnp.arange positions), so its gradient is not a sum of '
                  'per-example terms the layer can see')
  if not isinstance(y_state, program.Batch) or len(tap.out_states) != 1:
    return None, (f'{call.layer} call at {_site(tap.path)}: its output does '
                  'not keep the examples apart')
  shapes = tuple(program.shape_of(v) for v in tap.eqn.invars[:n_params])
  if shapes != tuple(call.param_shapes):
    return None, (f'{call.layer} call at {_site(tap.path)}: its parameters '
                  f'have shapes {shapes} in the program but '
                  f'{tuple(call.param_shapes)} in the layer (batched by a '
                  'vmap, e.g. an ensemble)')
  if any(jnp.issubdtype(v.aval.dtype, jnp.complexfloating)
         for v in tap.eqn.invars[:n_params]):
    return None, (f'{call.layer} call at {_site(tap.path)}: complex '
                  'parameters take the exact path')
  inner = tap.eqn.params['jaxpr'].jaxpr
  x_var = tap.eqn.invars[n_params]
  site = Site(tap.path, call, tap.eqn, x_state.axis, y_state.axis,
              capture.MATERIALIZE)
  # A parameter narrower than float32 (bfloat16) has per-example gradients
  # rounded to its dtype (jax.grad's); the identities form them unrounded,
  # so such layers take the layer's own per-example VJP, which rounds alike.
  narrow = any(jnp.finfo(v.aval.dtype).bits < 32
               for v in tap.eqn.invars[:n_params]
               if jnp.issubdtype(v.aval.dtype, jnp.floating))
  if call.kind == capture.DENSE and not narrow:
    match = program.match_dense(inner, n_params)
    if match is not None:
      site.rule, site.dense = capture.DENSE, match
      return site, ''
  if call.kind == capture.EMBED and not narrow:
    table = tap.eqn.invars[0].aval
    vocab = table.shape[0] if len(table.shape) == 2 else 0
    holds = jnp.issubdtype(table.dtype, jnp.floating) and (
        2 ** (jnp.finfo(table.dtype).nmant + 1) >= vocab + 1)
    y_shape = program.shape_of(tap.eqn.outvars[0])
    if vocab and holds and y_shape and y_shape[-1] == table.shape[1] and (
        y_state.axis != len(y_shape) - 1) and program.is_lookup(
            inner, n_params, vocab + 1):
      site.rule = capture.EMBED
      return site, ''
  x_shape = program.shape_of(x_var)
  if len(x_shape) == len(call.x_shape):
    if x_shape != tuple(call.x_shape):
      return None, f'{call.layer} call: its input shape changed in tracing'
  elif len(x_shape) != len(call.x_shape) + 1 or tuple(np.delete(
      x_shape, x_state.axis)) != tuple(call.x_shape):
    return None, (f'{call.layer} call at {_site(tap.path)}: called under a '
                  'vmap whose axis is not the examples')
  return site, ''


def _rule_name(site: Site) -> str:
  if site.rule != capture.DENSE:
    return site.rule
  x_shape = program.shape_of(site.eqn.invars[-1])
  positions = math.prod(x_shape) // x_shape[site.x_axis] // math.prod(
      x_shape[len(x_shape) - site.dense.contracted:])
  if positions == 1:
    return 'dense'
  if positions <= rules.PAIR_MAX_POSITIONS:
    return f'dense-pairs, {positions} positions'
  return f'dense-chunked, {positions} positions'


def _role(site: Site, position: int) -> str:
  if site.rule == capture.DENSE:
    return 'kernel' if position == site.dense.kernel else 'bias'
  if site.rule == capture.EMBED:
    return 'table'
  return site.call.param_names[position]


def _fallback_reason(reads: list[program.Read], bad_sites: dict) -> str:
  taps = [r for r in reads if r.tap is not None]
  for r in taps:
    if r.path in bad_sites:
      return bad_sites[r.path]
  if len(taps) > 1:
    return 'read by more than one layer call (shared weights)'
  if taps:
    if any(r.position == len(capture.lookup(r.tap).param_names)
           for r in taps):
      return 'it is the input of a layer call, not one of its parameters'
    return 'read by its layer and also outside it (e.g. tied weights)'
  if reads and all(r.then_tapped for r in reads):
    return 'cast (e.g. to bfloat16) before a layer reads it'
  names = sorted({r.primitive for r in reads})
  return ('read by operations outside any recognised layer ('
          + ', '.join(names[:4]) + (', ...' if len(names) > 4 else '') + ')')


def build_plan(traced: Traced, argnums, diff) -> Plan:
  """Decides each differentiated leaf's route from the traced program."""
  paths = _leaf_paths(diff, argnums)
  if traced.unverified and not traced.per_example_keys:
    leaves = [LeafPlan(p, FALLBACK, reason='the loss could not be verified '
                       'to be a mean of per-example losses, which the '
                       f'layer identities need ({traced.unverified})')
              for p in paths]
    return Plan(leaves, {}, traced)
  loss_state = traced.analysis.outputs[0]
  if not isinstance(loss_state, (program.Total, program.Const)):
    why = getattr(loss_state, 'reason', 'the loss has an example axis')
    leaves = [LeafPlan(p, FALLBACK, reason=f'the example axis could not be '
                       f'followed through the loss ({why})') for p in paths]
    return Plan(leaves, {}, traced)
  reads = program.leaf_reads(traced.closed, traced.n_leaves,
                             capture.tap_name)
  sites, bad = {}, {}
  for path, tap in traced.analysis.taps.items():
    site, why = _site_of(traced, tap)
    if site is None:
      bad[path] = why
    else:
      sites[path] = site
  leaves, used_sites = [], {}
  for path, leaf_reads in zip(paths, reads):
    if not leaf_reads:
      leaves.append(LeafPlan(path, UNUSED))
      continue
    read = leaf_reads[0]
    n_params = (len(capture.lookup(read.tap).param_names)
                if read.tap is not None else 0)
    if len(leaf_reads) == 1 and read.path in sites and (
        read.position < n_params):
      site = sites[read.path]
      leaves.append(LeafPlan(path, TAPPED, _rule_name(site), site.call.layer,
                             site.path, read.position,
                             _role(site, read.position)))
      used_sites[site.path] = site
    else:
      leaves.append(LeafPlan(path, FALLBACK,
                             reason=_fallback_reason(leaf_reads, bad)))
  return Plan(leaves, used_sites, traced)


def check_loss(loss_fn, call_args, argnums, has_aux, batch_size, *,
               fast: bool) -> tuple[Traced, str]:
  """Traces the loss and raises for what no method can give exactly."""
  traced, refuse, mixing = trace_loss(loss_fn, call_args, argnums, has_aux,
                                      batch_size, fast=fast)
  if refuse:
    raise ValueError(f'Cannot compute per-example gradient statistics: '
                     f'{refuse}.')
  if fast and mixing:
    raise ValueError(
        'Cannot compute fast per-example statistics: the batch call mixes '
        f'examples ({mixing}), so it is not a mean of per-example losses. '
        'Use a per-example formulation, or method="vmap" to define '
        'per-example gradients on one-example batches.')
  return traced, mixing


def stats_plan(loss_fn: Callable[..., Any], *call_args: Any,
               argnums: int | Sequence[int] = 0,
               has_aux: bool = False) -> dict[str, str]:
  """Which statistics path each differentiated leaf takes with ``"fast"``.

  Traces ``loss_fn(*call_args)`` abstractly (nothing is computed) and reports,
  per leaf path, the rule (``dense``, ``dense-pairs``, ``dense-chunked``,
  ``embed`` or ``materialize``) with the layer call it belongs to (its place
  in the traced program) and the parameter's role, ``unused``, or
  ``per-example fallback`` with the reason.

  Args:
    loss_fn: the batch-mean loss, ``loss_fn(params, batch, *args)``.
    *call_args: the arguments of a call, ``params, batch, *args``.
    argnums: which argument(s) the statistics are taken for.
    has_aux: whether ``loss_fn`` returns ``(loss, aux)``.

  Returns:
    A dict from leaf path to a one-line description.

  Raises:
    ValueError: if the loss is not a mean of per-example losses (see
      :func:`snr_optax.value_and_grad_stats`).

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
    ...   print(path, '->', route.split(' (')[0], route.split(', ')[-1])
    ['bias'].value -> dense bias)
    ['kernel'].value -> dense kernel)
  """
  nums = exact.normalize_argnums(argnums)
  batch_size = exact.check_call(call_args[1], nums, call_args[2:])

  def plan(*call_args):
    traced, _ = check_loss(loss_fn, call_args, nums, has_aux, batch_size,
                           fast=True)
    diff, _ = _split_args(call_args, nums)
    return build_plan(traced, nums, diff).describe()
  # Traced as the statistics are: explicit mesh axes as Auto.
  return axis_types.call_with_auto_axes(plan, call_args, None)


# --------------------------------------------------------------------------
# Running it.


def _chunk_size(theta, batch_size: int, requested: int | None) -> int:
  if requested is not None:
    return requested
  size = sum(np.size(p) for p in jax.tree.leaves(theta))
  return max(1, min(batch_size, _CHUNK_ELEMENTS // max(size, 1)))


def _dense_stats(site, members, flat, grads, x, d, b, microbatch_size):
  """Kernel: the dense identities; bias: two-pass over per-example sums."""
  out = {}
  c = site.dense.contracted
  n_in = math.prod(x.shape[x.ndim - c:])
  xs = jnp.moveaxis(x, site.x_axis, 0)
  x3 = xs.reshape(b, -1, n_in)
  ds = jnp.moveaxis(d, site.y_axis, 0)
  for i, leaf in members:
    shape = np.shape(flat[i])
    if leaf.position == site.dense.kernel:
      n_out = math.prod(shape) // n_in
      d3 = ds.reshape(b, x3.shape[1], n_out)
      g = grads[i]
      mean = (g.reshape(n_in, n_out) / b   # the gradient of b L
              if g.dtype == rules.compute_dtype(x3, d3) else None)
      mean, m2 = rules.dense_kernel_stats(
          x3, d3, mean, chunk=_chunk_size(flat[i], b, microbatch_size))
      out[i] = (mean.reshape(shape), m2.reshape(shape))
    else:
      n_out = math.prod(shape)
      d3 = ds.reshape(b, -1, n_out)
      per_example = jnp.sum(d3.astype(rules.compute_dtype(d3)), axis=1)
      st = stats_lib.stats_of_chunk(per_example)
      out[i] = (st.mean.reshape(shape), st.sum_sq_dev.reshape(shape))
  return out


def _embed_stats(site, members, invals, d, b):
  """Rows found by running the layer's own lookup on a table of row numbers."""
  (i, _), = members
  table = invals[0]
  vocab, dim = table.shape
  numbers = jnp.broadcast_to(
      jnp.arange(1, vocab + 1, dtype=table.dtype)[:, None], table.shape)
  (looked_up,) = program.bind_call(site.eqn, [numbers, invals[1]])
  looked_up = jnp.moveaxis(looked_up[..., 0], site.y_axis, 0).reshape(b, -1)
  row = jnp.round(looked_up.astype(jnp.float32))
  valid = jnp.isfinite(looked_up) & (row == looked_up) & (row >= 1) & (
      row <= vocab)
  rows = jnp.where(valid, row - 1, -1).astype(jnp.int32)
  ds = jnp.moveaxis(d, site.y_axis, 0).reshape(b, -1, dim)
  dtype = rules.compute_dtype(ds)
  ds = ds.astype(dtype)
  mean = jax.ops.segment_sum(
      jnp.where((rows >= 0)[..., None], ds, 0).reshape(-1, dim),
      jnp.maximum(rows, 0).reshape(-1), num_segments=vocab) / b
  m2 = rules.embed_sum_sq_dev(rows, ds, mean)
  return {i: (mean, m2)}


def _materialized_stats(site, members, invals, x, d, b, microbatch_size):
  """Per-example VJPs of the layer itself, chunk by chunk."""
  call = site.call
  theta = dict(zip(call.param_names, invals[:len(call.param_names)]))
  keep = x.ndim == len(call.x_shape)
  layer_fn = call.layer_fn

  def one(th, xi):
    if not keep:
      return layer_fn(th, xi)
    y = layer_fn(th, jnp.expand_dims(xi, site.x_axis))
    return jnp.squeeze(y, site.y_axis)

  st = rules.materialized_stats(
      one, theta, jnp.moveaxis(x, site.x_axis, 0),
      jnp.moveaxis(d, site.y_axis, 0),
      _chunk_size(theta, b, microbatch_size))
  out = {}
  for i, leaf in members:
    name = call.param_names[leaf.position]
    out[i] = (st.mean[name], st.sum_sq_dev[name])
  return out


def fast_value_and_grad_stats(loss_fn, *, argnums: tuple[int, ...],
                              has_aux: bool, microbatch_size: int | None,
                              log_plan: bool = False):
  """``value_and_grad_stats`` with the fast exact statistics."""

  def fn(*call_args):
    b = exact.check_call(call_args[1], argnums, call_args[2:])
    traced, _ = check_loss(loss_fn, call_args, argnums, has_aux, b,
                           fast=True)
    diff, rest = _split_args(call_args, argnums)
    flat, treedef = jax.tree.flatten(diff)
    plan = build_plan(traced, argnums, diff)
    logging.log(logging.INFO if log_plan else logging.DEBUG,
                'snr_optax fast statistics: %s', plan.summary())
    rest_flat = jax.tree.leaves(rest)
    extra = ([jnp.arange(b, dtype=jnp.int32)] if traced.per_example_keys
             else [])
    sites = plan.sites
    probes = {p: jnp.zeros(s.eqn.outvars[0].aval.shape,
                           s.eqn.outvars[0].aval.dtype)
              for p, s in sites.items()}

    def probed(leaves, probes):
      seen = {}

      def on_tap(path, eqn, invals):
        outs = program.bind_call(eqn, invals)
        seen[path] = invals
        return [outs[0] + probes[path]] + list(outs[1:])

      outs = program.evaluate(traced.closed, list(leaves) + rest_flat + extra,
                              set(sites), on_tap)
      # b L = sum_i l_i: its cotangents at the taps are the per-example
      # output gradients themselves, not 1/b of them (which a float16
      # program would round to subnormals).
      total = outs[0].astype(jnp.promote_types(outs[0].dtype,
                                               jnp.float32)) * b
      return total, (outs, seen)

    if sites:
      (_, (outs, seen)), (grads, out_grads) = jax.value_and_grad(
          probed, argnums=(0, 1), has_aux=True)(flat, probes)
    else:   # nothing tapped: the loss only, every leaf from the exact path
      _, (outs, seen) = probed(flat, probes)
    results = {}
    by_site: dict[Any, list] = {}
    for i, leaf in enumerate(plan.leaves):
      if leaf.route == TAPPED:
        by_site.setdefault(leaf.site, []).append((i, leaf))
    for path, members in by_site.items():
      site = sites[path]
      invals = seen[path]
      x = invals[len(site.call.param_names)]
      d = out_grads[path]   # gradients of the per-example losses
      if site.rule == capture.DENSE:
        results.update(_dense_stats(site, members, flat, grads, x, d, b,
                                    microbatch_size))
      elif site.rule == capture.EMBED:
        results.update(_embed_stats(site, members, invals, d, b))
      else:
        results.update(_materialized_stats(site, members, invals, x, d, b,
                                           microbatch_size))
    fallback = [i for i, leaf in enumerate(plan.leaves)
                if leaf.route == FALLBACK]
    if fallback:
      st = _fallback_stats(loss_fn, call_args, argnums, has_aux, flat,
                           treedef, fallback, microbatch_size,
                           traced.key_mask)
      for j, i in enumerate(fallback):
        results[i] = (st.mean[j], st.sum_sq_dev[j])
    means, m2s = [], []
    for i, leaf in enumerate(plan.leaves):
      dtype = stats_lib.accumulation_dtype(jnp.result_type(flat[i]))
      if leaf.route == UNUSED:
        zero = jnp.zeros(np.shape(flat[i]), dtype)
        results[i] = (zero, zero)
      mean, m2 = results[i]
      means.append(jnp.asarray(mean).astype(dtype))
      m2s.append(jnp.asarray(m2).astype(dtype))
    stats = GradStats(_unflatten(treedef, means, argnums),
                      _unflatten(treedef, m2s, argnums),
                      jnp.asarray(b, jnp.int32))
    loss_aux = jax.tree.unflatten(traced.out_treedef, outs)
    return (loss_aux if has_aux else loss_aux[0]), stats

  return fn


def _unflatten(treedef, leaves, argnums):
  tree = jax.tree.unflatten(treedef, leaves)
  return tree[0] if len(argnums) == 1 else tree


def _fallback_stats(loss_fn, call_args, argnums, has_aux, flat, treedef,
                    fallback, microbatch_size, key_mask) -> GradStats:
  """Exact per-example statistics of the ``fallback`` leaves only."""
  _, rest = _split_args(call_args, argnums)
  batch_at = 0 if 0 in argnums else 1   # the batch's position within rest
  others = rest[:batch_at] + rest[batch_at + 1:]

  def sub_loss(sub, batch, *others):
    leaves = list(flat)
    for j, i in enumerate(fallback):
      leaves[i] = sub[j]
    rest = others[:batch_at] + (batch,) + others[batch_at:]
    return loss_fn(*_join_args(argnums, len(call_args),
                               jax.tree.unflatten(treedef, leaves), rest))

  # sub_loss's extra arguments are ``others``: the extras of the call that
  # are not differentiated (plus params when argnums excludes 0).
  sub_mask = _sub_key_mask(call_args, argnums, key_mask)
  stats_fn = exact.exact_stats_fn(sub_loss, (0,), has_aux, microbatch_size,
                                  sub_mask)
  return stats_fn([flat[i] for i in fallback], call_args[1], *others)


def _sub_key_mask(call_args, argnums, key_mask) -> tuple[bool, ...]:
  mask, k = [], 0
  for n, arg in enumerate(call_args):
    for _ in jax.tree.leaves(arg):
      if n >= 2:
        if n not in argnums:
          mask.append(key_mask[k])
        k += 1
      elif n == 0 and n not in argnums:
        mask.append(False)
  return tuple(mask)
