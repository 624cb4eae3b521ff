# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Suites of runs (optimizers x seeds) and the ``compare.py`` program.

An example's ``compare.py`` declares its suites and how to tabulate them;
this module does the rest, the same way in every example:

* ``Run``/``Suite``: a run is an optimizer's config file (its ``OVERRIDES``
  and ``LABEL``) changed by a few fields; a suite is a task (overrides of the
  default config) and its runs, the first being the baseline.
* ``run_suite`` trains every (run, seed) not finished yet, one directory
  each (``<workdir>/<run>/seed_<seed>``), resuming unfinished ones.
* ``result``, ``curve``, ``run_entries``, ``speed_and_mask`` and
  ``make_summary`` are the pieces of an example's ``tabulate`` that every table
  has; ``write_summary`` writes ``results.json`` and ``results.md``.
* ``shared_settings`` and ``changes_of`` read what the runs ran with from
  their ``config.json`` (``--num_steps`` and ``--override`` included), not
  from the suite, and ``task_text`` states it in a table's caption.
* ``environment_of``, ``commands_of`` and ``measure_noise_floor`` read the
  runs' ``provenance.json``: one environment per table, the commands that
  made it, and how far the metric moves under summation order alone.
* ``publish`` copies a table into ``results/<suite>`` and rewrites its block
  in the example's README; ``main`` is the whole command line, and
  ``run_program`` the whole ``if __name__ == '__main__'`` of ``compare.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
import json
import math
import os
import shlex
import shutil
import statistics
import types
from typing import Any, NamedTuple

from absl import flags
from absl import logging
import ml_collections

from examples.common import cli
from examples.common import logbook
from examples.common import provenance
from examples.common import schema
from examples.common import tables

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
FLAGS = flags.FLAGS

# The flags ``define_flags`` defines belong to the compare.py that calls
# ``run_program``, so that its --help (the main module's flags) lists them.
flags.disclaim_key_flags()


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


class Example(NamedTuple):
  """What ``main`` needs of an example.

  Attributes:
    module: the example's compare module, e.g. ``'examples.grokking.compare'``.
    suites: name -> ``Suite``.
    build: ``configs.build`` (overrides of the default config -> config).
    validate: the schema's ``validate`` (raises ``schema.ConfigError``).
    train: ``train_and_evaluate(config, workdir)``.
    tabulate: ``(workdir, suite, seeds, allow_mixed, noise_workdirs) ->
      summary``, writing the result files (``files``) into ``workdir``.
    render: ``summary -> markdown`` (the README block).
    files: the result files ``tabulate`` writes.
    may_change: the config fields that may differ between a run in a work
      directory and the suite's config of it (budget, evaluation, mesh);
      ``main`` refuses runs that differ in any other (another suite's, or
      made before the suite changed). None: not checked.
  """
  module: str
  suites: Mapping[str, Suite]
  build: Callable[..., ml_collections.ConfigDict]
  validate: Callable[[ml_collections.ConfigDict], None]
  train: Callable[[ml_collections.ConfigDict, str], Mapping[str, Any]]
  tabulate: Callable[..., dict[str, Any]]
  render: Callable[[Mapping[str, Any]], str]
  files: Sequence[str]
  # The fields a run may change on resume (the schema's
  # MAY_CHANGE_ON_RESUME); the others must match the suite's config in a
  # work directory's runs. None: not checked.
  may_change: Sequence[str] | None = None

  def config(self, suite: str, name: str, seed: int, num_steps: int = 0,
             overrides: Mapping[str, Any] = None):
    """The config of run ``name`` of suite ``suite`` at ``seed``."""
    return make_config(self.build, self.suites[suite], name, seed,
                       num_steps, overrides)

  def run(self, workdir: str, suite: str, seeds: Sequence[int],
          only: Sequence[str] = (), num_steps: int = 0,
          overrides: Mapping[str, Any] = None) -> None:
    """Trains every (run, seed) of ``suite`` not finished in ``workdir``."""
    run_suite(self, workdir, suite, list(seeds), only, num_steps, overrides)


def make_config(build, suite: Suite, name: str, seed: int,
                num_steps: int = 0, overrides: Mapping[str, Any] = None):
  """The config of run ``name`` of ``suite`` at ``seed``.

  ``num_steps`` (if not 0) replaces the suite's budget; ``overrides`` (e.g.
  ``{'mesh_data': 2}``) change every run of a re-run alike.
  """
  return build(suite.task, suite.runs[name].overrides, {'seed': seed},
               {'num_steps': num_steps} if num_steps else {},
               overrides or {})


