# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Saving and exactly restoring a training state with orbax-checkpoint."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from absl import logging
import jax
import orbax.checkpoint as ocp


@contextlib.contextmanager
def _quiet():
  """orbax logs every save at INFO; keep the training log readable."""
  previous = logging.get_verbosity()
  logging.set_verbosity(logging.WARNING)
  try:
    yield
  finally:
    logging.set_verbosity(previous)


class Checkpointer:
  """The latest ``max_to_keep`` states of a run, in ``workdir/checkpoints``."""

  def __init__(self, workdir: str, max_to_keep: int = 2):
    self.directory = os.path.abspath(os.path.join(workdir, 'checkpoints'))
    with _quiet():
      self._manager = ocp.CheckpointManager(
          self.directory,
          options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                               create=True))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: Any) -> None:
    with _quiet():
      self._manager.save(step, args=ocp.args.StandardSave(state))
      self._manager.wait_until_finished()

  def restore(self, like: Any) -> Any:
    """The latest state, with the structure, shapes and dtypes of ``like``."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    with _quiet():
      return self._manager.restore(self._manager.latest_step(),
                                   args=ocp.args.StandardRestore(abstract))

  def close(self) -> None:
    with _quiet():
      self._manager.close()
