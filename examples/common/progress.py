# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""A progress bar for training loops: steps/s, ETA and the latest metrics.

A ``tqdm`` bar on stderr while stderr is a terminal; where it is not (a log
file, a pipe, a test, a notebook kernel) the bar stays quiet and the lines
given to ``log`` go to absl logging instead, so a log file holds each
evaluation once rather than a bar redrawn thousands of times.
"""

from __future__ import annotations

from collections.abc import Mapping
import sys
from typing import Any

from absl import logging
import tqdm


def _short(value: Any) -> str:
  if isinstance(value, float):
    return f'{value:.4g}'
  return str(value)


class Progress:
  """``with Progress(total, initial) as bar: bar.advance(); bar.show(...)``.

  Args:
    total: the last step.
    initial: the step the loop starts from (a resumed run starts there, and
      its ETA counts only the steps still to go).
    enabled: True, False, or None for "while stderr is a terminal". Pass
      False on every process but the first of a multi-host run.
    desc: a label in front of the bar.
  """

  def __init__(self, total: int, initial: int = 0,
               enabled: bool | None = None, desc: str | None = None):
    self.enabled = sys.stderr.isatty() if enabled is None else enabled
    self._bar = tqdm.tqdm(total=total, initial=initial, desc=desc,
                          unit='step', file=sys.stderr, dynamic_ncols=True,
                          disable=not self.enabled)

  def advance(self, steps: int = 1) -> None:
    self._bar.update(steps)

  def show(self, metrics: Mapping[str, Any]) -> None:
    """Shows the latest metrics beside the bar (None values are left out)."""
    self._bar.set_postfix({k: _short(v) for k, v in metrics.items()
                           if v is not None}, refresh=False)

  def log(self, message: str, *args: Any) -> None:
    """A line above the bar, or an absl INFO line when the bar is off."""
    if self.enabled:
      self._bar.write(message % args if args else message, file=sys.stderr)
    else:
      # stacklevel: the line is attributed to the loop, not to this method.
      logging.info(message, *args, stacklevel=2)

  def close(self) -> None:
    self._bar.close()

  def __enter__(self) -> Progress:
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()
