# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Reading a traced loss: where the examples go, and running it with taps.

Pure JAX: nothing here knows of Flax. The fast statistics rest on facts about
the user's loss that are *read from its traced program* (a jaxpr), never
guessed from Python side effects or from array sizes:

* ``analyse``: an abstract interpretation that follows the example axis of
  the batch through every equation. Each value is
  ``Const`` (does not depend on the batch), ``Batch(axis)`` (a per-example
  value: slice i along ``axis`` depends on example i alone), ``Total`` (a
  linear combination of sums over the examples, the shape a batch-mean loss
  has), ``Mixed`` (examples provably interact) or ``Unknown`` (the analysis
  cannot follow; the caller must not trust any shortcut then).
* ``leaf_reads``: every equation that reads each differentiated leaf,
  looking through nested ``jit`` calls.
* ``evaluate``: runs the program, equation by equation, calling a hook at
  the layer calls marked as taps, so that a probe added there is added to
  exactly the call that was analysed (the plan and the probes are the same
  program by construction).

Equations are named by their *path*: the tuple of equation indices through
nested ``jit`` calls.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.extend as jex
import jax.numpy as jnp
import numpy as np

Path = tuple[int, ...]

# --------------------------------------------------------------------------
# The abstract values.


@dataclasses.dataclass(frozen=True)
class Const:
  """Independent of the batch. ``uniform``: axes it is constant along."""
  uniform: frozenset[int] = frozenset()
  random: bool = False


@dataclasses.dataclass(frozen=True)
class Batch:
  """A per-example value whose example axis is ``axis``."""
  axis: int


@dataclasses.dataclass(frozen=True)
class Total:
  """sum_k scale_k * sum_i f_k(example i): what a batch-mean loss is.

  ``terms`` are (term id, numeric scale, opaque factors) in creation order;
  an opaque factor is a multiplication by a batch-independent value that is
  not a literal (the same at every batch size).
  """
  terms: tuple[tuple[Path, float, int], ...]


@dataclasses.dataclass(frozen=True)
class Mixed:
  """Examples provably interact (the batch call is not per example).

  ``not_mean``: the loss is a nonlinear function of sums over the examples
  (e.g. a weighted mean sum(w l) / sum(w)), so no per-example loss averages
  to it.
  """
  reason: str
  not_mean: bool = False


@dataclasses.dataclass(frozen=True)
class Unknown:
  """The analysis cannot follow the example axis here."""
  reason: str


State = Const | Batch | Total | Mixed | Unknown
CONST = Const()


def _is_literal(v) -> bool:
  return isinstance(v, jex.core.Literal)


def shape_of(v) -> tuple[int, ...]:
  return tuple(getattr(v.aval, 'shape', ()))


_ELEMENTWISE = frozenset('''
abs acos acosh add and asin asinh atan atan2 atanh bessel_i0e bessel_i1e
bitcast_convert_type cbrt ceil clamp complex conj convert_element_type copy
copy_p cos cosh digamma div eq erf erf_inv erfc exp exp2 expm1 floor ge gt
igamma igamma_grad_a igammac imag integer_pow is_finite le lgamma log log1p
logistic lt max min mul ne neg nextafter not or polygamma population_count
pow real reduce_precision rem round rsqrt select_n shift_left
shift_right_arithmetic shift_right_logical sign sin sinh sqrt square
stop_gradient sub tan tanh xor zeta regularized_incomplete_beta
random_gamma_grad clz
'''.split())
# Linear in each Total operand: they keep a Total a Total.
_LINEAR = frozenset('''add sub neg convert_element_type copy copy_p
reduce_precision stop_gradient'''.split())
# Each output is its operand (several operands for optimization_barrier).
_IDENTITY = frozenset('''sharding_constraint mesh_cast reshard device_put
pvary optimization_barrier'''.split())
_REDUCE_SUM = frozenset(['reduce_sum'])
_REDUCE_OTHER = frozenset('''reduce_max reduce_min reduce_prod reduce_and
reduce_or reduce_xor argmax argmin'''.split())
_CUMULATIVE = frozenset('cumsum cumprod cummax cummin cumlogsumexp'.split())
# Equations whose values, element by element, do not depend on the shapes of
# their operands (only where the elements go).
_SHAPE_SAFE = frozenset(
    'broadcast_in_dim reshape squeeze expand_dims transpose iota gather '
    'slice dynamic_slice concatenate pad rev select_n copy copy_p '
    'convert_element_type'.split()) | _ELEMENTWISE
_RANDOM = frozenset('''random_bits random_wrap random_unwrap random_fold_in
random_split random_seed threefry2x32 rng_bit_generator random_clone'''.split())
_CALLS = {  # primitive -> the parameter holding its forward program
    'jit': 'jaxpr', 'pjit': 'jaxpr', 'closed_call': 'call_jaxpr',
    'core_call': 'call_jaxpr', 'remat2': 'jaxpr', 'checkpoint': 'jaxpr',
    'custom_jvp_call': 'call_jaxpr', 'custom_vjp_call': 'call_jaxpr',
    'custom_vjp_call_jaxpr': 'fun_jaxpr',
}


def _inner(eqn):
  """(jaxpr, consts) of a call-like equation, or None."""
  key = _CALLS.get(eqn.primitive.name)
  if key is None or key not in eqn.params:
    return None
  inner = eqn.params[key]
  if hasattr(inner, 'jaxpr') and hasattr(inner, 'consts'):
    return inner.jaxpr, inner.consts
  return inner, ()


def _axis_map_reshape(in_shape, out_shape) -> dict[int, int]:
  """Input axes a reshape keeps whole, mapped to their output axes."""
  def prefixes(shape):
    out, p = {}, 1
    for i, n in enumerate(shape):
      out[i] = (p, n)
      p *= n
    return out
  outs = {v: k for k, v in prefixes(out_shape).items() if v[1] != 1}
  return {i: outs[v] for i, v in prefixes(in_shape).items()
          if v[1] != 1 and v in outs}


