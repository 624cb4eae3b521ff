# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Runs a suite of optimizers x seeds and tabulates steps to grokking.

Resumable: a finished run (``result.json`` present) is skipped and an
unfinished one resumes from its last checkpoint, so a long sweep can run in
the background and be restarted at will. Writes ``results.json``,
``results.md`` (the table, with the environment it was measured in and the
commands that made it) and ``val_accuracy.png`` into ``--workdir``; refuses
to put runs from different code or environments into one table.

  python -m examples.grokking.compare --suite=paper --seeds=0,1,2 \\
      --workdir=runs/paper
  python -m examples.grokking.compare --suite=paper --seeds=0,1,2 \\
      --workdir=runs/paper --table_only --noise_floor=runs/paper_8dev \\
      --publish=examples/grokking/results/paper

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
from examples.common import plots  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.common import suites  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.common import tables  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.grokking import config_schema  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.grokking import configs  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.grokking.configs import adamw  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.grokking.configs import grokfast  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.grokking.configs import quick  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.grokking.configs import snr_adam  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.grokking.configs import snr_adam_grokfast  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.grokking.configs import streaming  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.grokking.configs import tiny  # pylint: disable=g-import-not-at-top,wrong-import-position

Run, Suite = suites.Run, suites.Suite

SUITES: dict[str, Suite] = {
    'paper': Suite(
        # 6,000 steps fit a 2-core CPU and cover Power et al.'s AdamW (95% at
        # about 5,600 steps); --num_steps=30000 gives every run the paper's
        # AdamW budget (29,450 steps).
        task={'num_steps': 6_000, 'stop_at_target': True},
        about="the paper's setting (the default config), 6,000 steps",
        runs={
            'adamw': Run(adamw),
            'snr_adam': Run(snr_adam),
            'snr_adam_snr': Run(snr_adam, {'snr.mode': 'snr'}),
            'streaming': Run(streaming),
            'grokfast': Run(grokfast),
            'snr_adam_grokfast': Run(snr_adam_grokfast),
        }),
    'sweep': Suite(
        task={'num_steps': 20_000, 'stop_at_target': True},
        about="baselines and SNR variants in the paper's setting, 20,000 "
              'steps',
        runs={
            'adamw': Run(adamw),
            'adamw_wd0.1': Run(adamw, {'weight_decay': 0.1}),
            'adamw_wd0.3': Run(adamw, {'weight_decay': 0.3}),
            'adamw_wd3': Run(adamw, {'weight_decay': 3.0}),
            'adamw_lr3e-3': Run(adamw, {'learning_rate': 3e-3}),
            'snr_adam_after': Run(snr_adam, {'snr.placement': 'after'}),
            'snr_adam_soft': Run(snr_adam, {'snr.mode': 'soft'}),
            'snr_adam_alpha0.3': Run(snr_adam, {'snr.alpha': 0.3}),
            'snr_adam_alpha0.1': Run(snr_adam, {'snr.alpha': 0.1}),
            'snr_adam_lr3e-3': Run(snr_adam, {'learning_rate': 3e-3}),
            'snr_adam_wd3': Run(snr_adam, {'weight_decay': 3.0}),
            'streaming_wd3': Run(streaming, {'weight_decay': 3.0}),
            # A weak weight decay may be what made the paper's AdamW need
            # ~30k steps; these test the rule against AdamW at that setting.
            'streaming_wd0.3': Run(streaming, {'weight_decay': 0.3}),
            'snr_adam_wd0.3': Run(snr_adam, {'weight_decay': 0.3}),
            'streaming_hard': Run(streaming, {'snr.mode': 'hard'}),
            'streaming_alpha0.3': Run(streaming, {'snr.alpha': 0.3}),
        }),
    'quick': Suite(
        task=quick.TASK,
        about='the quick task (configs/quick.py): the README\'s main job',
        runs={
            'adamw': Run(adamw),
            'snr_adam': Run(snr_adam),
            'streaming': Run(streaming),
        }),
    # The study's full sweep, on the quick task (a CPU can afford 3 seeds of
    # every variant there, not in the paper's setting).
    'quick_sweep': Suite(
        task={**quick.TASK, 'num_steps': 5000},
        about='the quick task, 5,000 steps: baselines (weight decay, learning '
              'rate, Grokfast) and SNR variants (placement, mask, alpha, '
              'learning rate, streaming, with Grokfast)',
        runs={
            'adamw': Run(adamw),
            'adamw_wd0': Run(adamw, {'weight_decay': 0.0}),
            'adamw_wd0.1': Run(adamw, {'weight_decay': 0.1}),
            'adamw_wd0.3': Run(adamw, {'weight_decay': 0.3}),
            'adamw_wd3': Run(adamw, {'weight_decay': 3.0}),
            'adamw_lr3e-3': Run(adamw, {'learning_rate': 3e-3}),
            'snr_adam': Run(snr_adam),
            'snr_adam_after': Run(snr_adam, {'snr.placement': 'after'}),
            'snr_adam_soft': Run(snr_adam, {'snr.mode': 'soft'}),
            'snr_adam_snr': Run(snr_adam, {'snr.mode': 'snr'}),
            'snr_adam_alpha0.3': Run(snr_adam, {'snr.alpha': 0.3}),
            'snr_adam_alpha0.1': Run(snr_adam, {'snr.alpha': 0.1}),
            'snr_adam_lr3e-3': Run(snr_adam, {'learning_rate': 3e-3}),
            'streaming': Run(streaming),
            'streaming_hard': Run(streaming, {'snr.mode': 'hard'}),
            'streaming_alpha0.3': Run(streaming, {'snr.alpha': 0.3}),
            'grokfast': Run(grokfast),
            'snr_adam_grokfast': Run(snr_adam_grokfast),
            # The rule on top of the best weight decay of the AdamW sweep.
            'snr_adam_wd3': Run(snr_adam, {'weight_decay': 3.0}),
            'streaming_wd3': Run(streaming, {'weight_decay': 3.0}),
        }),
    'tiny': Suite(
        task=tiny.TASK, about='seconds: for tests and CI',
        runs={'adamw': Run(adamw), 'snr_adam': Run(snr_adam)}),
}

