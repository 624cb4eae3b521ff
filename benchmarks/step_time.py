# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Step time and peak memory of SNR-Adam against plain Adam, side by side.

For each model, every variant's full training step (statistics or gradient,
optimizer update, parameter update) is jitted, compiled, and then timed in
interleaved rounds on the same machine in one run, so that the ratios to the
plain ``jax.grad`` + ``optax.adam`` step are not skewed by drift. Peak memory
comes from the compiled executable's memory analysis. When PyTorch and
BackPACK are installed, their plain Adam and ``Variance`` + mask steps on
the same MLP are timed too (``benchmarks/torch_backpack.py``).

  python benchmarks/step_time.py --json benchmarks/results/step_time.json
  python benchmarks/step_time.py --markdown_from benchmarks/results/step_time.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import snr_optax as so  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.grokking import models as grokking_models  # pylint: disable=g-import-not-at-top,wrong-import-position


class MLP(nnx.Module):

  def __init__(self, sizes, *, rngs):
    self.layers = nnx.List([nnx.Linear(m, n, rngs=rngs)
                            for m, n in zip(sizes[:-1], sizes[1:])])

  def __call__(self, x):
    for layer in self.layers[:-1]:
      x = jax.nn.relu(layer(x))
    return self.layers[-1](x)


class CNN(nnx.Module):

  def __init__(self, *, rngs):
    self.conv1 = nnx.Conv(1, 16, (3, 3), rngs=rngs)
    self.conv2 = nnx.Conv(16, 32, (3, 3), strides=(2, 2), rngs=rngs)
    self.head = nnx.Linear(14 * 14 * 32, 10, rngs=rngs)

  def __call__(self, x):
    x = jax.nn.relu(self.conv1(x))
    x = jax.nn.relu(self.conv2(x))
    return self.head(x.reshape(x.shape[0], -1))


@dataclasses.dataclass
class Workload:
  name: str
  description: str
  model: nnx.Module
  batch: tuple[jax.Array, jax.Array]
  microbatch_size: int


def workloads(names) -> list[Workload]:
  rng = np.random.default_rng(0)
  out = []
  for name in names:
    if name == 'mlp':
      b = 256
      batch = (jnp.asarray(rng.normal(size=(b, 784)), jnp.float32),
               jnp.asarray(rng.integers(0, 10, b)))
      out.append(Workload('mlp', 'MLP 784-512-512-10, b=256',
                          MLP((784, 512, 512, 10), rngs=nnx.Rngs(0)), batch,
                          32))
    elif name == 'transformer':
      b, p = 512, 97
      batch = (jnp.asarray(rng.integers(0, p + 2, (b, 4))),
               jnp.asarray(rng.integers(0, p, b)))
      out.append(Workload(
          'transformer', 'grokking transformer (2x128, 4 heads), b=512',
          grokking_models.Transformer(p + 2, p, 4, rngs=nnx.Rngs(0)), batch,
          64))
    elif name == 'cnn':
      b = 256
      batch = (jnp.asarray(rng.normal(size=(b, 28, 28, 1)), jnp.float32),
               jnp.asarray(rng.integers(0, 10, b)))
      out.append(Workload('cnn', 'CNN conv16-conv32/2-dense, 28x28, b=256',
                          CNN(rngs=nnx.Rngs(0)), batch, 32))
    else:
      raise ValueError(f'unknown model {name!r}')
  return out