# --------------------------------------------------------------------------
# The analysis.


@dataclasses.dataclass
class TapSite:
  """One analysed tap occurrence."""
  path: Path
  name: str
  eqn: Any
  in_states: tuple[State, ...]
  out_states: tuple[State, ...]


@dataclasses.dataclass
class Analysis:
  outputs: tuple[State, ...]
  taps: dict[Path, TapSite]
  random_aligned: list[str]      # shared randomness meeting the examples
  twin_lost: str = ''            # why the twin program could not be paired


class _Analyser:

  def __init__(self, batch_size: int, is_tap: Callable[[Any], str | None]):
    self.b = batch_size
    self.is_tap = is_tap
    self.taps: dict[Path, TapSite] = {}
    self.sized: set[Any] = set()      # values that depend on the batch size
    self.known: dict[Any, Any] = {}   # values folded from literals
    self.literal_differs = False      # of the equation being read
    self.twin_lost = ''
    self.random_aligned: list[str] = []

  def run(self, jaxpr, in_states: Sequence[State], path: Path,
          twin=None) -> tuple[State, ...]:
    """States of ``jaxpr``'s outputs; ``twin``: the same at batch size c."""
    env: dict[Any, State] = {}
    for v in jaxpr.constvars:
      env[v] = CONST
    for v, s in zip(jaxpr.invars, in_states):
      env[v] = s

    def read(v):
      return CONST if _is_literal(v) else env.get(v, CONST)

    if twin is not None and (len(twin.eqns) != len(jaxpr.eqns) or any(
        a.primitive.name != b.primitive.name
        for a, b in zip(jaxpr.eqns, twin.eqns))):
      self.twin_lost = 'the program differs at another batch size'
      twin = None
    for k, eqn in enumerate(jaxpr.eqns):
      p = path + (k,)
      ins = [read(v) for v in eqn.invars]
      twin_eqn = None if twin is None else twin.eqns[k]
      self._compare(eqn, twin_eqn)
      outs = self.eqn(eqn, ins, p, twin_eqn)
      for v, s in zip(eqn.outvars, outs):
        env[v] = s
    return tuple(read(v) for v in jaxpr.outvars)

  def _compare(self, eqn, twin_eqn) -> None:
    """Which outputs depend on the batch size; constants folded."""
    differs = False
    if twin_eqn is not None:
      for v, w in zip(eqn.invars, twin_eqn.invars):
        if _is_literal(v) and _is_literal(w) and not np.array_equal(
            np.asarray(v.val), np.asarray(w.val)):
          differs = True
    sized_in = any(not _is_literal(v) and v in self.sized
                   for v in eqn.invars)
    shapes = twin_eqn is not None and any(
        shape_of(v) != shape_of(w) for v, w in zip(eqn.invars, twin_eqn.invars))
    self.literal_differs = differs
    # Calls carry sizes through their own equations (see ``eqn``); control
    # flow by its inputs: only a plain primitive turns a shape into values.
    plain = _inner(eqn) is None and eqn.primitive.name not in (
        'scan', 'while', 'cond')
    if differs or sized_in or (shapes and plain and eqn.primitive.name
                               not in _SHAPE_SAFE):
      self.sized.update(eqn.outvars)
    self._fold(eqn)

  def _fold(self, eqn) -> None:
    """Evaluates an equation of literals and folded values (small ones)."""
    if eqn.primitive.name in _RANDOM or len(eqn.outvars) != 1 or (
        _inner(eqn) is not None) or math.prod(shape_of(eqn.outvars[0])) > 4096:
      return
    vals = []
    for v in eqn.invars:
      if _is_literal(v):
        vals.append(np.asarray(v.val))
      elif v in self.known:
        vals.append(self.known[v])
      else:
        return
    try:
      with jax.ensure_compile_time_eval():
        out = _bind(eqn, vals)[0]
      self.known[eqn.outvars[0]] = np.asarray(out)
    except Exception:  # pylint: disable=broad-exception-caught
      return

  def eqn(self, eqn, ins, p, twin_eqn=None) -> list[State]:
    name = eqn.primitive.name
    n_out = len(eqn.outvars)
    bad = [s for s in ins if isinstance(s, (Mixed, Unknown))]
    if bad:
      first = next((s for s in bad if isinstance(s, Mixed)), bad[0])
      return [first] * n_out
    inner = _inner(eqn)
    if inner is not None:
      jaxpr, _ = inner
      tap = self.is_tap(eqn) if name in ('jit', 'pjit') else None
      if tap is not None and ins and isinstance(ins[-1], Const):
        ins = ins[:-1] + [self._as_examples(eqn.invars[-1], ins[-1])]
      twin_inner = _inner(twin_eqn) if twin_eqn is not None else None
      for v, w in zip(eqn.invars, jaxpr.invars):   # into the call
        if not _is_literal(v) and v in self.sized:
          self.sized.add(w)
        if _is_literal(v):
          self.known[w] = np.asarray(v.val)
        elif v in self.known:
          self.known[w] = self.known[v]
      outs = self.run(jaxpr, ins, p,
                      None if twin_inner is None else twin_inner[0])
      for v, w in zip(jaxpr.outvars, eqn.outvars):  # and out of it
        if not _is_literal(v) and v in self.sized:
          self.sized.add(w)
        if not _is_literal(v) and v in self.known:
          self.known[w] = self.known[v]
      if tap is not None:
        self.taps[p] = TapSite(p, tap, eqn, tuple(ins), tuple(outs))
      return list(outs)
    if all(isinstance(s, Const) for s in ins):
      random = name in _RANDOM or any(s.random for s in ins)
      if name == 'iota':
        dim = eqn.params['dimension']
        rank = len(shape_of(eqn.outvars[0]))
        return [Const(frozenset(range(rank)) - {dim})]
      if name == 'broadcast_in_dim':
        return [self._broadcast_const(eqn, ins[0])]
      if name == 'gather':
        return [self._gather_const(eqn, ins[1])]
      if name in _ELEMENTWISE:
        return [self._elementwise_const(eqn, ins)] * n_out
      if n_out == 1 and len(ins) >= 1:
        moved = self._moved_uniform(eqn, ins[0].uniform)
        if moved is not None:
          return [Const(moved, random)]
      return [Const(frozenset(), random)] * n_out
    try:
      return self._rule(eqn, ins, p)
    except _Unfollowable as e:
      return [Unknown(f'{name}: {e}')] * n_out
    except _Mixing as e:
      return [Mixed(f'{name}: {e}')] * n_out
    except _NotMean as e:
      return [Mixed(f'{name}: {e}', not_mean=True)] * n_out

  # -- Const helpers -------------------------------------------------------

  def _as_examples(self, v, s: Const) -> State:
    """A layer input equal for every example, as a per-example value.

    ``broadcast_to(jnp.arange(T), (b, T))`` (positions) is the same row for
    every example: along its one uniform axis of size b it is a per-example
    input, and is followed as one from here on (so anything that then mixes
    its rows is seen). With no such axis, or several, it stays a Const.
    """
    shape = shape_of(v)
    axes = [a for a in s.uniform if shape[a] == self.b]
    if self.b > 1 and len(axes) == 1 and not s.random:
      return Batch(axes[0])
    return s

  def _broadcast_const(self, eqn, s: Const) -> Const:
    dims = eqn.params['broadcast_dimensions']
    in_shape = shape_of(eqn.invars[0])
    out_rank = len(eqn.params['shape'])
    uniform = set(range(out_rank)) - set(dims)
    for j, d in enumerate(dims):
      if j in s.uniform or in_shape[j] == 1:
        uniform.add(d)
    return Const(frozenset(uniform), s.random)

  def _moved_uniform(self, eqn, uniform) -> frozenset[int] | None:
    """Where a layout change takes a Const's uniform axes (None: unknown)."""
    name = eqn.primitive.name
    in_shape = shape_of(eqn.invars[0])
    out_shape = shape_of(eqn.outvars[0])
    if name == 'reshape':
      mapping = _axis_map_reshape(in_shape, out_shape)
      return frozenset(mapping[u] for u in uniform if u in mapping)
    if name == 'transpose':
      perm = list(eqn.params['permutation'])
      return frozenset(perm.index(u) for u in uniform)
    if name == 'squeeze':
      dims = [d % len(in_shape) for d in eqn.params['dimensions']]
      return frozenset(u - sum(d < u for d in dims) for u in uniform
                       if u not in dims)
    if name in _REDUCE_SUM or name in _REDUCE_OTHER:
      axes = tuple(eqn.params['axes'])
      return frozenset(u - sum(a < u for a in axes) for u in uniform
                       if u not in axes)
    if name in _IDENTITY:
      return frozenset(uniform)
    if name in _CUMULATIVE:   # prefix sums differ along their own axis
      return frozenset(uniform) - {eqn.params['axis']}
    return None

  def _gather_const(self, eqn, indices: Const) -> Const:
    """Rows gathered by indices equal along an axis are equal along it."""
    dn = eqn.params['dimension_numbers']
    out_rank = len(shape_of(eqn.outvars[0]))
    idx_rank = len(shape_of(eqn.invars[1]))
    positions = [d for d in range(out_rank) if d not in dn.offset_dims]
    if dn.operand_batching_dims:
      return Const(frozenset(), indices.random)
    return Const(frozenset(positions[k] for k in indices.uniform
                           if k < idx_rank - 1 and k < len(positions)),
                 indices.random)

  def _elementwise_const(self, eqn, ins) -> Const:
    shape = shape_of(eqn.outvars[0])
    uniform = set(range(len(shape)))
    for v, s in zip(eqn.invars, ins):
      vs = shape_of(v)
      if not vs:
        continue
      uniform &= {a for a in range(len(vs)) if a in s.uniform or vs[a] == 1}
    return Const(frozenset(uniform), any(s.random for s in ins))

  # -- rules with the batch involved ---------------------------------------

  def _aligned(self, v, s: Const, axis: int, eqn) -> None:
    """A batch-independent operand meets example axis ``axis``."""
    shape = shape_of(v)
    if not shape or shape[axis] == 1 or axis in s.uniform:
      return
    what = (f'randomness drawn for the whole batch ({eqn.primitive.name} '
            'of a value from a PRNG key that is not a loss argument)'
            if s.random else
            f'a value of shape {shape} that is not part of the batch but '
            f'has a size-{shape[axis]} axis lined up with the examples')
    if s.random:
      self.random_aligned.append(what)
    else:
      raise _Unfollowable(what)

  def _lined_up(self, eqn, ins, batches) -> int:
    """The one example axis of an equation's operands, checked."""
    axes = {s.axis for s in batches}
    if len(axes) != 1:
      raise _Mixing('operands whose example axes do not line up')
    axis = axes.pop()
    for v, s in zip(eqn.invars, ins):
      if isinstance(s, Const):
        self._aligned(v, s, axis, eqn)
    return axis

  def _rule(self, eqn, ins, p) -> list[State]:
    name = eqn.primitive.name
    params = eqn.params
    totals = [s for s in ins if isinstance(s, Total)]
    batches = [s for s in ins if isinstance(s, Batch)]
    if name in _IDENTITY:
      return list(ins)
    if totals:
      return self._total_rule(eqn, ins, batches)
    if self.literal_differs or any(
        isinstance(s, Const) and not _is_literal(v) and v in self.sized
        for v, s in zip(eqn.invars, ins)):
      raise _Mixing('each example is combined with a value that depends on '
                    'the batch size (e.g. divided by sqrt(b))')
    if name in _ELEMENTWISE:
      return [Batch(self._lined_up(eqn, ins, batches))] * len(eqn.outvars)
    if name == 'broadcast_in_dim':
      return [Batch(params['broadcast_dimensions'][ins[0].axis])]
    if name == 'reshape':
      mapping = _axis_map_reshape(shape_of(eqn.invars[0]),
                                  shape_of(eqn.outvars[0]))
      if ins[0].axis not in mapping:
        raise _Unfollowable('the reshape merges or splits the example axis')
      return [Batch(mapping[ins[0].axis])]
    if name == 'squeeze':
      a = ins[0].axis
      dims = [d % len(shape_of(eqn.invars[0])) for d in params['dimensions']]
      return [Batch(a - sum(d < a for d in dims))]
    if name == 'expand_dims':
      a = ins[0].axis
      for d in sorted(params['dimensions']):
        if d <= a:
          a += 1
      return [Batch(a)]
    if name == 'transpose':
      return [Batch(list(params['permutation']).index(ins[0].axis))]
    if name in _REDUCE_SUM or name in _REDUCE_OTHER:
      a = ins[0].axis
      axes = tuple(params['axes'])
      if a in axes:
        if name in _REDUCE_SUM:
          return [Total(((p, 1.0, 0),))]
        raise _Mixing(f'{name} over the examples')
      return [Batch(a - sum(x < a for x in axes))]
    if name in _CUMULATIVE:
      if params['axis'] == ins[0].axis:
        raise _Mixing(f'{name} along the examples')
      return [Batch(ins[0].axis)]
    if name in ('rev',):
      if ins[0].axis in params['dimensions']:
        raise _Mixing('reverses the order of the examples')
      return [Batch(ins[0].axis)]
    if name in ('slice', 'dynamic_slice', 'pad'):
      return [self._slice_like(eqn, ins)]
    if name == 'dynamic_update_slice':
      return [self._update_slice(eqn, ins)]
    if name in ('concatenate',):
      return [self._concatenate(eqn, ins)]
    if name in ('sort',):
      axis = self._lined_up(eqn, ins, batches)
      if params['dimension'] == axis:
        raise _Mixing('sorts along the examples')
      return [Batch(axis)] * len(eqn.outvars)
    if name == 'top_k':
      a = ins[0].axis
      if a == len(shape_of(eqn.invars[0])) - 1:
        raise _Mixing('top_k along the examples')
      return [Batch(a)] * len(eqn.outvars)
    if name == 'split':
      if params['axis'] == ins[0].axis:
        raise _Unfollowable('splits the example axis')
      return [Batch(ins[0].axis)] * len(eqn.outvars)
    if name == 'dot_general':
      return [self._dot_general(eqn, ins)]
    if name == 'conv_general_dilated':
      return [self._conv(eqn, ins)]
    if name == 'gather':
      return [self._gather(eqn, ins)]
    if name in ('reduce_window_sum', 'reduce_window_max', 'reduce_window_min',
                'reduce_window', 'argmax_window'):
      return [self._window(eqn, ins)] * len(eqn.outvars)
    if name in _RANDOM:
      # Per-example keys (the batch carries them): per-example draws.
      axes = {s.axis for s in batches}
      if len(axes) == 1 and all(isinstance(s, (Batch, Const)) for s in ins):
        return [Batch(axes.pop())] * len(eqn.outvars)
      raise _Unfollowable('random draw with batched keys')
    if name == 'scan':
      return list(self._scan(eqn, ins, p))
    if name == 'cond':
      return list(self._cond(eqn, ins, p))
    raise _Unfollowable('no rule for this primitive with per-example inputs')

  def _total_rule(self, eqn, ins, batches) -> list[State]:
    name = eqn.primitive.name
    n_out = len(eqn.outvars)
    if batches:
      raise _Mixing(f'{name} combines a sum over the examples with '
                    'per-example values (e.g. normalising by a batch '
                    'statistic)')
    totals = [s for s in ins if isinstance(s, Total)]
    if name in _LINEAR:
      if name in ('add', 'sub'):
        sign = [1.0, -1.0 if name == 'sub' else 1.0]
        terms = []
        for j, s in enumerate(ins):
          if isinstance(s, Total):
            terms += [(t, sign[j] * c, o) for t, c, o in s.terms]
        return [Total(tuple(terms))]
      if name == 'neg':
        return [Total(tuple((t, -c, o) for t, c, o in totals[0].terms))]
      return [totals[0]] * n_out
    if name == 'div' and isinstance(ins[1], Total):
      raise _NotMean('it divides by a sum over the examples (e.g. a '
                     'weighted mean sum(w * l) / sum(w))')
    if name in ('mul', 'div') and len(totals) == 1:
      j = 0 if isinstance(ins[0], Total) else 1
      if name == 'div' and j == 1:
        raise _NotMean('divides by a sum over the examples')
      other = eqn.invars[1 - j]
      value = (np.asarray(other.val) if _is_literal(other)
               else self.known.get(other))
      if value is not None and np.size(value) == 1 and np.all(value != 0):
        value = float(np.asarray(value).reshape(-1)[0])
        factor = value if name == 'mul' else 1.0 / value
        return [Total(tuple((t, c * factor, o)
                            for t, c, o in totals[0].terms))]
      if other in self.sized:
        raise _NotMean('a sum over the examples is scaled by a value that '
                       'depends on the batch size')
      return [Total(tuple((t, c, o + 1) for t, c, o in totals[0].terms))]
    if name in ('reduce_sum', 'broadcast_in_dim', 'reshape', 'squeeze',
                'expand_dims', 'transpose', 'dot_general', 'slice',
                'concatenate', 'pad', 'select_n'):
      if name == 'select_n' and not isinstance(ins[0], Const):
        raise _NotMean('selects by a sum over the examples')
      if name in ('concatenate', 'dot_general', 'select_n') and (
          len(totals) > 1):
        raise _NotMean(f'{name} of two sums over the examples')
      return [totals[0]] * n_out
    raise _NotMean(f'{name} of a sum over the examples is not linear')

  def _slice_like(self, eqn, ins) -> State:
    s = ins[0]
    if not isinstance(s, Batch) or any(isinstance(x, Batch) for x in ins[1:]):
      raise _Unfollowable('slice positions that depend on the examples')
    a = s.axis
    in_shape, out_shape = shape_of(eqn.invars[0]), shape_of(eqn.outvars[0])
    name = eqn.primitive.name
    if name == 'pad':
      lo, hi, interior = eqn.params['padding_config'][a]
      if (lo, hi, interior) != (0, 0, 0):
        raise _Mixing('pads along the examples')
    elif in_shape[a] != out_shape[a] or (
        name == 'slice' and eqn.params['start_indices'][a] != 0):
      raise _Mixing('keeps only some of the examples')
    return Batch(a)

  def _update_slice(self, eqn, ins) -> State:
    operand, update = ins[0], ins[1]
    if any(isinstance(x, Batch) for x in ins[2:]):
      raise _Unfollowable('update positions that depend on the examples')
    axes = {s.axis for s in (operand, update) if isinstance(s, Batch)}
    if len(axes) != 1:
      raise _Mixing('example axes do not line up')
    a = axes.pop()
    if shape_of(eqn.invars[1])[a] != shape_of(eqn.invars[0])[a]:
      raise _Mixing('updates only some of the examples')
    for v, s in zip(eqn.invars[:2], ins[:2]):
      if isinstance(s, Const):
        self._aligned(v, s, a, eqn)
    return Batch(a)

  def _concatenate(self, eqn, ins) -> State:
    axes = {s.axis for s in ins if isinstance(s, Batch)}
    if len(axes) != 1:
      raise _Mixing('example axes do not line up')
    a = axes.pop()
    if eqn.params['dimension'] == a:
      raise _Unfollowable('concatenates along the example axis')
    for v, s in zip(eqn.invars, ins):
      if isinstance(s, Const):
        self._aligned(v, s, a, eqn)
    return Batch(a)

  def _dot_general(self, eqn, ins) -> State:
    (lc, rc), (lb, rb) = eqn.params['dimension_numbers']
    lhs, rhs = ins
    lrank = len(shape_of(eqn.invars[0]))
    rrank = len(shape_of(eqn.invars[1]))
    l_free = [d for d in range(lrank) if d not in lc and d not in lb]
    r_free = [d for d in range(rrank) if d not in rc and d not in rb]
    if isinstance(lhs, Batch) and isinstance(rhs, Batch):
      if lhs.axis in lb and rhs.axis in rb and (
          list(lb).index(lhs.axis) == list(rb).index(rhs.axis)):
        return Batch(list(lb).index(lhs.axis))
      raise _Mixing('a product between different examples')
    if isinstance(lhs, Batch):
      a, contract, batch_dims, free, offset = lhs.axis, lc, lb, l_free, len(lb)
      other_v, other = eqn.invars[1], rhs
      other_batch = rb
    else:
      a, contract, batch_dims, free = rhs.axis, rc, rb, r_free
      offset = len(rb) + len(l_free)
      other_v, other = eqn.invars[0], lhs
      other_batch = lb
    if a in contract:
      raise _Mixing('a product that sums over the examples')
    if a in batch_dims:
      k = list(batch_dims).index(a)
      shape = shape_of(other_v)
      if shape[other_batch[k]] != 1 and other_batch[k] not in other.uniform:
        raise _Mixing('a batched product with a value lined up with the '
                      'examples that is not part of the batch')
      return Batch(k)
    return Batch(offset + free.index(a))

  def _conv(self, eqn, ins) -> State:
    lhs, rhs = ins
    dn = eqn.params['dimension_numbers']
    if not isinstance(rhs, Const) or not isinstance(lhs, Batch):
      raise _Unfollowable('a convolution whose kernel depends on the batch')
    if lhs.axis != dn.lhs_spec[0] or eqn.params['batch_group_count'] != 1:
      raise _Mixing('a convolution along the example axis')
    return Batch(dn.out_spec[0])

  def _gather(self, eqn, ins) -> State:
    operand, indices = ins
    dn = eqn.params['dimension_numbers']
    out_rank = len(shape_of(eqn.outvars[0]))
    batch_positions = [d for d in range(out_rank) if d not in dn.offset_dims]
    idx_rank = len(shape_of(eqn.invars[1]))
    if isinstance(operand, Const):
      if indices.axis == idx_rank - 1:
        raise _Unfollowable('indices whose index vector is per example')
      return Batch(batch_positions[indices.axis])
    a = operand.axis
    if isinstance(indices, Batch):
      if a in dn.operand_batching_dims:
        k = list(dn.operand_batching_dims).index(a)
        if dn.start_indices_batching_dims[k] == indices.axis:
          return Batch(batch_positions[indices.axis])
      raise _Mixing('a gather across examples')
    if a in dn.start_index_map or a in dn.collapsed_slice_dims or (
        a in dn.operand_batching_dims) or (
            eqn.params['slice_sizes'][a] != shape_of(eqn.invars[0])[a]):
      raise _Mixing('a gather that selects examples')
    kept = [d for d in range(len(shape_of(eqn.invars[0])))
            if d not in dn.collapsed_slice_dims
            and d not in dn.operand_batching_dims]
    return Batch(dn.offset_dims[kept.index(a)])

  def _window(self, eqn, ins) -> State:
    axes = {s.axis for s in ins if isinstance(s, Batch)}
    if len(axes) != 1:
      raise _Unfollowable('windows over several example axes')
    a = axes.pop()
    p = eqn.params
    if p['window_dimensions'][a] != 1 or p['window_strides'][a] != 1 or (
        tuple(p['padding'][a]) != (0, 0)):
      raise _Mixing('a window that spans examples')
    return Batch(a)

  def _scan(self, eqn, ins, p):
    params = eqn.params
    nc, nk = params['num_consts'], params['num_carry']
    body = params['jaxpr']
    consts, carry, xs = ins[:nc], list(ins[nc:nc + nk]), ins[nc + nk:]
    xs_in = []
    for v, s in zip(eqn.invars[nc + nk:], xs):
      if isinstance(s, Batch):
        if s.axis == 0:
          raise _Mixing('a scan over the examples')
        xs_in.append(Batch(s.axis - 1))
      else:
        xs_in.append(Const(frozenset(u - 1 for u in s.uniform if u > 0),
                           s.random))
    for _ in range(4):
      outs = self.run(body.jaxpr, list(consts) + carry + xs_in, p)
      new = [_join(c, o) for c, o in zip(carry, outs[:nk])]
      if new == carry:
        break
      carry = new
    else:
      raise _Unfollowable('the scan carry does not settle')
    ys = []
    for s in outs[nk:]:
      if isinstance(s, Batch):
        ys.append(Batch(s.axis + 1))
      elif isinstance(s, Const):
        ys.append(Const(frozenset(u + 1 for u in s.uniform), s.random))
      else:
        ys.append(s)
    return carry + ys

  def _cond(self, eqn, ins, p):
    if not isinstance(ins[0], Const):
      raise _Unfollowable('a branch chosen by per-example data')
    outs = None
    for k, branch in enumerate(eqn.params['branches']):
      o = self.run(branch.jaxpr, ins[1:], p + (k,))
      outs = o if outs is None else [_join(x, y) for x, y in zip(outs, o)]
    return outs