# Earlier milestones than the target: 95% is reached through oscillations
# (slingshots), so when runs come close these say who got there first.
MILESTONES = (0.5, 0.9)


def first_step_at(rows: list[dict[str, Any]], accuracy: float):
  return next((r['step'] for r in rows if r['val_accuracy'] >= accuracy),
              None)


def _per_seed(workdir: str, name: str, seed: int) -> dict[str, Any] | None:
  """One finished run's numbers, or None if it has not finished."""
  result = suites.result(workdir, name, seed)
  if result is None:
    return None
  curve = suites.curve(workdir, name, seed)
  return {
      'seed': seed,
      'steps_to_target': result['steps_to_target'],
      'seconds_to_target': result['seconds_to_target'],
      'final_step': result['final_step'],
      'final_val_accuracy': result['final_val_accuracy'],
      'seconds_per_step': result['seconds_per_step'],
      'mean_mask': suites.mean_mask(curve),
      **{f'steps_to_{a:g}': first_step_at(curve, a) for a in MILESTONES},
  }


def tabulate(workdir: str, suite: str, seeds: list[int], *,
             allow_mixed: bool = False,
             noise_workdirs: list[str] = ()) -> dict[str, Any]:
  """Aggregates finished runs into results.json, results.md and a plot.

  Raises:
    tables.MixedRunsError: the runs (or a noise-floor directory's) come
      from different code or environments, or ran with different targets
      or evaluation periods, and not ``allow_mixed``.
  """
  the_suite = SUITES[suite]
  environment = suites.environment_of(workdir, the_suite, seeds, allow_mixed)
  rows, curves = {}, {}
  names = list(the_suite.runs)
  for name in names:
    per_seed = [r for r in (_per_seed(workdir, name, s) for s in seeds)
                if r is not None]
    if not per_seed:
      continue
    curves[name] = [suites.curve(workdir, name, r['seed']) for r in per_seed]
    rows[name] = {
        **suites.run_entries(the_suite.runs[name], per_seed),
        'reached': sum(r['steps_to_target'] is not None for r in per_seed),
        'median_steps': suites.censored_median(
            [r['steps_to_target'] for r in per_seed]),
        'budget': max(r['final_step'] for r in per_seed),
        **suites.speed_and_mask(per_seed),
        **{f'median_steps_to_{a:g}': suites.censored_median(
            [r[f'steps_to_{a:g}'] for r in per_seed]) for a in MILESTONES},
    }
  base = rows.get(names[0])
  for row in rows.values():
    row['ratio'] = tables.speedup(base and base['median_steps'],
                                  row['median_steps'])
    base_steps = {} if base is None else {
        r['seed']: r['steps_to_target'] for r in base['per_seed']}
    row['same_seed_ratios'] = [tables.speedup(base_steps.get(r['seed']),
                                              r['steps_to_target'])
                               for r in row['per_seed']]
  # What the runs ran with (an --override of the target included).
  settings = suites.shared_settings(
      workdir, the_suite, seeds, ('target_val_accuracy', 'eval_every'),
      allow_mixed) or make_config(suite, names[0], 0)
  summary = suites.make_summary(
      workdir, suite, the_suite, seeds, environment=environment,
      settings={'target_val_accuracy': settings['target_val_accuracy'],
                'eval_every': settings['eval_every']},
      rows=rows, noise_metric='steps_to_target',
      noise_workdirs=noise_workdirs, build=configs.build)
  suites.write_summary(workdir, summary, render)
  if curves:
    plots.compare_curves(curves, os.path.join(workdir, 'val_accuracy.png'),
                         title=f'held-out accuracy ({suite})',
                         target=settings['target_val_accuracy'])
  return summary


