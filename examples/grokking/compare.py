# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Runs a suite of optimizers x seeds and tabulates steps to grokking.

Resumable: a finished run (``result.json`` present) is skipped and an
unfinished one resumes from its last checkpoint, so a long sweep can run in
the background and be restarted at will. Writes ``results.json``,
``results.md`` (the table) and ``val_accuracy.png`` into ``--workdir``.

  python -m examples.grokking.compare --suite=paper --seeds=0,1,2 \\
      --workdir=runs/paper

Ctrl-C saves the running run's checkpoint and prints the command that goes
on with the suite.
"""

from __future__ import annotations

from collections.abc import Mapping
import json
import math
import os
import statistics
import sys
import types
from typing import Any, NamedTuple

from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from examples.common import cli  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.common import logbook as logbook_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.common import plots  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.common import schema  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.grokking import config_schema  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.grokking import configs  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.grokking import train  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.grokking.configs import adamw  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.grokking.configs import grokfast  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.grokking.configs import quick  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.grokking.configs import snr_adam  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.grokking.configs import snr_adam_grokfast  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.grokking.configs import streaming  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.grokking.configs import tiny  # pylint: disable=g-import-not-at-top,wrong-import-position



class Run(NamedTuple):
  """A run of a suite: an optimizer's config file, changed by ``extra``."""
  base: types.ModuleType       # configs/<optimizer>.py
  extra: Mapping[str, Any] = {}

  @property
  def overrides(self) -> dict[str, Any]:
    return {**self.base.OVERRIDES, **self.extra}

  @property
  def label(self) -> str:
    """The config file's label, then what this run changes."""
    changes = ', '.join(f'{k}={v}' for k, v in self.extra.items())
    return f'{self.base.LABEL}, {changes}' if changes else self.base.LABEL


class Suite(NamedTuple):
  """A task (overrides of the default) and its runs; the first is the baseline."""
  task: Mapping[str, Any]
  runs: Mapping[str, Run]
  about: str


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

FLAGS = flags.FLAGS


def define_flags():
  """Defined only when run as a program, so that tests can import this."""
  flags.DEFINE_string('workdir', None, '(required) Where the runs (one '
                      'directory each), the table and the plot go; finished '
                      'runs there are skipped, unfinished ones resumed.')
  flags.DEFINE_enum('suite', 'quick', list(SUITES), 'Which suite to run.')
  flags.DEFINE_list('seeds', ['0', '1', '2'],
                    'Seeds (data split, init, order).')
  flags.DEFINE_list('only', [], 'Run only these run names of the suite.')
  flags.DEFINE_integer('num_steps', 0, 'Override the step budget (0: keep).')
  flags.DEFINE_bool('table_only', False, 'Only tabulate finished runs.')
  flags.DEFINE_multi_string(
      'override', [], 'field=value, applied to every run (repeatable), e.g. '
      '--override=mesh_data=2 to re-run a suite data-parallel; the value is '
      'parsed as the type of the default config\'s field.')


def make_config(suite: str, name: str, seed: int, num_steps: int = 0,
                overrides: Mapping[str, Any] = None):
  """The config of run ``name`` of ``suite`` at ``seed``.

  ``num_steps`` (if not 0) replaces the suite's budget; ``overrides`` (e.g.
  ``{'mesh_data': 2}``) change every run of a re-run alike.
  """
  the_suite = SUITES[suite]
  return configs.build(the_suite.task, the_suite.runs[name].overrides,
                       {'seed': seed},
                       {'num_steps': num_steps} if num_steps else {},
                       overrides or {})


def run_dir(workdir: str, name: str, seed: int) -> str:
  return os.path.join(workdir, name, f'seed_{seed}')