class _Unfollowable(Exception):
  pass


class _Mixing(Exception):
  pass


class _NotMean(Exception):
  pass


def _join(a: State, b: State) -> State:
  if a == b:
    return a
  if isinstance(a, Const) and isinstance(b, Const):
    return Const(a.uniform & b.uniform, a.random or b.random)
  if isinstance(a, Batch) and isinstance(b, Const):
    return a if a.axis in b.uniform else Unknown('a carry that mixes kinds')
  if isinstance(b, Batch) and isinstance(a, Const):
    return _join(b, a)
  for s in (a, b):
    if isinstance(s, (Mixed, Unknown)):
      return s
  return Unknown('a carry whose example axis moves')


def analyse(closed_jaxpr, in_states: Sequence[State], batch_size: int,
            is_tap: Callable[[Any], str | None], twin=None) -> Analysis:
  """Follows the example axis through ``closed_jaxpr`` (see the module).

  ``twin``: the same loss traced at another batch size. Equations are paired
  with it, and a value that differs between the two (a literal such as
  1/sqrt(b), a reduction over an axis of the batch's size) may scale the
  sums over the examples but never meet an example: that is refused as not
  a mean of per-example losses. Where the two programs differ in shape, the
  analysis says so in ``twin_lost``.
  """
  analyser = _Analyser(batch_size, is_tap)
  for v, c in zip(closed_jaxpr.jaxpr.constvars, closed_jaxpr.consts):
    if not isinstance(c, jax.core.Tracer) and np.size(c) <= 4096:
      analyser.known[v] = np.asarray(c)
  outs = analyser.run(closed_jaxpr.jaxpr, in_states, (),
                      None if twin is None else twin.jaxpr)
  return Analysis(outs, analyser.taps, analyser.random_aligned,
                  analyser.twin_lost)