def _steps(values) -> str:
  return ', '.join('-' if v is None else f'{v:,}' for v in values)


def markdown_table(summary: Mapping[str, Any]) -> str:
  """The table of ``results.md`` (``render`` adds its caption)."""
  target = summary['target_val_accuracy']
  base = summary['baseline']
  floor = (summary.get('noise_floor') or {}).get('factor')
  lines = [f'| run | seeds at {target:.0%} | steps to {target:.0%} (per seed)'
           f' | median | x {base} (median) | x {base} (same seed) | steps '
           f'to 90% (per seed) | mean mask | s/step | steps run (max) |',
           '|---|---:|---|---:|---:|---|---|---:|---:|---:|']
  for name, row in summary['results'].items():
    median = (f'{row["median_steps"]:,.0f}' if row['median_steps']
              is not None else 'not reached')
    same_seed = ', '.join(tables.ratio_text(r, floor)
                          for r in row['same_seed_ratios'])
    mask = '-' if row['mean_mask'] is None else f'{row["mean_mask"]:.2f}'
    lines.append(
        f'| {row["label"]} (`{name}`){suites.row_seeds(summary, row)} | '
        f'{row["reached"]}/{len(row["seeds"])}'
        f' | {_steps(r["steps_to_target"] for r in row["per_seed"])} | '
        f'{median} | {tables.ratio_text(row["ratio"], floor)} | '
        f'{same_seed} | '
        f'{_steps(r["steps_to_0.9"] for r in row["per_seed"])} | {mask} | '
        f'{row["seconds_per_step"]:.3f} | {row["budget"]:,} |')
  return '\n'.join(lines)


def render(summary: Mapping[str, Any]) -> str:
  """``results.md``: what ran where, the noise floor and the table."""
  target = summary['target_val_accuracy']
  seeds = ','.join(map(str, summary['seeds']))
  return '\n\n'.join([
      f'Suite `{summary["suite"]}`: {summary["about"]} '
      f'{suites.task_text(summary)}; seeds {seeds}; a run stops at its '
      f'first evaluation (every {summary["eval_every"]} steps, on the whole '
      f'held-out set) at or above {target:.0%}. {suites.measured(summary)} '
      f'"x {summary["baseline"]} (same seed)" divides the baseline\'s steps '
      'on the same seed (same split, initialisation and batches) by the '
      'run\'s; a median counts a seed that did not reach the target as '
      'slower than every seed that did; "mean mask" is the mean over '
      'evaluations and seeds of the fraction of coordinates the mask '
      'passes; s/step is wall-clock training time, only comparable within '
      'the table (other jobs shared the cores).',
      suites.noise_text(
          summary.get('noise_floor'), event=f'reached {target:.0%}',
          unmeasured='No noise floor was measured for this table: read '
          'ratios near 1 with care (the same seed under another summation '
          'order can move steps to the target by 10% or more).'),
      *filter(None, [suites.partial_text(
          summary, None, 'Their per-seed lists, their count of seeds at '
          f'{target:.0%} and their medians are of the seeds they have; "x '
          f'{summary["baseline"]} (same seed)" compares the seeds both runs '
          f'have, "x {summary["baseline"]} (median)" the two medians.')]),
      markdown_table(summary),
      suites.commands_text(summary)])


EXAMPLE = suites.Example(
    module='examples.grokking.compare', suites=SUITES, build=configs.build,
    validate=config_schema.validate, train=cli.train_of('examples.grokking'),
    tabulate=tabulate, render=render,
    files=('results.md', 'results.json', 'val_accuracy.png'),
    may_change=config_schema.MAY_CHANGE_ON_RESUME)


make_config = EXAMPLE.config
run_suite = EXAMPLE.run


if __name__ == '__main__':
  suites.run_program(EXAMPLE, default_suite='quick')
