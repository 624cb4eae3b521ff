# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Runs optimizers x noise levels x seeds and tabulates what they memorise.

Resumable: a finished run (``result.json`` present) is skipped and an
unfinished one resumes from its last checkpoint. Writes ``results.json``,
``results.md`` (the tables, with the environment they were measured in and
the commands that made them), ``accuracy.png`` and ``memorisation.png``
(clean test accuracy and memorisation of corrupted labels against the step,
one panel per noise level, every run and seed) and, with several noise
levels, ``noise_levels.png`` (final clean test accuracy and memorisation
against the noise level) into
``--workdir``; refuses to put runs from different code or environments into
one table.

  python -m examples.noisy_labels.compare --suite=digits --seeds=0,1,2 \\
      --workdir=runs/noisy_digits
  python -m examples.noisy_labels.compare --suite=digits --seeds=0,1,2 \\
      --workdir=runs/noisy_digits --table_only \\
      --publish=examples/noisy_labels/results/digits

A run is named ``noise<percent>/<optimizer>`` (``noise40/snr_adam``): the
suites of one dataset name the same run alike, so ``digits40`` and
``digits`` can share a work directory (the second skips what the first
ran). Ctrl-C saves the running run's checkpoint and prints the command that
goes on with the suite. The machinery (suites, provenance, noise floor,
README blocks) is ``examples/common/suites.py``; this file holds the suites
of this example and how its tables read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import math
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from examples.common import cli  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.common import suites  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.noisy_labels import config_schema  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.noisy_labels import configs  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.noisy_labels.configs import adam  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.noisy_labels.configs import adam_early_stop  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.noisy_labels.configs import adamw  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.noisy_labels.configs import snr_adam  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.noisy_labels.configs import snr_adam_after  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.noisy_labels.configs import snr_adam_snr  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.noisy_labels.configs import snr_adam_snr_after  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.noisy_labels.configs import streaming  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.noisy_labels.configs import tiny  # pylint: disable=g-import-not-at-top,wrong-import-position

Run, Suite = suites.Run, suites.Suite

NOISE_LEVELS = (0.0, 0.2, 0.4, 0.6)
# The compared optimizers, every one with the same learning rate, batches
# and budget (the configs' files).
OPTIMIZERS: dict[str, Any] = {
    'adam': adam,
    'adamw': adamw,
    'adam_early_stop': adam_early_stop,
    'snr_adam': snr_adam,
    'snr_adam_after': snr_adam_after,
    'snr_adam_snr': snr_adam_snr,
    'snr_adam_snr_after': snr_adam_snr_after,
    'streaming': streaming,
}
# The optimizers the targets are checked for: the rule in each form.
SNR_RUNS = ('snr_adam', 'snr_adam_after', 'snr_adam_snr',
            'snr_adam_snr_after', 'streaming')
# The targets at 40% symmetric noise, against Adam (same seeds).
TARGET_NOISE = 0.4
TARGET_GAIN = 0.05            # final clean test accuracy >= Adam's + 5 pts
TARGET_EARLY_STOP_GAP = 0.01  # and >= early stopping's pick - 1 point
TARGET_MEMORISATION = 0.5     # memorisation <= half of Adam's


def run_name(noise_fraction: float, optimizer: str) -> str:
  """``noise40/snr_adam``: the run of ``optimizer`` at that noise level.

  >>> run_name(0.4, 'snr_adam')
  'noise40/snr_adam'
  >>> parse_run_name(run_name(0.2, 'adam'))
  (0.2, 'adam')
  """
  return f'noise{round(100 * noise_fraction)}/{optimizer}'


def parse_run_name(name: str) -> tuple[float, str]:
  """``(noise_fraction, optimizer)`` of a ``run_name``."""
  level, optimizer = name.split('/')
  return int(level[len('noise'):]) / 100, optimizer


def runs_at(levels: Sequence[float],
            optimizers: Sequence[str] = tuple(OPTIMIZERS)) -> dict[str, Run]:
  """Every optimizer at every noise level, level by level."""
  return {run_name(level, name): Run(OPTIMIZERS[name],
                                     {'noise_fraction': level})
          for level in levels for name in optimizers}


# MNIST on a CPU: the first 10,000 training images (all 10,000 test ones),
# batches of 128 (78 steps an epoch), 200 epochs as on the digits.
MNIST_TASK = {'dataset': 'mnist', 'train_examples': 10_000,
              'batch_size': 128, 'num_steps': 15_600, 'eval_every': 78,
              'checkpoint_every': 1_560}

