# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Ctrl-C in a training loop: finish the step, checkpoint, say how to resume.

A KeyboardInterrupt raised in the middle of a step, a metrics write or an
orbax save can leave half a line in ``metrics.jsonl`` or a state whose step
count and parameters disagree. Inside ``StopOnInterrupt`` the first Ctrl-C
only sets ``requested``; the loop looks at it between steps, saves a
checkpoint and raises ``TrainingInterrupted``. A second Ctrl-C interrupts at
once, as usual, for a loop that hangs.

Outside the loop Ctrl-C raises KeyboardInterrupt as usual, but Python drops
one raised while a garbage-collector callback runs (JAX registers one),
printing "Exception ignored in ...": the program went on, and trained to
the end, as if Ctrl-C never came (1 of 8 tries on the PINN example).
Inside ``RememberInterrupts`` (the example programs' ``cli.run``) every
Ctrl-C is also remembered (``missed()``); ``StopOnInterrupt`` starts
``requested`` if one was, and the loop stops before it compiles.
"""

from __future__ import annotations

import signal
import sys
import threading


class TrainingInterrupted(KeyboardInterrupt):
  """Training stopped by Ctrl-C after saving its state.

  A KeyboardInterrupt, so code that does not know it (a notebook, a sweep
  over runs) stops as it would on Ctrl-C.

  Attributes:
    step: the step of the saved state.
    checkpoint_dir: where it was saved (None: nothing was saved).
  """

  def __init__(self, step: int, checkpoint_dir: str | None):
    super().__init__(f'interrupted at step {step}')
    self.step = step
    self.checkpoint_dir = checkpoint_dir


_missed = False


def _raise_and_remember(signum, frame):
  del signum, frame
  global _missed
  _missed = True
  raise KeyboardInterrupt


def missed() -> bool:
  """Whether Ctrl-C came inside ``RememberInterrupts``, raised or dropped."""
  return _missed


class RememberInterrupts:
  """``with RememberInterrupts():`` Ctrl-C raises and is remembered.

  In the main thread only (elsewhere it does nothing); the flag is cleared
  on entry and on exit.
  """

  def __init__(self):
    self._previous = None
    self._previous_hook = None
    self._installed = False

  def _unraisable(self, unraisable) -> None:
    # The dropped Ctrl-C is remembered: no "Exception ignored" traceback
    # for it above the one line the program ends with.
    if not (_missed and issubclass(unraisable.exc_type, KeyboardInterrupt)):
      self._previous_hook(unraisable)

  def __enter__(self) -> RememberInterrupts:
    global _missed
    if threading.current_thread() is threading.main_thread():
      _missed = False
      self._previous = signal.signal(signal.SIGINT, _raise_and_remember)
      self._previous_hook = sys.unraisablehook
      sys.unraisablehook = self._unraisable
      self._installed = True
    return self

  def __exit__(self, *exc_info) -> None:
    global _missed
    if self._installed:
      signal.signal(signal.SIGINT, self._previous if self._previous
                    is not None else signal.default_int_handler)
      sys.unraisablehook = self._previous_hook
      self._installed = False
      _missed = False


class StopOnInterrupt:
  """``with StopOnInterrupt() as stop: while not stop.requested: ...``.

  Signal handlers belong to the main thread: elsewhere (a loop run from a
  worker thread) this does nothing and Ctrl-C raises as usual.
  """

  def __init__(self, message: str | None = None):
    """``message``: said on stderr at the first Ctrl-C (None: nothing)."""
    # A Ctrl-C that came before (and was dropped: see the module's doc).
    self.requested = _missed
    self._message = message
    self._previous = None
    self._installed = False

  def request(self) -> None:
    """What the first Ctrl-C does; callable directly (tests, callbacks)."""
    self.requested = True

  def _handle(self, signum, frame):
    del signum, frame
    self.request()
    if self._message:
      sys.stderr.write(self._message + '\n')
      sys.stderr.flush()
    # The next Ctrl-C raises KeyboardInterrupt wherever the program is (and
    # inside RememberInterrupts is remembered, if it is dropped there).
    signal.signal(signal.SIGINT, _raise_and_remember
                  if self._previous is _raise_and_remember
                  else signal.default_int_handler)

  def __enter__(self) -> StopOnInterrupt:
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGINT, self._handle)
      self._installed = True
    return self

  def __exit__(self, *exc_info) -> None:
    if self._installed:
      # None: a handler not set from Python; the usual one is the default.
      signal.signal(signal.SIGINT, self._previous if self._previous
                    is not None else signal.default_int_handler)
      self._installed = False