MEAN, NOT_MEAN, UNVERIFIED = 'mean', 'not mean', 'unverified'


def mean_check(loss_b: State, loss_c: State, b: int, c: int
               ) -> tuple[str, str]:
  """Whether the loss is (1/b) sum_i l(example i): (verdict, why).

  ``loss_b`` and ``loss_c`` are the loss's states traced at batch sizes b
  and c (both >= 2, so the example axis can be followed at both). A mean of
  per-example losses has, term by term, a scale s with s * b the same at
  every batch size; so does a loss that adds batch-independent terms (a
  penalty on the parameters). The verdict is ``MEAN``, ``NOT_MEAN`` (a sum
  over the batch, a weighted mean, a batch statistic) or ``UNVERIFIED``
  (the example axis could not be followed to the loss).
  """
  for state in (loss_b, loss_c):
    if isinstance(state, Mixed) and state.not_mean:
      return NOT_MEAN, state.reason
  if isinstance(loss_b, Const) and isinstance(loss_c, Const):
    return MEAN, ''   # the loss does not depend on the batch at all
  if not isinstance(loss_b, Total) or not isinstance(loss_c, Total):
    why = next((s.reason for s in (loss_b, loss_c)
                if isinstance(s, (Mixed, Unknown))), 'it has an example axis')
    return UNVERIFIED, why
  if len(loss_b.terms) != len(loss_c.terms):
    return UNVERIFIED, ('it traces to a different number of sums over the '
                        f'examples at batch sizes {b} and {c}')
  for (_, sb, ob), (_, sc, oc) in zip(loss_b.terms, loss_c.terms):
    if ob != oc:
      return UNVERIFIED, 'its sums over the examples are scaled differently'
    if not math.isclose(sb * b, sc * c, rel_tol=1e-5):
      if math.isclose(sb, sc, rel_tol=1e-5):
        return NOT_MEAN, ('it sums over the examples (the same scale at '
                          'every batch size), e.g. jnp.sum; use jnp.mean or '
                          'divide by the batch size')
      return NOT_MEAN, (f'a sum over the examples is scaled by {sb:.6g} at '
                        f'batch size {b} and by {sc:.6g} at {c}, not as 1/b')
  return MEAN, ''


