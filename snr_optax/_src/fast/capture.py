# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Seeing Flax layers while an ordinary loss is traced.

The only module that knows Flax. While the user's loss runs, the calls of
recognised layers (Linen's via ``nn.intercept_methods``, NNX's by swapping the
layer classes' ``__call__`` for the duration of the trace) are numbered in
call order and handled by the active session:

* ``Discover``: records each call (which parameter leaves it reads, its
  input and output shapes, a pure forward function of its parameters) and
  runs the layer as a named ``jax.jit`` call, so that the traced program shows
  exactly which operations read each parameter leaf.
* ``Tap``: runs the layer unchanged, adds a zero "probe" to its output (whose
  gradient is then the per-example output gradient) and keeps its input.

Only exact types are recognised: a subclass may compute something else.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
  """One call of a recognised layer, as seen while discovering."""
  index: int
  kind: str
  layer: str                      # e.g. 'Dense' or 'Linear', for reports
  param_names: tuple[str, ...]
  leaf_index: tuple[int | None, ...]  # differentiated leaf read, per name
  x_shape: tuple[int, ...] = ()
  y_shape: tuple[int, ...] = ()
  y_dtype: Any = None
  layer_fn: Callable[[dict[str, jax.Array], jax.Array], jax.Array] | None = (
      None)
  contracted: int = 1             # DENSE: trailing input axes the kernel eats
  reason: str = ''                # why it cannot be tapped ('' if it can)

  @property
  def tappable(self) -> bool:
    return not self.reason


class _Local(threading.local):
  session: Any = None
  in_layer_fn: bool = False


_PATCH_DEPTH = [0]   # nested sessions patch the NNX classes once


_LOCAL = _Local()
_PATCH_LOCK = threading.RLock()


@contextlib.contextmanager
def _inside_layer_fn():
  previous = _LOCAL.in_layer_fn
  _LOCAL.in_layer_fn = True
  try:
    yield
  finally:
    _LOCAL.in_layer_fn = previous


class _Session:
  """Numbers the calls of recognised layers during one trace."""

  def __init__(self, batch_size: int):
    self.batch_size = batch_size
    self.count = 0

  def handle(self, kind, module, framework, args, kwargs, call_original):
    index = self.count
    self.count += 1
    return self.on_call(index, kind, module, framework, args, kwargs,
                        call_original)

  def on_call(self, index, kind, module, framework, args, kwargs,
              call_original):
    raise NotImplementedError


class Discover(_Session):
  """Records every recognised call and names the ones that can be tapped."""

  def __init__(self, batch_size: int, leaves: Sequence[Any]):
    super().__init__(batch_size)
    self._leaf_ids = {id(leaf): i for i, leaf in enumerate(leaves)}
    self.calls: list[LayerCall] = []

  def on_call(self, index, kind, module, framework, args, kwargs,
              call_original):
    params, make_layer_fn = (_linen_params if framework == 'linen'
                             else _nnx_params)(module)
    names = tuple(params)
    call = LayerCall(
        index=index, kind=kind, layer=type(module).__name__,
        param_names=names,
        leaf_index=tuple(self._leaf_ids.get(id(params[n])) for n in names))
    self.calls.append(call)
    x = args[0] if args else None
    call.reason = self._untappable_reason(call, args, kwargs, x)
    if call.reason:
      return call_original()
    if kind == DENSE:
      contracted = _contracted_trailing_axes(module, x.ndim)
      if contracted is None:
        call.kind = MATERIALIZE   # a contraction the dense rules do not cover
      else:
        call.contracted = contracted
    call.x_shape = tuple(x.shape)
    call.layer_fn = make_layer_fn()
    tap = jax.jit(_named(call.layer_fn, f'{TAP_PREFIX}{index}'))
    y = tap({n: params[n] for n in names}, x)
    if not isinstance(y, jax.Array) or not y.shape or (
        y.shape[0] != self.batch_size):
      call.reason = 'its output has no leading batch axis'
      return call_original()
    call.y_shape, call.y_dtype = tuple(y.shape), y.dtype
    return y

  def _untappable_reason(self, call, args, kwargs, x) -> str:
    if not call.param_names:
      return 'it has no parameters'
    if any(i is None for i in call.leaf_index):
      return ('its parameters are not the differentiated leaves themselves '
              '(transformed, e.g. cast, before the layer reads them)')
    if len(args) != 1 or any(v is not None for v in kwargs.values()):
      return 'it is called with more than one input'
    if not isinstance(x, jax.Array) or x.ndim < 1 or (
        x.shape[0] != self.batch_size):
      return (f'its input {getattr(x, "shape", type(x))} has no leading '
              f'batch axis of size {self.batch_size}')
    return ''


class Tap(_Session):
  """Adds the zero probes to tapped layers' outputs and keeps their inputs."""

  def __init__(self, batch_size: int, probes: dict[int, jax.Array]):
    super().__init__(batch_size)
    self._probes = probes
    self.inputs: dict[int, jax.Array] = {}

  def on_call(self, index, kind, module, framework, args, kwargs,
              call_original):
    y = call_original()
    if index in self._probes:
      probe = self._probes[index]
      if y.shape != probe.shape:
        raise RuntimeError(
            f'Layer call {index} ({type(module).__name__}) returned shape '
            f'{y.shape} but {probe.shape} when first traced; the loss must '
            'trace the same way every time.')
      self.inputs[index] = args[0]
      y = y + probe.astype(y.dtype)
    return y


def _contracted_trailing_axes(module, ndim: int) -> int | None:
  """How many trailing input axes a dense layer contracts (None: other)."""
  axis = getattr(module, 'axis', -1)
  if getattr(module, 'batch_dims', ()) or getattr(module, 'batch_axis', {}):
    return None
  # In increasing order, so that flattening them matches the kernel's order.
  axes = [a % ndim for a in ((axis,) if isinstance(axis, int) else axis)]
  if axes != list(range(ndim - len(axes), ndim)) or 0 in axes:
    return None
  return len(axes)


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


def _mixing_check(module, kwargs):
  use_running_average = kwargs.get('use_running_average')
  if use_running_average is None:
    use_running_average = getattr(module, 'use_running_average', None)
  if not use_running_average:
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
    _mixing_check(module, kwargs)
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
def active(session: _Session):
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


def zeros_probe(call: LayerCall) -> jax.Array:
  return jnp.zeros(call.y_shape, call.y_dtype)

