# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""One process at a time trains the run in a work directory.

Two processes on one directory (two ``compare.py`` sweeps, a ``main.py``
started twice) would both restore the same checkpoint, append to the same
``metrics.jsonl`` and save over each other's checkpoints. ``acquire`` takes
an exclusive ``flock`` on ``<workdir>/run.lock`` and keeps it until
``release`` or the end of the process (a crash or a kill included: the
kernel drops the lock with the process, so a stale file never blocks). The
file holds the pid of the process that holds it; another process is
refused in one line naming the directory and that pid.

A process may acquire a directory it already holds (a run interrupted and
resumed in one notebook or test): the lock belongs to the process, not to
a call. Where ``flock`` is missing (Windows) or the file system refuses it,
the run goes on unlocked, with a warning.
"""

from __future__ import annotations

import errno
import os
import time

from absl import logging

from examples.common import schema

try:
  import fcntl  # pylint: disable=g-import-not-at-top
except ImportError:  # not POSIX
  fcntl = None

FILENAME = 'run.lock'

# realpath of a work directory -> the descriptor whose flock this process
# holds on its lock file.
_held: dict[str, int] = {}


class RunLocked(schema.ConfigError):
  """Another process is training the run in the work directory."""


def _key(workdir: str) -> str:
  return os.path.realpath(workdir)


def holds(workdir: str) -> bool:
  """Whether this process holds ``workdir``'s lock."""
  return _key(workdir) in _held


def holder(workdir: str) -> int | None:
  """The pid written in ``workdir``'s lock file (None: none or unreadable).

  The pid of the process holding the lock while one does; a file no
  process holds is empty (or names a process that has ended).
  """
  try:
    with open(os.path.join(workdir, FILENAME)) as f:
      text = f.read().strip()
  except OSError:
    return None
  return int(text) if text.isdigit() else None


def acquire(workdir: str) -> None:
  """Locks ``workdir`` (an existing directory) for this process.

  Raises:
    RunLocked: another process holds it; the message names the directory
      and that process's pid.
  """
  if fcntl is None or holds(workdir):
    return
  path = os.path.join(workdir, FILENAME)
  fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError as e:
    os.close(fd)
    if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
      logging.warning('cannot lock %s (%s); the run goes on without a lock: '
                      'start no other process on it', path, e.strerror)
      return
    # The holder writes its pid just after taking the lock: a moment late.
    pid = None
    for _ in range(20):
      pid = holder(workdir)
      if pid is not None:
        break
      time.sleep(0.01)
    who = f'pid {pid}' if pid is not None else 'pid unknown'
    raise RunLocked(
        f'{workdir} is in use: another process ({who}) is training the run '
        f'there; wait for it to end (or stop it) and run this again, or '
        'give another --workdir') from None
  os.ftruncate(fd, 0)
  os.write(fd, f'{os.getpid()}\n'.encode())
  _held[_key(workdir)] = fd


def release(workdir: str) -> None:
  """Unlocks ``workdir`` if this process holds it (else does nothing)."""
  fd = _held.pop(_key(workdir), None)
  if fd is None:
    return
  try:
    # Empty while no process holds it: a pid left there would name a
    # process that no longer trains the run.
    os.ftruncate(fd, 0)
  finally:
    os.close(fd)
