# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
r"""How well the validation-free estimate tracks the held-out loss: a table.

Reads runs made with ``--config.snr.population_risk=True`` (any example;
each row of their ``metrics.jsonl`` holds ``train_loss``,
``population_loss``, ``batch_fraction`` and the tracker's estimates), and
writes a table (``population.md``, ``population.json``) and a figure
(``population.png``: for each run of the first seed, the measured held-out
loss, the training loss and the estimate; the measured and estimated
gaps)::

  python -m examples.common.population_report \
      --runs='runs/pop/*/*/seed_0' --out=runs/pop \
      --publish=examples/population_results --readme=README.md

Every number comes from ``population.assess``; ``--readme`` puts the table
in the README between the markers of block ``population``.
"""

from __future__ import annotations

import glob
import json
import os
import shlex
import sys
from collections.abc import Sequence
from typing import Any

from absl import app
from absl import flags
import numpy as np

from examples.common import population
from examples.common import tables

_RUNS = flags.DEFINE_multi_string(
    'runs', [], 'run directories (globs), each with metrics.jsonl and '
    'config.json of a run made with config.snr.population_risk=True')
_OUT = flags.DEFINE_string('out', None, 'where the table and figure go')
_PUBLISH = flags.DEFINE_string(
    'publish', None, 'also copy them here (e.g. a results directory)')
_README = flags.DEFINE_string(
    'readme', None, 'put the table in this README (block "population")')

COLUMNS = (
    ('pearson_changes', 'Pearson, interval changes', '.2f'),
    ('pearson_changes_late', '... second half', '.2f'),
    ('pearson_train_only', '... training loss alone', '.2f'),
    ('pearson_fresh', '... fresh-batch form', '.2f'),
    ('gap_ratio', 'estimated / measured gap (last)', '.2f'),
    ('curve_error', 'curve error / range', '.2f'),
)


def read_run(path: str) -> dict[str, Any] | None:
  """A finished run's config and rows; None without an estimate logged.

  A run still training (no ``result.json`` yet) is skipped: its table row
  would change under the reader.
  """
  if not os.path.exists(os.path.join(path, 'result.json')):
    return None
  try:
    with open(os.path.join(path, 'config.json')) as f:
      config = json.load(f)
    with open(os.path.join(path, 'metrics.jsonl')) as f:
      rows = [json.loads(line) for line in f if line.strip()]
  except (OSError, ValueError):
    return None
  rows = [r for r in rows if r.get('estimated_population_change') is not None
          and r.get('population_loss') is not None]
  if not rows:
    return None
  return {'path': path, 'config': config, 'rows': rows,
          'batch_fraction': rows[-1]['batch_fraction']}


def optimizer_of(run: dict[str, Any]) -> str:
  """The run's optimizer, with snr_adam's placement when it is "after"."""
  config = run['config']
  name = config.get('optimizer', '?')
  if name == 'snr_adam' and config.get('snr', {}).get('placement') == 'after':
    name += ' (after)'
  return name


def label_of(run: dict[str, Any]) -> str:
  return (f'{run["rows"][-1]["example"]}: {optimizer_of(run)}, seed '
          f'{run["config"].get("seed")}')


def table(runs: Sequence[dict[str, Any]]) -> tuple[str, list[dict]]:
  """The markdown table and its records."""
  header = ('| run | evaluations | '
            + ' | '.join(title for _, title, _ in COLUMNS)
            + ' | estimate\'s pick: step, held-out loss | held-out pick: '
            'step, held-out loss | pick excess |')
  lines = [header, '|---|---:|' + '---:|' * len(COLUMNS) + '---|---|---:|']
  records = []
  for run in runs:
    a = population.assess(run['rows'], run['batch_fraction'])
    records.append({'run': label_of(run), 'path': run['path'],
                    'batch_fraction': run['batch_fraction'], **a})
    if 'not_finite_from_step' in a:
      lines.append(f'| {label_of(run)} | {a["evaluations"]} | the estimate is '
                   f'NaN from step {a["not_finite_from_step"]:,} |'
                   + ' |' * (len(COLUMNS) + 2))
      continue
    cells = [population.fmt(a.get(key), spec) for key, _, spec in COLUMNS]
    lines.append(
        f'| {label_of(run)} | {a["evaluations"]} | ' + ' | '.join(cells)
        + f' | {a["estimate_pick_step"]:,}, {a["estimate_pick_loss"]:.4g} | '
        f'{a["holdout_pick_step"]:,}, {a["holdout_pick_loss"]:.4g} | '
        f'{100 * a["pick_excess"]:.1f}% |')
  return '\n'.join(lines) + _choices(runs), records


