# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""One process of multiprocess_test: 2 CPU devices, JAX's distributed runtime.

  python tests/multiprocess_worker.py PROCESS_ID NUM_PROCESSES PORT OUT.npz
"""

import os
import sys


def main():
  """Everything runs here, so that importing this file does nothing."""
  os.environ['XLA_FLAGS'] = '--xla_force_host_platform_device_count=2'

  # pylint: disable=g-import-not-at-top,wrong-import-position
  import jax

  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  process_id, num_processes, port, out = (int(sys.argv[1]), int(sys.argv[2]),
                                          sys.argv[3], sys.argv[4])
  jax.distributed.initialize(coordinator_address=f'localhost:{port}',
                             num_processes=num_processes, process_id=process_id)

  import numpy as np
  import optax

  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
      __file__))))
  import snr_optax as so
  from tests import multiprocess_model as model_lib

  mesh = so.sharding.make_mesh({'data': -1})   # every device of every process
  params, loss_fn, (x, y) = model_lib.setup()
  per_process = len(y) // num_processes
  local = slice(process_id * per_process, (process_id + 1) * per_process)
  sharding = so.sharding.batch_sharding(mesh)
  batch = tuple(jax.make_array_from_process_local_data(sharding, a[local],
                                                       a.shape)
                for a in (x, y))
  params = jax.device_put(params, so.sharding.replicated(mesh))
  results = {}
  for method in ('fast', 'vmap'):
    _, stats = jax.jit(so.value_and_grad_stats(loss_fn, method=method))(
        params, batch)
    for name, tree in (('mean', stats.mean), ('m2', stats.sum_sq_dev)):
      for i, leaf in enumerate(jax.tree.leaves(tree)):
        results[f'{method}_{name}_{i}'] = np.asarray(leaf.addressable_data(0))
  opt = so.snr_adam(1e-2)
  stats_fn = so.value_and_grad_stats(loss_fn)

  @jax.jit
  def step(params, state, batch):
    _, stats = stats_fn(params, batch)
    updates, state = opt.update(stats, state, params)
    return optax.apply_updates(params, updates), state


  new_params, _ = step(params, opt.init(params), batch)
  for i, leaf in enumerate(jax.tree.leaves(new_params)):
    results[f'params_{i}'] = np.asarray(leaf.addressable_data(0))
  results['device_count'] = np.asarray(jax.device_count())
  if process_id == 0:
    np.savez(out, **results)
  jax.distributed.shutdown()


if __name__ == '__main__':
  main()