def parse_overrides(texts: list[str]) -> dict[str, Any]:
  """``['mesh_data=2']`` -> ``{'mesh_data': 2}``, typed like the default.

  Raises:
    cli.UsageError: not ``field=value``, an unknown field, or a value that
      is not of the field's type.
  """
  defaults = schema.flatten(configs.default.get_config())
  overrides = {}
  for text in texts:
    name, sep, value = text.partition('=')
    if not sep:
      raise cli.UsageError(f'--override={text}: give field=value, e.g. '
                           '--override=mesh_data=2')
    if name not in defaults:
      raise cli.UsageError('--override: ' + schema.unknown_field_message(
          name, defaults))
    kind = type(defaults[name])
    try:
      if kind is bool:
        if value.lower() not in ('true', 'false'):
          raise ValueError(value)
        overrides[name] = value.lower() == 'true'
      else:
        overrides[name] = kind(value)
    except ValueError:
      raise cli.UsageError(f'--override={text}: {name} takes a '
                           f'{kind.__name__}, got {value!r}') from None
  return overrides


def run_suite(workdir: str, suite: str, seeds: list[int],
              only: list[str] = (), num_steps: int = 0,
              overrides: Mapping[str, Any] = None) -> None:
  """Trains every (run, seed) not finished yet, seed-major order."""
  names = [n for n in SUITES[suite].runs if not only or n in only]
  for seed in seeds:
    for name in names:
      path = run_dir(workdir, name, seed)
      if os.path.exists(os.path.join(path, 'result.json')):
        continue
      logging.info('=== %s seed %d -> %s', name, seed, path)
      train.train_and_evaluate(
          make_config(suite, name, seed, num_steps, overrides), path)


def _median(values):
  return statistics.median(values) if values else None


def censored_median(values):
  """Median over seeds, a run that never reached the target counting as +inf.

  A run stopped at its budget is right-censored: it would have needed more
  steps than any run that got there. So 2 of 3 seeds at 95% still have a
  median (the slower of the two), while 1 of 2 or 1 of 3 do not (None).
  """
  if not values:
    return None
  median = statistics.median(
      [math.inf if v is None else v for v in values])
  return None if math.isinf(median) else median


# Earlier milestones than the target: 95% is reached through oscillations
# (slingshots), so when runs come close these say who got there first.
MILESTONES = (0.5, 0.9)


def first_step_at(rows: list[dict[str, Any]], accuracy: float):
  return next((r['step'] for r in rows if r['val_accuracy'] >= accuracy),
              None)


def tabulate(workdir: str, suite: str, seeds: list[int]) -> dict[str, Any]:
  """Aggregates finished runs into results.json, results.md and a plot."""
  rows, curves = {}, {}
  names = list(SUITES[suite].runs)
  for name in names:
    results = []
    for seed in seeds:
      path = os.path.join(run_dir(workdir, name, seed), 'result.json')
      if os.path.exists(path):
        with open(path) as f:
          results.append(json.load(f))
        curves.setdefault(name, []).append(logbook_lib.read(
            os.path.join(run_dir(workdir, name, seed), 'metrics.jsonl')))
    if not results:
      continue
    milestones = {}
    for accuracy in MILESTONES:
      steps = [first_step_at(c, accuracy) for c in curves[name]]
      milestones[f'{accuracy:g}'] = {
          'steps': steps,
          'median_steps': censored_median(steps)}
    reached = [r for r in results if r['steps_to_target'] is not None]
    rows[name] = {
        'seeds': [r['seed'] for r in results],
        'reached': len(reached),
        'steps_to_target': [r['steps_to_target'] for r in results],
        'seconds_to_target': [r['seconds_to_target'] for r in results],
        'median_steps': censored_median(
            [r['steps_to_target'] for r in results]),
        'median_seconds': censored_median(
            [r['seconds_to_target'] for r in results]),
        'budget': max(r['final_step'] for r in results),
        'final_val_accuracy': [r['final_val_accuracy'] for r in results],
        'seconds_per_step': _median([r['seconds_per_step'] for r in results]),
        'milestones': milestones,
    }
  base = rows.get(names[0], {})
  for row in rows.values():
    for key in ('steps', 'seconds'):
      b, v = base.get(f'median_{key}'), row[f'median_{key}']
      row[f'{key}_ratio_to_{names[0]}'] = (None if not b or not v
                                           else b / v)
  # The target of the suite's task (configs/default.py unless overridden).
  target = make_config(suite, names[0], 0).target_val_accuracy
  summary = {'suite': suite, 'task': dict(SUITES[suite].task),
             'runs': {n: r.overrides for n, r in SUITES[suite].runs.items()}, 'seeds': seeds,
             'target_val_accuracy': target, 'results': rows}
  with open(os.path.join(workdir, 'results.json'), 'w') as f:
    json.dump(summary, f, indent=1)
  table = markdown_table(rows, names[0], target)
  with open(os.path.join(workdir, 'results.md'), 'w') as f:
    f.write(table + '\n')
  if curves:
    plots.compare_curves(curves, os.path.join(workdir, 'val_accuracy.png'),
                         title=f'held-out accuracy ({suite})', target=target)
  return summary


