# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Where the streaming gate hurts: optax's Rosenbrock test at lr 0.1.

optax's own optimizer test (``optax/_src/alias_test.py``) runs 10,000 steps
on f(x, y) = (1 - x)^2 + 100 (y - x^2)^2 from (0, 0) and asks for (1, 1)
within 3e-2. Adam crosses the curved valley back and forth; the streaming
gate's s = EMA of (g_t - m_{t-1})^2 reads that oscillation of the gradient as
noise, so q falls and the iterate stops in the valley. This prints, for
``optax.adamw`` and ``streaming_snr_adamw`` (``hard`` and the default
``snr`` mask), where each ends, when (if) it came within 3e-2 of (1, 1), and
what the mask did; the README's "Sharp edges" numbers come from it. The
last rows run the same steps as a Python loop over a jitted step: the same
arithmetic compiled separately, whose rounding differs, to show how far the
stopping point depends on it.

  python benchmarks/sharp_edges.py
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import snr_optax as so  # pylint: disable=g-import-not-at-top,wrong-import-position


def rosenbrock(params):
  x, y = params[0], params[1]
  return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2


def run(opt, steps, python_loop=False):
  """Per-step parameters and mask fraction (NaN where there is no mask).

  The steps run in one ``lax.scan``, or with ``python_loop`` as a Python loop
  over a jitted step (the same arithmetic, compiled separately).
  """
  def step(carry, _):
    params, state = carry
    updates, state = opt.update(jax.grad(rosenbrock)(params), state, params)
    params = optax.apply_updates(params, updates)
    fraction = optax.tree.get(state, 'mask_fraction', default=jnp.nan)
    return (params, state), (params, fraction)

  init = jnp.zeros(2, jnp.float32)
  carry = (init, opt.init(init))
  if python_loop:
    one = jax.jit(lambda c: step(c, None))
    out = []
    for _ in range(steps):
      carry, ys = one(carry)
      out.append(ys)
    trajectory = np.stack([np.asarray(p) for p, _ in out])
    fractions = np.array([float(f) for _, f in out])
    return trajectory, fractions
  _, (trajectory, fractions) = jax.jit(
      lambda c: jax.lax.scan(step, c, None, length=steps))(carry)
  return np.asarray(trajectory), np.asarray(fractions)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--steps', type=int, default=10_000)
  parser.add_argument('--learning_rate', type=float, default=0.1)
  args = parser.parse_args(argv)
  if args.steps < 1 or args.learning_rate <= 0:
    parser.exit(2, 'sharp_edges.py: --steps and --learning_rate must be '
                'positive.\n')
  lr = args.learning_rate
  runs = {
      'optax.adamw': optax.adamw(lr),
      'streaming_snr_adamw, mode="hard"': so.streaming_snr_adamw(
          lr, mode='hard'),
      'streaming_snr_adamw, mode="snr" (default)': so.streaming_snr_adamw(lr),
      'streaming_snr_adamw, mode="snr", weight_decay=0': (
          so.streaming_snr_adamw(lr, weight_decay=0.0)),
      'streaming_snr_adamw, alpha=0 (mask held at 1)': (
          so.streaming_snr_adamw(lr, alpha=0.0)),
  }
  print(f'Rosenbrock from (0, 0), lr {lr}, {args.steps} steps, jax '
        f'{jax.__version__}, optax {optax.__version__}, '
        f'{jax.default_backend()}')
  print('| optimizer | ends at | distance to (1, 1) | f | first within 3e-2 '
        '| mask, last step | mean mask, last 1,000 steps | step the mask '
        'first < 0.1, and where |')
  print('|---|---|---:|---:|---:|---:|---:|---|')
  rows = [(name, opt, False) for name, opt in runs.items()]
  rows += [(name + ', Python loop', runs[name], True)
           for name in list(runs)[1:3]]
  for name, opt, python_loop in rows:
    trajectory, fractions = run(opt, args.steps, python_loop)
    final = trajectory[-1]
    close = np.all(np.abs(trajectory - 1.0) <= 3e-2, axis=1)
    first = f'{int(np.argmax(close)) + 1:,}' if close.any() else 'never'
    if np.all(np.isnan(fractions)):
      mask_last = mask_mean = low = '-'
    else:
      mask_last = f'{fractions[-1]:.3f}'
      mask_mean = f'{np.mean(fractions[-1000:]):.3f}'
      below = np.flatnonzero(fractions < 0.1)
      low = ('never' if not below.size else
             f'{below[0] + 1:,} at ({trajectory[below[0], 0]:.2f}, '
             f'{trajectory[below[0], 1]:.2f})')
    print(f'| {name} | ({final[0]:.3f}, {final[1]:.3f}) | '
          f'{np.linalg.norm(final - 1.0):.3f} | '
          f'{float(rosenbrock(jnp.asarray(final))):.2e} | {first} | '
          f'{mask_last} | {mask_mean} | {low} |')


if __name__ == '__main__':
  main()
