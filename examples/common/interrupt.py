# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Ctrl-C in a training loop: finish the step, checkpoint, say how to resume.

A KeyboardInterrupt raised in the middle of a step, a metrics write or an
orbax save can leave half a line in ``metrics.jsonl`` or a state whose step
count and parameters disagree. Inside ``StopOnInterrupt`` the first Ctrl-C
only sets ``requested``; the loop looks at it between steps, saves a
checkpoint and raises ``TrainingInterrupted``. A second Ctrl-C interrupts at
once, as usual, for a loop that hangs.
"""

from __future__ import annotations

import signal
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


class StopOnInterrupt:
  """``with StopOnInterrupt() as stop: while not stop.requested: ...``.

  Signal handlers belong to the main thread: elsewhere (a loop run from a
  worker thread) this does nothing and Ctrl-C raises as usual.
  """

  def __init__(self):
    self.requested = False
    self._previous = None
    self._installed = False

  def request(self) -> None:
    """What the first Ctrl-C does; callable directly (tests, callbacks)."""
    self.requested = True

  def _handle(self, signum, frame):
    del signum, frame
    self.request()
    # The next Ctrl-C raises KeyboardInterrupt wherever the program is.
    signal.signal(signal.SIGINT, signal.default_int_handler)

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
