# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Which exact rule to use for a dense kernel shared over T positions.

For g_i = sum_t x_it d_it^T, the position-pair identity costs one product of
[b T(T+1)/2, n_in] by [b T(T+1)/2, n_out] (compute-bound, grows as T^2);
forming the g_i in chunks costs a batched product of the ordinary size plus
reading and writing b x n_in x n_out values (memory-bound, grows as T).
This times both, side by side, for the shapes given, to place
``PAIR_MAX_POSITIONS`` (snr_optax/_src/fast/rules.py).

  python benchmarks/dense_rules.py --batch 512 --n_in 128 --n_out 512
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from snr_optax._src.fast import rules  # pylint: disable=g-import-not-at-top,wrong-import-position


def _time(fn, *args, repeats=10):
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch', type=int, default=512)
  parser.add_argument('--n_in', type=int, default=128)
  parser.add_argument('--n_out', type=int, default=512)
  parser.add_argument('--positions', default='2,4,6,8,12,16,32')
  parser.add_argument('--chunk', type=int, default=0,
                      help='examples per chunk (0: 2^24 elements)')
  args = parser.parse_args(argv)
  b, n_in, n_out = args.batch, args.n_in, args.n_out
  chunk = args.chunk or max(1, min(b, (1 << 24) // (n_in * n_out)))
  rng = np.random.default_rng(0)
  print(f'b={b} n_in={n_in} n_out={n_out} chunk={chunk}; ms per call')
  print(f'{"T":>4s} {"weight grad":>12s} {"pairs":>8s} {"chunked":>8s}')
  for positions in map(int, args.positions.split(',')):
    x = jnp.asarray(rng.normal(size=(b, positions, n_in)), jnp.float32)
    d = jnp.asarray(rng.normal(size=(b, positions, n_out)), jnp.float32)
    mean = jnp.einsum('bti,bto->io', x, d) / b
    plain = jax.jit(lambda x, d: jnp.einsum('bti,bto->io', x, d))
    pairs = jax.jit(functools.partial(rules.dense_kernel_sum_sq_dev,
                                      chunk=chunk))
    old = rules.PAIR_MAX_POSITIONS
    rules.PAIR_MAX_POSITIONS = 10**9   # force the pair identity
    t_pairs = _time(pairs, x, d, mean)
    rules.PAIR_MAX_POSITIONS = old
    chunked = jax.jit(functools.partial(rules.materialized_dense, chunk=chunk))
    t_chunked = _time(chunked, x, d)
    t_plain = _time(plain, x, d)
    print(f'{positions:4d} {t_plain * 1e3:12.2f} {t_pairs * 1e3:8.2f} '
          f'{t_chunked * 1e3:8.2f}')


if __name__ == '__main__':
  main()