# --------------------------------------------------------------------------
# Reads of the differentiated leaves.


@dataclasses.dataclass(frozen=True)
class Read:
  """One equation reading a leaf: a tap (path, operand position) or not."""
  path: Path
  primitive: str
  tap: str | None = None
  position: int = -1
  then_tapped: bool = False   # a cast whose result only a tap reads


def leaf_reads(closed_jaxpr, n_leaves: int,
               is_tap: Callable[[Any], str | None]) -> list[list[Read]]:
  """For each of the first ``n_leaves`` inputs, every equation reading it."""
  reads: list[list[Read]] = [[] for _ in range(n_leaves)]

  def walk(jaxpr, var_leaf: dict[Any, int], path: Path):
    users: dict[Any, list[Any]] = {}
    for eqn in jaxpr.eqns:
      for v in eqn.invars:
        if not _is_literal(v):
          users.setdefault(v, []).append(eqn)
    for k, eqn in enumerate(jaxpr.eqns):
      p = path + (k,)
      touched = [(j, var_leaf[v]) for j, v in enumerate(eqn.invars)
                 if not _is_literal(v) and v in var_leaf]
      if not touched:
        continue
      name = eqn.primitive.name
      tap = is_tap(eqn) if name in ('jit', 'pjit') else None
      if tap is not None:
        for j, leaf in touched:
          reads[leaf].append(Read(p, name, tap, j))
      elif name in ('jit', 'pjit'):
        inner = eqn.params['jaxpr'].jaxpr
        walk(inner, {inner.invars[j]: leaf for j, leaf in touched}, p)
      else:
        for j, leaf in touched:
          then_tapped = name == 'convert_element_type' and all(
              u.primitive.name in ('jit', 'pjit') and is_tap(u) is not None
              for u in users.get(eqn.outvars[0], [None]) if u is not None
          ) and bool(users.get(eqn.outvars[0]))
          reads[leaf].append(Read(p, name, None, j, then_tapped))
    for v in jaxpr.outvars:
      if not _is_literal(v) and v in var_leaf:
        reads[var_leaf[v]].append(Read(path, 'returned'))

  jaxpr = closed_jaxpr.jaxpr
  walk(jaxpr, {v: i for i, v in enumerate(jaxpr.invars[:n_leaves])}, ())
  return reads


