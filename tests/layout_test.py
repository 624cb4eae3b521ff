# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The repository's layout keeps both test runners working.

``BUILD`` makes one ``py_test`` per ``*_test.py`` whose sources are that file
alone plus the non-test libraries (``snr_optax``, ``tests/*.py`` helpers,
``examples/**/*.py``). A test file that imports another test file passes
under pytest, which sees the whole tree, and fails under Bazel with an
ImportError (it did, in CI, once): shared helpers belong in a non-test module
such as ``tests/test_util.py`` or ``examples/common/testing.py``.
"""

import ast
import glob
import os

from absl.testing import absltest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find_test_files() -> list[str]:
  pattern = [os.path.join(REPO, 'tests', '*_test.py'),
             os.path.join(REPO, 'examples', '**', '*_test.py')]
  return sorted(f for p in pattern for f in glob.glob(p, recursive=True))


def imported_modules(path: str) -> set[str]:
  """Every module name a file imports, dotted (``from a import b`` gives a.b)."""
  with open(path, encoding='utf-8') as f:
    tree = ast.parse(f.read(), filename=path)
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      # Relative too: ``from . import x_test`` gives '.x_test'.
      module = '.' * node.level + (node.module or '')
      if node.module:
        names.add(module)
      names.update(f'{module}.{alias.name}' if module != '.' * node.level
                   else f'{module}{alias.name}' for alias in node.names)
  return names


class LayoutTest(absltest.TestCase):

  def test_finds_the_test_files(self):
    files = [os.path.relpath(f, REPO) for f in find_test_files()]
    self.assertIn('tests/layout_test.py', files)
    self.assertIn('examples/common/loop_test.py', files)

  def test_no_test_file_imports_another(self):
    offenders = []
    for path in find_test_files():
      for name in imported_modules(path):
        if name.rsplit('.', 1)[-1].endswith('_test'):
          offenders.append(f'{os.path.relpath(path, REPO)} imports {name}')
    self.assertEmpty(offenders, 'Bazel gives each test only its own file: '
                     'move shared helpers to a non-test module')

  def test_the_check_sees_an_import_of_a_test_module(self):
    path = os.path.join(self.create_tempdir().full_path, 'x_test.py')
    with open(path, 'w') as f:
      f.write('from examples.common import runlock_test\nimport os\n'
              'from . import loop_test\nfrom .. import cli_test as c\n'
              'from .steps_test import x\nimport a.b_test as y\n')
    self.assertContainsSubset(
        {'examples.common.runlock_test', '.loop_test', '..cli_test',
         '.steps_test', 'a.b_test', 'os'}, imported_modules(path))


if __name__ == '__main__':
  absltest.main()
