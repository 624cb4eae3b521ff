# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Mesh helpers for sharded training (``jax.jit`` with ``NamedSharding``).

A data-parallel SNR-Adam step in a few lines::

  mesh = so.sharding.make_mesh({'data': -1})
  params = jax.device_put(params, so.sharding.replicated(mesh))
  opt_state = opt.init(params)
  stats_fn = so.value_and_grad_stats(loss_fn)

  @jax.jit
  def train_step(params, opt_state, batch):
    loss, stats = stats_fn(params, batch)
    updates, opt_state = opt.update(stats, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  params, opt_state, loss = train_step(params, opt_state,
                                       so.sharding.shard_batch(batch, mesh))

With parameters sharded too (FSDP), put them on the mesh with
``fsdp_shardings`` before ``opt.init`` and keep every output where its input
was with ``jax.jit(train_step, out_shardings=(so.sharding.shardings_of(params, mesh),
so.sharding.shardings_of(opt_state, mesh), None))``.
"""

from snr_optax._src.sharding import batch_sharding
from snr_optax._src.sharding import collective_bytes
from snr_optax._src.sharding import fsdp_shardings
from snr_optax._src.sharding import make_mesh
from snr_optax._src.sharding import replicated
from snr_optax._src.sharding import shard_batch
from snr_optax._src.sharding import shardings_of

__all__ = ('batch_sharding', 'collective_bytes', 'fsdp_shardings',
           'make_mesh', 'replicated', 'shard_batch', 'shardings_of')
