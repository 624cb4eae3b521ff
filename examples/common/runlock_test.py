# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of the work directory's lock, with a second process holding it."""

import os
import signal
import subprocess
import sys

from absl.testing import absltest

from examples.common import runlock
from examples.common import schema
from examples.common import testing

REPO = testing.REPO
HOLDER = testing.RUNLOCK_HOLDER


class RunLockTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    if runlock.fcntl is None:
      self.skipTest('no flock here')
    self.workdir = self.create_tempdir().full_path
    self.addCleanup(runlock.release, self.workdir)

  def start_holder(self):
    holder = subprocess.Popen(
        [sys.executable, '-c', HOLDER, self.workdir], cwd=REPO,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    self.addCleanup(holder.wait)
    self.addCleanup(holder.kill)
    self.assertEqual(holder.stdout.readline(), 'locked\n')
    return holder

  def test_another_process_is_refused_naming_the_directory_and_pid(self):
    holder = self.start_holder()
    self.assertEqual(runlock.holder(self.workdir), holder.pid)
    with self.assertRaises(runlock.RunLocked) as e:
      runlock.acquire(self.workdir)
    self.assertIsInstance(e.exception, schema.ConfigError)
    self.assertEqual(
        str(e.exception),
        f'{self.workdir} is in use: another process (pid {holder.pid}) is '
        'training the run there; wait for it to end (or stop it) and run '
        'this again, or give another --workdir')
    self.assertFalse(runlock.holds(self.workdir))

  def test_a_killed_holder_leaves_no_lock(self):
    holder = self.start_holder()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    # Its pid is still in the file; the lock went with the process.
    self.assertEqual(runlock.holder(self.workdir), holder.pid)
    runlock.acquire(self.workdir)
    self.assertTrue(runlock.holds(self.workdir))
    self.assertEqual(runlock.holder(self.workdir), os.getpid())

  def test_a_holder_that_ends_normally_leaves_no_lock(self):
    holder = self.start_holder()
    holder.stdin.close()
    self.assertEqual(holder.wait(), 0)
    runlock.acquire(self.workdir)
    self.assertTrue(runlock.holds(self.workdir))

  def test_the_holding_process_may_acquire_again_then_release(self):
    runlock.acquire(self.workdir)
    runlock.acquire(self.workdir)      # a resume in the same process
    self.assertTrue(runlock.holds(self.workdir))
    # Held once, whatever the number of acquires: another process is
    # refused until the one release.
    probe = subprocess.run(
        [sys.executable, '-c', HOLDER, self.workdir], cwd=REPO,
        capture_output=True, text=True, input='', check=False)
    self.assertNotEqual(probe.returncode, 0)
    self.assertIn(f'(pid {os.getpid()})', probe.stderr)
    runlock.release(self.workdir)
    self.assertFalse(runlock.holds(self.workdir))
    self.assertIsNone(runlock.holder(self.workdir))   # emptied
    runlock.release(self.workdir)      # not held: nothing to do
    probe = subprocess.run(
        [sys.executable, '-c', HOLDER, self.workdir], cwd=REPO,
        capture_output=True, text=True, input='', check=False)
    self.assertEqual((probe.returncode, probe.stdout), (0, 'locked\n'))

  def test_the_same_directory_under_another_name(self):
    link = os.path.join(self.create_tempdir().full_path, 'link')
    os.symlink(self.workdir, link)
    runlock.acquire(self.workdir)
    self.assertTrue(runlock.holds(link))
    runlock.release(link)
    self.assertFalse(runlock.holds(self.workdir))


if __name__ == '__main__':
  absltest.main()
