# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Runs a suite of optimizers x seeds on the convection PINN and tabulates.

Resumable: a finished run (``result.json`` present) is skipped and an
unfinished one resumes from its last checkpoint. Writes ``results.json``,
``results.md`` (the table, with the environment it was measured in and the
commands that made it), ``errors.png`` (the relative L2 error of every run
and seed against the step; one panel per optimizer when a suite has more
than 8 runs) and ``solutions.png`` (seed 0: the exact solution, each run's
final prediction and its error; with more than 8 runs, each optimizer's
run of the lowest mean final error) into ``--workdir``;
refuses to put runs from different code or environments into one table.

  python -m examples.pinn.compare --suite=beta5 --seeds=0,1,2 \\
      --workdir=runs/pinn_beta5
  python -m examples.pinn.compare --suite=beta5 --seeds=0,1,2 \\
      --workdir=runs/pinn_beta5 --table_only \\
      --publish=examples/pinn/results/beta5

The machinery (suites, provenance, noise floor, README blocks) is
``examples/common/suites.py``; this file holds the suites of this example
and how its table reads.
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
from examples.pinn import config_schema  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.pinn import configs  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.pinn.configs import adam  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.pinn.configs import adamw  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.pinn.configs import snr_adam  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.pinn.configs import streaming  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.pinn.configs import tiny  # pylint: disable=g-import-not-at-top,wrong-import-position

Run, Suite = suites.Run, suites.Suite

# The runs whose best (fewest steps to the target, per seed) the SNR
# optimizers are measured against: the tuned baseline.
BASELINES = ('adam', 'adamw')


def _runs(baseline_lrs=('3e-4', '3e-3'), snr_lrs=(), *,
          sweep: bool = True) -> dict[str, Run]:
  """Adam and AdamW at lr 1e-3 and ``baseline_lrs``, then the SNR rules.

  ``snr_lrs``: the learning rates of SNR-Adam's and streaming SNR-AdamW's
  own small sweep, besides the default 1e-3 (empty: the default only).
  ``sweep=False``: one run per optimizer, at the default.
  """
  def at(base, name, lrs):
    return {f'{name}_lr{lr}': Run(base, {'learning_rate': float(lr)})
            for lr in (lrs if sweep else ())}
  return {'adam': Run(adam), **at(adam, 'adam', baseline_lrs),
          'adamw': Run(adamw), **at(adamw, 'adamw', baseline_lrs),
          'snr_adam': Run(snr_adam), **at(snr_adam, 'snr_adam', snr_lrs),
          'streaming': Run(streaming), **at(streaming, 'streaming', snr_lrs)}


# Every optimizer at its best learning rate of the same small sweep: the
# baselines at 3e-4, 1e-3, 3e-3 and 1e-2, the SNR rules at 1e-3, 3e-3 and
# 1e-2 (best-tuned against best-tuned).
_TUNED = dict(baseline_lrs=('3e-4', '3e-3', '1e-2'), snr_lrs=('3e-3', '1e-2'))

# A task where the baselines fit the initial data's noise: 16 noisy
# observations (memorisable), the initial-condition term weighted 10.
MEMORISE = {'n_initial': 16, 'weights.initial': 10.0}

# Adam and SNR-Adam at lr 1e-3 and 3e-3: the smaller suites' runs.
_ADAM_AND_SNR_ADAM = {name: run for name, run in _runs(**_TUNED).items()
                      if name in ('adam', 'adam_lr3e-3', 'snr_adam',
                                  'snr_adam_lr3e-3')}

