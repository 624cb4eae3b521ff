# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The tests every example passes, written once, and helpers for its own.

Not a test file (pytest collects ``*_test.py``): an example's
``train_test.py`` mixes these classes into its test cases and says what
differs, keeping there the tests only it has::

  from examples.common import testing

  class TrainTest(testing.TrainTests, parameterized.TestCase):
    PACKAGE = 'examples.<name>'
    RESUMED_METRICS = ('val_loss', 'val_accuracy', 'mask_fraction')
    ANOTHER_CONFIG = ('width', 32, 'config.width: 16 there, 32 here')
    BAD_CONFIG = ({'snr.mode': 'bogus'}, 'config.snr.mode must be one of')

    def test_something_only_this_example_does(self):
      ...

Use the mixins through the module (``testing.TrainTests``): a mixin is no
test case on its own, and a name imported into a test module would be
collected there.

The mixins find the example's pieces by the layout every example has
(``train.py``, ``main.py``, ``compare.py``, ``config_schema.py``,
``configs/default.py``, ``configs/tiny.py``) and rely on its tiny config:
20 steps, evaluated every 5 and checkpointed every 10, seconds on a CPU,
with ``train.batch_indices(seed, step, ...)`` giving each step's batch.

Compiling a step is most of a tiny run's time, and every example's tests
pay it per run, so the mixins train as few runs as their checks need: a
reference run once per process (``reference_run``), the tiny suite's runs
of a setting once per process, copied into each test that changes them
(``tiny_suite``, ``CompareTests.tiny_runs``), and a mechanism the shared
code owns (the loop's Ctrl-C paths, tested on a toy in loop_test.py) wired
once per example. Further variants are ``slow``: they run with
``SNR_OPTAX_SLOW=1`` only.
"""

from __future__ import annotations

import atexit
from collections.abc import Mapping, Sequence
import fcntl
import functools
import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import types
from typing import Any
import unittest
from unittest import mock

import numpy as np

from examples.common import cli
from examples.common import interrupt
from examples.common import runlock
from examples.common import schema
from examples.common import suites
from examples.common import tables

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# The slow switch of the whole suite (conftest.py, README): the default run
# keeps one test of each piece of an example's wiring; SNR_OPTAX_SLOW=1 runs
# every variant as well.
SLOW = os.environ.get('SNR_OPTAX_SLOW') == '1'

# Run with ``python -c RUNLOCK_HOLDER <workdir>`` from REPO: takes the work
# directory's lock, says ``locked``, and waits until killed (or stdin closes).
RUNLOCK_HOLDER = textwrap.dedent('''
    import sys
    from examples.common import runlock
    runlock.acquire(sys.argv[1])
    print('locked', flush=True)
    sys.stdin.read()
''')
slow = unittest.skipUnless(SLOW, 'a further variant: SNR_OPTAX_SLOW=1 runs '
                           'it')


def read_metrics(workdir: str) -> list[dict[str, Any]]:
  """The rows of ``workdir/metrics.jsonl``."""
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def module_command(module: str, *args: str) -> list[str]:
  """The command that runs ``python -m <module> <args>`` here."""
  return [sys.executable, '-m', module, *args]


def run_module(module: str, *args: str, timeout: float = 300,
               cpu_only: bool = True) -> subprocess.CompletedProcess:
  """Runs ``python -m <module> <args>`` in the repository; its output.

  Args:
    module: e.g. ``'examples.grokking.main'``.
    *args: its flags.
    timeout: seconds before the test fails.
    cpu_only: ``JAX_PLATFORMS=cpu``: JAX probes no accelerators, whose log
      lines would join the one line of an error on stderr. False: the
      program as a user starts it.
  """
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu'} if cpu_only else None
  return subprocess.run(module_command(module, *args), cwd=REPO,
                        capture_output=True, text=True, timeout=timeout,
                        check=False, env=env)


@functools.cache
def reference_run(package: str, optimizer: str) -> str:
  """The workdir of an uninterrupted tiny run of ``optimizer``.

  The resume tests' reference, trained once per test process.
  """
  workdir = tempfile.mkdtemp()
  atexit.register(shutil.rmtree, workdir, ignore_errors=True)
  config = importlib.import_module(f'{package}.configs.tiny').get_config()
  config.optimizer = optimizer
  importlib.import_module(f'{package}.train').train_and_evaluate(config,
                                                                 workdir)
  return workdir


@functools.cache
def tiny_suite(package: str, seeds: tuple[int, ...],
               overrides: tuple[tuple[str, Any], ...]) -> str:
  """The workdir of ``compare.run_suite(..., 'tiny', seeds, overrides)``.

  Trained once per test process and never changed: a test that tabulates,
  edits or publishes the runs takes a copy (``CompareTests.tiny_runs``).
  """
  workdir = tempfile.mkdtemp()
  atexit.register(shutil.rmtree, workdir, ignore_errors=True)
  importlib.import_module(f'{package}.compare').run_suite(
      workdir, 'tiny', list(seeds), overrides=dict(overrides))
  return workdir


class _Example:
  """The example under test, found by its package.

  Attributes:
    PACKAGE: the example's package, e.g. ``'examples.grokking'``.
  """

  PACKAGE: str

  def example_module(self, name: str) -> types.ModuleType:
    """The example's module ``name``, e.g. ``'train'``, ``'configs.tiny'``."""
    return importlib.import_module(f'{self.PACKAGE}.{name}')

  @property
  def example_dir(self) -> str:
    return os.path.join(REPO, *self.PACKAGE.split('.'))

  @property
  def tiny_config_file(self) -> str:
    """``configs/tiny.py``, relative to the repository (as in the README)."""
    return '/'.join([*self.PACKAGE.split('.'), 'configs', 'tiny.py'])

  def tiny_config(self):
    return self.example_module('configs.tiny').get_config()


class TrainTests(_Example):
  """Resume, Ctrl-C and refusals of ``train.train_and_evaluate``.

  Attributes:
    SNR_OPTIMIZER: the optimizer of the resume tests: one with optimizer
      state and statistics worth resuming.
    RESUMED_METRICS: the ``metrics.jsonl`` entries a resumed run
      reproduces exactly (not the timings).
    RESUMED_FILES: ``.npy`` files of the workdir it reproduces exactly.
    ANOTHER_CONFIG: ``(field, value, difference)``: a change of the tiny
      config that makes another run, and how the refusal names it
      (``'config.width: 16 there, 32 here'``).
    BAD_CONFIG: ``(changes, message)``: changes of the tiny config the
      schema refuses, and the start of the refusal (a regex).
  """

  SNR_OPTIMIZER = 'snr_adam'
  RESUMED_METRICS: Sequence[str]
  RESUMED_FILES: Sequence[str] = ()
  ANOTHER_CONFIG: tuple[str, Any, str]
  BAD_CONFIG: tuple[Mapping[str, Any], str]

  def assert_same_run(self, workdir_a: str, workdir_b: str) -> None:
    """The two runs logged the same steps, metrics and files."""
    a, b = read_metrics(workdir_a), read_metrics(workdir_b)
    self.assertEqual([r['step'] for r in a], [r['step'] for r in b])
    for ra, rb in zip(a, b):
      for key in self.RESUMED_METRICS:
        self.assertEqual(ra[key], rb[key], key)
    for name in self.RESUMED_FILES:
      np.testing.assert_array_equal(np.load(os.path.join(workdir_a, name)),
                                    np.load(os.path.join(workdir_b, name)))

  def _reference(self) -> str:
    return reference_run(self.PACKAGE, self.SNR_OPTIMIZER)

  def test_resume_is_exact(self):
    train = self.example_module('train')
    config = self.tiny_config()
    config.optimizer = self.SNR_OPTIMIZER
    parts = self.create_tempdir().full_path
    config.num_steps = 10
    train.train_and_evaluate(config, parts)
    config.num_steps = 20
    train.train_and_evaluate(config, parts)     # resumes from step 10
    self.assert_same_run(self._reference(), parts)

  def _interrupt_and_resume(self, how: str) -> None:
    train = self.example_module('train')
    config = self.tiny_config()
    config.optimizer = self.SNR_OPTIMIZER
    config.checkpoint_every = 1000     # interrupted before any checkpoint
    original = train.batch_indices

    def interrupting(seed, step, *args):
      if step == 7:
        if how == 'raise':
          raise KeyboardInterrupt
        signal.raise_signal(signal.SIGINT)
      return original(seed, step, *args)

    parts = self.create_tempdir().full_path
    with mock.patch.object(train, 'batch_indices', interrupting):
      with self.assertRaises(interrupt.TrainingInterrupted) as e:
        train.train_and_evaluate(config, parts)
    # Off the main thread no handler defers the signal: it raises at once.
    deferred = (how == 'signal' and threading.current_thread()
                is threading.main_thread())
    step = 8 if deferred else 7
    self.assertEqual(e.exception.step, step)
    self.assertEqual(e.exception.checkpoint_dir,
                     os.path.join(parts, 'checkpoints'))
    self.assertEqual(os.listdir(os.path.join(parts, 'checkpoints')),
                     [str(step)])
    self.assertEqual([r['step'] for r in read_metrics(parts)], [5])
    result = train.train_and_evaluate(config, parts)   # resumes
    self.assertEqual(result['final_step'], 20)
    self.assert_same_run(self._reference(), parts)

  # The loop's two Ctrl-C paths are tested on a toy in loop_test.py; through
  # an example they share all of its wiring (the step's batch looked up
  # there, its state saved and restored), so the default run takes the
  # first Ctrl-C only.
  @slow
  def test_interrupt_saves_and_resumes_exactly_keyboard_interrupt(self):
    # Ctrl-C in the middle of a step (a second Ctrl-C, or a raise from a
    # hook): the state of the last finished step is saved.
    self._interrupt_and_resume('raise')

  def test_interrupt_saves_and_resumes_exactly_sigint(self):
    # The first Ctrl-C: the step runs to its end, then the loop stops.
    self._interrupt_and_resume('signal')

  def test_resume_with_another_config_is_refused(self):
    train = self.example_module('train')
    field, value, difference = self.ANOTHER_CONFIG
    config = self.tiny_config()
    config.num_steps = 5
    workdir = self.create_tempdir().full_path
    train.train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, 'config.json')) as f:
      before = f.read()
    schema.override(config, {field: value})
    with self.assertRaisesRegex(
        schema.ConfigError, r'holds a run started with another config \('
        + re.escape(difference) + r'\)'):
      train.train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, 'config.json')) as f:
      self.assertEqual(f.read(), before)
    # A budget below the run's step: it would stay at step 5 under a
    # config.json saying 4 ("training steps 6 to 4").
    config = self.tiny_config()
    config.num_steps = 4
    with self.assertRaisesRegex(
        schema.ConfigError, re.escape(
            f'{workdir} holds a run already at step 5, past '
            'config.num_steps=4; a run is not cut short')):
      train.train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, 'config.json')) as f:
      self.assertEqual(f.read(), before)

  def test_a_workdir_another_process_holds_is_refused(self):
    # Two sweeps on one work directory trained the same run at once. The
    # lock of another process: another open file of the lock (this
    # process's own lock would let it resume).
    workdir = self.create_tempdir().full_path
    fd = os.open(os.path.join(workdir, runlock.FILENAME),
                 os.O_RDWR | os.O_CREAT)
    self.addCleanup(os.close, fd)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, b'4242\n')
    with self.assertRaisesRegex(
        runlock.RunLocked, re.escape(f'{workdir} is in use: another process '
                                     '(pid 4242)')):
      self.example_module('train').train_and_evaluate(self.tiny_config(),
                                                      workdir)
    self.assertEqual(os.listdir(workdir), [runlock.FILENAME])

  def test_bad_config_writes_nothing(self):
    changes, message = self.BAD_CONFIG
    config = schema.override(self.tiny_config(), changes)
    workdir = os.path.join(self.create_tempdir().full_path, 'run')
    with self.assertRaisesRegex(schema.ConfigError, message):
      self.example_module('train').train_and_evaluate(config, workdir)
    self.assertFalse(os.path.exists(workdir))


