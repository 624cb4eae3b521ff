# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Mesh helpers for data- and parameter-sharded training with jax.jit.

Nothing here is needed for correctness: every statistics method and every
transformation runs under ``jax.jit`` with ``NamedSharding`` inputs as it
is, and XLA's partitioner reduces per-example statistics across the batch
axis with all-reduces. These helpers make the common set-ups a few lines.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

PyTree = Any

COLLECTIVES = ('all-reduce', 'all-gather', 'reduce-scatter', 'all-to-all',
               'collective-permute')


def make_mesh(axes: Mapping[str, int] | None = None,
              devices: Sequence[jax.Device] | None = None, *,
              axis_type: AxisType = AxisType.Explicit) -> Mesh:
  """``jax.make_mesh`` with named sizes, e.g. ``{'data': 4, 'fsdp': 2}``.

  Everything in snr_optax works on meshes of either axis type, with or
  without ``jax.set_mesh``; this helper only adds sizes by name and -1.

  Args:
    axes: axis name -> size, in mesh order; one size may be -1 (the rest of
      the devices). Default: one ``'data'`` axis over every device.
    devices: the devices (default: all of ``jax.devices()``, which spans
      every host after ``jax.distributed.initialize()``).
    axis_type: the type of every axis: ``AxisType.Explicit`` (shardings in
      types; ``jax.make_mesh``'s default) or ``AxisType.Auto`` (the compiler
      propagates shardings).

  Returns:
    A ``jax.sharding.Mesh``.

  Raises:
    ValueError: if the sizes do not multiply to the number of devices.

  Examples:
    >>> import jax
    >>> import snr_optax as so
    >>> mesh = so.sharding.make_mesh({'data': -1})
    >>> mesh.axis_names, mesh.axis_types
    (('data',), (Explicit,))
  """
  devices = list(jax.devices() if devices is None else devices)
  axes = dict({'data': -1} if axes is None else axes)
  known = math.prod(s for s in axes.values() if s != -1)
  if list(axes.values()).count(-1) > 1:
    raise ValueError(f'At most one mesh axis may be -1, got {axes}.')
  if -1 in axes.values():
    if len(devices) % known:
      raise ValueError(f'{len(devices)} devices do not divide into mesh '
                       f'axes {axes}.')
    axes = {k: (len(devices) // known if s == -1 else s)
            for k, s in axes.items()}
  if math.prod(axes.values()) != len(devices):
    raise ValueError(f'Mesh axes {axes} need {math.prod(axes.values())} '
                     f'devices, but {len(devices)} are given.')
  return jax.make_mesh(tuple(axes.values()), tuple(axes),
                       axis_types=(axis_type,) * len(axes),
                       devices=devices)


def batch_sharding(mesh: Mesh, axis: str | Sequence[str] = 'data'
                   ) -> NamedSharding:
  """Leading (batch) axis split over ``axis``, the rest replicated.

  Args:
    mesh: the mesh.
    axis: the mesh axis (or axes) the batch axis is split over.

  Returns:
    ``NamedSharding(mesh, PartitionSpec(axis))``.

  Examples:
    >>> import snr_optax as so
    >>> mesh = so.sharding.make_mesh({'data': -1})
    >>> so.sharding.batch_sharding(mesh).spec
    P('data',)
  """
  return NamedSharding(mesh, P(axis))


def replicated(mesh: Mesh) -> NamedSharding:
  """The same value on every device of ``mesh``.

  Args:
    mesh: the mesh.

  Returns:
    ``NamedSharding(mesh, PartitionSpec())``.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> import snr_optax as so
    >>> mesh = so.sharding.make_mesh({'data': -1})
    >>> params = jax.device_put({'w': jnp.zeros(3)},
    ...                         so.sharding.replicated(mesh))
    >>> params['w'].sharding.spec
    P()
  """
  return NamedSharding(mesh, P())


def shard_batch(batch: PyTree, mesh: Mesh,
                axis: str | Sequence[str] = 'data') -> PyTree:
  """Puts every leaf of ``batch`` on ``mesh``, split along its leading axis.

  Host (NumPy) leaves are taken as the *global* batch, the same on every
  process: each process places only the slices its own devices hold, so the
  same call serves one host and a multi-host run after
  ``jax.distributed.initialize()``.

  Args:
    batch: a pytree of arrays (host or device) sharing a leading batch axis.
    mesh: the mesh.
    axis: the mesh axis (or axes) the batch axis is split over.

  Returns:
    ``batch`` with every leaf a ``jax.Array`` placed by
    :func:`batch_sharding`.

  Raises:
    ValueError: naming the leaf, if its leading axis does not divide evenly
      over the mesh axis.

  Examples:
    >>> import numpy as np
    >>> import snr_optax as so
    >>> mesh = so.sharding.make_mesh({'data': -1})
    >>> n = mesh.shape['data']                # the number of devices
    >>> batch = {'x': np.ones((2 * n, 3), np.float32)}
    >>> x = so.sharding.shard_batch(batch, mesh)['x']
    >>> x.sharding.spec, x.addressable_shards[0].data.shape  # 2 per device
    (P('data',), (2, 3))
  """
  names = (axis,) if isinstance(axis, str) else tuple(axis)
  n = math.prod(mesh.shape[a] for a in names)
  for path, leaf in jax.tree_util.tree_flatten_with_path(batch)[0]:
    shape = np.shape(leaf)
    if not shape or shape[0] % n:
      raise ValueError(
          f'Batch leaf {jax.tree_util.keystr(path) or "<root>"} has shape '
          f'{shape}; its leading axis must divide evenly over mesh axis '
          f'{axis} of size {n}.')
  sharding = batch_sharding(mesh, axis)

  def put(leaf):
    if isinstance(leaf, jax.Array):
      return jax.device_put(leaf, sharding)
    leaf = np.asarray(leaf)
    return jax.make_array_from_callback(leaf.shape, sharding,
                                        lambda index: leaf[index])
  return jax.tree.map(put, batch)


def fsdp_shardings(params: PyTree, mesh: Mesh, axis: str = 'fsdp', *,
                   min_size: int = 1024) -> PyTree:
  """Shardings that split each large parameter over ``axis`` (FSDP).

  Each leaf with at least ``min_size`` elements is split along its largest
  dimension divisible by the axis size; other leaves are replicated. The SNR
  statistics and masks are elementwise (or reduce per leaf), so they follow
  whatever sharding the parameters have.

  Args:
    params: a pytree of arrays (or ``jax.ShapeDtypeStruct``).
    mesh: the mesh.
    axis: the mesh axis the parameters are split over.
    min_size: leaves with fewer elements are replicated.

  Returns:
    A pytree of ``NamedSharding`` with the structure of ``params``.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> import snr_optax as so
    >>> mesh = so.sharding.make_mesh({'fsdp': -1})
    >>> n = mesh.shape['fsdp']
    >>> params = {'w': jnp.zeros((2, 1024 * n)), 'b': jnp.zeros(3)}
    >>> shardings = so.sharding.fsdp_shardings(params, mesh)
    >>> shardings['w'].spec, shardings['b'].spec   # b is below min_size
    (P(None, 'fsdp'), P())
    >>> params = jax.device_put(params, shardings)
  """
  n = mesh.shape[axis]

  def choose(leaf):
    shape = np.shape(leaf)
    if math.prod(shape) < min_size:
      return NamedSharding(mesh, P())
    dims = [d for d in np.argsort(shape)[::-1] if shape[d] % n == 0]
    if not dims:
      return NamedSharding(mesh, P())
    spec = [None] * len(shape)
    spec[dims[0]] = axis
    return NamedSharding(mesh, P(*spec))

  return jax.tree.map(choose, params)


def shardings_of(tree: PyTree, mesh: Mesh) -> PyTree:
  """The sharding of every leaf on ``mesh``, e.g. for ``out_shardings``.

  On ``Explicit`` axes outputs carry their shardings in their types and
  this is not needed. With ``AxisType.Auto`` meshes the compiler picks
  output shardings; pass
  the parameters' and the optimizer state's own shardings as
  ``out_shardings`` so that a sharded step returns them sharded the same
  way. Optimizer states made by ``opt.init`` on sharded parameters share
  their parameters' shardings; leaves that are not on ``mesh`` (step
  counters and other scalars) are taken as replicated.

  Args:
    tree: a pytree of arrays.
    mesh: the mesh.

  Returns:
    A pytree of ``NamedSharding`` on ``mesh`` with the structure of ``tree``.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> import snr_optax as so
    >>> mesh = so.sharding.make_mesh({'fsdp': -1})
    >>> params = {'w': jnp.zeros((2, 1024 * mesh.shape['fsdp']))}
    >>> params = jax.device_put(params,
    ...                         so.sharding.fsdp_shardings(params, mesh))
    >>> tree = {'w': params['w'], 'count': jnp.zeros([], jnp.int32)}
    >>> shardings = so.sharding.shardings_of(tree, mesh)
    >>> shardings['w'].spec, shardings['count'].spec
    (P(None, 'fsdp'), P())
  """
  def sharding(x):
    s = getattr(x, 'sharding', None)
    if isinstance(s, NamedSharding) and s.mesh == mesh:
      return s
    return replicated(mesh)
  return jax.tree.map(sharding, tree)


def collective_bytes(compiled_or_text: Any) -> dict[str, int]:
  """Bytes produced by each kind of collective in a compiled program.

  Reads the HLO text of ``jax.jit(f).lower(...).compile()`` (or the text
  itself) and sums, per collective kind, the sizes of the collectives'
  per-device results: the data each device receives. Each collective in
  the program text counts once (one inside a loop body counts once).
  Collectives inside ``lax.cond`` branches, which run only when their
  branch is taken, are summed apart under ``'conditional'``. Used by the
  tests and the scaling benchmark to show that per-example statistics cross
  devices as parameter-sized reductions, never as batch x parameter tensors.

  Args:
    compiled_or_text: a ``jax.stages.Compiled`` or its HLO text.

  Returns:
    Bytes per device for each of ``'all-reduce'``, ``'all-gather'``,
    ``'reduce-scatter'``, ``'all-to-all'``, ``'collective-permute'`` and
    ``'conditional'``.

  Examples:
    >>> import jax, jax.numpy as jnp, numpy as np
    >>> import snr_optax as so
    >>> hlo = '%ar = f32[512]{0} all-reduce(f32[512]{0} %p), to_apply=%add'
    >>> so.sharding.collective_bytes(hlo)['all-reduce']   # 512 x 4 bytes
    2048
    >>> mesh = so.sharding.make_mesh({'data': -1})
    >>> x = so.sharding.shard_batch(
    ...     np.ones((8 * mesh.shape['data'], 3), np.float32), mesh)
    >>> compiled = jax.jit(lambda x: x.sum(0)).lower(x).compile()
    >>> so.sharding.collective_bytes(compiled)['all-gather']  # no gather
    0
  """
  text = (compiled_or_text if isinstance(compiled_or_text, str)
          else compiled_or_text.as_text())
  totals = {kind: 0 for kind in COLLECTIVES + ('conditional',)}
  for kind, shapes, in_cond in collectives(text):
    totals['conditional' if in_cond else kind] += sum(
        _bytes(dtype, dims) for dtype, dims in shapes)
  return totals


_DTYPE_BYTES = {'pred': 1, 's8': 1, 'u8': 1, 's16': 2, 'u16': 2, 'f16': 2,
                'bf16': 2, 's32': 4, 'u32': 4, 'f32': 4, 's64': 8, 'u64': 8,
                'f64': 8, 'c64': 8, 'c128': 16}
_OP = re.compile(r'^\s*(?:ROOT\s+)?%?[\w.\-]+\s*=\s*(.*?)\s+('
                 + '|'.join(COLLECTIVES) + r')(?:-start)?\(')
_SHAPE = re.compile(r'\b(pred|[subfc]\d+|bf16)\[([\d,]*)\]')


def collectives(text: str) -> list[tuple[str, list[tuple[str, tuple[int,
                                                                    ...]]],
                                         bool]]:
  """(kind, [(dtype, dims), ...], in_cond) per collective in HLO ``text``.

  ``in_cond`` tells a collective traced inside a ``lax.cond`` branch (its
  op name carries JAX's ``/cond/`` scope).
  """
  found = []
  for line in text.splitlines():
    match = _OP.match(line)
    if match:
      shapes = [(dt, tuple(int(d) for d in dims.split(',') if d))
                for dt, dims in _SHAPE.findall(match.group(1))]
      found.append((match.group(2), shapes, '/cond/' in line))
  return found


def _bytes(dtype: str, dims: tuple[int, ...]) -> int:
  return _DTYPE_BYTES.get(dtype, 4) * math.prod(dims)
