# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The training loop every example shares: set-up, step, evaluate-and-log.

An example's ``train_and_evaluate`` is four calls::

  config_schema.validate(config)
  loop.start_run(workdir, config, may_change=...)
  ...  # build data, model, optimizer, the jitted step (example code)
  run = loop.Loop(workdir, example_dir=..., num_steps=..., ...)
  state = run.restore(state)          # resumes from the last checkpoint
  state = run.train(state, train_step, evaluate, show=..., line=...)
  loop.write_result(workdir, summary)

``Loop.train`` owns what is the same in every example: the step counter and
the training clock (evaluation excluded), the progress bar, the metrics log
(``metrics.jsonl``, one row per evaluation), periodic orbax checkpoints,
stopping early, and Ctrl-C (finish the step, save, raise
``interrupt.TrainingInterrupted``), so that an interrupted and resumed run
equals an uninterrupted one. The entries of the summary that every example
reports come from ``at_target``, ``final`` and ``seconds_per_step``.

``start_run`` refuses a work directory another process is training in
(``runlock``) and a run already past ``config.num_steps`` (a run is not cut
short), each in one line and before writing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
import json
import os
import time
from typing import Any

from absl import logging
import jax
import ml_collections
import numpy as np
import optax

from examples.common import checkpoint as checkpoint_lib
from examples.common import interrupt
from examples.common import logbook as logbook_lib
from examples.common import progress as progress_lib
from examples.common import provenance
from examples.common import runlock
from examples.common import schema

Row = dict[str, Any]


def is_chief() -> bool:
  """On several hosts every process trains; the first one writes files."""
  return jax.process_index() == 0


def start_run(workdir: str, config: ml_collections.ConfigDict, *,
              may_change: Sequence[str] = ()) -> None:
  """Makes and locks ``workdir`` and writes the resolved config.

  Call it after validating the config and before building anything that
  writes (on several hosts only the first process writes). It checks that
  ``workdir`` holds no other run (``checkpoint.check_same_run``) and none
  past ``config.num_steps`` (``checkpoint.check_within_budget``), locks the
  directory for this process (``runlock``: another process training the
  run there is refused) and writes ``config.json``. The lock is held until
  ``write_result``, until ``Loop.train`` raises (Ctrl-C, a crash) or until
  the process ends, whichever is first; the same process may start the
  run again.

  Raises:
    schema.ConfigError: ``workdir`` holds a run started with another config
      (fields outside ``may_change`` differ), or one whose checkpoint is
      past ``config.num_steps``, or cannot be created.
    runlock.RunLocked: (a ``schema.ConfigError``) another process is
      training the run in ``workdir``.
  """

  def check():
    checkpoint_lib.check_same_run(workdir, config, may_change)
    checkpoint_lib.check_within_budget(workdir, config.get('num_steps'))

  check()
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise schema.ConfigError(f'cannot create the work directory {workdir}: '
                             f'{e.strerror}') from None
  if not is_chief():
    return
  held = runlock.holds(workdir)
  runlock.acquire(workdir)
  try:
    # Again, under the lock: a process that held it may have saved since.
    check()
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      f.write(config.to_json(indent=1))
  except BaseException:
    if not held:
      runlock.release(workdir)
    raise


def batch_indices(seed: int, step: int, n_train: int,
                  batch_size: int, *, stream: Sequence[int] = ()
                  ) -> np.ndarray:
  """The training examples of a step: epochs of a fresh permutation.

  A pure function of (seed, step), so a resumed run sees the same batches.
  The last ``n_train % batch_size`` examples of an epoch's permutation are
  dropped; ``batch_size`` 0 is every example, in order, every step.

  Epoch ``e`` is drawn from ``np.random.default_rng([seed, *stream, e])``.
  An example whose other random streams are ``default_rng([seed, k])``
  (small ``k``) passes a ``stream`` that keeps the batch order apart from
  them: without one, epoch ``k`` would replay stream ``k``'s draws.
  """
  if batch_size == 0:
    return np.arange(n_train)
  per_epoch = n_train // batch_size
  epoch, within = divmod(step, per_epoch)
  order = np.random.default_rng([seed, *stream, epoch]).permutation(n_train)
  return order[within * batch_size:(within + 1) * batch_size]


