# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of StopOnInterrupt: the first Ctrl-C is deferred, the second is not."""

import signal
import threading

from absl.testing import absltest

from examples.common import interrupt


class StopOnInterruptTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    if threading.current_thread() is not threading.main_thread():
      self.skipTest('signal handlers need the main thread')

  def test_first_sigint_sets_requested_second_raises(self):
    before = signal.getsignal(signal.SIGINT)
    with interrupt.StopOnInterrupt() as stop:
      self.assertFalse(stop.requested)
      signal.raise_signal(signal.SIGINT)
      self.assertTrue(stop.requested)
      with self.assertRaises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
    self.assertIs(signal.getsignal(signal.SIGINT), before)

  def test_handler_restored_after_an_exception(self):
    before = signal.getsignal(signal.SIGINT)
    with self.assertRaises(RuntimeError):
      with interrupt.StopOnInterrupt():
        raise RuntimeError
    self.assertIs(signal.getsignal(signal.SIGINT), before)

  def test_request_without_a_signal(self):
    with interrupt.StopOnInterrupt() as stop:
      stop.request()
      self.assertTrue(stop.requested)

  def test_training_interrupted_is_a_keyboard_interrupt(self):
    e = interrupt.TrainingInterrupted(7, '/tmp/run/checkpoints')
    self.assertIsInstance(e, KeyboardInterrupt)
    self.assertEqual((e.step, e.checkpoint_dir), (7, '/tmp/run/checkpoints'))


if __name__ == '__main__':
  absltest.main()
