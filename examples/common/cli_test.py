# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of the examples' command line: one-line errors, workdir, Ctrl-C.

The full binaries are run in examples/<name>/*_test.py; here a few lines of
program exercise ``cli.run`` as a subprocess.
"""

import os
import subprocess
import sys
import textwrap
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized

from examples.common import cli

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def run_program(body: str, *args: str) -> subprocess.CompletedProcess:
  """Runs ``cli.run(main)`` as a program, ``main``'s body given."""
  program = textwrap.dedent(f"""
      from examples.common import cli, interrupt, schema
      def main(argv):
        {body}
      cli.run(main)
  """)
  return subprocess.run([sys.executable, '-c', program, *args], cwd=REPO,
                        capture_output=True, text=True, timeout=120,
                        check=False)


class RunTest(parameterized.TestCase):

  def test_jax_probing_its_backends_adds_no_line_to_an_error(self):
    # The first use of a device logs, at INFO, every accelerator backend JAX
    # could not start; an error found then (a mesh larger than the devices)
    # is still the one line on stderr.
    out = run_program(
        'import jax, logging; jax.devices(); '
        "logging.getLogger('jax._src.xla_bridge').info('Unable to "
        "initialize backend'); raise schema.ConfigError('mesh too large')")
    self.assertEqual(out.returncode, cli.EXIT_USAGE, out.stderr)
    self.assertEqual(out.stderr, 'error: mesh too large\n')

  @parameterized.named_parameters(
      ('usage', "raise cli.UsageError('--x must be\\n positive')",
       cli.EXIT_USAGE, 'error: --x must be positive'),
      ('config', "raise schema.ConfigError('config.lr must be > 0')",
       cli.EXIT_USAGE, 'error: config.lr must be > 0'),
      ('interrupted_after_saving',
       "raise interrupt.TrainingInterrupted(7, '/w/checkpoints')",
       cli.EXIT_INTERRUPTED,
       'interrupted at step 7, saved a checkpoint in /w/checkpoints; '
       'resume with: '),
      ('interrupted_before_training', 'raise KeyboardInterrupt',
       cli.EXIT_INTERRUPTED,
       'interrupted before a checkpoint could be saved; resume from the '
       'last one (if any) with: '),
  )
  def test_one_line_and_status(self, body, status, message):
    out = run_program(body)
    self.assertEqual(out.returncode, status, out.stderr)
    lines = out.stderr.strip().splitlines()
    self.assertLen(lines, 1, out.stderr)
    self.assertStartsWith(lines[0], message)
    if status == cli.EXIT_INTERRUPTED:
      # The command that resumes: this very program, as it was started.
      self.assertEndsWith(lines[0], ' -c')

  def test_unknown_flag_in_one_line(self):
    out = run_program('pass', '--flag_x')
    self.assertEqual(out.returncode, cli.EXIT_USAGE)
    self.assertEqual(out.stderr.strip(),
                     "error: Unknown command line flag 'flag_x' "
                     '(see --help)')

  def test_bug_keeps_its_traceback(self):
    out = run_program('raise ZeroDivisionError("bug")')
    self.assertEqual(out.returncode, 1)
    self.assertIn('Traceback', out.stderr)


class HelpersTest(parameterized.TestCase):

  def test_one_line_keeps_the_last_line_of_a_traceback(self):
    text = ('flag --config=x.py: Error whilst parsing config file:\n\n'
            'Traceback (most recent call last):\n  File "x.py", line 3\n'
            'TypeError: get_config() takes 0 positional arguments\n')
    self.assertEqual(cli.one_line(text),
                     'flag --config=x.py: Error whilst parsing config file: '
                     'TypeError: get_config() takes 0 positional arguments')
    self.assertEqual(cli.one_line('a\n  b'), 'a b')

  def test_check_workdir(self):
    tmp = self.create_tempdir().full_path
    new = os.path.join(tmp, 'a', 'b')
    self.assertEqual(cli.check_workdir(new), new)
    self.assertFalse(os.path.exists(os.path.join(tmp, 'a')))   # not created
    self.assertEqual(cli.check_workdir(tmp), tmp)
    with self.assertRaisesRegex(cli.UsageError, '--workdir is required'):
      cli.check_workdir(None)
    path = self.create_tempfile().full_path
    with self.assertRaisesRegex(cli.UsageError, 'is a file, not a directory'):
      cli.check_workdir(path)
    with self.assertRaisesRegex(cli.UsageError, 'cannot be created: .* is a '
                                'file'):
      cli.check_workdir(os.path.join(path, 'run'))

  def test_command_line(self):
    main = mock.Mock(__spec__=mock.Mock())
    main.__spec__.name = 'examples.grokking.main'
    with mock.patch.dict(sys.modules, {'__main__': main}), mock.patch.object(
        sys, 'argv', ['/x/main.py', '--workdir=/tmp/a b', '--config.seed=1']):
      command = cli.command_line()
    self.assertEndsWith(command, "-m examples.grokking.main "
                        "'--workdir=/tmp/a b' --config.seed=1")

  def test_train_of_imports_train_at_its_first_call(self):
    # main.py and compare.py answer --help before train.py loads JAX.
    imported = []

    def import_module(name):
      imported.append(name)
      return mock.Mock(**{'train_and_evaluate.return_value': {'done': 1}})

    with mock.patch.object(cli.importlib, 'import_module', import_module):
      train_fn = cli.train_of('examples.x')
      self.assertEmpty(imported)
      self.assertEqual(train_fn('config', '/w'), {'done': 1})
    self.assertEqual(imported, ['examples.x.train'])


if __name__ == '__main__':
  absltest.main()