def _choices(runs: Sequence[dict[str, Any]]) -> str:
  """Choosing the optimizer and checkpoint at once, per example and seed.

  Among the runs of one example and seed (the same data), the evaluation of
  least estimated population loss against that of least measured one.
  """
  groups: dict[tuple[str, Any], list[tuple[str, dict]]] = {}
  for run in runs:
    c = population.curves(run['rows'], run['batch_fraction'])
    if not len(c['step']) or not np.all(np.isfinite(
        c['estimated_population_loss'])):
      continue
    key = (run['rows'][-1]['example'], run['config'].get('seed'))
    groups.setdefault(key, []).append((optimizer_of(run), c))
  lines = []
  for (example, seed), members in sorted(groups.items()):
    if len(members) < 2:
      continue
    def best(key, members=members):
      name, c, i = min(((n, c, int(np.argmin(c[key]))) for n, c in members),
                       key=lambda m: m[1][key][m[2]])
      return name, int(c['step'][i]), float(c['population_loss'][i])
    est, held = best('estimated_population_loss'), best('population_loss')
    lines.append(f'| {example}, seed {seed} | {len(members)} | {est[0]} at '
                 f'step {est[1]:,}: {est[2]:.4g} | {held[0]} at step '
                 f'{held[1]:,}: {held[2]:.4g} | '
                 f'{100 * (est[2] / held[2] - 1):.1f}% |')
  if not lines:
    return ''
  return ('\n\nChoosing the optimizer and the checkpoint at once (among the '
          'runs of one example and seed):\n\n| example | runs | the '
          'estimate\'s choice: held-out loss | the held-out choice | excess '
          '|\n|---|---:|---|---|---:|\n' + '\n'.join(lines))


def figure(runs: Sequence[dict[str, Any]], path: str) -> None:
  import matplotlib   # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt   # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(len(runs), 2, figsize=(11, 3.2 * len(runs)),
                           squeeze=False)
  for (ax_loss, ax_gap), run in zip(axes, runs):
    population.plot(ax_loss, ax_gap, run['rows'], run['batch_fraction'])
    ax_loss.set_title(label_of(run), fontsize=9)
    ax_gap.set_title('generalisation gap', fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)


def report(patterns: Sequence[str], out: str) -> tuple[str, list[dict]]:
  paths = sorted({p for pattern in patterns for p in glob.glob(pattern)})
  runs = [r for r in map(read_run, paths) if r is not None]
  runs.sort(key=lambda r: (r['rows'][-1]['example'], label_of(r),
                           r['config'].get('seed', 0)))
  if not runs:
    raise ValueError(
        f'no run in {list(patterns)} logged both the estimate and a measured '
        'population loss (runs need --config.snr.population_risk=True; '
        'label noise other than symmetric has no population loss to '
        'compare with)')
  text, records = table(runs)
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, 'population.md'), 'w') as f:
    f.write(text + '\n')
  with open(os.path.join(out, 'population.json'), 'w') as f:
    json.dump(records, f, indent=1)
  # One seed of each run in the figure (the table has them all).
  first = min(run['config'].get('seed', 0) for run in runs)
  figure([run for run in runs if run['config'].get('seed', 0) == first],
         os.path.join(out, 'population.png'))
  return text, records


def main(argv):
  del argv
  if not _RUNS.value or not _OUT.value:
    raise app.UsageError('give --runs and --out')
  try:
    text, _ = report(_RUNS.value, _OUT.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  print(text)
  print(f'wrote population.md, population.json and population.png in '
        f'{_OUT.value}')
  if _PUBLISH.value:
    os.makedirs(_PUBLISH.value, exist_ok=True)
    for name in ('population.md', 'population.json', 'population.png'):
      with open(os.path.join(_OUT.value, name), 'rb') as src, open(
          os.path.join(_PUBLISH.value, name), 'wb') as dst:
        dst.write(src.read())
  if _README.value:
    command = shlex.join(['python', '-m', 'examples.common.population_report',
                          *sys.argv[1:]])
    try:
      tables.replace_block(_README.value, 'population',
                           f'{text}\n\nMade by:\n\n    {command}')
    except (OSError, ValueError) as e:
      raise app.UsageError(f'--readme={_README.value}: {e}') from None


if __name__ == '__main__':
  app.run(main)
