# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Data-parallel scaling of plain Adam and SNR-Adam over 1, 2, 4, 8 devices.

The global batch is fixed; the batch axis is split over a 'data' mesh axis
and the parameters are replicated. For each device count (a fresh process
with that many host CPU devices) this times a full step of ``jax.grad`` +
``optax.adam`` and of ``snr_adam`` with the fast statistics, and reads from
the compiled program the bytes its collectives produce per device. The
point is the communication volume: per-example statistics cross devices as
parameter-sized all-reduces, never as batch x parameter tensors (whose size
is printed alongside for scale).

On a CPU the 'devices' are slices of the same cores (here 2), so step times
do not fall with more devices; on GPUs or TPUs each device is a chip.

  python benchmarks/scaling.py --json benchmarks/results/scaling.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys


def measure(devices: int, batch: int, steps: int) -> dict:
  """Runs in a process that has ``devices`` host CPU devices."""
  # pylint: disable=g-import-not-at-top
  import statistics
  import time
  from flax import nnx
  import jax
  import numpy as np
  import optax
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
      __file__))))
  import snr_optax as so
  from benchmarks import step_time

  model = step_time.MLP((784, 512, 512, 10), rngs=nnx.Rngs(0))
  graphdef, params = nnx.split(model, nnx.Param)

  def loss_fn(params, batch):
    logits = nnx.merge(graphdef, params)(batch[0])
    return optax.softmax_cross_entropy_with_integer_labels(
        logits, batch[1]).mean()

  mesh = so.sharding.make_mesh({'data': devices},
                               devices=jax.devices()[:devices])
  params = jax.device_put(params, so.sharding.replicated(mesh))
  rng = np.random.default_rng(0)
  data = so.sharding.shard_batch(
      (rng.normal(size=(batch, 784)).astype(np.float32),
       rng.integers(0, 10, batch).astype(np.int32)), mesh)
  variants = {
      'adam': (optax.adam(1e-3), jax.value_and_grad(loss_fn)),
      'snr_adam_fast': (so.snr_adam(1e-3),
                        so.value_and_grad_stats(loss_fn, method='fast')),
  }
  out = {'devices': devices, 'batch': batch,
         'param_bytes': int(sum(4 * p.size for p in jax.tree.leaves(params)))}
  for name, (opt, grads_fn) in variants.items():
    def step(params, state, batch, opt=opt, grads_fn=grads_fn):
      loss, grads = grads_fn(params, batch)
      updates, state = opt.update(grads, state, params)
      return optax.apply_updates(params, updates), state, loss
    state = opt.init(params)
    compiled = jax.jit(step).lower(params, state, data).compile()
    p, s = params, state
    p, s, loss = compiled(p, s, data)
    jax.block_until_ready(loss)
    times = []
    for _ in range(steps):
      t0 = time.perf_counter()
      p, s, loss = compiled(p, s, data)
      jax.block_until_ready(loss)
      times.append(time.perf_counter() - t0)
    out[name] = {'seconds_per_step': statistics.median(times),
                 'collective_bytes': so.sharding.collective_bytes(compiled)}
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--devices', default='1,2,4,8')
  parser.add_argument('--batch', type=int, default=256)
  parser.add_argument('--steps', type=int, default=20)
  parser.add_argument('--json', default='')
  parser.add_argument('--worker', type=int, default=0, help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.worker:
    print(json.dumps(measure(args.worker, args.batch, args.steps)))
    return
  rows = []
  for n in map(int, args.devices.split(',')):
    env = dict(os.environ,
               XLA_FLAGS=f'--xla_force_host_platform_device_count={n}')
    out = subprocess.run([sys.executable, os.path.abspath(__file__),
                          f'--worker={n}', f'--batch={args.batch}',
                          f'--steps={args.steps}'], env=env, check=True,
                         capture_output=True, text=True)
    rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
  per_example = args.batch * rows[0]['param_bytes']
  print(f'MLP 784-512-512-10, global batch {args.batch}, data-parallel; '
        f'parameters {rows[0]["param_bytes"] / 2**20:.2f} MiB; gathering '
        f'per-example gradients would move {per_example / 2**20:.0f} MiB')
  print('MiB: bytes each device receives from collectives per step; "cond" '
        'are the exact recomputations that run only when the float32 guard '
        'fires; "other" any gather, scatter or permute.')
  print(f'{"devices":>7s} {"adam ms":>9s} {"snr ms":>9s} {"ratio":>6s} '
        f'{"adam MiB":>9s} {"snr MiB":>8s} {"snr cond MiB":>13s} '
        f'{"snr other MiB":>14s}')
  for r in rows:
    a, s = r['adam'], r['snr_adam_fast']
    other = sum(v for k, v in s['collective_bytes'].items()
                if k not in ('all-reduce', 'conditional'))
    print(f'{r["devices"]:7d} {a["seconds_per_step"] * 1e3:9.2f} '
          f'{s["seconds_per_step"] * 1e3:9.2f} '
          f'{s["seconds_per_step"] / a["seconds_per_step"]:6.2f} '
          f'{a["collective_bytes"]["all-reduce"] / 2**20:9.2f} '
          f'{s["collective_bytes"]["all-reduce"] / 2**20:8.2f} '
          f'{s["collective_bytes"]["conditional"] / 2**20:13.2f} '
          f'{other / 2**20:14.2f}')
  if args.json:
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, 'w') as f:
      json.dump({'rows': rows, 'per_example_bytes': per_example,
                 'command': 'python benchmarks/scaling.py'}, f, indent=1)


if __name__ == '__main__':
  main()
