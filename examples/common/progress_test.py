# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of the progress bar: on for a terminal, quiet (log lines) otherwise."""

import io
from unittest import mock

from absl.testing import absltest

from examples.common import progress


class _Terminal(io.StringIO):

  def isatty(self):
    return True


class ProgressTest(absltest.TestCase):

  def test_quiet_when_stderr_is_not_a_terminal(self):
    stderr = io.StringIO()
    with mock.patch('sys.stderr', stderr):
      with self.assertLogs('absl', 'INFO') as logs:
        with progress.Progress(10) as bar:
          self.assertFalse(bar.enabled)
          bar.advance(5)
          bar.show({'val acc': 0.5})
          bar.log('step %d | done', 5)
    self.assertEqual(stderr.getvalue(), '')
    self.assertIn('step 5 | done', logs.output[-1])

  def test_bar_with_rate_eta_and_metrics_on_a_terminal(self):
    stderr = _Terminal()
    with mock.patch('sys.stderr', stderr):
      with progress.Progress(10, initial=2, desc='run') as bar:
        self.assertTrue(bar.enabled)
        bar.advance(8)
        bar.show({'val acc': 0.123456, 'mask': None})
        bar.log('step %d | done', 10)
    out = stderr.getvalue()
    self.assertIn('run', out)
    self.assertIn('10/10', out)
    self.assertIn('step/s', out)
    self.assertIn('val acc=0.1235', out)
    self.assertNotIn('mask', out)            # None values are left out
    self.assertIn('step 10 | done\n', out)   # a line above the bar

  def test_disabled_explicitly(self):
    stderr = _Terminal()
    with mock.patch('sys.stderr', stderr):
      with progress.Progress(10, enabled=False) as bar:
        bar.advance()
    self.assertEqual(stderr.getvalue(), '')


if __name__ == '__main__':
  absltest.main()