def markdown_table(rows: dict[str, Any], baseline: str,
                   target: float) -> str:
  """The table of ``results.md``; ``target``: held-out accuracy, e.g. 0.95."""
  def fmt(x, spec):
    return '-' if x is None else format(x, spec)

  milestones = ' | '.join(f'median steps to {a:.0%}' for a in MILESTONES)
  lines = [f'| run | reached {target:.0%} | steps to {target:.0%} (per seed) '
           '| median steps | '
           f'median seconds | speed-up vs {baseline} (steps) | s/step | '
           f'{milestones} |',
           '|---|---|---|---|---|---|---|' + '---|' * len(MILESTONES)]
  for name, row in rows.items():
    per_seed = ', '.join('-' if s is None else str(s)
                         for s in row['steps_to_target'])
    reached = f'{row["reached"]}/{len(row["seeds"])}'
    median_steps = (fmt(row['median_steps'], ',.0f')
                    if row['median_steps'] is not None
                    else f'not reached by {row["budget"]:,}')
    lines.append(
        f'| {name} | {reached} | {per_seed} | {median_steps} | '
        f'{fmt(row["median_seconds"], ",.0f")} | '
        f'{fmt(row[f"steps_ratio_to_{baseline}"], ".2f")} | '
        f'{fmt(row["seconds_per_step"], ".3f")} | '
        + ' | '.join(fmt(row['milestones'][f'{a:g}']['median_steps'], ',.0f')
                     for a in MILESTONES) + ' |')
  return '\n'.join(lines)


def main(argv):
  del argv
  try:
    seeds = [int(s) for s in FLAGS.seeds]
  except ValueError:
    raise cli.UsageError(f'--seeds={",".join(FLAGS.seeds)}: give integers '
                         'separated by commas, e.g. --seeds=0,1,2') from None
  if not seeds or min(seeds) < 0:
    raise cli.UsageError('--seeds: give one or more integers >= 0, e.g. '
                         '--seeds=0,1,2')
  runs = SUITES[FLAGS.suite].runs
  unknown = [n for n in FLAGS.only if n not in runs]
  if unknown:
    raise cli.UsageError(f'--only: no run {unknown[0]!r} in suite '
                         f'{FLAGS.suite!r}; its runs: {", ".join(runs)}')
  if FLAGS.num_steps < 0:
    raise cli.UsageError(f'--num_steps must be >= 0 (0: the suite\'s '
                         f'budget), got {FLAGS.num_steps}')
  overrides = parse_overrides(FLAGS.override)
  for name in runs:
    config_schema.validate(make_config(FLAGS.suite, name, seeds[0],
                                       FLAGS.num_steps, overrides))
  workdir = cli.check_workdir(FLAGS.workdir)
  os.makedirs(workdir, exist_ok=True)
  if not FLAGS.table_only:
    run_suite(workdir, FLAGS.suite, seeds, FLAGS.only, FLAGS.num_steps,
              overrides)
  summary = tabulate(workdir, FLAGS.suite, seeds)
  print(markdown_table(summary['results'], next(iter(runs)),
                       summary['target_val_accuracy']))
  files = [os.path.join(workdir, f) for f in ('results.md', 'results.json',
                                               'val_accuracy.png')]
  print('wrote ' + ', '.join(f for f in files if os.path.exists(f))
        + f' (runs in {os.path.join(workdir, "<run>", "seed_<seed>")})')


if __name__ == '__main__':
  define_flags()
  cli.run(main)
