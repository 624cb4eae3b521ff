# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The command line of the examples' programs: bad input in one line.

Every example's ``main.py`` is one call::

  if __name__ == '__main__':
    cli.run_example('examples.<name>',
                    summary_keys=('optimizer', 'seed', ...))

which finds the example's pieces by the layout every example has
(``configs/default.py``, ``config_schema.py``, ``train.py``) and hands them
to ``run_main``. That defines ``--workdir`` (required), ``--config`` (whose
``--help`` lists every field with its default and valid values) and
``--distributed``; checks the flags, the config (``schema.validate``) and
the work directory before anything is written; and turns what goes wrong on
the user's side into one line on stderr:

* a bad flag, config file, config field or work directory: ``error: ...``,
  exit status 2 (``EXIT_USAGE``), no traceback;
* Ctrl-C: training saves a checkpoint (``interrupt.TrainingInterrupted``)
  and the program prints the command that resumes it, exit status 130.

Anything else is a bug and keeps its traceback. Programs with other flags
(``compare.py``) use ``run`` and ``check_workdir`` and raise ``UsageError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
import contextlib
import importlib
import logging
import os
import re
import shlex
import shutil
import sys
import traceback
import types
from typing import Any, NoReturn

from absl import app
from absl import flags
from ml_collections import config_flags

from examples.common import interrupt
from examples.common import schema

# Flags defined by the functions below belong to the program that calls
# them, so that its --help (which lists the main module's flags) shows them.
flags.disclaim_key_flags()

FLAGS = flags.FLAGS
EXIT_USAGE = 2
# 128 + SIGINT, what a shell reports for a program stopped by Ctrl-C.
EXIT_INTERRUPTED = 130


class UsageError(Exception):
  """Bad command-line input: one line on stderr, exit status 2."""


def one_line(text: Any) -> str:
  """A message as one line; of an embedded traceback only its last line."""
  text = str(text)
  head, marker, tail = text.partition('Traceback (most recent call last)')
  if marker:
    last = [line for line in tail.splitlines() if line.strip()][-1]
    text = f'{head.rstrip().rstrip(":")}: {last}'
  return ' '.join(text.split())


def _exit(message: str, status: int, *, at_once: bool = False) -> NoReturn:
  """Says ``message`` on stderr and exits with ``status``.

  ``at_once``: without the interpreter's teardown (``os._exit``), once the
  output and the logs are flushed: after a Ctrl-C that interrupted JAX's
  tracing (a second Ctrl-C while the step compiles), the teardown crashed
  with a segmentation fault. Everything of the run is written by then
  (the loop saves and closes its checkpoints before it raises).
  """
  sys.stdout.flush()
  sys.stderr.write(message + '\n')
  sys.stderr.flush()
  if at_once:
    logging.shutdown()
    os._exit(status)  # pylint: disable=protected-access
  sys.exit(status)


def command_line() -> str:
  """The command that started this program, to be run again as it is."""
  main = sys.modules.get('__main__')
  spec = getattr(main, '__spec__', None)
  program = ['-m', spec.name] if spec and spec.name else [sys.argv[0]]
  # "python" where that is this interpreter (an activated environment).
  on_path = shutil.which('python')
  python = ('python' if on_path and os.path.abspath(on_path)
            == os.path.abspath(sys.executable) else sys.executable)
  return shlex.join([python, *program, *sys.argv[1:]])


def check_workdir(path: str | None) -> str:
  """``path`` if it is, or can become, a writable directory; else UsageError.

  Nothing is created: a program makes the directory only once all of its
  input has been checked.
  """
  if not path:
    raise UsageError('--workdir is required: the directory for this run\'s '
                     'metrics and checkpoints (see --help)')
  if os.path.exists(path):
    if not os.path.isdir(path):
      raise UsageError(f'--workdir={path} is a file, not a directory; give '
                       'a directory (created if missing; a run in it is '
                       'resumed)')
    if not os.access(path, os.W_OK | os.X_OK):
      raise UsageError(f'--workdir={path} is not writable; give a directory '
                       'you can write to')
    return path
  parent = os.path.dirname(os.path.abspath(path))
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise UsageError(f'--workdir={path} cannot be created: {parent} is a '
                     'file')
  if not os.access(parent, os.W_OK | os.X_OK):
    raise UsageError(f'--workdir={path} cannot be created: {parent} is not '
                     'writable')
  return path


def _overrides(argv: Sequence[str], name: str) -> list[str]:
  """The fields named by --<name>.<field>[=value] flags, as ml_collections."""
  argv = FLAGS.read_flags_from_files(list(argv), force_gnu=False)
  pattern = re.compile(rf'^--?(no)?{re.escape(name)}\.([^=]+)')
  return [m.group(2) for m in map(pattern.match, argv) if m]


