# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Where a run's numbers came from: code, versions, devices and XLA flags.

Steps-to-target of a training run is deterministic for a given program and
machine, but not across them: the same seed on the same code follows another
trajectory when XLA sums in another order (more host devices, another CPU,
another jaxlib). So a number in a table is only reproducible together with
the environment that produced it, and a table must not mix environments.

Every run writes ``provenance.json`` into its work directory: one *segment*
per start (a resumed run appends one), each with the step it started from
and ``collect()``'s record. ``environment(segment)`` is the part that decides
the numbers; ``differences`` names what differs between two of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
import datetime
import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
from typing import Any

FILENAME = 'provenance.json'

# The packages whose versions are recorded (and must agree within a table).
PACKAGES = ('jax', 'jaxlib', 'flax', 'optax', 'numpy', 'orbax-checkpoint')

# The record's keys that decide a run's numbers. Not among them: the git
# commit (a commit that changes only documentation changes no number; the
# code hash covers what trains), the date, the host name.
ENVIRONMENT_KEYS = ('code_hash', *PACKAGES, 'python', 'backend',
                    'device_kind', 'device_count', 'process_count',
                    'xla_flags', 'cpu')

# Files that read results but never train: edits to them keep the code hash.
_NOT_TRAINING = ('compare.py', 'suites.py', 'tables.py')

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _git(*args: str) -> str | None:
  try:
    out = subprocess.run(['git', *args], cwd=_REPO, capture_output=True,
                         text=True, timeout=30, check=True)
  except (OSError, subprocess.SubprocessError):
    return None
  return out.stdout.strip()


def _source_files(directories: Iterable[str]) -> list[str]:
  files = []
  for directory in directories:
    for root, dirs, names in os.walk(directory):
      dirs[:] = sorted(d for d in dirs if not d.startswith(('.', '__')))
      files += [os.path.join(root, n) for n in sorted(names)
                if n.endswith('.py') and not n.endswith('_test.py')
                and n not in _NOT_TRAINING]
  return files


def code_hash(directories: Sequence[str]) -> str:
  """SHA-256 of the Python sources under ``directories`` (tests excluded).

  Args:
    directories: the packages whose code trains, e.g. snr_optax's and the
      example's. Files are hashed by their path relative to the repository
      and their bytes, so the hash is the same on any clone.

  Returns:
    64 hex digits.
  """
  digest = hashlib.sha256()
  for path in _source_files(directories):
    digest.update(os.path.relpath(path, _REPO).encode() + b'\0')
    with open(path, 'rb') as f:
      digest.update(f.read() + b'\0')
  return digest.hexdigest()


def _cpu() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:
    return None


@functools.cache
def _code(directories: tuple[str, ...]) -> dict[str, Any]:
  """The code of this process, read once: the first time a run starts.

  Python has loaded the code that trains by then; files edited on disk
  afterwards change nothing this process computes, so they must not change
  what it records either (a sweep that runs for hours records the code it
  started with).
  """
  # Dirty: a file of the hashed code differs from the commit (modified or
  # not yet added); an edited README or a new result file is not code.
  status = _git('status', '--porcelain', '--untracked-files=all', '--',
                *directories)
  hashed = {os.path.realpath(f) for f in _source_files(directories)}
  changed = [] if status is None else [
      os.path.realpath(os.path.join(
          _REPO, line.split(maxsplit=1)[1].split(' -> ')[-1].strip('"')))
      for line in status.splitlines() if line.strip()]
  return {'git_commit': _git('rev-parse', 'HEAD'),
          'git_dirty': None if status is None else any(
              path in hashed for path in changed),
          'code_hash': code_hash(directories)}


def collect(example_dir: str) -> dict[str, Any]:
  """The record of this process: code, versions, devices, XLA flags, CPU.

  Args:
    example_dir: the example's package directory (its sources and
      ``examples/common`` are hashed with snr_optax's).

  Returns:
    A JSON-serialisable dict with ``ENVIRONMENT_KEYS`` and ``git_commit``
    (None outside a git checkout), ``git_dirty`` (the hashed code differs
    from that commit: a Python file of it modified or not yet added; None
    outside a git checkout), ``started`` (UTC, ISO 8601), ``host`` and
    ``argv``.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import snr_optax  # pylint: disable=g-import-not-at-top

  devices = jax.devices()
  record = {
      **_code((os.path.dirname(os.path.abspath(snr_optax.__file__)),
               os.path.dirname(os.path.abspath(__file__)),
               os.path.abspath(example_dir))),
      **{package: _version(package) for package in PACKAGES},
      'python': platform.python_version(),
      'backend': jax.default_backend(),
      'device_kind': devices[0].device_kind,
      'device_count': jax.device_count(),
      'process_count': jax.process_count(),
      'xla_flags': os.environ.get('XLA_FLAGS', ''),
      'cpu': _cpu(),
      'host': platform.node(),
      # Quoted: a table's rerun commands are read back from it (a path with
      # a space or a quote in it is one argument).
      'argv': shlex.join(sys.argv),
      'started': datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec='seconds'),
  }
  return record


def read(workdir: str) -> list[dict[str, Any]] | None:
  """The segments of the run in ``workdir``; None if it recorded none."""
  path = os.path.join(workdir, FILENAME)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)['segments']


def record(workdir: str, example_dir: str, start_step: int) -> None:
  """Appends this process's segment (from ``start_step``) to the run's file."""
  segments = read(workdir) or []
  segments.append({'from_step': start_step, **collect(example_dir)})
  path = os.path.join(workdir, FILENAME)
  with open(path + '.tmp', 'w') as f:
    json.dump({'segments': segments}, f, indent=1)
  os.replace(path + '.tmp', path)


def environment(segment: Mapping[str, Any]) -> dict[str, Any]:
  """The part of a segment that decides the numbers (``ENVIRONMENT_KEYS``)."""
  return {key: segment.get(key) for key in ENVIRONMENT_KEYS}


def differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
  """``'key: a vs b'`` for each environment key on which ``a``, ``b`` differ."""
  a, b = environment(a), environment(b)
  return [f'{key}: {a[key]!r} vs {b[key]!r}' for key in ENVIRONMENT_KEYS
          if a[key] != b[key]]


def describe(segment: Mapping[str, Any]) -> str:
  """One line for a table's caption: commit, code, versions, devices."""
  flags = segment.get('xla_flags') or 'none'
  commit = segment.get('git_commit')
  commit = commit[:12] if commit else 'none (not a git checkout)'
  if segment.get('git_dirty'):
    commit += ' with uncommitted changes'
  return (f'commit {commit}, '
          f'code hash {segment["code_hash"][:12]}, '
          f'jax {segment["jax"]}, jaxlib {segment["jaxlib"]}, '
          f'flax {segment["flax"]}, optax {segment["optax"]}, '
          f'numpy {segment["numpy"]}, Python {segment["python"]}; '
          f'{segment["device_count"]} {segment["backend"]} device(s) '
          f'({segment["device_kind"]}, {segment["cpu"]}); XLA_FLAGS: {flags}')
