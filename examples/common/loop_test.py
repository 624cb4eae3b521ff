# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of the shared training loop on a toy state.

The toy step is x <- x / 2 + step (float32, exact), from x = 0, so x after
k steps is known by hand; the loop's clock is a fake one that advances
0.25 s per reading, so every step takes exactly 0.25 s of training.
"""

import json
import os
import signal
import subprocess
import sys
import threading
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import ml_collections
import numpy as np

from examples.common import interrupt
from examples.common import logbook
from examples.common import loop
from examples.common import provenance
from examples.common import runlock
from examples.common import schema
from examples.common import testing

COMMON = os.path.dirname(os.path.abspath(__file__))

# x after k steps (k = 1 ... 10) of x <- x / 2 + step, step = 0, 1, ...
X = {1: 0.0, 2: 1.0, 3: 2.5, 4: 4.25, 5: 6.125, 6: 8.0625, 7: 10.03125,
     8: 12.015625, 9: 14.0078125, 10: 16.00390625}
TICK = 0.25


class FakeClock:
  """``time`` for the loop module: each reading is TICK after the last."""

  def __init__(self):
    self.now = 100.0

  def perf_counter(self):
    self.now += TICK
    return self.now


def initial_state():
  return {'x': np.zeros((), np.float32), 'n': np.zeros((), np.int32)}


class Toy:
  """make_step/train_step/evaluate, recording the steps they were given."""

  def __init__(self, interrupt_at=None, crash_at=None, sigint_at=None,
               interrupt_compile=False, sigint_compile=0):
    self.interrupt_at = interrupt_at
    self.crash_at = crash_at
    self.sigint_at = sigint_at
    self.interrupt_compile = interrupt_compile
    self.sigint_compile = sigint_compile
    self.compiled = 0
    self.compile_finished = False
    self.calls = []
    self.saves = []

  def make_step(self):
    self.compiled += 1
    if self.interrupt_compile:
      raise KeyboardInterrupt
    for _ in range(self.sigint_compile):
      # Ctrl-C in the middle of compiling (tracing, lowering: Python code).
      signal.raise_signal(signal.SIGINT)
    self.compile_finished = True
    return self.train_step

  def train_step(self, state, step):
    if step == self.interrupt_at:
      raise KeyboardInterrupt
    if step == self.crash_at:
      raise RuntimeError('crash')
    if step == self.sigint_at:
      # Ctrl-C in the middle of a step: the step finishes.
      signal.raise_signal(signal.SIGINT)
    self.calls.append(step)
    x = np.asarray(state['x'])
    assert x.dtype == np.float32, x.dtype
    return {'x': x * np.float32(0.5) + np.float32(step),
            'n': np.asarray(state['n']) + np.int32(1)}

  def evaluate(self, state):
    return {'value': float(state['x'])}

  def on_save(self, rows):
    self.saves.append([row['step'] for row in rows])


def expected_rows(steps, num_steps):
  """The rows of an uninterrupted run evaluating at ``steps``."""
  rows, last = [], 0
  for step in steps:
    rows.append({'step': step, 'value': X[step], 'seconds_per_step': TICK,
                 'train_seconds': TICK * step})
    last = step
  assert last == num_steps or not steps
  return rows


def checkpoint_steps(run):
  return sorted(int(name) for name in os.listdir(run.checkpointer.directory)
                if name.isdigit())


class LoopTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.workdir = self.create_tempdir().full_path
    clock = mock.patch.object(loop, 'time', FakeClock())
    clock.start()
    self.addCleanup(clock.stop)

  def make_loop(self, num_steps=10, eval_every=3, checkpoint_every=6,
                workdir=None):
    return loop.Loop(workdir or self.workdir, example_dir=COMMON,
                     num_steps=num_steps, eval_every=eval_every,
                     checkpoint_every=checkpoint_every, desc='toy')

  def train(self, run, toy, state, stop=None):
    return run.train(state, toy.make_step, toy.evaluate,
                     show=lambda row: {'value': row['value']},
                     line=lambda row: f'step {row["step"]}', stop=stop,
                     on_save=toy.on_save)

  def assert_state(self, state, steps):
    self.assertEqual(float(state['x']), X[steps])
    self.assertEqual(int(state['n']), steps)

  @parameterized.parameters(
      (10, 3, [3, 6, 9, 10]),
      (9, 3, [3, 6, 9]),       # the last step is an evaluation: once
      (4, 5, [4]),
      (1, 1, [1]),
  )
  def test_rows_every_eval_every_and_at_the_last_step(self, num_steps,
                                                      eval_every, steps):
    run = self.make_loop(num_steps, eval_every, checkpoint_every=6)
    toy = Toy()
    state = self.train(run, toy, run.restore(initial_state()))
    self.assert_state(state, num_steps)
    self.assertEqual(toy.compiled, 1)
    self.assertEqual(toy.calls, list(range(num_steps)))
    rows = expected_rows(steps, num_steps)
    self.assertEqual(run.rows, rows)
    self.assertEqual([list(row) for row in run.rows],
                     [['step', 'value', 'seconds_per_step', 'train_seconds']]
                     * len(steps))
    self.assertEqual(logbook.read(os.path.join(self.workdir,
                                               'metrics.jsonl')), rows)
    self.assertEqual((run.step, run.train_seconds),
                     (num_steps, TICK * num_steps))
    # Saved every 6 steps (at an evaluation) and at the last step.
    saved = [s for s in steps if s % 6 == 0 or s == num_steps]
    self.assertEqual(checkpoint_steps(run), saved[-2:])
    self.assertEqual(toy.saves, [[s for s in steps if s <= at]
                                 for at in saved])

  def test_seconds_per_step_is_over_the_steps_since_the_last_row(self):
    clock = loop.time

    class Slow(Toy):

      def train_step(self, state, step):
        if step in (3, 4):     # two steps of 0.25 + 1.0 s
          clock.now += 1.0
        return super().train_step(state, step)

    run = self.make_loop()
    self.train(run, Slow(), run.restore(initial_state()))
    self.assertEqual([(row['step'], row['seconds_per_step'],
                       row['train_seconds']) for row in run.rows],
                     [(3, 0.25, 0.75), (6, 0.25 + 2 / 3, 3.5),
                      (9, 0.25, 4.25), (10, 0.25, 4.5)])

  def test_a_finished_run_restored_does_not_train(self):
    run = self.make_loop()
    self.train(run, Toy(), run.restore(initial_state()))
    again = self.make_loop()
    toy = Toy()
    state = again.restore(initial_state())
    self.assertEqual(again.step, 10)
    self.assert_state(state, 10)
    state = self.train(again, toy, state)
    self.assertEqual((toy.compiled, toy.calls), (0, []))   # not compiled
    self.assert_state(state, 10)
    self.assertEqual(again.rows, expected_rows([3, 6, 9, 10], 10))

  def test_stop_early_saves_that_step(self):
    run = self.make_loop(checkpoint_every=100)
    toy = Toy()
    asked = []

    def stop(rows):
      asked.append(rows[-1]['step'])
      return rows[-1]['value'] > 5

    state = self.train(run, toy, run.restore(initial_state()), stop=stop)
    self.assertEqual(asked, [3, 6])
    self.assert_state(state, 6)
    self.assertEqual(toy.calls, list(range(6)))
    self.assertEqual(run.step, 6)
    self.assertEqual(run.rows, expected_rows([3, 6], 6))
    self.assertEqual(checkpoint_steps(run), [6])
    self.assertEqual(toy.saves, [[3, 6]])
    # What was saved is the state at step 6.
    resumed = self.make_loop()
    self.assert_state(resumed.restore(initial_state()), 6)
    self.assertEqual(resumed.step, 6)

  def test_a_run_stopped_early_stays_stopped(self):
    # The same command again: no step, the same state and rows.
    stop = lambda rows: rows[-1]['value'] > 5
    run = self.make_loop(checkpoint_every=100)
    self.train(run, Toy(), run.restore(initial_state()), stop=stop)
    again = self.make_loop(checkpoint_every=100)
    toy = Toy()
    state = self.train(again, toy, again.restore(initial_state()), stop=stop)
    self.assertEqual((toy.compiled, toy.calls), (0, []))
    self.assert_state(state, 6)
    self.assertEqual(again.rows, expected_rows([3, 6], 6))
    # A stop that no longer holds (say, more steps after the target) goes on.
    more = self.make_loop(checkpoint_every=100)
    toy = Toy()
    state = self.train(more, toy, more.restore(initial_state()),
                       stop=lambda rows: False)
    self.assertEqual(toy.calls, [6, 7, 8, 9])
    self.assert_state(state, 10)

  def test_resumed_at_the_budget_ends_with_a_row(self):
    # Ctrl-C at step 7 saved a state no evaluation saw; a budget of 7 ends
    # the run there, with a row of step 7, not the row of 6.
    num_steps = 7
    run = self.make_loop()
    with self.assertRaises(interrupt.TrainingInterrupted):
      self.train(run, Toy(interrupt_at=7), run.restore(initial_state()))
    resumed = self.make_loop(num_steps=num_steps)
    toy = Toy()
    state = self.train(resumed, toy, resumed.restore(initial_state()))
    self.assertEqual((toy.compiled, toy.calls), (0, []))   # nothing to step
    self.assert_state(state, 7)
    self.assertEqual([(r['step'], r['value']) for r in resumed.rows],
                     [(3, X[3]), (6, X[6]), (7, X[7])])
    self.assertEqual(logbook.read(os.path.join(self.workdir,
                                               'metrics.jsonl')),
                     resumed.rows)
    self.assertEqual(toy.saves, [[3, 6, 7]])
    # Started again: nothing more.
    again = self.make_loop(num_steps=num_steps)
    self.train(again, Toy(), again.restore(initial_state()))
    self.assertEqual(again.rows, resumed.rows)

  def test_resumed_past_the_budget_is_refused(self):
    # A run at step 7 given a budget of 5 is not cut short (the log said
    # "training steps 8 to 5" and the run stayed at 7): restore refuses,
    # naming both, before recording anything.
    run = self.make_loop()
    with self.assertRaises(interrupt.TrainingInterrupted):
      self.train(run, Toy(interrupt_at=7), run.restore(initial_state()))
    metrics = os.path.join(self.workdir, 'metrics.jsonl')
    with open(metrics) as f:
      before = f.read()
    with self.assertRaises(schema.ConfigError) as e:
      self.make_loop(num_steps=5).restore(initial_state())
    self.assertEqual(
        str(e.exception),
        f'{self.workdir} holds a run already at step 7, past '
        'config.num_steps=5; a run is not cut short: resume it with '
        'num_steps >= 7, or give a new --workdir for a shorter run')
    with open(metrics) as f:
      self.assertEqual(f.read(), before)
    self.assertEqual([s['from_step'] for s in provenance.read(self.workdir)],
                     [0])
    # With a budget that reaches it, it resumes.
    resumed = self.make_loop()
    state = self.train(resumed, Toy(), resumed.restore(initial_state()))
    self.assert_state(state, 10)

  @parameterized.named_parameters(('at_the_last_step', 10, None),
                                  ('at_an_early_stop', 6, 6))
  def test_ctrl_c_in_the_last_evaluation_still_stops(self, at, stop_at):
    # The run is over, but a sweep running it must not go on to the next.
    if threading.current_thread() is not threading.main_thread():
      self.skipTest('signal handlers need the main thread')

    class SigintInEvaluation(Toy):

      def evaluate(self, state):
        if int(state['n']) == at:
          signal.raise_signal(signal.SIGINT)
        return super().evaluate(state)

    stop = (lambda rows: rows[-1]['step'] >= stop_at) if stop_at else None
    run = self.make_loop()
    with self.assertRaises(interrupt.TrainingInterrupted) as e:
      self.train(run, SigintInEvaluation(), run.restore(initial_state()),
                 stop=stop)
    self.assertEqual(e.exception.step, at)
    self.assertIn(at, checkpoint_steps(run))
    # Started again, it has nothing left to do.
    again = self.make_loop()
    toy = Toy()
    state = self.train(again, toy, again.restore(initial_state()), stop=stop)
    self.assertEqual(toy.calls, [])
    self.assert_state(state, at)

  def uninterrupted(self):
    workdir = self.create_tempdir().full_path
    run = self.make_loop(workdir=workdir)
    state = self.train(run, Toy(), run.restore(initial_state()))
    return state, run.rows

  @parameterized.named_parameters(
      ('after_a_checkpoint', 7, [6, 7], [3, 6]),
      ('at_a_checkpoint', 6, [6], [3, 6]),
      ('before_any_checkpoint', 4, [4], [3]),
      ('after_the_first_step', 1, [1], []),
  )
  def test_interrupt_saves_and_resumes_exactly(self, k, saved, rows_before):
    state, rows = self.uninterrupted()
    self.assert_state(state, 10)

    run = self.make_loop()
    toy = Toy(interrupt_at=k)
    with self.assertRaises(interrupt.TrainingInterrupted) as e:
      self.train(run, toy, run.restore(initial_state()))
    self.assertEqual(e.exception.step, k)
    self.assertEqual(e.exception.checkpoint_dir,
                     os.path.join(self.workdir, 'checkpoints'))
    self.assertEqual(toy.calls, list(range(k)))
    self.assertEqual(checkpoint_steps(run), saved)
    self.assertEqual(run.rows, [r for r in rows if r['step'] in rows_before])

    resumed = self.make_loop()
    toy = Toy()
    restored = resumed.restore(initial_state())
    self.assertEqual(resumed.step, k)
    self.assertEqual(resumed.train_seconds, TICK * k)
    self.assert_state(restored, k)
    final = self.train(resumed, toy, restored)
    self.assertEqual(toy.calls, list(range(k, 10)))
    self.assert_state(final, 10)
    self.assertEqual(final['x'].dtype, np.float32)
    # The same rows, timings included (the clock is the same).
    self.assertEqual(resumed.rows, rows)
    self.assertEqual(
        logbook.read(os.path.join(self.workdir, 'metrics.jsonl')), rows)
    # One provenance segment per start.
    self.assertEqual([s['from_step'] for s in provenance.read(self.workdir)],
                     [0, k])

  def test_interrupt_at_step_zero_saves_nothing(self):
    run = self.make_loop()
    with self.assertRaises(interrupt.TrainingInterrupted) as e:
      self.train(run, Toy(interrupt_at=0), run.restore(initial_state()))
    self.assertEqual((e.exception.step, e.exception.checkpoint_dir),
                     (0, None))
    self.assertIsNone(run.checkpointer.latest_step())

  def test_interrupt_while_compiling_saves_nothing(self):
    run = self.make_loop()
    toy = Toy(interrupt_compile=True)
    with self.assertRaises(interrupt.TrainingInterrupted) as e:
      self.train(run, toy, run.restore(initial_state()))
    self.assertEqual((e.exception.step, e.exception.checkpoint_dir),
                     (0, None))
    self.assertEqual((toy.compiled, toy.calls), (1, []))
    self.assertEqual(checkpoint_steps(run), [])
    self.assertEqual(run.rows, [])
    # A rerun starts from the beginning.
    again = self.make_loop()
    self.assert_state(self.train(again, Toy(), again.restore(
        initial_state())), 10)
    self.assertEqual(again.rows, expected_rows([3, 6, 9, 10], 10))

  def test_ctrl_c_while_compiling_lets_the_compile_finish(self):
    # A KeyboardInterrupt inside JAX's tracing or lowering crashed the exit.
    if threading.current_thread() is not threading.main_thread():
      self.skipTest('signal handlers need the main thread')
    handler = signal.getsignal(signal.SIGINT)
    run = self.make_loop()
    toy = Toy(sigint_compile=1)
    with self.assertRaises(interrupt.TrainingInterrupted) as e:
      self.train(run, toy, run.restore(initial_state()))
    self.assertTrue(toy.compile_finished)
    self.assertEqual((e.exception.step, e.exception.checkpoint_dir),
                     (0, None))
    self.assertEqual((toy.calls, run.rows, checkpoint_steps(run)),
                     ([], [], []))
    self.assertIs(signal.getsignal(signal.SIGINT), handler)
    # A second Ctrl-C does not wait for the compile.
    run = self.make_loop()
    toy = Toy(sigint_compile=2)
    with self.assertRaises(interrupt.TrainingInterrupted):
      self.train(run, toy, run.restore(initial_state()))
    self.assertFalse(toy.compile_finished)
    self.assertIs(signal.getsignal(signal.SIGINT), handler)

  def test_a_dropped_ctrl_c_stops_the_run_before_it_compiles(self):
    if threading.current_thread() is not threading.main_thread():
      self.skipTest('signal handlers need the main thread')
    run = self.make_loop()
    toy = Toy()
    with interrupt.RememberInterrupts():
      with mock.patch.object(interrupt, '_missed', True):   # dropped in gc
        with self.assertRaises(interrupt.TrainingInterrupted) as e:
          self.train(run, toy, run.restore(initial_state()))
    self.assertEqual((e.exception.step, toy.compiled, toy.calls), (0, 0, []))

  def test_ctrl_c_in_a_step_finishes_the_step(self):
    if threading.current_thread() is not threading.main_thread():
      self.skipTest('signal handlers need the main thread')
    handler = signal.getsignal(signal.SIGINT)
    run = self.make_loop()
    toy = Toy(sigint_at=4)
    with self.assertRaises(interrupt.TrainingInterrupted) as e:
      self.train(run, toy, run.restore(initial_state()))
    self.assertIs(signal.getsignal(signal.SIGINT), handler)
    # Step 4 (the fifth) finished, was saved, and nothing after it ran.
    self.assertEqual(e.exception.step, 5)
    self.assertEqual(toy.calls, [0, 1, 2, 3, 4])
    self.assertEqual(checkpoint_steps(run), [5])
    resumed = self.make_loop()
    state = self.train(resumed, Toy(), resumed.restore(initial_state()))
    self.assert_state(state, 10)
    self.assertEqual(resumed.rows, expected_rows([3, 6, 9, 10], 10))

  def test_a_crash_resumes_from_the_last_checkpoint(self):
    # Row 9 was logged after the checkpoint at 6; the resumed run logs it
    # again, once.
    run = self.make_loop()
    with self.assertRaises(RuntimeError):
      self.train(run, Toy(crash_at=9), run.restore(initial_state()))
    run.checkpointer.close()
    self.assertEqual([r['step'] for r in run.rows], [3, 6, 9])
    resumed = self.make_loop()
    toy = Toy()
    state = self.train(resumed, toy, resumed.restore(initial_state()))
    self.assertEqual(toy.calls, [6, 7, 8, 9])
    self.assert_state(state, 10)
    self.assertEqual(resumed.rows, expected_rows([3, 6, 9, 10], 10))
    self.assertEqual(
        logbook.read(os.path.join(self.workdir, 'metrics.jsonl')),
        expected_rows([3, 6, 9, 10], 10))

  @parameterized.parameters(
      # eval_every divides checkpoint_every: every multiple, as before.
      (3, 6, [6, 12, 18, 20]),
      # It does not: the first evaluation past each multiple of 5. Only
      # the common multiples (15) were saved, so that with eval_every 7 and
      # checkpoint_every 500 nothing was saved before the end of a run.
      (3, 5, [6, 12, 15, 20]),
      (7, 5, [7, 14, 20]),
  )
  def test_a_save_at_each_multiple_of_checkpoint_every(
      self, eval_every, checkpoint_every, saved_at):
    run = self.make_loop(20, eval_every, checkpoint_every)
    toy = Toy()
    self.train(run, toy, run.restore(initial_state()))
    self.assertEqual([rows[-1] for rows in toy.saves], saved_at)

  def test_a_kill_in_the_middle_of_a_row_resumes(self):
    # Killed while appending row 9 (after the checkpoint at 6): half a line
    # ends metrics.jsonl. The resume drops it, as it drops any row past its
    # checkpoint, instead of failing on it.
    run = self.make_loop()
    with self.assertRaises(RuntimeError):
      self.train(run, Toy(crash_at=9), run.restore(initial_state()))
    run.checkpointer.close()
    path = os.path.join(self.workdir, 'metrics.jsonl')
    with open(path) as f:
      text = f.read()
    with open(path, 'w') as f:
      f.write(text[:text.rindex('{"step": 9') + 12])
    resumed = self.make_loop()
    state = self.train(resumed, Toy(), resumed.restore(initial_state()))
    self.assert_state(state, 10)
    self.assertEqual(logbook.read(path), expected_rows([3, 6, 9, 10], 10))
    # A whole line that is not JSON is not a torn write: it is refused.
    with open(path, 'a') as f:
      f.write('not json\n')
    with self.assertRaises(json.JSONDecodeError):
      logbook.Logbook(path, resume_step=10)

  def test_restore_records_a_provenance_segment(self):
    run = self.make_loop(num_steps=4, eval_every=2, checkpoint_every=2)
    self.train(run, Toy(), run.restore(initial_state()))
    segments = provenance.read(self.workdir)
    self.assertLen(segments, 1)
    self.assertEqual(segments[0]['from_step'], 0)
    self.assertContainsSubset(provenance.ENVIRONMENT_KEYS, segments[0])
    self.make_loop(num_steps=8).restore(initial_state())
    segments = provenance.read(self.workdir)
    self.assertEqual([s['from_step'] for s in segments], [0, 4])
    self.assertEqual(provenance.differences(*segments), [])


class BatchesTest(absltest.TestCase):

  def test_batches_are_a_pure_function_of_the_step(self):
    first = loop.batch_indices(0, 7, 100, 16)
    np.testing.assert_array_equal(first, loop.batch_indices(0, 7, 100, 16))
    epoch = np.concatenate([loop.batch_indices(0, s, 100, 16)
                            for s in range(6)])
    self.assertLen(set(epoch.tolist()), 96)   # each example at most once
    # The next epoch is another permutation of every example.
    self.assertFalse(np.array_equal(loop.batch_indices(0, 6, 100, 16),
                                    loop.batch_indices(0, 0, 100, 16)))
    np.testing.assert_array_equal(loop.batch_indices(0, 7, 100, 0),
                                  np.arange(100))
    # Epoch e draws from default_rng([seed, *stream, e]); no stream keeps
    # the order every published run was trained with.
    np.testing.assert_array_equal(
        loop.batch_indices(3, 6, 100, 16),
        np.random.default_rng([3, 1]).permutation(100)[:16])
    np.testing.assert_array_equal(
        loop.batch_indices(3, 6, 100, 16, stream=(9,)),
        np.random.default_rng([3, 9, 1]).permutation(100)[:16])


class SummaryTest(absltest.TestCase):

  def test_entries_of_a_run(self):
    rows = [{'step': 5, 'acc': 0.4, 'train_seconds': 1.0},
            {'step': 10, 'acc': 0.9, 'train_seconds': 4.0}]
    self.assertEqual(loop.at_target(rows[1]), {'steps_to_target': 10,
                                               'seconds_to_target': 4.0})
    self.assertEqual(loop.at_target(None), {'steps_to_target': None,
                                            'seconds_to_target': None})
    self.assertEqual(loop.final(rows, 12, ('acc', 'loss')),
                     {'final_step': 10, 'final_acc': 0.9,
                      'final_loss': None})
    self.assertEqual(loop.seconds_per_step(rows), 0.4)

  def test_progress_line(self):
    row = {'step': 20, 'mask_fraction': 0.25, 'seconds_per_step': 0.0123}
    self.assertEqual(loop.progress_line(row, 'acc 1.0'),
                     'step     20 | acc 1.0 | mask 0.250 | 0.012 s/step')
    row['mask_fraction'] = None
    self.assertEqual(loop.progress_line(row, 'acc 1.0'),
                     'step     20 | acc 1.0 | mask n/a | 0.012 s/step')

  def test_entries_of_a_run_that_logged_nothing(self):
    self.assertEqual(loop.final([], 3, ('acc',)),
                     {'final_step': 3, 'final_acc': None})
    self.assertEqual(loop.seconds_per_step([]), 0.0)


def make_config(**overrides):
  config = ml_collections.ConfigDict({'learning_rate': 1e-3,
                                      'num_steps': 10,
                                      'model': {'width': 16,
                                                'sizes': (1, 2)}})
  config.update(overrides)
  return config


class StartRunTest(parameterized.TestCase):

  def test_writes_the_config(self):
    workdir = os.path.join(self.create_tempdir().full_path, 'a', 'run')
    loop.start_run(workdir, make_config())
    with open(os.path.join(workdir, 'config.json')) as f:
      self.assertEqual(json.load(f), {'learning_rate': 1e-3,
                                      'num_steps': 10,
                                      'model': {'width': 16,
                                                'sizes': [1, 2]}})
    # Without a checkpoint there is no run to protect: a new config is
    # written over the old one.
    loop.start_run(workdir, make_config(learning_rate=0.5))
    with open(os.path.join(workdir, 'config.json')) as f:
      self.assertEqual(json.load(f)['learning_rate'], 0.5)

  def test_refuses_another_config_once_a_run_saved(self):
    workdir = self.create_tempdir().full_path
    loop.start_run(workdir, make_config())
    run = loop.Loop(workdir, example_dir=COMMON, num_steps=2, eval_every=1,
                    checkpoint_every=1, desc='toy')
    toy = Toy()
    run.train(run.restore(initial_state()), toy.make_step, toy.evaluate,
              show=lambda row: {}, line=str)
    # The same config (tuples as JSON lists) resumes; so does a change of a
    # field that may change.
    loop.start_run(workdir, make_config())
    loop.start_run(workdir, make_config(num_steps=20),
                   may_change=['num_steps'])
    # config.json holds the config of the latest start.
    with open(os.path.join(workdir, 'config.json')) as f:
      self.assertEqual(json.load(f)['num_steps'], 20)
    with self.assertRaises(schema.ConfigError) as e:
      loop.start_run(workdir, make_config(num_steps=20, learning_rate=0.1))
    self.assertIn('config.learning_rate: 0.001 there, 0.1 here',
                  str(e.exception))
    with self.assertRaises(schema.ConfigError) as e:
      loop.start_run(workdir, make_config(num_steps=30))
    self.assertIn('config.num_steps: 20 there, 30 here', str(e.exception))
    config = make_config()
    config.model.width = 32
    with self.assertRaises(schema.ConfigError) as e:
      loop.start_run(workdir, config, may_change=['num_steps'])
    self.assertIn('config.model.width: 16 there, 32 here', str(e.exception))

  def finish(self, workdir, config, **kwargs):
    """start_run, then train the toy to config.num_steps and write_result."""
    loop.start_run(workdir, config, **kwargs)
    run = loop.Loop(workdir, example_dir=COMMON,
                    num_steps=config.num_steps, eval_every=1,
                    checkpoint_every=1, desc='toy')
    toy = Toy()
    run.train(run.restore(initial_state()), toy.make_step, toy.evaluate,
              show=lambda row: {}, line=str)
    loop.write_result(workdir, {'final_step': run.step})

  def test_refuses_a_budget_below_the_run_before_writing(self):
    # A run at step 6 resumed with num_steps=3 rewrote config.json (3)
    # while the run stayed at 6, and logged "training steps 7 to 3".
    workdir = self.create_tempdir().full_path
    self.finish(workdir, make_config(num_steps=6))
    paths = [os.path.join(workdir, name)
             for name in ('config.json', 'metrics.jsonl', 'result.json',
                          provenance.FILENAME)]
    before = [open(path).read() for path in paths]
    with self.assertRaises(schema.ConfigError) as e:
      loop.start_run(workdir, make_config(num_steps=3),
                     may_change=['num_steps'])
    self.assertEqual(
        str(e.exception),
        f'{workdir} holds a run already at step 6, past '
        'config.num_steps=3; a run is not cut short: resume it with '
        'num_steps >= 6, or give a new --workdir for a shorter run')
    self.assertEqual([open(path).read() for path in paths], before)
    # Its own budget, or more, starts it again.
    loop.start_run(workdir, make_config(num_steps=6),
                   may_change=['num_steps'])
    self.finish(workdir, make_config(num_steps=8), may_change=['num_steps'])
    with open(os.path.join(workdir, 'result.json')) as f:
      self.assertEqual(json.load(f), {'final_step': 8})

  def test_locks_the_workdir_until_the_result(self):
    workdir = self.create_tempdir().full_path
    self.addCleanup(runlock.release, workdir)
    loop.start_run(workdir, make_config(num_steps=2))
    self.assertTrue(runlock.holds(workdir))
    self.assertEqual(runlock.holder(workdir), os.getpid())
    # The same process starts it again (a resume in a notebook).
    loop.start_run(workdir, make_config(num_steps=2))
    run = loop.Loop(workdir, example_dir=COMMON, num_steps=2, eval_every=1,
                    checkpoint_every=1, desc='toy')
    toy = Toy()
    run.train(run.restore(initial_state()), toy.make_step, toy.evaluate,
              show=lambda row: {}, line=str)
    # Trained, not yet written: still the run's.
    self.assertTrue(runlock.holds(workdir))
    loop.write_result(workdir, {})
    self.assertFalse(runlock.holds(workdir))

  @parameterized.parameters('interrupt', 'crash')
  def test_a_run_stopped_in_training_releases_the_lock(self, how):
    workdir = self.create_tempdir().full_path
    self.addCleanup(runlock.release, workdir)
    loop.start_run(workdir, make_config())
    run = loop.Loop(workdir, example_dir=COMMON, num_steps=10, eval_every=3,
                    checkpoint_every=6, desc='toy')
    toy = (Toy(interrupt_at=4) if how == 'interrupt' else Toy(crash_at=4))
    with self.assertRaises(KeyboardInterrupt if how == 'interrupt'
                           else RuntimeError):
      run.train(run.restore(initial_state()), toy.make_step, toy.evaluate,
                show=lambda row: {}, line=str)
    self.assertFalse(runlock.holds(workdir))

  def test_refuses_a_workdir_another_process_trains_in(self):
    # Two sweeps on one work directory trained the same run at once.
    workdir = self.create_tempdir().full_path
    holder = subprocess.Popen(
        [sys.executable, '-c', testing.RUNLOCK_HOLDER, workdir],
        cwd=testing.REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True)
    self.addCleanup(holder.wait)
    self.addCleanup(holder.kill)
    self.assertEqual(holder.stdout.readline(), 'locked\n')
    with self.assertRaises(runlock.RunLocked) as e:
      loop.start_run(workdir, make_config())
    self.assertIn(f'{workdir} is in use: another process (pid {holder.pid})',
                  str(e.exception))
    self.assertFalse(os.path.exists(os.path.join(workdir, 'config.json')))
    holder.stdin.close()
    holder.wait()
    loop.start_run(workdir, make_config())
    self.assertTrue(runlock.holds(workdir))
    runlock.release(workdir)

  def test_a_workdir_that_cannot_be_made(self):
    parent = self.create_tempfile().full_path   # a file, not a directory
    with self.assertRaises(schema.ConfigError) as e:
      loop.start_run(os.path.join(parent, 'run'), make_config())
    self.assertIn('cannot create the work directory', str(e.exception))


if __name__ == '__main__':
  absltest.main()
