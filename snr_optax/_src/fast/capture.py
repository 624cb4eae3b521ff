# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Seeing Flax layers while an ordinary loss is traced.

The only module that knows Flax. While the user's loss runs, the calls of
recognised layers (Linen's via ``nn.intercept_methods``, NNX's by swapping the
layer classes' ``__call__`` for the duration of the trace) are recorded by
the active ``Discover`` session: each becomes a ``jax.jit`` call of a pure
function of the layer's parameters and input, under a name unique to that
call (``snr_optax_tap_<n>``), with a registry entry (the layer's class, its
parameter names, that function). Nothing else is decided here: which axis
holds the examples, which leaves only this call reads, and what the layer
computes are all read from the traced program by the engine.

Only exact types are recognised: a subclass may compute something else.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import threading
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

TAP_PREFIX = 'snr_optax_tap_'

DENSE = 'dense'
EMBED = 'embed'
MATERIALIZE = 'materialize'
MIXING = 'mixing'


def _layer_kinds() -> dict[type, str]:
  from flax import linen as nn  # pylint: disable=g-import-not-at-top
  from flax import nnx  # pylint: disable=g-import-not-at-top
  kinds = {
      nn.Dense: DENSE, nnx.Linear: DENSE,
      nn.DenseGeneral: DENSE, nnx.LinearGeneral: DENSE,
      nn.Embed: EMBED, nnx.Embed: EMBED,
      nn.Conv: MATERIALIZE, nnx.Conv: MATERIALIZE,
      nn.LayerNorm: MATERIALIZE, nnx.LayerNorm: MATERIALIZE,
      nn.RMSNorm: MATERIALIZE, nnx.RMSNorm: MATERIALIZE,
      nn.GroupNorm: MATERIALIZE, nnx.GroupNorm: MATERIALIZE,
      nn.BatchNorm: MIXING, nnx.BatchNorm: MIXING,
  }
  return kinds


@dataclasses.dataclass
class LayerCall:
  """One call of a recognised layer, as seen while tracing.

  Registered under ``name``, the name of the ``jit`` call it becomes in the
  traced program; the engine finds it there (``tap_name``), so the plan and
  the probes refer to the same equation whatever Python did (jit caches,
  ``nnx.jit``, re-traces).
  """
  name: str
  kind: str
  layer: str                      # e.g. 'Dense' or 'Linear', for reports
  param_names: tuple[str, ...]    # in the order of the call's operands
  param_shapes: tuple[tuple[int, ...], ...] = ()   # as the layer saw them
  x_shape: tuple[int, ...] = ()   # the input as the layer saw it
  layer_fn: Callable[[dict[str, jax.Array], jax.Array], jax.Array] | None = (
      None)


class _Local(threading.local):
  session: Any = None
  in_layer_fn: bool = False


_PATCH_DEPTH = [0]   # nested sessions patch the NNX classes once


_LOCAL = _Local()
_PATCH_LOCK = threading.RLock()
_NAMES = itertools.count()
# Every layer call ever wrapped, by name. A jit-cached helper may hold a call
# wrapped in an earlier trace; a name no longer here is simply not a tap.
_REGISTRY: collections.OrderedDict[str, LayerCall] = (
    collections.OrderedDict())
_REGISTRY_SIZE = 1 << 16


def lookup(name: str) -> LayerCall | None:
  return _REGISTRY.get(name)


def tap_name(eqn) -> str | None:
  """The registered layer call an equation is, or None."""
  name = str(eqn.params.get('name', ''))
  if name.startswith(TAP_PREFIX) and name in _REGISTRY:
    return name
  return None


@contextlib.contextmanager
def _inside_layer_fn():
  previous = _LOCAL.in_layer_fn
  _LOCAL.in_layer_fn = True
  try:
    yield
  finally:
    _LOCAL.in_layer_fn = previous


class Discover:
  """Wraps every tappable recognised call as a named ``jit`` call."""

  def __init__(self, refuse_mixing: bool = True):
    self.refuse_mixing = refuse_mixing

  def handle(self, kind, module, framework, args, kwargs, call_original):
    params, make_layer_fn = (_linen_params if framework == 'linen'
                             else _nnx_params)(module)
    name = f'{TAP_PREFIX}{next(_NAMES)}'
    names = tuple(sorted(params))
    call = LayerCall(name=name, kind=kind, layer=type(module).__name__,
                     param_names=names,
                     param_shapes=tuple(tuple(params[n].shape) for n in names))
    # Which contraction a dense layer computes is read from its program
    # (engine: program.match_dense), not from its attributes.
    x, untappable = _single_input(call, args, kwargs)
    if untappable:
      return call_original()
    call.x_shape = tuple(x.shape)
    call.layer_fn = make_layer_fn()
    _REGISTRY[name] = call
    while len(_REGISTRY) > _REGISTRY_SIZE:
      _REGISTRY.popitem(last=False)
    return jax.jit(_named(call.layer_fn, name))(params, x)


def _single_input(call, args, kwargs):
  """The layer's one array input, or why there is not exactly one."""
  if not call.param_names:
    return None, 'it has no parameters'
  given = [a for a in args] + [v for v in kwargs.values() if v is not None]
  if len(given) != 1:
    extra = [k for k, v in kwargs.items() if v is not None]
    return None, (f'it is called with {len(given)} inputs'
                  + (f' (keywords {", ".join(extra)})' if extra else '')
                  + ', not one')
  x = given[0]
  if not isinstance(x, jax.Array) or x.ndim < 1:
    return None, f'its input is not an array with an axis ({type(x)})'
  return x, ''


def _named(fn, name):
  def named(theta, x):
    return fn(theta, x)
  named.__name__ = name
  return named


def _linen_params(module):
  params = dict(module.variables.get('params', {}))
  if any(not isinstance(v, jax.Array) for v in params.values()):
    params = {}   # nested parameter collections: not a layer we know

  def make_layer_fn():
    unbound = module.clone(parent=None, name=None)

    def layer_fn(theta, x):
      with _inside_layer_fn():
        return unbound.apply({'params': theta}, x)
    return layer_fn

  return params, make_layer_fn


def _nnx_params(module):
  from flax import nnx  # pylint: disable=g-import-not-at-top
  graphdef, state = nnx.split(module)
  paths_leaves, treedef = jax.tree_util.tree_flatten_with_path(state)
  names = [jax.tree_util.keystr(path[:1])[2:-2] for path, _ in paths_leaves]
  params = dict(zip(names, (leaf for _, leaf in paths_leaves)))
  if len(params) != len(paths_leaves) or any(
      not isinstance(v, nnx.Param) for v in state.values()):
    params = {}   # nested or non-parameter state (counters, caches)
  original = _ORIGINAL_CALLS[type(module)]

  def make_layer_fn():
    def layer_fn(theta, x):
      leaves = [theta[n] for n in names]
      rebuilt = nnx.merge(graphdef,
                          jax.tree_util.tree_unflatten(treedef, leaves))
      with _inside_layer_fn():
        return original(rebuilt, x)
    return layer_fn

  return params, make_layer_fn


def _mixing_check(session, module, kwargs):
  use_running_average = kwargs.get('use_running_average')
  if use_running_average is None:
    use_running_average = getattr(module, 'use_running_average', None)
  if not use_running_average and session.refuse_mixing:
    raise ValueError(
        f'{type(module).__name__} in training mode normalises with the '
        'statistics of the whole batch, so the loss is not a mean of '
        'per-example losses and per-example gradients of it are not '
        'defined by the batch call. The fast statistics cannot handle it; '
        'use a per-example normaliser (LayerNorm, GroupNorm, RMSNorm), '
        'use_running_average=True, or method="vmap" (which evaluates the '
        'loss on one-example batches).')


def _dispatch(module, framework, args, kwargs, call_original):
  session = _LOCAL.session
  if session is None or _LOCAL.in_layer_fn:
    return call_original()
  kind = _KINDS.get(type(module))
  if kind is None:
    return call_original()
  if kind == MIXING:
    _mixing_check(session, module, kwargs)
    return call_original()
  return session.handle(kind, module, framework, args, kwargs, call_original)


def _linen_interceptor(next_fun, args, kwargs, context):
  if context.method_name != '__call__':
    return next_fun(*args, **kwargs)
  return _dispatch(context.module, 'linen', args, kwargs,
                   lambda: next_fun(*args, **kwargs))


_KINDS: dict[type, str] = {}
_ORIGINAL_CALLS: dict[type, Callable[..., Any]] = {}


def _patched_call(cls):
  original = _ORIGINAL_CALLS[cls]

  def __call__(self, *args, **kwargs):  # pylint: disable=invalid-name
    if type(self) is not cls:
      return original(self, *args, **kwargs)
    return _dispatch(self, 'nnx', args, kwargs,
                     lambda: original(self, *args, **kwargs))
  return __call__


@contextlib.contextmanager
def active(session: Discover):
  """Runs the enclosed trace with ``session`` seeing recognised layers."""
  from flax import linen as nn  # pylint: disable=g-import-not-at-top
  from flax import nnx  # pylint: disable=g-import-not-at-top
  with _PATCH_LOCK:
    if not _KINDS:
      _KINDS.update(_layer_kinds())
    nnx_classes = [c for c in _KINDS if issubclass(c, nnx.Module)]
    previous = _LOCAL.session
    _LOCAL.session = session
    if _PATCH_DEPTH[0] == 0:
      for cls in nnx_classes:
        _ORIGINAL_CALLS.setdefault(cls, cls.__call__)
        cls.__call__ = _patched_call(cls)
    _PATCH_DEPTH[0] += 1
    try:
      with nn.intercept_methods(_linen_interceptor):
        yield session
    finally:
      _PATCH_DEPTH[0] -= 1
      if _PATCH_DEPTH[0] == 0:
        for cls in nnx_classes:
          cls.__call__ = _ORIGINAL_CALLS[cls]
      _LOCAL.session = previous
