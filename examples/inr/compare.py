# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Runs a suite of optimizers x seeds on the noisy image and tabulates PSNRs.

Resumable: a finished run (``result.json`` present) is skipped and an
unfinished one resumes from its last checkpoint. Writes ``results.json``,
``results.md`` (the table, with the environment it was measured in and the
commands that made it), ``psnr.png`` (clean and fit PSNR curves of every
run and seed) and ``images.png`` (seed 0's reconstructions: best clean
step, final step, the early-stopping pick) into ``--workdir``; refuses to
put runs from different code or environments into one table.

  python -m examples.inr.compare --suite=quick --seeds=0,1,2 \\
      --workdir=runs/inr_quick
  python -m examples.inr.compare --suite=quick --seeds=0,1,2 \\
      --workdir=runs/inr_quick --table_only \\
      --publish=examples/inr/results/quick

Ctrl-C saves the running run's checkpoint and prints the command that goes
on with the suite. The machinery (suites, provenance, noise floor, README
blocks) is ``examples/common/suites.py``; this file holds the suites of this
example and how its table reads.
"""

from __future__ import annotations

from collections.abc import Mapping
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from examples.common import cli  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.common import suites  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.common import tables  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.inr import config_schema  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.inr import configs  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.inr.configs import adam  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.inr.configs import adam_early_stop  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.inr.configs import snr_adam  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.inr.configs import streaming  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.inr.configs import tiny  # pylint: disable=g-import-not-at-top,wrong-import-position

Run, Suite = suites.Run, suites.Suite


def _runs(extra_adam: bool = True) -> dict[str, Run]:
  runs = {'adam': Run(adam)}
  if extra_adam:
    # A small learning-rate sweep, so that the baseline is tuned.
    runs.update({f'adam_lr{lr}': Run(adam, {'learning_rate': float(lr)})
                 for lr in ('3e-5', '3e-4', '1e-3')})
  runs.update({'adam_early_stop': Run(adam_early_stop),
               'snr_adam': Run(snr_adam),
               'streaming': Run(streaming)})
  return runs


SUITES: dict[str, Suite] = {
    'quick': Suite(
        # On seed 0 Adam's clean PSNR peaks near step 300 and falls from
        # there (a 500-step probe): 2,000 steps show the memorisation.
        task={'num_steps': 2_000},
        about='the default setting (cameraman 128 x 128, sigma 0.1, SIREN '
              '3 x 256, full-image batches), 2,000 steps: what a 2-core CPU '
              'affords for 3 seeds',
        runs=_runs()),
    'side256': Suite(
        task={'side': 256, 'num_steps': 2_000},
        about='the same at 256 x 256 (about 4x the cost of a step)',
        runs=_runs(extra_adam=False)),
    'tiny': Suite(
        task=tiny.TASK, about='seconds: for tests and CI',
        runs=_runs(extra_adam=False)),
}


def first_step_at(rows: list[dict[str, Any]], psnr: float | None):
  """The first evaluated step whose clean PSNR is at least ``psnr``."""
  if psnr is None:
    return None
  return next((r['step'] for r in rows if r['clean_psnr'] >= psnr), None)


def _per_seed(workdir: str, name: str, seed: int,
              baseline_best: float | None) -> dict[str, Any] | None:
  """One finished run's numbers, or None if it has not finished."""
  result = suites.result(workdir, name, seed)
  if result is None:
    return None
  curve = suites.curve(workdir, name, seed)
  return {
      'seed': seed,
      'best_clean_psnr': result['best_clean_psnr'],
      'best_clean_step': result['best_clean_step'],
      'final_step': result['final_step'],
      'final_clean_psnr': result['final_clean_psnr'],
      'final_fit_psnr': result['final_fit_psnr'],
      'early_stop_step': result['early_stop_step'],
      'early_stop_clean_psnr': result['early_stop_clean_psnr'],
      'noisy_psnr': result['noisy_psnr'],
      'steps_to_baseline_best': first_step_at(curve, baseline_best),
      'seconds_per_step': result['seconds_per_step'],
      'mean_mask': suites.mean_mask(curve),
  }