def _is_field_or_group(name: str, fields: Iterable[str]) -> bool:
  return any(f == name or f.startswith(name + '.') for f in fields)


def _config_file_problem(error: BaseException) -> str:
  """Where loading a config file failed: file:line and the exception."""
  if isinstance(error, SyntaxError):
    where = f'{error.filename}:{error.lineno}'
  else:
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if 'site-packages' not in f.filename
            and '<frozen' not in f.filename]
    where = f'{ours[-1].filename}:{ours[-1].lineno}' if ours else '?'
  return f'{where}: {type(error).__name__}: {one_line(error)}'


@contextlib.contextmanager
def _input_errors(argv: Sequence[str],
                  fields: Mapping[str, schema.Field] | None,
                  config_flag: str, example_config: str | None):
  """Turns errors in the flags and the config file into one line, status 2.

  absl prints two lines for a bad flag value; ml_collections raises a
  KeyError or AttributeError with a traceback for an override of a field the
  config lacks (while the flag is defined, for the default config file),
  and an IOError only when a missing config file is first read.
  """

  def config_unreadable(e: OSError) -> NoReturn:
    reason = [line for line in str(e).splitlines() if line.strip()][-1]
    # Only the cause, not ml_collections' words around it.
    reason = reason.split('earlier failure to load: ')[-1]
    hint = f'; for example --{config_flag}={example_config}' if (
        example_config) else ''
    _exit(f'error: --{config_flag}: cannot read the config file '
          f'({reason.strip()}){hint}', EXIT_USAGE)

  try:
    yield
    if config_flag in FLAGS and FLAGS[config_flag].present:
      # ml_collections defers a missing file's error to the first read.
      getattr(FLAGS[config_flag].value, 'keys')
  except flags.Error as e:
    message = one_line(e)
    # A value the field's type refuses: say what the field takes.
    field = re.match(rf'flag --{config_flag}\.([^=\s]+)=', message)
    if field and fields is not None and field.group(1) in fields:
      message += (f'; config.{field.group(1)} must be '
                  f'{fields[field.group(1)].describe()}')
    _exit(f'error: {message} (see --help)', EXIT_USAGE)
  except (AttributeError, KeyError):
    # ml_collections' answer to an override of a field the locked config
    # lacks ('--config.lerning_rate'): name it and its nearest field.
    unknown = [o for o in _overrides(argv, config_flag)
               if fields is not None and not _is_field_or_group(o, fields)]
    if not unknown:
      raise
    _exit(f'error: --{config_flag}.{unknown[0]}: '
          + schema.unknown_field_message(unknown[0], fields), EXIT_USAGE)
  except OSError as e:
    config_unreadable(e)
  except Exception as e:  # pylint: disable=broad-except
    # Loading the config file ran its code; its own error (a syntax error,
    # a bad import) is the user's input, reported where it happened. The
    # default config file's errors are bugs.
    if not any(re.match(rf'^--?{config_flag}(=|$)', a) for a in argv):
      raise
    _exit(f'error: --{config_flag}: the config file failed to load: '
          f'{_config_file_problem(e)}', EXIT_USAGE)


def make_flags_parser(fields: Mapping[str, schema.Field] | None = None,
                      config_flag: str = 'config',
                      example_config: str | None = None
                      ) -> Callable[[list[str]], list[str]]:
  """absl's flag parsing, with every error on the user's side in one line.

  Args:
    fields: the config schema, to name the nearest field of a misspelt one.
    config_flag: the name of the config file flag.
    example_config: a config file to suggest when --config is unreadable.
  """

  def parse(argv: list[str]) -> list[str]:
    with _input_errors(argv, fields, config_flag, example_config):
      return FLAGS(argv)

  return parse


def run(main: Callable[[list[str]], Any], *,
        flags_parser: Callable[[list[str]], list[str]] | None = None
        ) -> None:
  """``app.run(main)`` with bad input and Ctrl-C each reported in one line.

  ``UsageError`` and ``schema.ConfigError`` from ``main`` print
  ``error: <message>`` (exit status 2); Ctrl-C prints how to resume: the
  same command, since the programs resume from their last checkpoint (exit
  status 130).
  """
  command = command_line()
  # JAX logs at INFO each accelerator backend it fails to find when a device
  # is first used ("Unable to initialize backend 'tpu'"): noise on every run
  # on a CPU, and a second line beside the one of an error found with JAX
  # (a mesh larger than the devices).
  logging.getLogger('jax._src.xla_bridge').setLevel(logging.WARNING)

  def wrapped(argv: list[str]) -> Any:
    try:
      if len(argv) > 1:
        raise UsageError(f'unexpected argument {argv[1]!r}: flags take the '
                         'form --name=value (see --help)')
      with interrupt.RememberInterrupts():
        return main(argv)
    except (UsageError, schema.ConfigError) as e:
      _exit(f'error: {one_line(e)}', EXIT_USAGE)
    except interrupt.TrainingInterrupted as e:
      saved = (f'saved a checkpoint in {e.checkpoint_dir}'
               if e.checkpoint_dir else 'nothing new to save')
      _exit(f'interrupted at step {e.step}, {saved}; resume with: {command}',
            EXIT_INTERRUPTED, at_once=True)
    except KeyboardInterrupt:
      _exit(f'interrupted before a checkpoint could be saved; resume from '
            f'the last one (if any) with: {command}', EXIT_INTERRUPTED,
            at_once=True)

  app.run(wrapped, flags_parser=flags_parser or make_flags_parser())