SUITES: dict[str, Suite] = {
    'digits40': Suite(
        task={},
        about='the default setting (scikit-learn digits, MLP 64-256-256-10, '
              'batches of 64, lr 1e-3, 4,200 steps = 200 epochs) at 40% '
              'symmetric noise: the targets, minutes on a CPU',
        runs=runs_at((0.4,))),
    'digits': Suite(
        task={},
        about='the default setting at 0%, 20%, 40% and 60% symmetric noise',
        runs=runs_at(NOISE_LEVELS)),
    'mnist40': Suite(
        task=MNIST_TASK,
        about='MNIST through TFDS (the first 10,000 training images), MLP '
              '784-256-256-10, batches of 128, 15,600 steps = 200 epochs, '
              '40% symmetric noise',
        runs=runs_at((0.4,))),
    'mnist': Suite(
        task=MNIST_TASK,
        about='the same on MNIST at 0%, 20%, 40% and 60% noise',
        runs=runs_at(NOISE_LEVELS)),
    'tiny': Suite(
        task=tiny.TASK, about='seconds: for tests and CI',
        runs={**runs_at((0.0,), ('adam',)),
              **runs_at((0.4,), ('adam', 'adam_early_stop', 'snr_adam'))}),
}


def _per_seed(workdir: str, name: str, seed: int) -> dict[str, Any] | None:
  """One finished run's numbers, or None if it has not finished."""
  result = suites.result(workdir, name, seed)
  if result is None:
    return None
  return {
      'seed': seed,
      'best_test_accuracy': result['best_test_accuracy'],
      'best_test_step': result['best_test_step'],
      'final_step': result['final_step'],
      'final_test_accuracy': result['final_test_accuracy'],
      'final_memorisation': result['final_memorisation'],
      'final_corrupted_true_accuracy':
          result['final_corrupted_true_accuracy'],
      'final_clean_train_accuracy': result['final_clean_train_accuracy'],
      'early_stop_step': result['early_stop_step'],
      'early_stop_test_accuracy': result['early_stop_test_accuracy'],
      'early_stop_memorisation': result['early_stop_memorisation'],
      'num_train': result['num_train'],
      'num_corrupted': result['num_corrupted'],
      'seconds_per_step': result['seconds_per_step'],
      'mean_mask': suites.mean_mask(suites.curve(workdir, name, seed)),
  }


def _same_seed_difference(row, base, key: str) -> float | None:
  """Mean over the seeds both have of ``row``'s ``key`` minus ``base``'s."""
  if base is None:
    return None
  theirs = {r['seed']: r[key] for r in base['per_seed']}
  return suites.mean(r[key] - theirs[r['seed']] for r in row['per_seed']
                     if r['seed'] in theirs and r[key] is not None
                     and theirs[r['seed']] is not None)


def targets(rows: Mapping[str, Any]) -> list[dict[str, Any]]:
  """The issue's targets at ``TARGET_NOISE`` for each SNR run there.

  Each against Adam and Adam with early stopping at the same noise level,
  on the seeds both have: ``gain`` (final clean test accuracy minus
  Adam's), ``early_stop_gap`` (minus early stopping's pick),
  ``memorisation_ratio`` (final memorisation over Adam's) and whether each
  target is met.
  """
  adam_row = rows.get(run_name(TARGET_NOISE, 'adam'))
  early = rows.get(run_name(TARGET_NOISE, 'adam_early_stop'))
  out = []
  for optimizer in SNR_RUNS:
    row = rows.get(run_name(TARGET_NOISE, optimizer))
    if row is None or adam_row is None:
      continue
    gain = _same_seed_difference(row, adam_row, 'final_test_accuracy')
    gap = None
    if early is not None:
      pick = {r['seed']: r['early_stop_test_accuracy']
              for r in early['per_seed']}
      gap = suites.mean(r['final_test_accuracy'] - pick[r['seed']]
                        for r in row['per_seed']
                        if pick.get(r['seed']) is not None)
    # Both memorisations over the same seeds: a seed Adam has not finished
    # (a partial --table_only) must not count on one side only.
    adams = {r['seed']: r['final_memorisation'] for r in adam_row['per_seed']}
    both = [r for r in row['per_seed'] if r['final_memorisation'] is not None
            and adams.get(r['seed']) is not None]
    adam_memorised = suites.mean(adams[r['seed']] for r in both)
    memorised = suites.mean(r['final_memorisation'] for r in both)
    ratio = (None if not adam_memorised or memorised is None
             else memorised / adam_memorised)
    out.append({
        'run': run_name(TARGET_NOISE, optimizer), 'gain': gain,
        'early_stop_gap': gap, 'memorisation_ratio': ratio,
        'gain_met': gain is not None and gain >= TARGET_GAIN,
        'early_stop_met': gap is not None and gap >= -TARGET_EARLY_STOP_GAP,
        'memorisation_met': ratio is not None
                            and ratio <= TARGET_MEMORISATION})
  return out