def tabulate(workdir: str, suite: str, seeds: list[int], *,
             allow_mixed: bool = False,
             noise_workdirs: list[str] = ()) -> dict[str, Any]:
  """Aggregates finished runs into results.json, results.md and plots.

  Per run and seed: the best clean PSNR and its step, the final clean and
  fit PSNRs, the early-stopping pick's clean PSNR, and the first step at
  the baseline's (the suite's first run's) best clean PSNR on the same seed.

  Raises:
    tables.MixedRunsError: the runs (or a noise-floor directory's) come
      from different code or environments and not ``allow_mixed``.
  """
  the_suite = SUITES[suite]
  environment = suites.environment_of(workdir, the_suite, seeds, allow_mixed)
  names = list(the_suite.runs)
  baseline_best = {}
  for seed in seeds:
    base = suites.result(workdir, names[0], seed)
    baseline_best[seed] = None if base is None else base['best_clean_psnr']
  rows, curves = {}, {}
  for name in names:
    per_seed = [r for r in (_per_seed(workdir, name, s, baseline_best[s])
                            for s in seeds) if r is not None]
    if not per_seed:
      continue
    curves[name] = [suites.curve(workdir, name, r['seed']) for r in per_seed]
    rows[name] = {
        **suites.run_entries(the_suite.runs[name], per_seed),
        'budget': max(r['final_step'] for r in per_seed),
        **{f'mean_{key}': suites.mean(r[key] for r in per_seed)
           for key in ('best_clean_psnr', 'final_clean_psnr',
                       'early_stop_clean_psnr')},
        **suites.speed_and_mask(per_seed),
    }
  base = rows.get(names[0])
  base_by_seed = {} if base is None else {r['seed']: r
                                          for r in base['per_seed']}
  for row in rows.values():
    # "x baseline": the baseline's steps to its own best clean PSNR over
    # the run's steps to that PSNR, on the same seed.
    row['same_seed_ratios'] = [
        tables.speedup(base_by_seed[r['seed']]['best_clean_step']
                       if r['seed'] in base_by_seed else None,
                       r['steps_to_baseline_best'])
        for r in row['per_seed']]
    # Final clean PSNR minus the baseline's, on the same seed.
    row['final_gain_db'] = suites.mean(
        r['final_clean_psnr'] - base_by_seed[r['seed']]['final_clean_psnr']
        for r in row['per_seed'] if r['seed'] in base_by_seed)
  # What the runs ran with (an --override included), one value each.
  fields = ('side', 'noise_sigma', 'image', 'holdout_fraction', 'eval_every')
  config = suites.shared_settings(workdir, the_suite, seeds, fields,
                                  allow_mixed) or make_config(suite,
                                                              names[0], 0)
  noisy = [r['noisy_psnr'] for row in rows.values() for r in row['per_seed']]
  summary = suites.make_summary(
      workdir, suite, the_suite, seeds, environment=environment,
      settings={**{field: config[field] for field in fields},
                'noisy_psnr': suites.mean(noisy)},
      rows=rows, noise_metric='best_clean_step',
      noise_workdirs=noise_workdirs, build=configs.build)
  suites.write_summary(workdir, summary, render)
  if curves:
    # Imported here: tabulating a table needs no plotting library.
    from examples.inr import figures  # pylint: disable=g-import-not-at-top
    figures.compare_psnr(curves, os.path.join(workdir, 'psnr.png'),
                         title=f'{suite}: clean and fit PSNR, every seed',
                         noisy_psnr=summary['noisy_psnr'])
    _draw_images(workdir, rows, os.path.join(workdir, 'images.png'))
  return summary