def run_dir(workdir: str, name: str, seed: int) -> str:
  return os.path.join(workdir, name, f'seed_{seed}')


def read_json(path: str) -> Any:
  with open(path) as f:
    return json.load(f)


def result(workdir: str, name: str, seed: int) -> dict[str, Any] | None:
  """The ``result.json`` of a finished run, None if it has not finished."""
  path = os.path.join(run_dir(workdir, name, seed), 'result.json')
  return read_json(path) if os.path.exists(path) else None


def curve(workdir: str, name: str, seed: int) -> list[dict[str, Any]]:
  """The rows of a run's ``metrics.jsonl``, one per evaluation."""
  return logbook.read(os.path.join(run_dir(workdir, name, seed),
                                   'metrics.jsonl'))


def mean(values) -> float | None:
  """The mean of the values that are not None; None if there are none."""
  values = [v for v in values if v is not None]
  return sum(values) / len(values) if values else None


def mean_mask(rows: Sequence[Mapping[str, Any]]) -> float | None:
  """The mean ``mask_fraction`` over a run's evaluations (None: no mask)."""
  return mean(r.get('mask_fraction') for r in rows)


def run_entries(run: Run, per_seed: Sequence[Mapping[str, Any]]
                ) -> dict[str, Any]:
  """What a table's row is: its label, overrides and per-seed numbers.

  Args:
    run: the suite's run.
    per_seed: the example's numbers of each finished seed (with ``seed``).
  """
  return {'label': run.label, 'overrides': run.overrides,
          'per_seed': per_seed,
          'seeds': [r['seed'] for r in per_seed]}