def tabulate(workdir: str, suite: str, seeds: list[int], *,
             allow_mixed: bool = False,
             noise_workdirs: list[str] = ()) -> dict[str, Any]:
  """Aggregates finished runs into results.json, results.md and figures.

  Per run and seed: the best clean test accuracy and its step, the final
  clean test accuracy, memorisation of the corrupted labels and their
  true-label accuracy, and the early-stopping pick; per run, the same-seed
  differences from Adam at its noise level; the targets (``targets``).

  Raises:
    tables.MixedRunsError: the runs (or a noise-floor directory's) come
      from different code or environments and not ``allow_mixed``.
  """
  the_suite = SUITES[suite]
  environment = suites.environment_of(workdir, the_suite, seeds, allow_mixed)
  rows, curves = {}, {}
  for name, run in the_suite.runs.items():
    per_seed = [r for r in (_per_seed(workdir, name, s) for s in seeds)
                if r is not None]
    if not per_seed:
      continue
    noise, optimizer = parse_run_name(name)
    curves[name] = [suites.curve(workdir, name, r['seed']) for r in per_seed]
    rows[name] = {
        **suites.run_entries(run, per_seed),
        'optimizer': optimizer, 'optimizer_label': run.base.LABEL,
        'noise_fraction': noise,
        'budget': max(r['final_step'] for r in per_seed),
        **{f'mean_{key}': suites.mean(r[key] for r in per_seed)
           for key in ('best_test_accuracy', 'final_test_accuracy',
                       'final_memorisation', 'final_corrupted_true_accuracy',
                       'early_stop_test_accuracy', 'early_stop_memorisation')},
        **suites.speed_and_mask(per_seed),
    }
  for name, row in rows.items():
    base = rows.get(run_name(row['noise_fraction'], 'adam'))
    # Final clean test accuracy minus Adam's at the same noise level, on
    # the same seed (same corrupted labels, initialisation and batches).
    row['final_gain'] = _same_seed_difference(row, base,
                                              'final_test_accuracy')
  # What the runs ran with (an --override included), one value each.
  fields = ('dataset', 'noise_type', 'model', 'hidden_layers',
            'hidden_width', 'batch_size', 'learning_rate',
            'validation_fraction', 'eval_every')
  config = suites.shared_settings(
      workdir, the_suite, seeds, fields, allow_mixed) or make_config(
          suite, next(iter(the_suite.runs)), 0)
  summary = suites.make_summary(
      workdir, suite, the_suite, seeds, environment=environment,
      settings={**{field: config[field] for field in fields},
                'num_train': suites.mean(r['per_seed'][0]['num_train']
                                         for r in rows.values()
                                         if r['optimizer'] == 'adam')},
      rows=rows, noise_metric='best_test_step',
      noise_workdirs=noise_workdirs, build=configs.build)
  summary['targets'] = targets(rows)
  suites.write_summary(workdir, summary, render)
  if curves:
    _draw(workdir, suite, rows, curves)
  return summary


# One colour per optimizer in every figure.
COLOUR_ORDER = (*OPTIMIZERS, 'early-stopping pick')


def _draw(workdir: str, suite: str, rows, curves) -> None:
  # Imported here: tabulating a table needs no plotting library.
  from examples.noisy_labels import figures  # pylint: disable=g-import-not-at-top
  groups = {}
  for name, row in rows.items():
    panel = f'{row["noise_fraction"]:.0%} noise'
    groups.setdefault(panel, {})[row['optimizer']] = curves[name]
  for key, ylabel, file in (
      ('test_accuracy', 'clean test accuracy', 'accuracy.png'),
      ('memorisation', 'memorisation (corrupted labels fitted)',
       'memorisation.png')):
    figures.compare_curves(groups, os.path.join(workdir, file), key, ylabel,
                           title=f'{suite}: {ylabel}, every seed',
                           order=COLOUR_ORDER)
  if len({row['noise_fraction'] for row in rows.values()}) < 2:
    return   # against the noise level needs levels
  panels = {'final clean test accuracy': {}, 'final memorisation': {}}
  for row in rows.values():
    for panel, key in (('final clean test accuracy', 'final_test_accuracy'),
                       ('final memorisation', 'final_memorisation')):
      panels[panel].setdefault(row['optimizer'], []).extend(
          (row['noise_fraction'], r[key]) for r in row['per_seed'])
    if row['optimizer'] == 'adam_early_stop':
      panels['final clean test accuracy'].setdefault(
          'early-stopping pick', []).extend(
              (row['noise_fraction'], r['early_stop_test_accuracy'])
              for r in row['per_seed'])
  figures.by_noise_level(panels, os.path.join(workdir, 'noise_levels.png'),
                         title=f'{suite}: at the end of the budget',
                         order=COLOUR_ORDER)


