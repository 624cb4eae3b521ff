# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Running the statistics on meshes whose axes are ``Explicit``.

``jax.make_mesh`` makes ``AxisType.Explicit`` axes by default: shardings are
part of every value's type and each operation must know its output's. The
statistics engine reshapes and regroups the batch axis (microbatches,
per-example ``vmap`` next to an unsharded example index, products that
contract the sharded batch axis), which explicit typing refuses or finds
ambiguous although the compiler partitions all of it well. So the statistics
run with the mesh's explicit axes turned ``Auto`` for their duration (what
``jax.sharding.auto_axes`` does), and their results are given back the
shardings explicit typing expects of them: parameter-shaped statistics like
their parameters, per-example values split over the batch's axis, scalars
replicated. Values are the same either way; only the types change.

The lowest module: it knows nothing of statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
from jax.sharding import AxisType
from jax.sharding import PartitionSpec as P

PyTree = Any


def _explicit_axes(mesh) -> tuple[str, ...]:
  return tuple(name for name, kind in zip(mesh.axis_names, mesh.axis_types)
               if kind == AxisType.Explicit)


def mesh_of(sharding):
  """The mesh of ``sharding`` (a type's or an array's), or None if empty."""
  mesh = getattr(sharding, 'mesh', None)
  return None if mesh is None or getattr(mesh, 'empty', True) else mesh


def typed_mesh(x):
  """The mesh in ``x``'s type (inside ``jit`` too), or None."""
  return mesh_of(getattr(_type_of(x), 'sharding', None))


def explicit_mesh(tree: PyTree):
  """The abstract mesh with explicit axes that ``tree`` is typed on, or None.

  Taken from the context (``jax.set_mesh``) or, without one, from the types
  of the leaves (arrays placed on an explicit mesh carry it in their type);
  the concrete ``Mesh`` where a leaf is a concrete array (outside ``jit``).

  Raises:
    ValueError: if leaves are typed on different explicit meshes.
  """
  context = jax.sharding.get_abstract_mesh()
  if not context.empty:
    return context if _explicit_axes(context) else None
  found = None
  for leaf in jax.tree.leaves(tree):
    mesh = typed_mesh(leaf)
    if mesh is None or not _explicit_axes(mesh):
      continue
    if isinstance(leaf, jax.Array) and not isinstance(leaf, jax.core.Tracer):
      mesh = leaf.sharding.mesh
    if found is not None and (getattr(mesh, 'abstract_mesh', mesh)
                              != getattr(found, 'abstract_mesh', found)):
      raise ValueError(f'Arguments are placed on two different meshes with '
                       f'explicit axes, {found} and {mesh}; put them on one '
                       '(jax.device_put) or set one with jax.set_mesh.')
    found = mesh
  return found


def _type_of(leaf):
  try:
    return jax.typeof(leaf)
  except TypeError:
    return None


def spec_of(x) -> P:
  """The partition spec in ``x``'s type (``P()`` where it has none)."""
  sharding = getattr(_type_of(x), 'sharding', None)
  spec = getattr(sharding, 'spec', None)
  return spec if isinstance(spec, P) else P()


def leading_axis_spec(tree: PyTree):
  """The mesh axes the leading (batch) axis of ``tree``'s first leaf is on."""
  leaves = jax.tree.leaves(tree)
  for leaf in leaves:
    spec = spec_of(leaf)
    if len(spec) and spec[0] is not None:
      return spec[0]
  return None


def zeros(struct) -> jax.Array:
  """Zeros of a ``jax.ShapeDtypeStruct``, on explicit axes typed like it."""
  sharding = getattr(struct, 'sharding', None)
  mesh = mesh_of(sharding)
  if mesh is None or not _explicit_axes(mesh):
    return jax.numpy.zeros(struct.shape, struct.dtype)
  return jax.numpy.zeros(struct.shape, struct.dtype, out_sharding=(
      jax.sharding.NamedSharding(mesh, sharding.spec)))


def call_with_auto_axes(fn: Callable[..., Any], args: tuple[Any, ...],
                        out_specs: Callable[[PyTree], PyTree] | None) -> Any:
  """``fn(*args)`` with explicit mesh axes treated as ``Auto`` inside.

  Args:
    fn: the computation; it sees its arguments without explicit shardings.
    args: its positional arguments.
    out_specs: maps ``fn``'s output (its abstract values) to a pytree of
      ``PartitionSpec``, the explicit shardings the results are given; None
      for an output that holds no arrays (it is returned as it is).

  Returns:
    ``fn(*args)``, equal in value; with no explicit mesh in play, exactly
    ``fn(*args)``.
  """
  mesh = explicit_mesh(args)
  if mesh is None:
    return fn(*args)
  abstract = getattr(mesh, 'abstract_mesh', mesh)
  auto = abstract.update_axis_types(
      {name: AxisType.Auto for name in _explicit_axes(abstract)})
  with jax.sharding.use_abstract_mesh(auto):
    out = fn(*jax.tree.map(_drop_explicit_axes, args))
  if out_specs is None:
    return out
  # Outside jit, resharding needs the devices: the concrete mesh.
  context = (jax.set_mesh(mesh) if isinstance(mesh, jax.sharding.Mesh)
             else jax.sharding.use_abstract_mesh(mesh))
  with context:
    return jax.sharding.reshard(out, out_specs(out))


def _drop_explicit_axes(x):
  # A value typed on the explicit mesh is retyped on the Auto one (its
  # spec can no longer name the axes): it keeps its placement and the
  # compiler takes over its sharding.
  if typed_mesh(x) is None:
    return x
  return jax.sharding.reshard(x, P(*[None] * jax.numpy.ndim(x)))
