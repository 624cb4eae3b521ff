# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""An append-only JSON-lines metrics log that survives interruption."""

from __future__ import annotations

import json
import os
from typing import Any


class Logbook:
  """``metrics.jsonl`` in a work directory, one JSON object per line.

  On resume, lines beyond the restored step are dropped, so that a run that
  was interrupted after logging but before checkpointing logs those steps
  once, not twice.
  """

  def __init__(self, path: str, resume_step: int | None = None):
    self.path = path
    self.rows: list[dict[str, Any]] = []
    if os.path.exists(path):
      rows = rows_of_a_run(path)
      self.rows = [r for r in rows
                   if resume_step is not None and r['step'] <= resume_step]
    self._rewrite()

  def _rewrite(self):
    with open(self.path + '.tmp', 'w') as f:
      for row in self.rows:
        f.write(json.dumps(row) + '\n')
    os.replace(self.path + '.tmp', self.path)

  def append(self, row: dict[str, Any]) -> None:
    self.rows.append(row)
    with open(self.path, 'a') as f:
      f.write(json.dumps(row) + '\n')


def rows_of_a_run(path: str) -> list[dict[str, Any]]:
  """The rows of a run's log, but for a last line cut short.

  A run killed while it appended a row (out of memory, a power cut) leaves
  half a line at the end. That row's step was never checkpointed (a save
  follows the append), so a resumed run drops it anyway; it must not stop
  the resume with a JSONDecodeError.
  """
  with open(path) as f:
    lines = [line for line in f if line.strip()]
  rows = [json.loads(line) for line in lines[:-1]]
  if lines:
    try:
      rows.append(json.loads(lines[-1]))
    except json.JSONDecodeError:
      if lines[-1].endswith('\n'):
        raise      # a whole line that is not JSON: not a torn write
  return rows


def read(path: str) -> list[dict[str, Any]]:
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]
