# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of run provenance: code hash, the record, segments, differences."""

import datetime
import hashlib
import json
import os
import platform
import shlex
import subprocess
from unittest import mock

from absl.testing import absltest
import jax
import numpy as np

from examples.common import provenance
import snr_optax

COMMON = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(COMMON))


def write(path, text):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    f.write(text)


def make_tree(root):
  """A package with code, tests, result readers and files that are no code."""
  files = {
      'pkg/train.py': 'x = 1\n',
      'pkg/sub/model.py': 'y = 2\n',
      'pkg/train_test.py': 'assert True\n',
      'pkg/compare.py': 'print(1)\n',
      'pkg/tables.py': 'print(2)\n',
      'pkg/suites.py': 'print(3)\n',
      'pkg/README.md': 'text\n',
      'pkg/__pycache__/train.py': 'cached\n',
      'pkg/.hidden/notes.py': 'hidden\n',
  }
  for name, text in files.items():
    write(os.path.join(root, name), text)
  return os.path.join(root, 'pkg')


def hand_hash(repo, paths):
  """What the hash should be: relative path, NUL, bytes, NUL per file."""
  digest = hashlib.sha256()
  for path in paths:
    with open(path, 'rb') as f:
      data = f.read()
    digest.update(os.path.relpath(path, repo).encode() + b'\0' + data + b'\0')
  return digest.hexdigest()


def make_segment(**changes):
  segment = {
      'from_step': 0,
      'git_commit': '0123456789abcdef0123456789abcdef01234567',
      'git_dirty': False,
      'code_hash': 'abcdef0123456789' * 4,
      'jax': '0.10.2', 'jaxlib': '0.10.1', 'flax': '0.12.0',
      'optax': '0.2.8', 'numpy': '2.4.6', 'orbax-checkpoint': '0.12.8',
      'python': '3.12.3', 'backend': 'cpu', 'device_kind': 'cpu',
      'device_count': 8, 'process_count': 1,
      'xla_flags': '--xla_force_host_platform_device_count=8',
      'cpu': 'Some CPU', 'host': 'machine-a', 'argv': 'main.py',
      'started': '2026-01-01T00:00:00+00:00',
  }
  segment.update(changes)
  return segment


class CodeHashTest(absltest.TestCase):

  def test_stable_and_equal_to_a_hand_computation(self):
    # A temporary directory lies outside the repository: its paths relative
    # to the repository start with '..', which hashes as well as any other.
    package = make_tree(self.create_tempdir().full_path)
    self.assertTrue(os.path.relpath(package, REPO).startswith('..'))
    got = provenance.code_hash([package])
    self.assertRegex(got, r'^[0-9a-f]{64}$')
    self.assertEqual(provenance.code_hash([package]), got)
    # Only train.py and sub/model.py, root files before subdirectories.
    self.assertEqual(got, hand_hash(REPO, [
        os.path.join(package, 'train.py'),
        os.path.join(package, 'sub', 'model.py')]))

  def test_changes_with_the_bytes_of_a_hashed_file(self):
    package = make_tree(self.create_tempdir().full_path)
    before = provenance.code_hash([package])
    for name in ('train.py', 'sub/model.py'):
      path = os.path.join(package, name)
      with open(path) as f:
        text = f.read()
      write(path, text + ' \n')
      self.assertNotEqual(provenance.code_hash([package]), before, name)
      write(path, text)
      self.assertEqual(provenance.code_hash([package]), before, name)
    # A new source file counts; so does a renamed one.
    write(os.path.join(package, 'extra.py'), '')
    self.assertNotEqual(provenance.code_hash([package]), before)
    os.remove(os.path.join(package, 'extra.py'))
    os.rename(os.path.join(package, 'train.py'),
              os.path.join(package, 'train2.py'))
    self.assertNotEqual(provenance.code_hash([package]), before)

  def test_tests_and_result_readers_do_not_count(self):
    package = make_tree(self.create_tempdir().full_path)
    before = provenance.code_hash([package])
    for name in ('train_test.py', 'compare.py', 'tables.py', 'suites.py',
                 'README.md', '__pycache__/train.py', '.hidden/notes.py',
                 'sub/model_test.py', 'sub/compare.py'):
      write(os.path.join(package, name), 'changed\n')
      self.assertEqual(provenance.code_hash([package]), before, name)

  def test_same_on_any_clone(self):
    # The same files at the same place in two repositories.
    hashes = []
    for _ in range(2):
      repo = self.create_tempdir().full_path
      package = make_tree(repo)
      with mock.patch.object(provenance, '_REPO', repo):
        hashes.append(provenance.code_hash([package]))
      self.assertEqual(hashes[-1], hand_hash(repo, [
          os.path.join(package, 'train.py'),
          os.path.join(package, 'sub', 'model.py')]))
    self.assertEqual(hashes[0], hashes[1])

  def test_every_directory_counts(self):
    a = make_tree(self.create_tempdir().full_path)
    b = make_tree(self.create_tempdir().full_path)
    both = provenance.code_hash([a, b])
    self.assertNotEqual(both, provenance.code_hash([a]))
    write(os.path.join(b, 'train.py'), 'x = 3\n')
    self.assertNotEqual(provenance.code_hash([a, b]), both)