SUITES: dict[str, Suite] = {
    'beta5': Suite(
        task={},
        about='the default setting (beta 5, initial data with noise sigma '
              '0.1, tanh MLP 4 x 50, 5,000 steps of a cosine schedule), '
              'every optimizer with a small learning-rate sweep',
        runs=_runs(**_TUNED)),
    'beta30': Suite(
        task={'beta': 30.0},
        about='the hard case of Krishnapriyan et al. (beta 30), otherwise '
              'the default setting; every optimizer with a small '
              'learning-rate sweep',
        runs=_runs(**_TUNED)),
    'memorise': Suite(
        task=MEMORISE,
        about='a setting where Adam fits the initial data\'s noise: 16 '
              'noisy initial observations (not 128), the initial-condition '
              'term weighted 10, otherwise the default setting; every '
              'optimizer with a small learning-rate sweep',
        runs=_runs(**_TUNED)),
    'memorise_clean': Suite(
        task={**MEMORISE, 'noise_sigma': 0.0},
        about='the `memorise` setting with exact initial data (noise sigma '
              '0): the error that sparse initial data alone leaves',
        runs=_ADAM_AND_SNR_ADAM),
    'beta5_lbfgs': Suite(
        task={'decay_steps': 2000, 'num_steps': 2500, 'lbfgs_after': 2000},
        about='L-BFGS fine-tuning: the default setting, 2,000 steps of each '
              'optimizer (the cosine schedule over 2,000 steps), then 500 '
              'steps of L-BFGS on the full-batch loss, the same for every '
              'run',
        runs=_ADAM_AND_SNR_ADAM),
    'tiny': Suite(
        task=tiny.TASK, about='seconds: for tests and CI',
        runs=_runs(sweep=False)),
}


def _per_seed(workdir: str, name: str, seed: int) -> dict[str, Any] | None:
  """One finished run's numbers, or None if it has not finished."""
  result = suites.result(workdir, name, seed)
  if result is None:
    return None
  curve = suites.curve(workdir, name, seed)
  keys = ('steps_to_target', 'best_rel_l2', 'best_rel_l2_step',
          'final_step', 'final_rel_l2', 'final_ic_error_clean',
          'final_ic_error_noisy', 'final_noise_fit', 'seconds_per_step')
  return {'seed': seed, **{k: result[k] for k in keys},
          # Runs made before the L-BFGS phase existed have no such key.
          'first_phase_rel_l2': result.get('first_phase_rel_l2'),
          'mean_mask': suites.mean_mask(curve)}


def tabulate(workdir: str, suite: str, seeds: list[int], *,
             allow_mixed: bool = False,
             noise_workdirs: list[str] = ()) -> dict[str, Any]:
  """Aggregates finished runs into results.json, results.md and figures.

  Per run and seed: the steps to the target error, the final and best
  relative L2 errors, the final initial-data errors and noise fit; per
  run, ``x best baseline``: on each seed, the fewest steps to the target
  of any Adam/AdamW run (``BASELINES``, every learning rate) over the
  run's steps.

  Raises:
    tables.MixedRunsError: the runs come from different code or
      environments and not ``allow_mixed``.
  """
  the_suite = SUITES[suite]
  environment = suites.environment_of(workdir, the_suite, seeds, allow_mixed)
  names = list(the_suite.runs)
  rows, curves = {}, {}
  for name in names:
    per_seed = [r for r in (_per_seed(workdir, name, s) for s in seeds)
                if r is not None]
    if not per_seed:
      continue
    curves[name] = [suites.curve(workdir, name, r['seed']) for r in per_seed]
    rows[name] = {
        **suites.run_entries(the_suite.runs[name], per_seed),
        'budget': max(r['final_step'] for r in per_seed),
        'median_steps_to_target': suites.censored_median(
            [r['steps_to_target'] for r in per_seed]),
        **{f'mean_{key}': suites.mean(r[key] for r in per_seed)
           for key in ('final_rel_l2', 'best_rel_l2', 'final_ic_error_clean',
                       'final_ic_error_noisy', 'final_noise_fit',
                       'first_phase_rel_l2')},
        **suites.speed_and_mask(per_seed),
    }
  best_baseline = {}
  for seed in seeds:
    steps = [r['steps_to_target'] for name, row in rows.items()
             if row['overrides']['optimizer'] in BASELINES
             for r in row['per_seed'] if r['seed'] == seed
             and r['steps_to_target'] is not None]
    best_baseline[seed] = min(steps) if steps else None
  for row in rows.values():
    row['best_baseline_ratios'] = [
        tables.speedup(best_baseline.get(r['seed']), r['steps_to_target'])
        for r in row['per_seed']]
  fields = ('beta', 'noise_sigma', 'n_initial', 'target_rel_l2',
            'eval_every', 'schedule', 'decay_steps', 'lbfgs_after')
  config = suites.shared_settings(workdir, the_suite, seeds, fields,
                                  allow_mixed) or make_config(suite,
                                                              names[0], 0)
  summary = suites.make_summary(
      workdir, suite, the_suite, seeds, environment=environment,
      settings={**{field: config[field] for field in fields},
                'best_baseline_steps': best_baseline},
      rows=rows, noise_metric='steps_to_target',
      noise_workdirs=noise_workdirs, build=configs.build)
  suites.write_summary(workdir, summary, render)
  if curves:
    # Imported here: tabulating a table needs no plotting library.
    from examples.pinn import figures  # pylint: disable=g-import-not-at-top
    # Many runs (a learning-rate sweep): one panel per optimizer, one
    # colour per learning rate.
    many = len(curves) > 8
    panel_of = {name: rows[name]['overrides']['optimizer']
                for name in curves} if many else None
    colour_of = {name: rows[name]['overrides'].get('learning_rate', '')
                 for name in curves} if many else None
    figures.compare_errors(curves, os.path.join(workdir, 'errors.png'),
                           title=f'{suite}: relative L2 error, every seed',
                           target=summary['target_rel_l2'],
                           panel_of=panel_of, colour_of=colour_of)
    _draw_solutions(workdir, _best_of_each(rows) if len(rows) > 8 else rows,
                    os.path.join(workdir, 'solutions.png'))
  return summary