# A NaN metric is a run whose model diverged (train.predictions).
DIVERGED = 'NaN (diverged)'


def _pct(value) -> str:
  if value is None:
    return '-'
  return DIVERGED if math.isnan(value) else f'{100 * value:.1f}'


def _points(value) -> str:
  if value is None:
    return '-'
  return DIVERGED if math.isnan(value) else f'{100 * value:+.1f}'


def _step(value) -> str:
  # None: no evaluation had a finite accuracy (the run diverged at once).
  return '-' if value is None else f'{value:,}'


def _list(values, fmt=_pct) -> str:
  return ', '.join(fmt(v) for v in values)


def _levels(summary) -> list[float]:
  return sorted({row['noise_fraction']
                 for row in summary['results'].values()})


def levels_table(summary: Mapping[str, Any]) -> str:
  """Final clean test accuracy / memorisation, optimizer x noise level."""
  levels = _levels(summary)
  by_optimizer: dict[str, dict[float, Any]] = {}
  labels = {}
  for row in summary['results'].values():
    by_optimizer.setdefault(row['optimizer'], {})[row['noise_fraction']] = row
    labels[row['optimizer']] = row['optimizer_label']
  lines = ['| optimizer | ' + ' | '.join(f'{level:.0%} noise'
                                         for level in levels) + ' |',
           '|---|' + '---:|' * len(levels)]

  def cell(test, memorised) -> str:
    return (_pct(test) if memorised is None
            else f'{_pct(test)} / {_pct(memorised)}')

  for optimizer, cells in by_optimizer.items():
    lines.append(f'| {labels[optimizer]} (`{optimizer}`) | ' + ' | '.join(
        cell(cells[level]['mean_final_test_accuracy'],
             cells[level]['mean_final_memorisation'])
        if level in cells else '-' for level in levels) + ' |')
    if optimizer == 'adam_early_stop':
      lines.append('| ... its early-stopping pick | ' + ' | '.join(
          cell(cells[level]['mean_early_stop_test_accuracy'],
               cells[level]['mean_early_stop_memorisation'])
          if level in cells else '-' for level in levels) + ' |')
  return '\n'.join(lines)


def targets_table(summary: Mapping[str, Any]) -> str:
  """The targets at 40% noise, met or not, per SNR run."""
  mark = lambda met: 'yes' if met else '**no**'
  lines = ['| run | final test - Adam, points (target >= +5) | final test - '
           'early-stop pick, points (target >= -1) | memorisation / '
           "Adam's (target <= 0.5) |", '|---|---:|---:|---:|']
  for t in summary['targets']:
    ratio = ('-' if t['memorisation_ratio'] is None
             else DIVERGED if math.isnan(t['memorisation_ratio'])
             else f'{t["memorisation_ratio"]:.2f}')
    lines.append(
        f'| `{t["run"]}` | {_points(t["gain"])} ({mark(t["gain_met"])}) | '
        f'{_points(t["early_stop_gap"])} ({mark(t["early_stop_met"])}) | '
        f'{ratio} ({mark(t["memorisation_met"])}) |')
  return '\n'.join(lines)