def make_steps(w: Workload, variants) -> dict[str, Callable]:
  graphdef, params = nnx.split(w.model, nnx.Param)

  def loss_fn(params, batch):
    x, y = batch
    logits = nnx.merge(graphdef, params)(x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  def plain(opt):
    def step(params, state, batch):
      loss, grads = jax.value_and_grad(loss_fn)(params, batch)
      updates, state = opt.update(grads, state, params)
      return optax.apply_updates(params, updates), state, loss
    return opt, step

  def per_example(method, track=False, **kw):
    opt = so.snr_adam(1e-3)
    if track:   # and the population-loss estimate of each step
      opt = so.track_population_risk(opt)
    stats_fn = so.value_and_grad_stats(loss_fn, method=method, **kw)

    def step(params, state, batch):
      loss, stats = stats_fn(params, batch)
      updates, state = opt.update(stats, state, params)
      return optax.apply_updates(params, updates), state, loss
    return opt, step

  def naive_vmap():
    """The textbook path: vmap(grad), jnp.mean/jnp.var, hard mask, Adam."""
    opt = optax.adam(1e-3)
    per_example = jax.vmap(jax.grad(
        lambda p, ex: loss_fn(p, jax.tree.map(lambda a: a[None], ex))),
                           in_axes=(None, 0))

    def step(params, state, batch):
      grads = per_example(params, batch)
      b = batch[1].shape[0]
      mean = jax.tree.map(lambda g: jnp.mean(g, axis=0), grads)
      noise = jax.tree.map(lambda g: jnp.var(g, axis=0) / (b - 1), grads)
      masked = jax.tree.map(lambda m, n: m * (m * m > n), mean, noise)
      updates, state = opt.update(masked, state, params)
      return optax.apply_updates(params, updates), state, loss_fn(params,
                                                                  batch)
    return opt, step

  table = {
      'naive_vmap': naive_vmap,
      'adam': lambda: plain(optax.adam(1e-3)),
      'adamw': lambda: plain(optax.adamw(1e-3, weight_decay=1e-4)),
      'streaming_snr_adamw': lambda: plain(so.streaming_snr_adamw(1e-3)),
      'snr_adam_fast': lambda: per_example('fast'),
      'snr_adam_fast_tracked': lambda: per_example('fast', track=True),
      'snr_adam_microbatch': lambda: per_example(
          'microbatch', microbatch_size=w.microbatch_size),
      'snr_adam_vmap': lambda: per_example('vmap'),
  }
  return {v: table[v]() for v in variants}, params


def measure(w: Workload, variants, rounds: int, steps_per_round: int,
            time_budget: float):
  steps, params = make_steps(w, variants)
  compiled, states, memory = {}, {}, {}
  for name, (opt, step) in steps.items():
    state = opt.init(params)
    lowered = jax.jit(step).lower(params, state, w.batch)
    t0 = time.perf_counter()
    compiled[name] = lowered.compile()
    compile_s = time.perf_counter() - t0
    analysis = compiled[name].memory_analysis()
    memory[name] = {
        'temp_bytes': int(analysis.temp_size_in_bytes),
        'argument_bytes': int(analysis.argument_size_in_bytes),
        'output_bytes': int(analysis.output_size_in_bytes),
        'peak_bytes': int(analysis.temp_size_in_bytes
                          + analysis.argument_size_in_bytes
                          + analysis.output_size_in_bytes
                          - analysis.alias_size_in_bytes),
        'compile_seconds': compile_s,
    }
    states[name] = (params, state)
    jax.block_until_ready(compiled[name](params, state, w.batch))  # warm-up
  times = {name: [] for name in steps}
  per_variant_steps = {}
  for name in steps:   # slow variants get fewer timed steps
    t0 = time.perf_counter()
    p, s = states[name]
    jax.block_until_ready(compiled[name](p, s, w.batch))
    one = time.perf_counter() - t0
    per_variant_steps[name] = max(1, min(steps_per_round,
                                         int(time_budget / rounds / one)))

  def run(name):
    p, s = states[name]
    for _ in range(per_variant_steps[name]):
      t0 = time.perf_counter()
      p, s, loss = compiled[name](p, s, w.batch)
      jax.block_until_ready(loss)
      times[name].append(time.perf_counter() - t0)
    states[name] = (p, s)

  # Variants whose step allocates b x params run after the others, not
  # between them: the step after a large allocation pays its page faults.
  heavy = [n for n in steps
           if n in ('snr_adam_vmap', 'snr_adam_microbatch', 'naive_vmap')]
  light = [n for n in steps if n not in heavy]
  for _ in range(rounds):
    for name in light:
      run(name)
  for name in heavy:
    for _ in range(rounds):
      run(name)
  medians = {name: statistics.median(ts) for name, ts in times.items()}
  return medians, {n: len(t) for n, t in times.items()}, memory


def torch_reference(args):
  try:
    from benchmarks import torch_backpack  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  if not torch_backpack.available():
    return None
  return torch_backpack.run(batch_size=256, steps=args.torch_steps)


_LABELS = {
    'adam': '`jax.grad` + `optax.adam`',
    'adamw': '`optax.adamw`',
    'streaming_snr_adamw': '`streaming_snr_adamw`',
    'snr_adam_fast': '**`snr_adam`, fast statistics**',
    'snr_adam_fast_tracked': '`track_population_risk(snr_adam)`, fast '
                             'statistics',
    'snr_adam_microbatch': '`snr_adam`, microbatch',
    'snr_adam_vmap': '`snr_adam`, vmap',
    'naive_vmap': 'textbook: `vmap(grad)`, `jnp.mean`/`jnp.var`, mask, Adam',
}


def markdown_table(report) -> str:
  """The README's step-time table, from a ``--json`` report."""
  lines = ['| model | step | ms/step | x Adam | peak MiB | x Adam |',
           '|---|---|---:|---:|---:|---:|']
  for model in report['models'].values():
    seconds = model['seconds_per_step']
    memory = model['memory']
    first = True
    for name, label in _LABELS.items():
      if name not in seconds:
        continue
      ratio = seconds[name] / seconds['adam']
      peak = memory[name]['peak_bytes']
      peak_ratio = peak / memory['adam']['peak_bytes']
      cells = [model['description'] if first else '', label,
               f'{seconds[name] * 1e3:.2f}', f'{ratio:.2f}',
               f'{peak / 2**20:.1f}', f'{peak_ratio:.2f}']
      if name == 'streaming_snr_adamw' and 'adamw' in seconds:
        cells[3] += f' ({seconds[name] / seconds["adamw"]:.2f} x AdamW)'
      if name == 'snr_adam_fast':
        cells[2:] = [f'**{c}**' for c in cells[2:]]
      lines.append('| ' + ' | '.join(cells) + ' |')
      first = False
  return '\n'.join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--models', default='mlp,transformer,cnn')
  parser.add_argument('--variants', default='adam,adamw,streaming_snr_adamw,'
                      'snr_adam_fast,snr_adam_fast_tracked,'
                      'snr_adam_microbatch,snr_adam_vmap,naive_vmap')
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--steps_per_round', type=int, default=10)
  parser.add_argument('--time_budget', type=float, default=60.0,
                      help='seconds of timed steps per variant at most')
  parser.add_argument('--torch_steps', type=int, default=30)
  parser.add_argument('--no_torch', action='store_true')
  parser.add_argument('--json', default='')
  parser.add_argument('--markdown_from', default='',
                      help='print the README table of a --json report and '
                      'exit')
  args = parser.parse_args(argv)
  if args.markdown_from:
    with open(args.markdown_from) as f:
      print(markdown_table(json.load(f)))
    return
  variants = args.variants.split(',')
  report = {
      'date': time.strftime('%Y-%m-%d'),
      'machine': {'platform': platform.platform(),
                  'processor': platform.processor() or platform.machine(),
                  'cpu_count': os.cpu_count(),
                  'jax_backend': jax.default_backend(),
                  'devices': [str(d) for d in jax.devices()]},
      'versions': {'jax': jax.__version__, 'optax': optax.__version__,
                   'snr_optax': so.__version__},
      'command': ' '.join(['python', 'benchmarks/step_time.py']
                          + (argv if argv is not None else sys.argv[1:])),
      'models': {},
  }
  for w in workloads(args.models.split(',')):
    medians, counts, memory = measure(w, variants, args.rounds,
                                      args.steps_per_round, args.time_budget)
    base = medians['adam']
    report['models'][w.name] = {
        'description': w.description,
        'seconds_per_step': medians, 'timed_steps': counts, 'memory': memory,
        'ratio_to_adam': {n: m / base for n, m in medians.items()},
    }
    print(f'\n{w.description}')
    print(f'{"variant":24s} {"ms/step":>10s} {"x adam":>8s} '
          f'{"peak MiB":>9s} {"x adam":>7s} {"steps":>6s}')
    peak_base = memory['adam']['peak_bytes']
    for n in variants:
      print(f'{n:24s} {medians[n] * 1e3:10.2f} {medians[n] / base:8.2f} '
            f'{memory[n]["peak_bytes"] / 2**20:9.1f} '
            f'{memory[n]["peak_bytes"] / peak_base:7.2f} {counts[n]:6d}')
    if 'adamw' in medians and 'streaming_snr_adamw' in medians:
      print(f'streaming_snr_adamw / adamw = '
            f'{medians["streaming_snr_adamw"] / medians["adamw"]:.3f}')
  if not args.no_torch and 'mlp' in report['models']:
    torch_result = torch_reference(args)
    if torch_result is not None:
      report['torch'] = torch_result
      print(f'\nPyTorch {torch_result["torch_version"]} on the same MLP '
            f'({torch_result["threads"]} threads):')
      for n, s in torch_result['seconds_per_step'].items():
        ratio = torch_result['ratio_to_plain'][n]
        print(f'{n:30s} {s * 1e3:10.2f} ms {ratio:8.2f}x')
  if args.json:
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, 'w') as f:
      json.dump(report, f, indent=1)
    print(f'\nwrote {args.json}')


if __name__ == '__main__':
  main()