def mask_fraction(opt_state: Any) -> float | None:
  """The optimizer's ``mask_fraction`` (mean of q), None if it has none."""
  try:
    value = optax.tree_utils.tree_get(opt_state, 'mask_fraction')
  except KeyError:
    return None
  return None if value is None else float(value)


def progress_line(row: Row, metrics: str) -> str:
  """An evaluation's line: ``step N | <metrics> | mask q | s s/step``.

  Args:
    row: the evaluation's row (``Loop.train`` adds ``step`` and
      ``seconds_per_step``; ``mask_fraction`` is None without a mask).
    metrics: the example's metrics of ``row``, formatted.
  """
  mask = row['mask_fraction']
  return (f'step {row["step"]:6d} | {metrics} | mask '
          f'{"n/a" if mask is None else f"{mask:.3f}"} | '
          f'{row["seconds_per_step"]:.3f} s/step')


def at_target(row: Row | None) -> dict[str, Any]:
  """``steps_to_target`` and ``seconds_to_target`` of ``result.json``.

  Args:
    row: the first evaluation at the example's target, None if no
      evaluation reached it (then both are None).
  """
  return {'steps_to_target': None if row is None else row['step'],
          'seconds_to_target': None if row is None else row['train_seconds']}


def final(rows: Sequence[Row], step: int,
          keys: Sequence[str]) -> dict[str, Any]:
  """``final_step`` and ``final_<key>`` for ``keys``, of the last row.

  Args:
    rows: the run's metrics (``Loop.rows``).
    step: the loop's step counter, the final step of a run that logged no
      row (its metrics are then None).
    keys: the metrics to report.
  """
  last = rows[-1] if rows else {}
  return {'final_step': last.get('step', step),
          **{f'final_{key}': last.get(key) for key in keys}}


def seconds_per_step(rows: Sequence[Row]) -> float:
  """Training seconds per step of the whole run (evaluations excluded)."""
  last = rows[-1] if rows else {}
  return last.get('train_seconds', 0.0) / max(last.get('step', 1), 1)


def write_result(workdir: str, result: Mapping[str, Any]) -> None:
  """``workdir/result.json``: a finished run (``compare`` skips it).

  The run is over: ``start_run``'s lock on ``workdir`` is released.
  """
  if is_chief():
    try:
      with open(os.path.join(workdir, 'result.json'), 'w') as f:
        json.dump(dict(result), f, indent=1)
    finally:
      runlock.release(workdir)


