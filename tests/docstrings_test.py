# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Every public name has a docstring, and every public function's examples run.

For each name in ``snr_optax.__all__`` and ``snr_optax.sharding.__all__``:

* every object (function, class, NamedTuple state, module) has a non-empty
  ``__doc__`` (a docstring built with ``+`` or ``%`` is not a docstring:
  Python leaves ``__doc__`` as ``None``, ``help()`` shows nothing and no
  doctest runs);
* a function has an ``Examples:`` section with doctests, and they pass;
* a class's doctests (its own docstring's and its methods' and properties'),
  where it has any, pass; the optimizer states need only a docstring, since
  they are made by ``init`` and shown in their transformation's examples.

The doctests run with empty globals, so each example is self-contained (it
imports what it uses) and can be pasted into a fresh interpreter. They are
also run by ``pytest --doctest-modules``; this test adds the check that no
public name lacks them. Their outputs must not depend on the number of
devices: the test runs them on the devices JAX has (8 host CPU devices under
pytest, 1 when run alone).
"""

import doctest
import inspect
import re

from absl.testing import absltest
from absl.testing import parameterized

import snr_optax as so

_NAMES = ([('snr_optax', name) for name in so.__all__]
          + [('snr_optax.sharding', name) for name in so.sharding.__all__])
_MODULES = {'snr_optax': so, 'snr_optax.sharding': so.sharding}
_EXAMPLES = re.compile(r'^\s*Examples:\s*$', re.MULTILINE)


def _object(module, name):
  return getattr(_MODULES[module], name)


def _doctests(obj, name):
  """The doctests of ``obj`` (and of a class's members), with empty globals."""
  finder = doctest.DocTestFinder(recurse=inspect.isclass(obj),
                                 exclude_empty=True)
  return [t for t in finder.find(obj, name, globs={}) if t.examples]


def _run(test):
  """Runs one doctest; returns the text of its failures ('' when it passes)."""
  out = []
  runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
  runner.run(test, out=out.append, clear_globs=True)
  return ''.join(out)


class DocstringsTest(parameterized.TestCase):

  def test_the_names_cover_both_public_modules(self):
    self.assertIn(('snr_optax', 'snr_mask'), _NAMES)
    self.assertIn(('snr_optax.sharding', 'make_mesh'), _NAMES)
    for module, name in _NAMES:
      self.assertTrue(hasattr(_MODULES[module], name), f'{module}.{name}')

  @parameterized.named_parameters(
      (f'{module}.{name}', module, name) for module, name in _NAMES)
  def test_has_a_docstring(self, module, name):
    doc = _object(module, name).__doc__
    self.assertIsNotNone(doc, f'{module}.{name}.__doc__ is None')
    self.assertNotEmpty(doc.strip(), f'{module}.{name}.__doc__ is empty')

  @parameterized.named_parameters(
      (f'{module}.{name}', module, name) for module, name in _NAMES
      if inspect.isfunction(_object(module, name)))
  def test_function_has_examples_that_run(self, module, name):
    obj = _object(module, name)
    doc = obj.__doc__ or ''
    match = _EXAMPLES.search(doc)
    self.assertIsNotNone(match, f'{module}.{name}: no "Examples:" section')
    self.assertIn('>>>', doc[match.end():],
                  f'{module}.{name}: no doctest after "Examples:"')
    tests = _doctests(obj, f'{module}.{name}')
    self.assertNotEmpty(tests, f'{module}.{name}: doctest found no examples')
    for test in tests:
      self.assertEqual(_run(test), '', f'{test.name} failed')

  @parameterized.named_parameters(
      (f'{module}.{name}', module, name) for module, name in _NAMES
      if inspect.isclass(_object(module, name)))
  def test_class_examples_run(self, module, name):
    for test in _doctests(_object(module, name), f'{module}.{name}'):
      self.assertEqual(_run(test), '', f'{test.name} failed')

  def test_a_failing_example_is_reported(self):
    """The runner above does report failures (the test can fail)."""
    def f():
      """Doc.

      Examples:
        >>> 1 + 1
        3
      """
    (test,) = _doctests(f, 'f')
    self.assertIn('Expected:\n    3\nGot:\n    2', _run(test))


if __name__ == '__main__':
  absltest.main()