# --------------------------------------------------------------------------
# Running the program with taps.


def _bind(eqn, invals):
  params = eqn.primitive.get_bind_params(eqn.params)
  with eqn.ctx.manager:
    out = eqn.primitive.bind(*invals, **params)
  return out if eqn.primitive.multiple_results else [out]


def evaluate(closed_jaxpr, args: Sequence[Any], taps: set[Path],
             on_tap: Callable[[Path, Any, list[Any]], list[Any]]) -> list[Any]:
  """Runs the program; ``on_tap(path, eqn, invals)`` runs the tap calls.

  Only the ``jit`` calls that contain a tap are opened; every other
  equation is bound as traced, so the compiled program is the user's.
  """
  prefixes = {t[:n] for t in taps for n in range(1, len(t))}

  def run(jaxpr, consts, args, path):
    env = {}
    for v, x in zip(jaxpr.constvars, consts):
      env[v] = x
    for v, x in zip(jaxpr.invars, args):
      env[v] = x

    def read(v):
      return v.val if _is_literal(v) else env[v]

    for k, eqn in enumerate(jaxpr.eqns):
      p = path + (k,)
      invals = [read(v) for v in eqn.invars]
      if p in taps:
        outs = on_tap(p, eqn, invals)
      elif p in prefixes:
        inner = eqn.params['jaxpr']
        outs = run(inner.jaxpr, inner.consts, invals, p)
      else:
        outs = _bind(eqn, invals)
      for v, x in zip(eqn.outvars, outs):
        env[v] = x
    return [read(v) for v in jaxpr.outvars]

  return run(closed_jaxpr.jaxpr, closed_jaxpr.consts, args, ())


