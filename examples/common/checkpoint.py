# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Saving and exactly restoring a training state with orbax-checkpoint."""

from __future__ import annotations

from collections.abc import Iterable
import contextlib
import json
import os
from typing import Any

from absl import logging
import jax
import ml_collections
import orbax.checkpoint as ocp

from examples.common import schema


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


def latest_step(workdir: str) -> int | None:
  """The step of ``workdir``'s latest checkpoint (None: none); writes nothing.

  What ``Checkpointer(workdir).latest_step()`` says, without making the
  directory (a refused run writes nothing).
  """
  directory = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(directory):
    return None
  return max(ocp.utils.checkpoint_steps(directory), default=None)


def past_budget_message(workdir: str, step: int, num_steps: int) -> str:
  """The refusal of a run at ``step`` given a budget ``num_steps < step``."""
  return (f'{workdir} holds a run already at step {step}, past '
          f'config.num_steps={num_steps}; a run is not cut short: resume it '
          f'with num_steps >= {step}, or give a new --workdir for a shorter '
          'run')


def check_within_budget(workdir: str, num_steps: int | None) -> None:
  """Refuses to resume a run whose checkpoint is past ``num_steps``.

  Resuming with a smaller budget than the run has trained would record the
  smaller one in ``config.json`` while the run (and its ``result.json``)
  stays at its step. A checkpoint at exactly ``num_steps`` (saved by
  Ctrl-C at the last step) is resumed: the run ends there.

  Raises:
    schema.ConfigError: one line naming the checkpoint's step and
      ``num_steps``.
  """
  if num_steps is None:
    return
  step = latest_step(workdir)
  if step is not None and step > num_steps:
    raise schema.ConfigError(past_budget_message(workdir, step, num_steps))


def check_same_run(workdir: str, config: ml_collections.ConfigDict,
                   may_change: Iterable[str] = ()) -> None:
  """Refuses to resume a run that was started with another config.

  A work directory with checkpoints and a ``config.json`` holds a run; the
  same command resumes it. A config that differs in a field outside
  ``may_change`` (a budget, an evaluation period) would either fail to
  restore (another model shape, with a page of orbax errors) or silently
  continue another experiment (another learning rate). Fields that only
  one of the two configs has (added to the example since) are not
  compared.

  Raises:
    schema.ConfigError: one line naming the first field that differs.
  """
  path = os.path.join(workdir, 'config.json')
  checkpoints = os.path.join(workdir, 'checkpoints')
  if not (os.path.isfile(path) and os.path.isdir(checkpoints)
          and os.listdir(checkpoints)):
    return
  with open(path) as f:
    before = schema.flatten(json.load(f))
  # Through JSON, as config.json was written: tuples become lists.
  now = schema.flatten(json.loads(config.to_json()))
  may_change = set(may_change)
  changed = [name for name in now if name in before
             and name not in may_change and before[name] != now[name]]
  if changed:
    name = changed[0]
    more = f' and {len(changed) - 1} more' if len(changed) > 1 else ''
    raise schema.ConfigError(
        f'{workdir} holds a run started with another config '
        f'(config.{name}: {before[name]!r} there, {now[name]!r} here{more}); '
        f'resume it with the config it was started with ({path}) or give a '
        'new --workdir')
