# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Per-example programs that XLA's partitioner gets wrong, found and refused.

``jax.vmap`` of a convolution's gradient folds the examples into the
convolution's feature groups (``feature_group_count`` or
``batch_group_count`` of b x G). With the batch split over several devices,
XLA's SPMD partitioner (jaxlib 0.10, XLA:CPU; reproduced below) computes
such a grouped convolution silently wrong: only the first device's examples
come out right, the textbook ``jax.jit(jax.vmap(jax.grad(f)))`` included::

    mesh = jax.make_mesh((8,), ('data',))
    x = jax.device_put(x, NamedSharding(mesh, P('data')))   # [16, 5, 5, 1]
    jax.jit(jax.vmap(jax.grad(conv_loss), in_axes=(None, 0)))(w, x)
    # examples 2..15 get example 3's kernel gradient

A statistic built on it would be silently wrong, so the statistics engine
looks for grouped convolutions in the program it is about to run whenever
it can see that its inputs are on a mesh of more than one device (arrays
placed on one, or a mesh set with ``jax.set_mesh``), and refuses. A
model's own grouped (e.g. depthwise) convolutions are refused with them:
their per-example gradients are grouped by examples too, and a group count
alone cannot tell a model's groups from folded examples.

What the check cannot see: inside ``jax.jit`` with ``in_shardings`` and no
mesh set, the traced values carry no placement, so a program that is later
partitioned over several devices looks like a one-device program.
"""

from __future__ import annotations

from typing import Any

import jax

from snr_optax._src import axis_types

PyTree = Any
_GROUPS = ('feature_group_count', 'batch_group_count')


def on_several_devices(tree: PyTree) -> bool:
  """Whether a mesh of several devices is set, or any leaf is placed (or
  typed) on more than one device."""
  context = jax.sharding.get_abstract_mesh()
  if not context.empty and context.size > 1:
    return True
  for leaf in jax.tree.leaves(tree):
    if isinstance(leaf, jax.Array) and not isinstance(leaf, jax.core.Tracer):
      if len(leaf.sharding.device_set) > 1:
        return True
      continue
    mesh = axis_types.typed_mesh(leaf)
    if mesh is not None and mesh.size > 1:
      return True
  return False


def _sub_jaxprs(params):
  for value in params.values():
    for item in (value if isinstance(value, (tuple, list)) else (value,)):
      if isinstance(item, jax.extend.core.ClosedJaxpr):
        yield item.jaxpr
      elif isinstance(item, jax.extend.core.Jaxpr):
        yield item


def group_counts(jaxpr) -> set[int]:
  """The group counts (> 1) of every convolution in ``jaxpr``, nested too."""
  found = set()
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == 'conv_general_dilated':
      found.update(eqn.params[k] for k in _GROUPS if eqn.params[k] > 1)
    for inner in _sub_jaxprs(eqn.params):
      found |= group_counts(inner)
  return found


def check_no_grouped_convolutions(program) -> None:
  """Refuses a program with grouped convolutions (to run on several devices).

  Args:
    program: the jaxpr of the statistics computation about to run.

  Raises:
    ValueError: naming the convolution's group count.
  """
  counts = sorted(group_counts(program))
  if counts:
    raise ValueError(
        'Per-example gradients of a convolution are computed as a grouped '
        f'convolution (group count {counts[-1]}), which XLA\'s SPMD '
        'partitioner computes wrongly on a mesh of several devices '
        '(silently wrong values; see snr_optax/_src/partitioner.py), so '
        'snr_optax refuses rather than return wrong statistics: take the '
        'statistics of this model on one device, or use '
        'streaming_snr_adamw, which needs no per-example gradients.')
