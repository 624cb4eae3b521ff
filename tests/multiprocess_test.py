# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Two processes with jax.distributed over loopback equal one process.

Each worker (multiprocess_worker.py) owns 2 CPU devices and half of a
global batch; the mesh spans the 4 devices of both processes, and JAX's
own runtime (the coordination service and gloo collectives) does the rest.
"""

import os
import socket
import subprocess
import sys

from absl.testing import absltest
import jax
import numpy as np
import optax

import snr_optax as so
from tests import multiprocess_model as model_lib

HERE = os.path.dirname(os.path.abspath(__file__))


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


class MultiProcessTest(absltest.TestCase):

  def test_two_processes_equal_one(self):
    out = os.path.join(self.create_tempdir().full_path, 'out.npz')
    port = str(_free_port())
    env = dict(os.environ)
    env.pop('XLA_FLAGS', None)
    workers = [subprocess.Popen(
        [sys.executable, os.path.join(HERE, 'multiprocess_worker.py'),
         str(i), '2', port, out], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True) for i in range(2)]
    logs = [w.communicate(timeout=300)[0] for w in workers]
    for w, log in zip(workers, logs):
      self.assertEqual(w.returncode, 0, log[-3000:])
    got = np.load(out)
    self.assertEqual(int(got['device_count']), 4)

    params, loss_fn, batch = model_lib.setup()
    for method in ('fast', 'vmap'):
      _, stats = so.value_and_grad_stats(loss_fn, method=method)(params,
                                                                 batch)
      for name, tree in (('mean', stats.mean), ('m2', stats.sum_sq_dev)):
        for i, leaf in enumerate(jax.tree.leaves(tree)):
          np.testing.assert_allclose(got[f'{method}_{name}_{i}'], leaf,
                                     rtol=1e-4, atol=1e-7)
    opt = so.snr_adam(1e-2)
    _, stats = so.value_and_grad_stats(loss_fn)(params, batch)
    updates, _ = opt.update(stats, opt.init(params), params)
    for i, leaf in enumerate(jax.tree.leaves(optax.apply_updates(params,
                                                                 updates))):
      np.testing.assert_allclose(got[f'params_{i}'], leaf, rtol=1e-4,
                                 atol=1e-6)


if __name__ == '__main__':
  absltest.main()