class SchemaTests(_Example):
  """Every config file is valid; train.py builds every listed optimizer.

  Attributes:
    CONFIG_FILES: config files (names without ``.py``) that must exist.
  """

  CONFIG_FILES: Sequence[str] = ('default', 'tiny')

  def test_every_config_file_is_valid(self):
    config_schema = self.example_module('config_schema')
    names = sorted(n[:-3] for n in os.listdir(os.path.join(self.example_dir,
                                                           'configs'))
                   if n.endswith('.py') and n != '__init__.py')
    self.assertContainsSubset(self.CONFIG_FILES, names)
    for name in names:
      with self.subTest(name):
        config_schema.validate(
            self.example_module(f'configs.{name}').get_config())

  def test_train_builds_every_optimizer_the_schema_lists(self):
    # The SNR choices are checked against snr_optax in
    # examples/common/snr_config_test.py.
    train = self.example_module('train')
    for optimizer in self.example_module('config_schema').OPTIMIZERS:
      config = self.tiny_config()
      config.optimizer = optimizer
      train.make_optimizer(config)


class MainTests(_Example):
  """The binary ``main.py``: one-line refusals (``assert_refused``), --help."""

  def main(self, *args: str, timeout: float = 300
           ) -> subprocess.CompletedProcess:
    """Runs ``python -m <package>.main <args>`` (``run_module``)."""
    return run_module(f'{self.PACKAGE}.main', *args, timeout=timeout)

  def assert_refused(self, args: Sequence[str], message: str, *,
                     whole: bool = False) -> None:
    """The tiny config with ``args`` ends in one line; nothing is written.

    Args:
      args: the flags after ``--workdir`` and ``--config``.
      message: the start of the line on stderr.
      whole: ``message`` is the whole line.
    """
    workdir = os.path.join(self.create_tempdir().full_path, 'run')
    out = self.main(f'--workdir={workdir}',
                    f'--config={self.tiny_config_file}', *args)
    self.assertEqual(out.returncode, cli.EXIT_USAGE, out.stderr)
    self.assertLen(out.stderr.strip().splitlines(), 1, out.stderr)
    if whole:
      self.assertEqual(out.stderr.strip(), message)
    else:
      self.assertStartsWith(out.stderr.strip(), message)
    self.assertEqual(out.stdout, '')
    self.assertFalse(os.path.exists(workdir))

  def test_help_lists_fields_defaults_optimizers_and_required_workdir(self):
    config_schema = self.example_module('config_schema')
    default = self.example_module('configs.default').get_config()
    out = self.main('--help')
    self.assertIn('--workdir: (required)', out.stdout)
    self.assertIn('--config.<field>=<value>', out.stdout)
    help_text = ' '.join(out.stdout.split())   # absl wraps long lines
    self.assertIn(f'--config.optimizer={default.optimizer}: the optimizer; '
                  'one of ' + ', '.join(repr(o) for o in
                                        config_schema.OPTIMIZERS), help_text)
    defaults = schema.flatten(default)
    for name in config_schema.FIELDS:
      self.assertIn(f'--config.{name}={defaults[name]}:', help_text)
    self.assertIn('--[no]distributed', out.stdout)