class DirtyTest(absltest.TestCase):
  """git_dirty: the hashed code differs from the commit, nothing else."""

  def _repo(self):
    repo = self.create_tempdir().full_path
    write(os.path.join(repo, 'pkg', 'train.py'), 'x = 1\n')
    write(os.path.join(repo, 'pkg', 'README.md'), 'text\n')
    write(os.path.join(repo, 'pkg', 'train_test.py'), 'assert True\n')
    git = lambda *a: subprocess.run(['git', *a], cwd=repo, check=True,
                                    capture_output=True)
    git('init', '-q')
    git('add', '.')
    git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'c')
    return repo

  def _dirty(self, repo):
    provenance._code.cache_clear()
    with mock.patch.object(provenance, '_REPO', repo):
      try:
        return provenance._code((os.path.join(repo, 'pkg'),))['git_dirty']
      finally:
        provenance._code.cache_clear()

  def test_clean(self):
    self.assertFalse(self._dirty(self._repo()))

  def test_documentation_and_tests_are_not_code(self):
    repo = self._repo()
    write(os.path.join(repo, 'pkg', 'README.md'), 'edited\n')
    write(os.path.join(repo, 'pkg', 'train_test.py'), 'assert False\n')
    write(os.path.join(repo, 'pkg', 'notes.txt'), 'new\n')
    self.assertFalse(self._dirty(repo))

  def test_modified_or_new_code_is_dirty(self):
    repo = self._repo()
    write(os.path.join(repo, 'pkg', 'train.py'), 'x = 2\n')
    self.assertTrue(self._dirty(repo))
    repo = self._repo()
    write(os.path.join(repo, 'pkg', 'sub', 'model.py'), 'y = 1\n')
    self.assertTrue(self._dirty(repo))


class RecordTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    # XLA reads XLA_FLAGS once, when JAX starts its backend (and aborts on
    # a flag it does not know): start it before the tests change the
    # variable, which collect() then only reads.
    jax.devices()

  def test_collect(self):
    with mock.patch.dict(os.environ, {'XLA_FLAGS': '--some_flag=1'}):
      record = provenance.collect(COMMON)
    self.assertContainsSubset(provenance.ENVIRONMENT_KEYS, record)
    self.assertContainsSubset(('git_commit', 'git_dirty', 'started', 'host'),
                              record)
    self.assertEqual(record['xla_flags'], '--some_flag=1')
    self.assertEqual(record['jax'], jax.__version__)
    self.assertEqual(record['numpy'], np.__version__)
    self.assertEqual(record['python'], platform.python_version())
    self.assertEqual(record['backend'], jax.default_backend())
    self.assertEqual(record['device_count'], jax.device_count())
    self.assertEqual(record['process_count'], 1)
    self.assertEqual(record['code_hash'], provenance.code_hash([
        os.path.dirname(os.path.abspath(snr_optax.__file__)), COMMON,
        COMMON]))
    try:
      head = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=REPO,
                            capture_output=True, text=True, check=True)
    except (OSError, subprocess.SubprocessError):
      self.assertIsNone(record['git_commit'])
    else:
      self.assertEqual(record['git_commit'], head.stdout.strip())
      self.assertIsInstance(record['git_dirty'], bool)
    started = datetime.datetime.fromisoformat(record['started'])
    self.assertEqual(started.utcoffset(), datetime.timedelta(0))
    self.assertEqual(json.loads(json.dumps(record)), record)

  def test_argv_is_quoted(self):
    argv = ['main.py', "--workdir=/tmp/it's here", '--config.seed=1']
    with mock.patch.object(provenance.sys, 'argv', argv):
      record = provenance.collect(COMMON)
    self.assertEqual(shlex.split(record['argv']), argv)

  def test_record_appends_one_segment_per_start(self):
    workdir = self.create_tempdir().full_path
    self.assertIsNone(provenance.read(workdir))
    provenance.record(workdir, COMMON, 0)
    with mock.patch.dict(os.environ, {'XLA_FLAGS': '--other'}):
      provenance.record(workdir, COMMON, 40)
    segments = provenance.read(workdir)
    self.assertLen(segments, 2)
    self.assertEqual([s['from_step'] for s in segments], [0, 40])
    self.assertEqual(segments[1]['xla_flags'], '--other')
    for segment in segments:
      self.assertContainsSubset(provenance.ENVIRONMENT_KEYS, segment)
    self.assertEqual(provenance.differences(segments[0], segments[1]),
                     [f'xla_flags: {segments[0]["xla_flags"]!r} vs '
                      "'--other'"])
    self.assertEqual(sorted(os.listdir(workdir)), [provenance.FILENAME])


class DifferencesTest(absltest.TestCase):

  def test_environment_is_the_environment_keys(self):
    self.assertEqual(list(provenance.environment(make_segment())),
                     list(provenance.ENVIRONMENT_KEYS))
    self.assertIsNone(provenance.environment({})['code_hash'])

  def test_names_only_the_keys_that_differ(self):
    a = make_segment()
    b = make_segment(from_step=100, git_commit='f' * 40, git_dirty=True,
                     host='machine-b', started='2027-01-01T00:00:00+00:00',
                     argv='other')
    self.assertEqual(provenance.differences(a, b), [])
    b.update(device_count=4, cpu='Other CPU')
    self.assertEqual(provenance.differences(a, b),
                     ['device_count: 8 vs 4', "cpu: 'Some CPU' vs 'Other CPU'"])
    del b['jaxlib']
    self.assertEqual(provenance.differences(a, b)[0],
                     "jaxlib: '0.10.1' vs None")


class DescribeTest(absltest.TestCase):

  def test_one_line(self):
    self.assertEqual(
        provenance.describe(make_segment()),
        'commit 0123456789ab, code hash abcdef012345, jax 0.10.2, '
        'jaxlib 0.10.1, flax 0.12.0, optax 0.2.8, numpy 2.4.6, Python 3.12.3; '
        '8 cpu device(s) (cpu, Some CPU); '
        'XLA_FLAGS: --xla_force_host_platform_device_count=8')

  def test_dirty_no_commit_and_no_flags(self):
    text = provenance.describe(make_segment(git_dirty=True, xla_flags=''))
    self.assertIn('commit 0123456789ab with uncommitted changes,', text)
    self.assertTrue(text.endswith('XLA_FLAGS: none'), text)
    text = provenance.describe(make_segment(git_commit=None, git_dirty=None))
    self.assertIn('commit none (not a git checkout),', text)


if __name__ == '__main__':
  absltest.main()