def speed_and_mask(per_seed: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
  """A row's median ``seconds_per_step`` and ``mean_mask`` over seeds.

  Args:
    per_seed: each seed's numbers, with ``seconds_per_step`` (from
      ``result.json``) and ``mean_mask`` (``mean_mask`` of its curve).
  """
  return {'seconds_per_step': statistics.median(
      [r['seconds_per_step'] for r in per_seed]),
          'mean_mask': mean(r['mean_mask'] for r in per_seed)}


def parse_overrides(default_config: ml_collections.ConfigDict,
                    texts: Sequence[str]) -> dict[str, Any]:
  """``['mesh_data=2']`` -> ``{'mesh_data': 2}``, typed like the default.

  Raises:
    cli.UsageError: not ``field=value``, an unknown field, or a value that
      is not of the field's type.
  """
  defaults = schema.flatten(default_config)
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
      raise cli.UsageError(f'--override={text}: {name} takes '
                           f'{_KIND_TEXT.get(kind, kind.__name__)}, got '
                           f'{value!r}') from None
  return overrides


_KIND_TEXT = {bool: 'true or false', int: 'an integer', float: 'a number',
              str: 'a string'}


def check_overrides(suite_name: str, suite: Suite,
                    overrides: Mapping[str, Any]) -> None:
  """Refuses an override of the seed or of a field a run of ``suite`` sets.

  Either would make every run something other than what its directory and
  its row in the table are named after.

  Raises:
    cli.UsageError: naming the field and the run that sets it.
  """
  if 'seed' in overrides:
    raise cli.UsageError('--override=seed=...: give the seeds with --seeds '
                         '(each run\'s directory is named after its seed)')
  for name, run in suite.runs.items():
    for field in overrides:
      if field in run.overrides:
        raise cli.UsageError(
            f'--override={field}=...: run {name!r} of suite {suite_name!r} '
            f'is {field}={run.overrides[field]!r}; an override would make '
            'it another run under the same name')


def check_runs_match(example: Example, workdir: str, suite: str,
                     seeds: Sequence[int], num_steps: int = 0,
                     overrides: Mapping[str, Any] = None) -> None:
  """Refuses a work directory whose runs of ``suite`` have other configs.

  A run there that finished or saved a checkpoint must have the config the
  suite gives it (``example.config``), but for ``example.may_change``:
  otherwise it is another suite's run, or one made before the suite
  changed, and would be skipped as finished or tabulated under the wrong
  task.

  Raises:
    cli.UsageError: the first run and field that differ.
  """
  if example.may_change is None:
    return
  for seed in seeds:
    for name in example.suites[suite].runs:
      path = run_dir(workdir, name, seed)
      checkpoints = os.path.join(path, 'checkpoints')
      if not (os.path.isfile(os.path.join(path, 'config.json')) and (
          os.path.exists(os.path.join(path, 'result.json'))
          or (os.path.isdir(checkpoints) and os.listdir(checkpoints)))):
        continue
      there = schema.flatten(read_json(os.path.join(path, 'config.json')))
      here = schema.flatten(json.loads(example.config(
          suite, name, seed, num_steps, overrides).to_json()))
      changed = [k for k in here if k in there
                 and k not in example.may_change and there[k] != here[k]]
      if changed:
        field = changed[0]
        raise cli.UsageError(
            f'{path} holds a run made with another config than run {name!r} '
            f'of suite {suite!r} (config.{field}: {there[field]!r} there, '
            f'{here[field]!r} in the suite); give another --workdir, or the '
            'suite and --override it was made with')


def run_suite(example: Example, workdir: str, suite: str, seeds: list[int],
              only: Sequence[str] = (), num_steps: int = 0,
              overrides: Mapping[str, Any] = None) -> None:
  """Trains every (run, seed) not finished yet, seed-major order."""
  the_suite = example.suites[suite]
  names = [n for n in the_suite.runs if not only or n in only]
  for seed in seeds:
    for name in names:
      path = run_dir(workdir, name, seed)
      config = make_config(example.build, the_suite, name, seed, num_steps,
                           overrides)
      if result(workdir, name, seed) is not None:
        # A finished run is kept, also one made with another budget (which
        # check_runs_match lets through and the table's caption names).
        made_with = os.path.join(path, 'config.json')
        made = (read_json(made_with).get('num_steps')
                if os.path.exists(made_with) else None)
        if made != config.num_steps:
          logging.warning(
              '=== %s seed %d: kept the run finished in %s with '
              'num_steps=%s, not %d (the table says so); delete it to train '
              'it with %d', name, seed, path, made, config.num_steps,
              config.num_steps)
        else:
          logging.info('=== %s seed %d: finished in %s, kept', name, seed,
                       path)
        continue
      logging.info('=== %s seed %d -> %s', name, seed, path)
      example.train(config, path)


def censored_median(values):
  """Median over seeds, a run that never reached the target counting as +inf.

  A run stopped at its budget is right-censored: it would have needed more
  than any run that got there. So 2 of 3 seeds at the target still have a
  median (the slower of the two), while 1 of 2 or 1 of 3 do not (None).
  """
  if not values:
    return None
  median = statistics.median(
      [math.inf if v is None else v for v in values])
  return None if math.isinf(median) else median


def finished_runs(workdir: str, suite: Suite, seeds: Sequence[int]):
  """``(name, seed)`` of every finished run of ``suite`` in ``workdir``."""
  return [(name, seed) for name in suite.runs for seed in seeds
          if result(workdir, name, seed) is not None]


def shared_settings(workdir: str, suite: Suite, seeds: Sequence[int],
                    fields: Sequence[str], allow_mixed: bool = False
                    ) -> dict[str, Any] | None:
  """``fields`` (dotted names) as the finished runs in ``workdir`` set them.

  A table states some settings once (the target, the evaluation period):
  they are read from the runs' ``config.json`` (what ran, ``--override``
  included), not from the suite, and must be the same in every run.

  Returns:
    field -> value, or None if no run has finished.

  Raises:
    tables.MixedRunsError: two runs differ in one of ``fields`` (the first
      run's values are returned instead if ``allow_mixed``).
  """
  values = {}
  for name, seed in finished_runs(workdir, suite, seeds):
    config = schema.flatten(read_json(os.path.join(
        run_dir(workdir, name, seed), 'config.json')))
    for field in fields:
      if field not in values:
        values[field] = (config.get(field), f'{name} seed {seed}')
      elif config.get(field) != values[field][0] and not allow_mixed:
        raise tables.MixedRunsError(
            f'{name} seed {seed} and {values[field][1]} ran with different '
            f'{field} ({config.get(field)!r} vs {values[field][0]!r}); a '
            'table states one')
  return {field: value for field, (value, _) in values.items()} or None


def environment_of(workdir: str, suite: Suite, seeds: Sequence[int],
                   allow_mixed: bool = False) -> dict[str, Any] | None:
  """The one environment of the finished runs in ``workdir``.

  Raises:
    tables.MixedRunsError: as ``tables.one_environment``.
  """
  return tables.one_environment(
      {f'{name} seed {seed}': provenance.read(run_dir(workdir, name, seed))
       for name, seed in finished_runs(workdir, suite, seeds)}, allow_mixed)


def start_dates(workdir: str, suite: Suite, seeds: Sequence[int]):
  """When each segment of each finished run started (sorted, ISO 8601)."""
  return sorted(s['started'] for name, seed in finished_runs(
      workdir, suite, seeds)
                for s in provenance.read(run_dir(workdir, name, seed)) or [])


def module_of(script: str) -> str:
  """The dotted module a script path runs as: ``python -m <module>``.

  Read from the path, from its last ``examples`` folder on (every program
  of the examples lives in that package), so that a run made from another
  checkout of the repository (a git worktree pinned for a long experiment)
  reads as the same command, not ``runs.<worktree>.examples...``.

  >>> module_of('/work/main/runs/pinned/examples/inr/compare.py')
  'examples.inr.compare'
  """
  parts = os.path.normpath(os.path.splitext(script)[0]).split(os.sep)
  if 'examples' in parts:
    last = len(parts) - 1 - parts[::-1].index('examples')
    return '.'.join(parts[last:])
  return os.path.relpath(os.path.splitext(script)[0], REPO).replace(
      os.sep, '.')


def commands_of(workdirs: Sequence[str], suite: Suite,
                seeds: Sequence[int]) -> list[str]:
  """The distinct command lines that made the runs, in order of start.

  From each run's ``provenance.json`` (its ``argv`` and ``XLA_FLAGS``), so
  that a table's rerun commands are the ones that ran, not restated.
  """
  starts = []
  for workdir in workdirs:
    for name, seed in finished_runs(workdir, suite, seeds):
      for segment in provenance.read(run_dir(workdir, name, seed)) or []:
        try:
          argv = shlex.split(segment['argv'])
        except ValueError:
          # Recorded unquoted (before provenance quoted it), with a quote.
          argv = segment['argv'].split()
        if argv and argv[0].endswith('.py'):
          argv = ['python', '-m', module_of(argv[0]), *argv[1:]]
        command = shlex.join(argv)
        xla_flags = (segment.get('xla_flags') or '').strip()
        if xla_flags:
          command = f'XLA_FLAGS={shlex.quote(xla_flags)} {command}'
        starts.append((segment['started'], command))
  commands = []
  for _, command in sorted(starts):
    if command not in commands:
      commands.append(command)
  return commands


def _config_changes(workdir: str, other: str, name: str, seed: int):
  mine = schema.flatten(read_json(os.path.join(run_dir(workdir, name, seed),
                                               'config.json')))
  theirs = schema.flatten(read_json(os.path.join(run_dir(other, name, seed),
                                                 'config.json')))
  return [f'{k}={theirs[k]}' for k in sorted(theirs)
          if k in mine and mine[k] != theirs[k]]


def measure_noise_floor(workdir: str, noise_workdirs: Sequence[str],
                        suite: Suite, seeds: Sequence[int],
                        metric: str) -> dict[str, Any]:
  """The metric of the same runs and seeds in ``noise_workdirs``.

  Each of ``noise_workdirs`` re-ran some runs of the suite with the same
  code and seeds in a perturbed setting (more host devices, a data-parallel
  mesh): what changes there is the order of floating-point sums, nothing the
  optimizers compare on. See ``tables.noise_floor``.

  Args:
    metric: the ``result.json`` key compared, e.g. ``'steps_to_target'``.

  Raises:
    tables.MixedRunsError: a directory's runs ran other code than
      ``workdir``'s, or differ among themselves.
  """
  environment = environment_of(workdir, suite, seeds)
  cells, perturbations = [], []
  for other in noise_workdirs:
    other_env = environment_of(other, suite, seeds)
    if other_env is None:
      continue
    changes = provenance.differences(environment, other_env)
    if any(d.startswith('code_hash') for d in changes):
      raise tables.MixedRunsError(
          f'{other} ran other code than {workdir}; a noise floor compares '
          'the same code')
    changes = [d.replace(' vs ', ' -> ') for d in changes]
    for name, seed in finished_runs(other, suite, seeds):
      mine = result(workdir, name, seed)
      if mine is None:
        continue
      perturbation = '; '.join(
          changes + _config_changes(workdir, other, name, seed))
      cells.append({'run': name, 'seed': seed, 'perturbation': perturbation,
                    'reference': mine[metric],
                    'perturbed': result(other, name, seed)[metric]})
      if perturbation not in perturbations:
        perturbations.append(perturbation)
  floor = tables.noise_floor(cells)
  floor['perturbations'] = perturbations
  return floor


def changes_of(workdir: str, suite: Suite, seeds: Sequence[int],
               build: Callable[..., ml_collections.ConfigDict]
               ) -> list[dict[str, Any]]:
  """How the finished runs in ``workdir`` differ from the suite's configs.

  Each run's ``config.json`` (what it ran with: ``--num_steps`` and
  ``--override`` included, as it last resumed) against the config the suite
  gives it (``make_config`` with neither), field by field.

  Returns:
    One entry per field and value that differ, in the config's order:
    ``{'field', 'value', 'suite_value', 'runs'}``, ``runs`` naming each run
    (``'<name> seed <seed>'``) that ran with ``value``; empty if every run
    ran as the suite says (or no run has a ``config.json``).
  """
  found: dict[tuple[str, str, str], dict[str, Any]] = {}
  order: dict[str, int] = {}
  for name, seed in finished_runs(workdir, suite, seeds):
    path = os.path.join(run_dir(workdir, name, seed), 'config.json')
    if not os.path.isfile(path):
      continue
    there = schema.flatten(read_json(path))
    here = schema.flatten(json.loads(make_config(build, suite, name,
                                                 seed).to_json()))
    for field, value in here.items():
      order.setdefault(field, len(order))
      if field in there and there[field] != value:
        key = (field, json.dumps(there[field]), json.dumps(value))
        found.setdefault(key, {'field': field, 'value': there[field],
                               'suite_value': value, 'runs': []})
        found[key]['runs'].append(f'{name} seed {seed}')
  return sorted(found.values(), key=lambda c: order[c['field']])


def make_summary(workdir: str, name: str, suite: Suite,
                 seeds: Sequence[int], *,
                 environment: Mapping[str, Any] | None,
                 settings: Mapping[str, Any], rows: Mapping[str, Any],
                 noise_metric: str,
                 noise_workdirs: Sequence[str] = (),
                 build: Callable[..., ml_collections.ConfigDict] | None = None
                 ) -> dict[str, Any]:
  """A table's ``results.json``: the suite, where and how it ran, the rows.

  Args:
    workdir: the runs' work directory.
    name: the suite's name.
    suite: the suite.
    seeds: the seeds tabulated.
    environment: ``environment_of`` the runs (None: mixed).
    settings: what the example's table states once (its target, its
      evaluation period, ...), placed after the baseline's name; read them
      from the runs (``shared_settings``), which may have run with other
      values than the suite's.
    rows: run name -> the example's row (``run_entries``, ...).
    noise_metric: the ``result.json`` key the noise floor compares.
    noise_workdirs: re-runs of the suite for its noise floor (none: no
      floor).
    build: the example's ``configs.build``: the summary then holds, after
      ``task``, what the runs ran with in place of the suite's config
      (``changed``, ``changes_of``; left out when they ran as the suite
      says, so such a table reads as before). None: not compared.
  """
  changed = changes_of(workdir, suite, seeds, build) if build else []
  return {
      'suite': name, 'about': suite.about,
      'task': dict(suite.task),
      **({'changed': changed} if changed else {}),
      'seeds': seeds,
      'baseline': next(iter(suite.runs)),
      **settings,
      'environment': environment,
      'started': start_dates(workdir, suite, seeds),
      'commands': commands_of([workdir, *noise_workdirs], suite, seeds),
      'noise_floor': (measure_noise_floor(
          workdir, noise_workdirs, suite, seeds, noise_metric)
                      if noise_workdirs and environment else None),
      'results': rows,
  }


def write_summary(workdir: str, summary: Mapping[str, Any],
                  render: Callable[[Mapping[str, Any]], str]) -> None:
  """``results.json`` (``summary``) and ``results.md`` (``render`` of it)."""
  with open(os.path.join(workdir, 'results.json'), 'w') as f:
    json.dump(summary, f, indent=1)
  with open(os.path.join(workdir, 'results.md'), 'w') as f:
    f.write(render(summary) + '\n')


def task_text(summary: Mapping[str, Any]) -> str:
  """The caption's ``(task overrides of `configs/default.py`: ...)``.

  With what the runs ran with in place of the suite's config (the
  summary's ``changed``): ``; the runs tabulated ran with num_steps=100
  instead of 2000``, and ``(in 2 of 6 runs)`` after a change not every
  run made.
  """
  task = ', '.join(f'{k}={v}' for k, v in summary['task'].items()) or 'none'
  changed = summary.get('changed')
  if changed:
    total = sum(len(row['per_seed'])
                for row in summary['results'].values())
    changes = []
    for c in changed:
      text = f'{c["field"]}={c["value"]} instead of {c["suite_value"]}'
      if len(c['runs']) < total:
        text += f' (in {len(c["runs"])} of {total} runs)'
      changes.append(text)
    task += '; the runs tabulated ran with ' + ', '.join(changes)
  return f'(task overrides of `configs/default.py`: {task})'


def seeds_text(seeds: Sequence[int]) -> str:
  """``'seed 0'``, ``'seeds 0, 2'``."""
  return (f'seed {seeds[0]}' if len(seeds) == 1
          else 'seeds ' + ', '.join(map(str, seeds)))


def row_seeds(summary: Mapping[str, Any], row: Mapping[str, Any]) -> str:
  """``' (seed 0)'`` after a row's name if it lacks a seed of the table.

  Empty for a row of every seed of the table (a complete table reads as
  before).
  """
  if list(row['seeds']) == list(summary['seeds']):
    return ''
  return f' ({seeds_text(row["seeds"])})'


def partial_text(summary: Mapping[str, Any], names: Sequence[str] | None,
                 about: str) -> str | None:
  """Which runs lack a seed of the table; None if none does.

  A table of partial runs (``--table_only`` during a sweep, runs missing
  seeds) states its seeds once; a row of fewer seeds must say which it has
  (``row_seeds``), or its per-seed lists and means read as the table's.

  Args:
    summary: the table's summary (``seeds`` and ``results``, whose rows have
      ``seeds``).
    names: the runs to account for, in the table's order: each lacking a
      seed of the table is named with the seeds it has, or ``none`` if it
      has no row. None: the table's rows, and its baseline (what its
      comparisons divide by) if it has none; a run of the suite with no row
      is then left out, as in a table of the runs chosen by ``--only``.
    about: what follows the list: how the table's numbers read for those
      runs (which comparisons take the seeds both runs have).

  Returns:
    ``'**Not every run has finished every seed** (seeds 0, 1): `a` seed 0
    only; `b` none. <about>'``, or None.
  """
  seeds = list(summary['seeds'])
  if names is None:
    base = summary.get('baseline')
    names = ([base] if base is not None and base not in summary['results']
             else []) + list(summary['results'])
  short = []
  for name in names:
    row = summary['results'].get(name)
    have = list(row['seeds']) if row else []
    if have != seeds:
      short.append(f'`{name}` ' + (seeds_text(have) + ' only' if have
                                    else 'none'))
  if not short:
    return None
  return (f'**Not every run has finished every seed** ({seeds_text(seeds)})'
          f': {"; ".join(short)}. {about}')


def measured(summary: Mapping[str, Any]) -> str:
  """``'Measured <dates>, <environment>.'`` for a table's caption."""
  started = summary['started']
  days = sorted({s[:10] for s in started})
  when = (' to '.join([days[0], days[-1]]) if len(days) > 1
          else (days[0] if days else 'on unknown dates'))
  env = summary['environment']
  where = ('in environments that differ (--allow_mixed)' if env is None
           else provenance.describe(env))
  return f'Measured {when}, {where}.'


def noise_text(floor: Mapping[str, Any] | None, *, event: str,
               unmeasured: str) -> str:
  """The caption's paragraph on a table's noise floor (``tables.noise_floor``).

  Args:
    floor: the summary's ``noise_floor``, or None.
    event: what the metric's step marks, e.g. ``'reached 95%'``.
    unmeasured: the text when no floor was measured.
  """
  if not floor or not floor['pairs']:
    return unmeasured
  runs = sorted({c['run'] for c in floor['cells']})
  seeds = sorted({c['seed'] for c in floor['cells']})
  moved = [c for c in floor['cells'] if c['factor'] is not None
           and c['factor'] > 1]
  censored = (f'; in {floor["censored"]} pair(s) only one of the two '
              f'{event}' if floor['censored'] else '')
  return (f'**Noise floor.** The same code, runs ({", ".join(runs)}) and '
          f'seeds ({", ".join(map(str, seeds))}) re-run with '
          + ' and with '.join(f'`{p}`' for p in floor['perturbations'])
          + f' (only the order of floating-point sums changes) {event} at a '
          f'different step in {len(moved)} of {floor["pairs"]} pairs, by a '
          f'factor of up to {floor["factor"]:.2f} (median '
          f'{floor["median_factor"]:.2f}){censored}. Ratios inside '
          f'[1/{floor["factor"]:.2f}, {floor["factor"]:.2f}] are shown in '
          'parentheses: summation order alone moves a run that far.')


def commands_text(summary: Mapping[str, Any]) -> str:
  """The commands that made a table, indented as a code block."""
  return ('The commands that made it (from the runs\' provenance.json):\n\n'
          + '\n'.join(f'    {c}' for c in summary['commands']))


def suites_table(example: Example) -> str:
  """The README's table of the suites, from ``example.suites``."""
  lines = ['| suite | what | task: overrides of `configs/default.py` | runs '
           '(the first is the baseline) |', '|---|---|---|---|']
  for name, suite in example.suites.items():
    task = ', '.join(f'`{k}={v}`' for k, v in suite.task.items())
    runs = ', '.join(f'`{r}`' for r in suite.runs)
    lines.append(f'| `{name}` | {suite.about} | {task} | {runs} |')
  return '\n'.join(lines)


def readme_of(results_dir: str) -> str:
  """The README.md of the example whose ``results/<suite>`` this is."""
  return os.path.join(os.path.dirname(os.path.dirname(
      os.path.abspath(results_dir))), 'README.md')


def publish(example: Example, workdir: str, results_dir: str,
            summary: Mapping[str, Any]) -> str:
  """Copies the result files, rewrites the README's blocks; the README."""
  os.makedirs(results_dir, exist_ok=True)
  for name in example.files:
    if os.path.exists(os.path.join(workdir, name)):
      shutil.copyfile(os.path.join(workdir, name),
                      os.path.join(results_dir, name))
  readme = readme_of(results_dir)
  tables.replace_block(readme, f'compare:{summary["suite"]}',
                       example.render(summary))
  tables.replace_block(readme, 'compare:suites', suites_table(example))
  return readme


def define_flags(example: Example, default_suite: str) -> None:
  """The flags of ``compare.py``; defined only when run as a program."""
  flags.DEFINE_string('workdir', None, '(required) Where the runs (one '
                      'directory each), the table and the plot go; finished '
                      'runs there are skipped, unfinished ones resumed.')
  flags.DEFINE_enum('suite', default_suite, list(example.suites),
                    'Which suite to run.')
  flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds, comma separated: '
                    'every run of the suite is trained at each.')
  flags.DEFINE_list('only', [], 'Run only these run names of the suite.')
  flags.DEFINE_integer('num_steps', 0, 'Every run\'s step budget, in place '
                       'of the suite\'s (0: the suite\'s); the table says '
                       'so.')
  flags.DEFINE_bool('table_only', False, 'Only tabulate finished runs.')
  flags.DEFINE_multi_string(
      'override', [], 'field=value, applied to every run (repeatable), e.g. '
      '--override=learning_rate=3e-4 (`main --help` lists the fields; where '
      'the example has them, --override=snr.population_risk=True logs the '
      'population-loss estimate and --override=mesh_data=2 re-runs a suite '
      'data-parallel); the value is '
      'parsed as the type of the default config\'s field; the table says '
      'so.')
  flags.DEFINE_bool('allow_mixed', False, 'Tabulate runs from different '
                    'code or environments (provenance.json) in one table; '
                    'refused otherwise.')
  flags.DEFINE_list('noise_floor', [], 'Work directories where some runs '
                    'of the suite were re-run with the same code and seeds '
                    'under another summation order (where the example '
                    'has a mesh: more host devices, --override=mesh_data=2): '
                    'the table reports ratios '
                    'against how far that alone moved them.')
  flags.DEFINE_string('publish', None, 'Copy the result files to this '
                      'directory (examples/<name>/results/<suite>) and '
                      'rewrite the block "compare:<suite>" of the README.md '
                      'above it.')