def markdown_table(summary: Mapping[str, Any]) -> str:
  """Every run and seed."""
  lines = [
      '| run | best clean test, % (per seed) | at step (per seed) | final '
      'clean test, % (per seed) | mean final | final - Adam, points (same '
      'noise, same seed) | memorisation, % (per seed) | corrupted vs true '
      'labels, % (per seed) | early-stop pick: clean test, % (per seed) | '
      'mean mask | s/step | steps run |',
      '|---|---|---|---|---:|---:|---|---|---|---:|---:|---:|']
  for name, row in summary['results'].items():
    seeds = row['per_seed']
    mask = '-' if row['mean_mask'] is None else f'{row["mean_mask"]:.2f}'
    early = (_list([r['early_stop_test_accuracy'] for r in seeds])
             if row['optimizer'] == 'adam_early_stop' else '-')
    lines.append(
        f'| `{name}`{suites.row_seeds(summary, row)} | '
        f'{_list([r["best_test_accuracy"] for r in seeds])} | '
        f'{_list([r["best_test_step"] for r in seeds], _step)} | '
        f'{_list([r["final_test_accuracy"] for r in seeds])} | '
        f'{_pct(row["mean_final_test_accuracy"])} | '
        f'{_points(row["final_gain"])} | '
        f'{_list([r["final_memorisation"] for r in seeds])} | '
        f'{_list([r["final_corrupted_true_accuracy"] for r in seeds])} | '
        f'{early} | {mask} | {row["seconds_per_step"]:.4f} | '
        f'{row["budget"]:,} |')
  return '\n'.join(lines)


def partial_text(summary: Mapping[str, Any]) -> str | None:
  """Which runs have not finished every seed of the table; None if all have.

  ``suites.partial_text`` over every run of the suite (one with no seed
  too: the targets need Adam's).
  """
  suite = SUITES.get(summary['suite'])
  names = list(suite.runs) if suite else list(summary['results'])
  return suites.partial_text(
      summary, names, 'Their per-seed lists are of the seeds they have and '
      'their means over those; "final - Adam" and the targets compare the '
      'seeds both runs have.')


def render(summary: Mapping[str, Any]) -> str:
  """``results.md``: what ran where, the noise floor and the tables."""
  seeds = ','.join(map(str, summary['seeds']))
  num_train = summary['num_train']
  size = '' if num_train is None else f' ({num_train:.0f} training labels)'
  parts = [
      f'Suite `{summary["suite"]}`: {summary["about"]} '
      f'{suites.task_text(summary)}; dataset `{summary["dataset"]}`{size}, '
      f'{summary["noise_type"]} label noise, model {summary["model"]} '
      f'({summary["hidden_layers"]} x {summary["hidden_width"]}), batches of '
      f'{summary["batch_size"]}, learning rate {summary["learning_rate"]:g} '
      f'for every optimizer; seeds {seeds} (corrupted labels, validation '
      f'split, initialisation, batch order). {suites.measured(summary)} '
      f'Every {summary["eval_every"]} steps each run is evaluated on the '
      'clean test set and on its training set: "memorisation" is the '
      'accuracy of the training examples whose label was corrupted against '
      'that corrupted label (how much noise the model has fitted), '
      '"corrupted vs true" the same examples against their true label. The '
      'early-stopping baseline trains on '
      f'{1 - summary["validation_fraction"]:.0%} of the noisy training set '
      'and picks the evaluation of best accuracy on the other '
      f'{summary["validation_fraction"]:.0%} (their noisy labels); every '
      'other run trains on every example. "final - Adam" is the mean over '
      'seeds of the final clean test accuracy minus Adam\'s at the same '
      'noise level on the same seed. "mean mask" is the mean over '
      'evaluations and seeds of the fraction of coordinates the mask '
      'passes; s/step is wall-clock training time, only comparable within '
      'the table.',
      suites.noise_text(
          summary.get('noise_floor'),
          event='reached their best clean test accuracy',
          unmeasured='No noise floor was measured for this table: read '
          'differences of a few tenths of a point with care (the same seed '
          'under another summation order can move them).'),
      *filter(None, [partial_text(summary)]),
      'Final clean test accuracy / final memorisation, %, mean over seeds:',
      levels_table(summary)]
  if summary['targets']:
    parts += [f'The targets at {TARGET_NOISE:.0%} noise (means over the '
              'seeds both runs have):', targets_table(summary)]
  parts += ['Every run and seed:', markdown_table(summary),
            suites.commands_text(summary)]
  return '\n\n'.join(parts)


EXAMPLE = suites.Example(
    module='examples.noisy_labels.compare', suites=SUITES,
    build=configs.build, validate=config_schema.validate,
    train=cli.train_of('examples.noisy_labels'), tabulate=tabulate,
    render=render,
    files=('results.md', 'results.json', 'accuracy.png', 'memorisation.png',
           'noise_levels.png'),
    may_change=config_schema.MAY_CHANGE_ON_RESUME)


make_config = EXAMPLE.config
run_suite = EXAMPLE.run


if __name__ == '__main__':
  suites.run_program(EXAMPLE, default_suite='digits40')