class Loop:
  """Steps, evaluations, checkpoints and Ctrl-C of one run.

  The state is a dict of pytrees (parameters, optimizer state, ...); the
  loop adds ``step`` and ``train_seconds`` to what it checkpoints.

  Args:
    workdir: the run's directory (``start_run`` made it).
    example_dir: the example's package directory; ``restore`` records its
      code (with snr_optax's) in the run's ``provenance.json``.
    num_steps: train up to this step.
    eval_every: evaluate (and log a row) every this many steps and at the
      last step.
    checkpoint_every: save at the first evaluation at or past each
      multiple of this many steps (the multiple itself when it is an
      evaluation, as when ``eval_every`` divides it), at the last step,
      when stopping early and on Ctrl-C.
    desc: the progress bar's label.
  """

  def __init__(self, workdir: str, *, example_dir: str, num_steps: int,
               eval_every: int, checkpoint_every: int, desc: str):
    self.workdir = workdir
    self.example_dir = example_dir
    self.num_steps = num_steps
    self.eval_every = eval_every
    self.checkpoint_every = checkpoint_every
    self.desc = desc
    self.checkpointer = checkpoint_lib.Checkpointer(workdir)
    self.step = 0
    self.train_seconds = 0.0
    self.logbook: logbook_lib.Logbook | None = None

  @property
  def rows(self) -> list[Row]:
    """The metrics logged so far (restored ones included)."""
    return self.logbook.rows if self.logbook else []

  def restore(self, state: dict[str, Any]) -> dict[str, Any]:
    """``state`` itself, or the last checkpoint's (same structure).

    Also appends this start's segment to ``provenance.json``
    (``provenance.collect``: code, versions, devices, XLA flags), so that a
    run resumed elsewhere says so.

    Raises:
      schema.ConfigError: the last checkpoint is past ``num_steps`` (a run
        is not cut short; ``start_run`` refuses it before writing).
    """
    start = self.checkpointer.latest_step()
    if start is not None and start > self.num_steps:
      # start_run refuses it first; this is for a loop used without it.
      raise schema.ConfigError(checkpoint_lib.past_budget_message(
          self.workdir, start, self.num_steps))
    if start is not None:
      restored = self.checkpointer.restore(self._saved(state, 0, 0.0))
      self.step = int(restored.pop('step'))
      self.train_seconds = float(restored.pop('train_seconds'))
      state = restored
      logging.info('Resumed %s from step %d', self.workdir, start)
    self.logbook = logbook_lib.Logbook(
        os.path.join(self.workdir, 'metrics.jsonl'), resume_step=start)
    if is_chief():
      provenance.record(self.workdir, self.example_dir, self.step)
    return state

  @staticmethod
  def _saved(state, step, train_seconds):
    return {**state, 'step': np.asarray(step, np.int64),
            'train_seconds': np.asarray(train_seconds, np.float64)}

  def _save(self, state):
    self.checkpointer.save(self.step, self._saved(state, self.step,
                                                  self.train_seconds))

  def train(self, state: dict[str, Any],
            make_step: Callable[[], Callable[[dict[str, Any], int],
                                             dict[str, Any]]],
            evaluate: Callable[[dict[str, Any]], Row], *,
            show: Callable[[Row], Mapping[str, Any]],
            line: Callable[[Row], str],
            stop: Callable[[list[Row]], bool] | None = None,
            on_save: Callable[[list[Row]], None] | None = None
            ) -> dict[str, Any]:
    """Trains from the restored step to ``num_steps``; returns the state.

    Args:
      state: what ``restore`` returned.
      make_step: ``() -> train_step``, called once before the first step:
        compile there (the time is printed, not counted as training; the
        first Ctrl-C there ends the run once it returns, a second one at
        once, like Ctrl-C in a step). ``train_step``:
        ``(state, step) -> state`` after one step; ``step`` is the number of
        steps done before it (anything a pure function of it, e.g. the
        batch, makes resuming exact). Timed until its result is ready.
      evaluate: ``state -> row`` of metrics (floats); the loop adds
        ``step``, ``seconds_per_step`` (over the steps since the last row)
        and ``train_seconds``.
      show: ``row -> metrics`` shown beside the progress bar.
      line: ``row -> text`` of the line printed (or logged) per evaluation.
      stop: ``rows -> bool``, asked after each evaluation: stop early.
      on_save: ``rows -> None`` after each save (e.g. redraw the plots).

    Raises:
      interrupt.TrainingInterrupted: on Ctrl-C, once the last finished step
        is saved (nothing is saved at step 0: a rerun makes that again).
        It, or any other exception, releases ``start_run``'s lock on the
        work directory (a normal end leaves it to ``write_result``).
    """
    chief = is_chief()
    window_start, window_steps = self.train_seconds, 0
    # The step of the previous evaluation (or of the start): a save falls
    # due when a multiple of checkpoint_every lies after it.
    evaluated = self.step
    ended = False
    try:
      if (stop is not None and self.rows
          and self.rows[-1]['step'] == self.step and stop(self.rows)):
        # A run that stopped early, started again: it stays stopped (the
        # same command gives the same result).
        ended = True
        return state
      if (self.step >= self.num_steps and self.rows
          and self.rows[-1]['step'] == self.step):
        # A finished run, started again: nothing to compile or train (it
        # said "training steps 501 to 500" after compiling).
        logging.info('already at step %d of %d: nothing to train',
                     self.step, self.num_steps)
        ended = True
        return state
      if interrupt.missed():     # a Ctrl-C dropped before the loop
        raise KeyboardInterrupt
      compile_start = time.perf_counter()
      # The first Ctrl-C while compiling stops the run once the compile is
      # done (a second one at once): a KeyboardInterrupt raised inside
      # JAX's tracing or lowering left jaxlib in a state that crashed the
      # interpreter's exit (a segmentation fault after the resume line,
      # in 3 of 6 tries on the PINN example).
      if self.step < self.num_steps:
        with interrupt.StopOnInterrupt(
            'Ctrl-C: stopping once the step is compiled (Ctrl-C again to '
            'stop at once)') as compiling:
          train_step = make_step()
        if compiling.requested:
          raise KeyboardInterrupt
        first = ('compiled in %.1f s; training steps %d to %d, evaluating '
                 'every %d', time.perf_counter() - compile_start,
                 self.step + 1, self.num_steps, self.eval_every)
      else:
        # Resumed at the budget from a step never evaluated: no step to
        # compile, only the last row to make (below).
        first = ('already at step %d of %d: evaluating it', self.step,
                 self.num_steps)
      bar = progress_lib.Progress(self.num_steps, initial=self.step,
                                  enabled=None if chief else False,
                                  desc=self.desc)
      bar.log(*first)    # a first line at once, not at the first evaluation
      with interrupt.StopOnInterrupt() as interrupted, bar:
        while self.step < self.num_steps:
          if interrupted.requested:
            raise KeyboardInterrupt
          t0 = time.perf_counter()
          new_state = jax.block_until_ready(train_step(state, self.step))
          # One assignment: a KeyboardInterrupt raised anywhere in the loop
          # finds a state and a step counter of the same step (the step
          # does not donate its inputs, so the old state is still valid).
          state, self.step, self.train_seconds = (
              new_state, self.step + 1,
              self.train_seconds + time.perf_counter() - t0)
          window_steps += 1
          bar.advance()
          if self.step % self.eval_every and self.step != self.num_steps:
            continue
          row = {'step': self.step, **evaluate(state),
                 'seconds_per_step': (self.train_seconds - window_start)
                                     / max(window_steps, 1),
                 'train_seconds': self.train_seconds}
          if chief:
            self.logbook.append(row)
          window_start, window_steps = self.train_seconds, 0
          bar.show(show(row))
          bar.log(line(row))
          done = stop is not None and stop(self.rows)
          due = (self.step // self.checkpoint_every
                 > evaluated // self.checkpoint_every)
          evaluated = self.step
          if due or done or self.step == self.num_steps:
            self._save(state)
            if chief and on_save is not None:
              on_save(self.rows)
          if done:
            break
        if self.step >= self.num_steps and (
            not self.rows or self.rows[-1]['step'] != self.step):
          # Resumed at the budget from a step never evaluated (a
          # checkpoint saved on Ctrl-C between evaluations, resumed with
          # num_steps at its step): the run still ends with a row of its
          # last step, which result.json reports. (restore refuses a
          # checkpoint past the budget.)
          row = {'step': self.step, **evaluate(state),
                 'seconds_per_step': 0.0, 'train_seconds': self.train_seconds}
          if chief:
            self.logbook.append(row)
          bar.show(show(row))
          bar.log(line(row))
          if chief and on_save is not None:
            on_save(self.rows)
        if interrupted.requested:
          # Ctrl-C during the last step or evaluation: the run is saved, but
          # whoever runs it (a sweep) must still stop.
          raise KeyboardInterrupt
      ended = True
    except KeyboardInterrupt:
      if self.step and self.checkpointer.latest_step() != self.step:
        self._save(state)
      raise interrupt.TrainingInterrupted(
          self.step,
          self.checkpointer.directory if self.step else None) from None
    finally:
      self.checkpointer.close()
      if not ended and chief:
        # Stopped by Ctrl-C or a crash: another process may resume it.
        runlock.release(self.workdir)
    return state