def bind_call(eqn, invals):
  """Runs one call equation as traced (a tap's own layer call)."""
  return _bind(eqn, invals)


# --------------------------------------------------------------------------
# What a layer call computes, read from its own program.


@dataclasses.dataclass(frozen=True)
class DenseMatch:
  kernel: int            # operand positions of the call's parameters
  bias: int | None
  contracted: int        # trailing input axes the kernel contracts


def _is_upcast(eqn) -> bool:
  """A float cast that loses nothing (to the same or a wider float)."""
  old = eqn.invars[0].aval.dtype
  new = eqn.params['new_dtype']
  return (jnp.issubdtype(old, jnp.floating)
          and jnp.issubdtype(new, jnp.floating)
          and jnp.finfo(new).bits >= jnp.finfo(old).bits
          and jnp.finfo(new).nmant >= jnp.finfo(old).nmant)


def match_dense(jaxpr, n_params: int) -> DenseMatch | None:
  """The call is exactly y = x . K (+ b), or None.

  ``jaxpr``'s inputs are the call's parameters then its input x. Accepted:
  one ``dot_general`` contracting x's trailing axes with the kernel's
  leading ones (any precision, no batch dimensions), an optional bias
  reshaped or broadcast onto the trailing output axes and added, and casts
  of parameters that lose nothing. Anything else (a custom ``dot_general``,
  a scaled product, a cast of x, quantisation) is not matched.
  """
  if len(jaxpr.invars) != n_params + 1 or len(jaxpr.outvars) != 1:
    return None
  sym: dict[Any, tuple] = {v: ('param', j)
                           for j, v in enumerate(jaxpr.invars[:n_params])}
  sym[jaxpr.invars[-1]] = ('x',)
  for eqn in jaxpr.eqns:
    if any(_is_literal(v) for v in eqn.invars):
      return None
    ins = [sym.get(v) for v in eqn.invars]
    if any(s is None for s in ins) or len(eqn.outvars) != 1:
      return None
    name = eqn.primitive.name
    out_shape = shape_of(eqn.outvars[0])
    if name == 'convert_element_type' and ins[0][0] == 'param' and (
        _is_upcast(eqn)):
      out = ins[0]
    elif name == 'dot_general' and ins[0] == ('x',) and ins[1][0] == 'param':
      (lc, rc), (lb, rb) = eqn.params['dimension_numbers']
      rank = len(shape_of(eqn.invars[0]))
      c = len(lc)
      preferred = eqn.params.get('preferred_element_type')
      if lb or rb or c == 0 or tuple(lc) != tuple(range(rank - c, rank)) or (
          tuple(rc) != tuple(range(c))) or preferred not in (
              None, eqn.outvars[0].aval.dtype):
        return None
      out = ('dot', ins[1][1], c, len(shape_of(eqn.invars[1])) - c)
    elif name in ('reshape', 'broadcast_in_dim') and ins[0][0] in (
        'param', 'bias'):
      j = ins[0][1]
      param_shape = shape_of(jaxpr.invars[j])
      k = len(param_shape)
      in_shape = shape_of(eqn.invars[0])
      if out_shape[len(out_shape) - k:] != param_shape or any(
          n != 1 for n in out_shape[:len(out_shape) - k]):
        return None
      if name == 'broadcast_in_dim' and tuple(
          eqn.params['broadcast_dimensions'])[len(in_shape) - k:] != tuple(
              range(len(out_shape) - k, len(out_shape))):
        return None
      out = ('bias', j, k)
    elif name == 'add' and sorted(s[0] for s in ins) == ['bias', 'dot']:
      dot, bias = (ins[0], ins[1]) if ins[0][0] == 'dot' else (ins[1], ins[0])
      if bias[2] != dot[3]:
        return None
      out = ('out', dot[1], bias[1], dot[2])
    else:
      return None
    sym[eqn.outvars[0]] = out
  final = sym.get(jaxpr.outvars[0])
  if final is None or final[0] not in ('dot', 'out'):
    return None
  kernel = final[1]
  bias = final[2] if final[0] == 'out' else None
  used = {kernel} | ({bias} if bias is not None else set())
  if len(used) != n_params or (bias is not None and bias == kernel):
    return None
  return DenseMatch(kernel, bias, final[-1] if final[0] == 'out' else final[2])