def _display_path(path: str) -> str:
  relative = os.path.relpath(path)
  return path if relative.startswith('..') else relative


def define_flags(default_config: types.ModuleType,
                 fields: Mapping[str, schema.Field]) -> None:
  """--workdir, --config (help: every field) and --distributed."""
  flags.DEFINE_string(
      'workdir', None, '(required) The directory of this run: metrics.jsonl, '
      'checkpoints, plots, result.json. Created if missing; a run already '
      'there is resumed from its last checkpoint.')
  path = _display_path(default_config.__file__)
  config_flags.DEFINE_config_file(
      'config', default_config.__file__,
      f'A config file (default: {path}; the others are beside it). Override '
      'any field with --config.<field>=<value>. The fields, with the '
      f'defaults of {os.path.basename(path)}:\n'
      + schema.describe(fields, default_config.get_config(), '--config.'),
      lock_config=True)
  flags.DEFINE_bool(
      'distributed', False, 'Call jax.distributed.initialize() first: one '
      'process per host of a TPU pod slice or a multi-GPU cluster, the '
      'coordinator taken from the environment.')


def train_of(package: str) -> Callable[[Any, str], Mapping[str, Any]]:
  """``<package>.train.train_and_evaluate``, imported at its first call.

  Importing ``train.py`` loads JAX, which takes seconds: a program that
  imports it only to train answers ``--help`` and refuses bad input first.

  Args:
    package: the example's package, e.g. ``'examples.grokking'``.
  """

  def train_and_evaluate(config: Any, workdir: str) -> Mapping[str, Any]:
    train = importlib.import_module(f'{package}.train')
    return train.train_and_evaluate(config, workdir)

  return train_and_evaluate


def run_example(package: str, *, summary_keys: Sequence[str] = ()) -> None:
  """The whole ``main.py`` of the example ``package``: ``run_main`` on it.

  Args:
    package: the example's package, e.g. ``'examples.grokking'``, which
      holds ``configs/default.py`` (the default config),
      ``config_schema.py`` (``FIELDS`` and ``CHECKS``) and ``train.py``
      (``train_and_evaluate``, imported once the input is checked).
    summary_keys: the entries of the result to print at the end.
  """
  config_schema = importlib.import_module(f'{package}.config_schema')
  default = importlib.import_module(f'{package}.configs.default')
  run_main(train_of(package), default_config=default,
           fields=config_schema.FIELDS, checks=config_schema.CHECKS,
           summary_keys=summary_keys)


def run_main(train_fn: Callable[[Any, str], Mapping[str, Any]], *,
             default_config: types.ModuleType,
             fields: Mapping[str, schema.Field],
             checks: Iterable[schema.Check] = (),
             summary_keys: Sequence[str] = ()) -> None:
  """The whole ``main.py`` of an example: flags, checks, training, summary.

  Args:
    train_fn: ``train_fn(config, workdir) -> result``; it may raise
      ``schema.ConfigError`` for what only it can check (devices, say)
      before it writes anything.
    default_config: the module of the default config file (``get_config``).
    fields: the config schema (``schema.validate``).
    checks: its cross-field checks.
    summary_keys: the entries of the result to print at the end.
  """
  example_config = _display_path(default_config.__file__)
  # The default config file is read, with the overrides on the command line,
  # as its flag is defined.
  with _input_errors(sys.argv, fields, 'config', example_config):
    define_flags(default_config, fields)
  checks = tuple(checks)

  def main(argv: list[str]) -> None:
    del argv
    config = FLAGS.config
    schema.validate(config, fields, checks)
    workdir = check_workdir(FLAGS.workdir)
    if FLAGS.distributed:
      import jax  # pylint: disable=g-import-not-at-top
      jax.distributed.initialize()
    result = train_fn(config, workdir)
    print({k: result[k] for k in summary_keys} if summary_keys else result)

  run(main, flags_parser=make_flags_parser(fields, 'config', example_config))