def _best_of_each(rows):
  """Each optimizer's run with the lowest mean final error (its best lr)."""
  best = {}
  for name, row in rows.items():
    optimizer = row['overrides']['optimizer']
    if optimizer not in best or (row['mean_final_rel_l2']
                                 < rows[best[optimizer]]['mean_final_rel_l2']):
      best[optimizer] = name
  return {name: rows[name] for name in best.values()}


def _draw_solutions(workdir: str, rows, path: str) -> None:
  """Each run's first seed: its final prediction and error, beside exact."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from examples.common import schema  # pylint: disable=g-import-not-at-top
  from examples.pinn import figures  # pylint: disable=g-import-not-at-top
  from examples.pinn import problem  # pylint: disable=g-import-not-at-top
  task, predictions = None, {}
  for name, row in rows.items():
    seed = row['per_seed'][0]
    run = suites.run_dir(workdir, name, seed['seed'])
    file = os.path.join(run, 'solution_latest.npy')
    if not os.path.exists(file):
      continue
    if task is None:
      config = configs.build(schema.flatten(suites.read_json(
          os.path.join(run, 'config.json'))))
      task = problem.make_task(config)
    predictions[f'{name} (seed {seed["seed"]})'] = np.load(file)
  if task is not None:
    figures.compare_solutions(task, predictions, path)


def _num(value, fmt='{:.3f}') -> str:
  return '-' if value is None else fmt.format(value)


def _list(values, fmt='{:.3f}') -> str:
  return ', '.join(_num(v, fmt) for v in values)


def markdown_table(summary: Mapping[str, Any]) -> str:
  """The table of ``results.md`` (``render`` adds its caption)."""
  floor = (summary.get('noise_floor') or {}).get('factor')
  target = summary['target_rel_l2']
  # With an L-BFGS phase: the error when it took over, beside the final.
  lbfgs = bool(summary.get('lbfgs_after'))
  lines = [
      f'| run | steps to rel L2 <= {target:g} (per seed) | median | x best '
      'Adam/AdamW (same seed) | final rel L2 (per seed) | mean final rel '
      'L2 | ' + ('mean rel L2 before L-BFGS | ' if lbfgs else '')
      + 'mean best rel L2 | u(x, 0) error vs clean / vs noisy (final, '
      'mean) | noise fit (final, mean) | mean mask | s/step | steps run |',
      '|---|---|---:|---|---|---:|' + ('---:|' if lbfgs else '')
      + '---:|---|---:|---:|---:|---:|']
  for name, row in summary['results'].items():
    seeds = row['per_seed']
    ratios = ', '.join(tables.ratio_text(r, floor)
                       for r in row['best_baseline_ratios'])
    lines.append(
        f'| {row["label"]} (`{name}`) | '
        f'{_list([r["steps_to_target"] for r in seeds], "{:,}")} | '
        f'{_num(row["median_steps_to_target"], "{:,.0f}")} | {ratios} | '
        f'{_list([r["final_rel_l2"] for r in seeds], "{:.4f}")} | '
        f'{_num(row["mean_final_rel_l2"], "{:.4f}")} | '
        + (f'{_num(row.get("mean_first_phase_rel_l2"), "{:.4f}")} | '
           if lbfgs else '') +
        f'{_num(row["mean_best_rel_l2"], "{:.4f}")} | '
        f'{_num(row["mean_final_ic_error_clean"], "{:.4f}")} / '
        f'{_num(row["mean_final_ic_error_noisy"], "{:.4f}")} | '
        f'{_num(row["mean_final_noise_fit"])} | '
        f'{_num(row["mean_mask"], "{:.2f}")} | '
        f'{row["seconds_per_step"]:.4f} | {row["budget"]:,} |')
  return '\n'.join(lines)


def render(summary: Mapping[str, Any]) -> str:
  """``results.md``: what ran where, the noise floor and the table."""
  seeds = ','.join(map(str, summary['seeds']))
  target = summary['target_rel_l2']
  return '\n\n'.join([
      f'Suite `{summary["suite"]}`: {summary["about"]} '
      f'{suites.task_text(summary)}; beta {summary["beta"]:g}, initial '
      f'data at {summary["n_initial"]} points with noise sigma '
      f'{summary["noise_sigma"]:g}, learning-rate schedule '
      f'`{summary["schedule"]}` over {summary["decay_steps"]:,} steps for '
      f'every run; seeds {seeds} (points, noise, initialisation, batch '
      f'order). {suites.measured(summary)} The relative L2 error against '
      f'the exact solution sin(x - beta t) is evaluated on the grid every '
      f'{summary["eval_every"]} steps; "steps to rel L2 <= {target:g}" is '
      'the first evaluation at or below it (the median counts a seed that '
      'never got there as slower than every seed that did), and "x best '
      'Adam/AdamW" divides, on the same seed, the fewest such steps of any '
      'Adam or AdamW run (every learning rate of the sweep) by the run\'s. '
      'The initial-data errors are RMS of u(x_j, 0) against the clean '
      'sin(x_j) and against the noisy observations; "noise fit" is the '
      'least-squares coefficient of u(x_j, 0) - sin(x_j) on the noise (0: '
      'ignored, 1: fitted). "mean mask" is the mean over evaluations and '
      'seeds of the fraction of coordinates the mask passes; s/step is '
      'wall-clock training time, only comparable within the table.'
      + (f' From step {summary["lbfgs_after"]:,} on, every run continues '
         'with optax.lbfgs (memory 10, zoom line search) on the full-batch '
         'loss (every collocation point, initial observation and boundary '
         'time); "mean rel L2 before L-BFGS" is the error at that step, '
         'and the mask is averaged over the evaluations before it.'
         if summary.get('lbfgs_after') else ''),
      suites.noise_text(
          summary.get('noise_floor'),
          event=f'reached rel L2 <= {target:g}',
          unmeasured='No noise floor was measured for this table: read step '
          'ratios near 1 with care (the same seed under another summation '
          'order can move them).'),
      markdown_table(summary),
      suites.commands_text(summary)])


EXAMPLE = suites.Example(
    module='examples.pinn.compare', suites=SUITES, build=configs.build,
    validate=config_schema.validate, train=cli.train_of('examples.pinn'),
    tabulate=tabulate, render=render,
    files=('results.md', 'results.json', 'errors.png', 'solutions.png'),
    may_change=config_schema.MAY_CHANGE_ON_RESUME)


make_config = EXAMPLE.config
run_suite = EXAMPLE.run


if __name__ == '__main__':
  suites.run_program(EXAMPLE, default_suite='beta5')