def main(example: Example) -> None:
  """``compare.py``: checks the flags, trains, tabulates, publishes."""
  try:
    seeds = [int(s) for s in FLAGS.seeds]
  except ValueError:
    raise cli.UsageError(f'--seeds={",".join(FLAGS.seeds)}: give integers '
                         'separated by commas, e.g. --seeds=0,1,2') from None
  if not seeds or min(seeds) < 0:
    raise cli.UsageError('--seeds: give one or more integers >= 0, e.g. '
                         '--seeds=0,1,2')
  twice = [s for i, s in enumerate(seeds) if s in seeds[:i]]
  if twice:
    raise cli.UsageError(f'--seeds={",".join(FLAGS.seeds)}: seed {twice[0]} '
                         'is given twice; give each seed once')
  suite = example.suites[FLAGS.suite]
  unknown = [n for n in FLAGS.only if n not in suite.runs]
  if unknown:
    raise cli.UsageError(f'--only: no run {unknown[0]!r} in suite '
                         f'{FLAGS.suite!r}; its runs: {", ".join(suite.runs)}')
  if FLAGS.num_steps < 0:
    raise cli.UsageError(f'--num_steps must be >= 0 (0: the suite\'s '
                         f'budget), got {FLAGS.num_steps}')
  overrides = parse_overrides(example.build(), FLAGS.override)
  check_overrides(FLAGS.suite, suite, overrides)
  # Every run at the first seed, and every seed (the schema's bounds).
  for name, seed in ([(name, seeds[0]) for name in suite.runs]
                     + [(next(iter(suite.runs)), seed) for seed in seeds]):
    example.validate(make_config(example.build, suite, name, seed,
                                 FLAGS.num_steps, overrides))
  workdir = cli.check_workdir(FLAGS.workdir)
  seeds_text = ','.join(map(str, seeds))
  check_runs_match(example, workdir, FLAGS.suite, seeds, FLAGS.num_steps,
                   overrides)
  if FLAGS.table_only and not finished_runs(workdir, suite, seeds):
    raise cli.UsageError(
        f'--table_only: {workdir} holds no finished run of suite '
        f'{FLAGS.suite!r} at seeds {seeds_text}; leave out --table_only to '
        'train them')
  for other in FLAGS.noise_floor:
    if not os.path.isdir(other):
      raise cli.UsageError(f'--noise_floor: {other} is not a directory')
    if os.path.isdir(workdir) and os.path.samefile(other, workdir):
      raise cli.UsageError(
          f'--noise_floor={other} is --workdir itself; give a directory '
          'where the same runs were re-run under another summation order '
          '(more host devices, --override=mesh_data=2)')
    if not finished_runs(other, suite, seeds):
      raise cli.UsageError(
          f'--noise_floor: {other} holds no finished run of suite '
          f'{FLAGS.suite!r} at seeds {seeds_text}')
    check_runs_match(example, other, FLAGS.suite, seeds, FLAGS.num_steps,
                     overrides)
  if FLAGS.publish:
    if os.path.basename(os.path.normpath(FLAGS.publish)) != FLAGS.suite:
      raise cli.UsageError(
          f'--publish={FLAGS.publish}: publish suite {FLAGS.suite!r} to '
          f'examples/<name>/results/{FLAGS.suite} (the README block and the '
          'test that checks it go by that name)')
    readme = readme_of(FLAGS.publish)
    if not os.path.isfile(readme):
      raise cli.UsageError(
          f'--publish={FLAGS.publish}: there is no {readme} to rewrite; '
          f'give examples/<name>/results/{FLAGS.suite}')
    for block in (f'compare:{FLAGS.suite}', 'compare:suites'):
      try:
        tables.check_block(readme, block)
      except ValueError as e:
        raise cli.UsageError(f'--publish: {e}') from None
  os.makedirs(workdir, exist_ok=True)
  if not FLAGS.table_only:
    run_suite(example, workdir, FLAGS.suite, seeds, FLAGS.only,
              FLAGS.num_steps, overrides)
  try:
    summary = example.tabulate(workdir, FLAGS.suite, seeds,
                               allow_mixed=FLAGS.allow_mixed,
                               noise_workdirs=FLAGS.noise_floor)
  except tables.MixedRunsError as e:
    raise cli.UsageError(f'{e} (--allow_mixed tabulates them anyway)'
                         ) from None
  print(example.render(summary))
  files = [os.path.join(workdir, f) for f in example.files]
  print('wrote ' + ', '.join(f for f in files if os.path.exists(f))
        + f' (runs in {run_dir(workdir, "<run>", "<seed>")})')
  if FLAGS.publish:
    readme = publish(example, workdir, FLAGS.publish, summary)
    print(f'published to {FLAGS.publish} and {readme}')


def run_program(example: Example, *, default_suite: str) -> None:
  """The whole program ``compare.py``: its flags, then ``main`` (``cli.run``).

  Args:
    example: the example's ``Example``.
    default_suite: the suite ``--suite`` names by default.
  """
  define_flags(example, default_suite)
  cli.run(lambda argv: main(example))