def _gathers_rows(eqn) -> bool:
  """A gather of whole rows of a [V, D] operand, one row per index."""
  dn = eqn.params['dimension_numbers']
  shape = shape_of(eqn.invars[0])
  out_rank = len(shape_of(eqn.outvars[0]))
  return (len(shape) == 2 and tuple(dn.start_index_map) == (0,)
          and tuple(dn.collapsed_slice_dims) == (0,)
          and tuple(dn.offset_dims) == (out_rank - 1,)
          and not tuple(dn.operand_batching_dims)
          and tuple(eqn.params['slice_sizes']) == (1, shape[1]))


def is_lookup(jaxpr, n_params: int, table_max: int) -> bool:
  """The call's output is rows of its one parameter gathered by its input.

  Follows the table through nested ``jit`` calls: it may only be cast (to a
  float that holds the integers up to ``table_max`` exactly) and then be the
  operand of one ``gather`` whose result is the call's output.
  """
  if n_params != 1 or len(jaxpr.outvars) != 1:
    return False

  def walk(jaxpr, tainted) -> list[Any] | None:
    """Tainted outvars, or None if the table meets anything else."""
    tainted = set(tainted)
    for eqn in jaxpr.eqns:
      hit = [j for j, v in enumerate(eqn.invars)
             if not _is_literal(v) and v in tainted]
      if not hit:
        continue
      name = eqn.primitive.name
      if name in ('jit', 'pjit'):
        inner = eqn.params['jaxpr'].jaxpr
        outs = walk(inner, [inner.invars[j] for j in hit])
        if outs is None:
          return None
        tainted |= {eqn.outvars[k] for k, v in enumerate(inner.outvars)
                    if v in outs}
      elif name == 'convert_element_type':
        new = eqn.params['new_dtype']
        if not jnp.issubdtype(new, jnp.floating) or (
            2 ** (jnp.finfo(new).nmant + 1) < table_max):
          return None
        tainted.add(eqn.outvars[0])
      elif name == 'gather' and hit == [0] and _gathers_rows(eqn):
        tainted.add(eqn.outvars[0])
      else:
        return None
    return [v for v in jaxpr.outvars if v in tainted]

  outs = walk(jaxpr, [jaxpr.invars[0]])
  return bool(outs) and outs == list(jaxpr.outvars)


def raw_key_inputs(jaxpr) -> set[int]:
  """Inputs used as raw PRNG keys: operands of ``random_wrap``."""
  found: set[int] = set()

  def walk(jaxpr, var_input: dict[Any, int]):
    for eqn in jaxpr.eqns:
      name = eqn.primitive.name
      if name == 'random_wrap':
        v = eqn.invars[0]
        if not _is_literal(v) and v in var_input:
          found.add(var_input[v])
      elif name in ('jit', 'pjit'):
        inner = eqn.params['jaxpr'].jaxpr
        walk(inner, {inner.invars[j]: var_input[v]
                     for j, v in enumerate(eqn.invars)
                     if not _is_literal(v) and v in var_input})

  walk(jaxpr, {v: i for i, v in enumerate(jaxpr.invars)})
  return found