def _draw_images(workdir: str, rows, path: str) -> None:
  """Seed ``rows``' first seed: clean, noisy and each run's reconstructions."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from examples.inr import data  # pylint: disable=g-import-not-at-top
  from examples.inr import figures  # pylint: disable=g-import-not-at-top
  panels = []
  for name, row in rows.items():
    seed = row['per_seed'][0]
    run = suites.run_dir(workdir, name, seed['seed'])
    config = suites.read_json(os.path.join(run, 'config.json'))
    if not panels:
      clean = data.resize(data.read(config['image']), config['side'])
      noisy = data.add_noise(clean, config['noise_sigma'], config['seed'])
      panels += [(f'clean (seed {seed["seed"]})', clean),
                 (f'noisy ({data.psnr(noisy, clean):.1f} dB)', noisy)]
    for kind, title in (
        ('best_clean', f'{name}: best, step {seed["best_clean_step"]}\n'
                       f'{seed["best_clean_psnr"]:.2f} dB'),
        ('latest', f'{name}: step {seed["final_step"]}\n'
                   f'{seed["final_clean_psnr"]:.2f} dB'),
        ('early_stop', f'{name}: early stop, step '
                       f'{seed["early_stop_step"]}\n'
                       f'{seed["early_stop_clean_psnr"] or 0:.2f} dB')):
      file = os.path.join(run, f'reconstruction_{kind}.npy')
      if os.path.exists(file):
        panels.append((title, np.load(file)))
  columns = 6
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  rows_ = -(-len(panels) // columns)
  fig, axes = plt.subplots(rows_, columns, figsize=(2.3 * columns,
                                                     2.6 * rows_),
                           squeeze=False)
  for ax in axes.flat[len(panels):]:
    ax.set_axis_off()
  for ax, (title, image) in zip(axes.flat, panels):
    figures.show(ax, image, title)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def _db(value) -> str:
  return '-' if value is None else f'{value:.2f}'


def _list(values, fmt) -> str:
  return ', '.join('-' if v is None else fmt(v) for v in values)


def markdown_table(summary: Mapping[str, Any]) -> str:
  """The table of ``results.md`` (``render`` adds its caption)."""
  base = summary['baseline']
  floor = (summary.get('noise_floor') or {}).get('factor')
  lines = [
      '| run | best clean PSNR, dB (per seed) | at step (per seed) | final '
      'clean PSNR, dB (per seed) | mean final clean | final clean - '
      f'{base} (same seed, mean) | final fit PSNR, dB (per seed) | early-stop '
      f'pick: clean PSNR, dB (per seed) | steps to {base}\'s best clean '
      f'(per seed) | x {base} (same seed) | mean mask | s/step | steps run |',
      '|---|---|---|---|---:|---:|---|---|---|---|---:|---:|---:|']
  for name, row in summary['results'].items():
    seeds = row['per_seed']
    mask = '-' if row['mean_mask'] is None else f'{row["mean_mask"]:.2f}'
    gain = ('-' if row['final_gain_db'] is None
            else f'{row["final_gain_db"]:+.2f}')
    early = (_list([r['early_stop_clean_psnr'] for r in seeds], _db)
             if any(r['early_stop_clean_psnr'] is not None for r in seeds)
             else '-')
    steps = '{:,}'.format
    ratios = ', '.join(tables.ratio_text(r, floor)
                       for r in row['same_seed_ratios'])
    lines.append(
        f'| {row["label"]} (`{name}`){suites.row_seeds(summary, row)} | '
        f'{_list([r["best_clean_psnr"] for r in seeds], _db)} | '
        f'{_list([r["best_clean_step"] for r in seeds], steps)} | '
        f'{_list([r["final_clean_psnr"] for r in seeds], _db)} | '
        f'{_db(row["mean_final_clean_psnr"])} | {gain} | '
        f'{_list([r["final_fit_psnr"] for r in seeds], _db)} | {early} | '
        f'{_list([r["steps_to_baseline_best"] for r in seeds], steps)} | '
        f'{ratios} | {mask} | {row["seconds_per_step"]:.3f} | '
        f'{row["budget"]:,} |')
  return '\n'.join(lines)


def render(summary: Mapping[str, Any]) -> str:
  """``results.md``: what ran where, the noise floor and the table."""
  seeds = ','.join(map(str, summary['seeds']))
  base = summary['baseline']
  noisy = summary['noisy_psnr']
  noisy_text = '' if noisy is None else (
      f' (the noisy image itself: {noisy:.2f} dB, mean over seeds)')
  return '\n\n'.join([
      f'Suite `{summary["suite"]}`: {summary["about"]} '
      f'{suites.task_text(summary)}; image `{summary["image"]}` at '
      f'{summary["side"]} x {summary["side"]}, noise sigma '
      f'{summary["noise_sigma"]:g}; seeds {seeds} (noise, held-out pixels, '
      f'initialisation). {suites.measured(summary)} PSNR (data range 1) is '
      f'evaluated every {summary["eval_every"]} steps: "clean" against the '
      f'clean image on every pixel{noisy_text}, "fit" against the noisy '
      'targets on the pixels the run trains on; memorisation shows as the '
      'final clean PSNR falling below the best while the fit PSNR rises. '
      f'The early-stopping baseline trains on '
      f'{1 - summary["holdout_fraction"]:.0%} of the pixels and picks the '
      f'step of best PSNR on the other {summary["holdout_fraction"]:.0%}; '
      f'every other run trains on every pixel. "steps to {base}\'s best '
      f'clean" is the first evaluation at or above {base}\'s best clean '
      f'PSNR on the same seed, and "x {base}" divides {base}\'s step of '
      'that best by it. "mean mask" is the mean over evaluations and seeds '
      'of the fraction of coordinates the mask passes; s/step is '
      'wall-clock training time, only comparable within the table.',
      suites.noise_text(
          summary.get('noise_floor'),
          event='reached their best clean PSNR',
          unmeasured='No noise floor was measured for this table: read step '
          'ratios near 1 and PSNR differences of a few hundredths of a dB '
          'with care (the same seed under another summation order can move '
          'them).'),
      *filter(None, [suites.partial_text(
          summary, None, 'Their per-seed lists are of the seeds they have '
          f'and their means over those; "final clean - {base}", "steps to '
          f'{base}\'s best clean" and "x {base}" compare the seeds both runs '
          'have.')]),
      markdown_table(summary),
      suites.commands_text(summary)])


EXAMPLE = suites.Example(
    module='examples.inr.compare', suites=SUITES, build=configs.build,
    validate=config_schema.validate, train=cli.train_of('examples.inr'),
    tabulate=tabulate, render=render,
    files=('results.md', 'results.json', 'psnr.png', 'images.png'))


make_config = EXAMPLE.config
run_suite = EXAMPLE.run


if __name__ == '__main__':
  suites.run_program(EXAMPLE, default_suite='quick')