class CompareTests(_Example):
  """``compare.py``: its suites, --help, captions, the README blocks.

  Attributes:
    BLOCKS: suites whose README block must exist even before a table of
      theirs is published (every published suite must have one).
  """

  BLOCKS: Sequence[str] = ()
  # The overrides of the tiny suite's runs the shared tests tabulate: those
  # the example's own tests train (``tiny_suite`` trains each setting once).
  TINY_OVERRIDES: Mapping[str, Any] = {}

  def compare(self, *args: str, cpu_only: bool = True
              ) -> subprocess.CompletedProcess:
    """Runs ``python -m <package>.compare <args>`` (``run_module``)."""
    return run_module(f'{self.PACKAGE}.compare', *args, cpu_only=cpu_only)

  def tiny_runs(self, overrides: Mapping[str, Any] | None = None,
                seeds: Sequence[int] = (0,)) -> str:
    """A workdir of this test's own with the tiny suite's finished runs.

    A copy of ``tiny_suite``'s runs: tests that need the same runs share
    one training (and its compiled steps) but each edits its own copy.
    """
    workdir = os.path.join(self.create_tempdir().full_path, 'runs')
    shutil.copytree(tiny_suite(self.PACKAGE, tuple(seeds),
                               tuple(sorted((overrides or {}).items()))),
                    workdir)
    return workdir

  def assert_publishes(self, workdir: str, summary: Mapping[str, Any],
                       files: Sequence[str]) -> None:
    """``publish`` of the tiny suite copies ``files`` and fills the blocks."""
    compare = self.example_module('compare')
    example = self.create_tempdir().full_path
    readme = os.path.join(example, 'README.md')
    tiny, suites_block = ('\n'.join(tables._markers(f'compare:{name}'))  # pylint: disable=protected-access
                          for name in ('tiny', 'suites'))
    with open(readme, 'w') as f:
      f.write(f'intro\n{tiny}\nmiddle\n{suites_block}\nend\n')
    results = os.path.join(example, 'results', 'tiny')
    self.assertEqual(suites.publish(compare.EXAMPLE, workdir, results,
                                    summary), readme)
    self.assertEqual(tables.read_block(readme, 'compare:tiny'),
                     compare.render(summary) + '\n')
    self.assertEqual(tables.read_block(readme, 'compare:suites'),
                     suites.suites_table(compare.EXAMPLE) + '\n')
    self.assertEqual(sorted(os.listdir(results)), sorted(files))

  def test_committed_readme_blocks_are_what_the_code_renders(self):
    # The README's tables are generated: each block equals what render()
    # makes of the committed results.json, and the suites table is SUITES.
    compare = self.example_module('compare')
    readme = os.path.join(self.example_dir, 'README.md')
    results = os.path.join(self.example_dir, 'results')
    self.assertEqual(tables.read_block(readme, 'compare:suites'),
                     suites.suites_table(compare.EXAMPLE) + '\n')
    published = sorted(os.listdir(results))
    self.assertNotEmpty(published)
    for suite in published:
      block = tables.read_block(readme, f'compare:{suite}')
      # A published suite keeps its block: removing the markers is an edit.
      self.assertIsNotNone(block, f'results/{suite} is published, but the '
                           f'README has no block compare:{suite}')
      with open(os.path.join(results, suite, 'results.json')) as f:
        summary = json.load(f)
      self.assertEqual(block, compare.render(summary) + '\n', suite)
    for suite in self.BLOCKS:
      self.assertIsNotNone(tables.read_block(readme, f'compare:{suite}'),
                           f'README.md has no block compare:{suite}')

  def test_the_table_states_what_the_runs_ran_with(self):
    # --num_steps and --override change what the runs run with: the caption
    # and results.json read it from the runs' config.json (so --table_only
    # says it too), not from the suite; runs as the suite says keep the
    # words of before.
    compare = self.example_module('compare')
    workdir = self.tiny_runs(self.TINY_OVERRIDES)
    suite = compare.SUITES['tiny']
    before = compare.tabulate(workdir, 'tiny', [0])
    self.assertEqual(len(before.get('changed', [])),
                     len(self.TINY_OVERRIDES))
    task = ', '.join(f'{k}={v}' for k, v in suite.task.items())
    caption = ' '.join(compare.render(before).split())
    self.assertIn(f'(task overrides of `configs/default.py`: {task}'
                  + ('' if self.TINY_OVERRIDES else ');'), caption)
    config = compare.make_config('tiny', next(iter(suite.runs)), 0)
    # As --override=eval_every=... records it in every run, and a resume
    # with --num_steps=40 in the first.
    runs = [suites.run_dir(workdir, name, 0) for name in suite.runs]
    for run in runs:
      path = os.path.join(run, 'config.json')
      with open(path) as f:
        ran = json.load(f)
      ran['eval_every'] = config.eval_every + 2
      if run == runs[0]:
        ran['num_steps'] = 40
      with open(path, 'w') as f:
        json.dump(ran, f)
    after = compare.tabulate(workdir, 'tiny', [0])
    with open(os.path.join(workdir, 'results.json')) as f:
      self.assertEqual(json.load(f), json.loads(json.dumps(after)))
    self.assertEqual(after['task'], dict(suite.task))
    self.assertEqual(after['eval_every'], config.eval_every + 2)
    self.assertIn({'field': 'eval_every', 'value': config.eval_every + 2,
                   'suite_value': config.eval_every,
                   'runs': [f'{name} seed 0' for name in suite.runs]},
                  after['changed'])
    caption = ' '.join(compare.render(after).split())
    self.assertIn('the runs tabulated ran with ', caption)
    self.assertIn(f'eval_every={config.eval_every + 2} instead of '
                  f'{config.eval_every}', caption)
    self.assertIn(f'num_steps=40 instead of {config.num_steps} (in 1 of '
                  f'{len(runs)} runs)', caption)
    self.assertIn(f'every {config.eval_every + 2} steps', caption.lower())

  def test_help_lists_the_compare_flags(self):
    # absl's --help lists the main module's flags (not --helpfull's).
    out = self.compare('--help')
    for flag in ('--workdir', '--suite', '--seeds', '--only', '--num_steps',
                 '--override', '--[no]table_only', '--publish',
                 '--noise_floor', '--[no]allow_mixed'):
      self.assertIn(f'\n  {flag}: ', out.stdout)

  def test_every_suite_is_a_valid_config(self):
    compare = self.example_module('compare')
    config_schema = self.example_module('config_schema')
    for suite, spec in compare.SUITES.items():
      for name in spec.runs:
        with self.subTest(suite=suite, run=name):
          config_schema.validate(compare.make_config(suite, name, seed=0))
