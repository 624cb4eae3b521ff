# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of StopOnInterrupt: the first Ctrl-C is deferred, the second is not."""

import gc
import signal
import sys
import threading
import types
from unittest import mock

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

  def test_a_ctrl_c_dropped_in_a_gc_callback_is_remembered(self):
    # Python drops an exception raised in a gc callback (JAX has one): the
    # KeyboardInterrupt of the default handler is lost there.
    before = signal.getsignal(signal.SIGINT)
    seen = []

    def callback(phase, info):
      del info
      if phase == 'start' and not seen:
        seen.append(phase)
        signal.raise_signal(signal.SIGINT)

    printed = []      # what reaches the hook that prints "Exception ignored"
    gc.callbacks.append(callback)
    try:
      with mock.patch.object(sys, 'unraisablehook',
                             lambda u: printed.append(u.exc_type)):
        with interrupt.RememberInterrupts():
          self.assertFalse(interrupt.missed())
          gc.collect()
          self.assertEqual(seen, ['start'])
          self.assertTrue(interrupt.missed())
          # Remembered, so not printed; anything else still is.
          self.assertEqual(printed, [])
          sys.unraisablehook(types.SimpleNamespace(exc_type=ValueError))
          self.assertEqual(printed, [ValueError])
          with interrupt.StopOnInterrupt() as stop:
            self.assertTrue(stop.requested)
            # The second Ctrl-C of a loop raises, and is remembered too.
            signal.raise_signal(signal.SIGINT)
            with self.assertRaises(KeyboardInterrupt):
              signal.raise_signal(signal.SIGINT)
          with self.assertRaises(KeyboardInterrupt):   # raised as usual
            signal.raise_signal(signal.SIGINT)
        self.assertFalse(interrupt.missed())
        sys.unraisablehook(types.SimpleNamespace(exc_type=KeyboardInterrupt))
        self.assertEqual(printed, [ValueError, KeyboardInterrupt])  # restored
      with interrupt.StopOnInterrupt() as stop:
        self.assertFalse(stop.requested)
    finally:
      gc.callbacks.remove(callback)
    self.assertIs(signal.getsignal(signal.SIGINT), before)

  def test_training_interrupted_is_a_keyboard_interrupt(self):
    e = interrupt.TrainingInterrupted(7, '/tmp/run/checkpoints')
    self.assertIsInstance(e, KeyboardInterrupt)
    self.assertEqual((e.step, e.checkpoint_dir), (7, '/tmp/run/checkpoints'))


if __name__ == '__main__':
  absltest.main()
