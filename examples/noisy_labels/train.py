# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Training a classifier on corrupted labels, and what it memorises.

Importable and testable: ``main.py`` only parses flags. ``train_and_evaluate
(config, workdir)`` corrupts the training labels (seeded, the corrupted
indices saved), trains one model on them, evaluates every ``eval_every``
steps on the clean test set and on the training set (split into its clean
and corrupted parts), logs ``metrics.jsonl``, checkpoints with orbax every
``checkpoint_every`` steps, resumes exactly from the last checkpoint, and
draws ``curves.png``.

It is the shared loop (``examples/common/loop.py``) fed with this example's
pieces: ``make_task`` (data and label noise), ``setup`` (model, loss,
optimizer, batches), ``step_maker`` (the compiled step), ``evaluator`` (a
metrics row, ``accuracies``) and ``summarize`` (``result.json``).
"""

from __future__ import annotations

from collections.abc import Callable
import hashlib
import json
import math
import os
from typing import Any, NamedTuple

from flax import nnx
import jax
import ml_collections
import numpy as np
import optax

from examples.common import checkpoint as checkpoint_lib
from examples.common import loop
from examples.common import population
from examples.common import schema
from examples.common import steps
from examples.noisy_labels import config_schema
from examples.noisy_labels import data as data_lib
from examples.noisy_labels import figures
from examples.noisy_labels import models

# Examples per forward pass of an evaluation: every set is padded to a
# multiple of one chunk size, so one program evaluates them all.
EVAL_CHUNK = 1024


def make_optimizer(config) -> optax.GradientTransformation:
  """The optimizer named by ``config.optimizer``; decay is never masked.

  The learning rate is constant and the same for every optimizer.
  """
  lr = config.learning_rate
  if config.optimizer in ('adam', 'adam_early_stop'):
    if config.weight_decay:
      return optax.adamw(lr, config.b1, config.b2,
                         weight_decay=config.weight_decay)
    return optax.adam(lr, config.b1, config.b2)
  return steps.snr_optimizer(config, lr)


def make_loss(graphdef, rest):
  """Softmax cross-entropy per example, averaged over the batch.

  The mean of per-example losses is what per-example statistics take:
  example i's gradient is the gradient on the one-example batch.
  """
  def loss_fn(params, batch):
    images, labels = batch
    logits = nnx.merge(graphdef, params, rest)(images)
    return optax.softmax_cross_entropy_with_integer_labels(
        logits, labels).mean()
  return loss_fn


# The training examples of a step (positions in Task.train). Looked up here
# at each step: the tests interrupt training through it
# (examples/common/testing.py).
batch_indices = loop.batch_indices


def make_task(config) -> data_lib.Task:
  """The dataset of ``config`` with its training labels corrupted.

  Raises:
    schema.ConfigError: the dataset cannot be read, or class flips at a
      fraction of 0.5 or more (one line).
  """
  try:
    dataset = data_lib.load(config.dataset, config.data_dir,
                            config.train_examples)
    return data_lib.make_task(
        dataset, noise_type=config.noise_type,
        noise_fraction=config.noise_fraction, seed=config.seed,
        validation_fraction=(config.validation_fraction
                             if config.optimizer in config_schema.HOLD_OUT
                             else None))
  except ValueError as e:
    raise schema.ConfigError(f'config.dataset {config.dataset}: '
                             + ' '.join(str(e).split())) from None


def dataset_sha256(dataset: data_lib.Dataset) -> str:
  """SHA-256 of a dataset's images and labels (train and test), as read."""
  digest = hashlib.sha256(f'{dataset.name} {dataset.num_classes}'.encode())
  for array in (dataset.train_images, dataset.train_labels,
                dataset.test_images, dataset.test_labels):
    array = np.ascontiguousarray(array)
    digest.update(f'{array.dtype.str} {array.shape}'.encode())
    digest.update(array.data)
  return digest.hexdigest()


# What a run records of its task, and how: (file, what it is).
_LABEL_FILES = (('noisy_labels.npy', 'training labels as the run saw them'),
                ('validation_indices.npy', 'early-stopping split'))


def _saved_arrays(task: data_lib.Task) -> dict[str, np.ndarray]:
  arrays = {'noisy_labels.npy': task.noisy_labels}
  if len(task.validation):
    arrays['validation_indices.npy'] = task.validation
  return arrays


def check_same_task(workdir: str, task: data_lib.Task) -> None:
  """Refuses to resume a run on other data or other label noise.

  The config alone does not pin them: ``data_dir`` may change on resume (a
  moved copy, or another dataset under the same name), and the code that
  draws the noise may have changed since the run started. Either would
  silently go on training the checkpoint on other labels. Only a run with
  a checkpoint is checked (before one, nothing trained is lost); a record
  that is missing or cannot be read is not compared.

  Raises:
    schema.ConfigError: one line, naming what differs.
  """
  checkpoints = os.path.join(workdir, 'checkpoints')
  if not (os.path.isdir(checkpoints) and os.listdir(checkpoints)):
    return
  again = ('resume it with the data and code it started with, or give a '
           'new --workdir')
  path = os.path.join(workdir, 'dataset.json')
  try:
    with open(path) as f:
      recorded = json.load(f)['sha256']
  except (OSError, ValueError, KeyError, TypeError):
    recorded = None
  if recorded is not None and recorded != dataset_sha256(task.dataset):
    raise schema.ConfigError(
        f'{workdir} holds a run started on other {task.dataset.name} data '
        f'(the SHA-256 in {path} is not that of the images and labels read '
        f'now; does data_dir point at another copy?): {again}')
  for name, array in _saved_arrays(task).items():
    path = os.path.join(workdir, name)
    try:
      before = np.load(path)
    except (OSError, ValueError, EOFError):
      continue
    if before.shape != array.shape or np.any(before != array):
      what = dict(_LABEL_FILES)[name]
      count = (f'{int(np.sum(before != array))} of {len(array)} differ'
               if before.shape == array.shape
               else f'{len(before)} there, {len(array)} now')
      raise schema.ConfigError(
          f'{workdir} holds a run whose {what} ({path}) are not the ones '
          f'this config gives now ({count}): the data or the code that '
          f'draws the label noise changed since it started; {again}')


def _save_whole(path: str, write) -> None:
  """Writes ``path`` whole or not at all (a temporary file, then rename)."""
  temporary = f'{path}.tmp'
  with open(temporary, 'wb') as f:
    write(f)
  os.replace(temporary, path)


def save_labels(workdir: str, task: data_lib.Task) -> None:
  """The run's label noise, as ``.npy`` files of its work directory.

  ``corrupted_indices.npy`` (int64, indices into the training split whose
  label was changed), ``noisy_labels.npy`` (int32, every training label as
  the run saw it), with early stopping ``validation_indices.npy``, and
  ``dataset.json`` (SHA-256 of the dataset as read: ``check_same_task``).
  """
  if not loop.is_chief():
    return
  dataset = task.dataset
  arrays = {'corrupted_indices.npy': task.corrupted_indices,
            **_saved_arrays(task)}
  for name, array in arrays.items():
    _save_whole(os.path.join(workdir, name),
                lambda f, a=array: np.save(f, a))
  record = {'dataset': dataset.name, 'sha256': dataset_sha256(dataset),
            'num_train': len(dataset.train_labels),
            'num_test': len(dataset.test_labels)}
  _save_whole(os.path.join(workdir, 'dataset.json'),
              lambda f: f.write(json.dumps(record, indent=1).encode()))


def padded_chunks(n: int, chunk: int) -> list[tuple[int, int]]:
  """``(start, stop)`` of the chunks of ``n`` examples, the last one short.

  >>> padded_chunks(5, 2)
  [(0, 2), (2, 4), (4, 5)]
  """
  return [(start, min(start + chunk, n)) for start in range(0, n, chunk)]


class Setup(NamedTuple):
  """A run before its first step: task, loss, optimizer and state."""
  task: data_lib.Task
  loss_fn: Callable[..., Any]
  optimizer: optax.GradientTransformation
  state: dict[str, Any]          # {'params', 'opt_state'}
  batch: Callable[[int], Any]    # step -> (images [b, h, w, c], labels [b])
  # (params, images [n, h, w, c]) -> logits [n, classes], float32 numpy.
  logits: Callable[[Any, np.ndarray], np.ndarray]


def setup(config: ml_collections.ConfigDict, task: data_lib.Task) -> Setup:
  """The model, loss, optimizer and batches of ``config`` on ``task``."""
  dataset = task.dataset
  graphdef, params, rest = nnx.split(
      models.create(config, dataset.image_shape, dataset.num_classes),
      nnx.Param, ...)
  optimizer = population.wrap(make_optimizer(config), config.snr)
  images = dataset.train_images[task.train]
  labels = task.noisy_labels[task.train]

  def batch(step):
    idx = batch_indices(config.seed, step, len(task.train),
                        config.batch_size)
    return (images[idx], labels[idx])

  chunk = min(EVAL_CHUNK, len(dataset.train_labels))
  forward = jax.jit(lambda p, x: nnx.merge(graphdef, p, rest)(x))

  def logits(params, images_):
    out = []
    for start, stop in padded_chunks(len(images_), chunk):
      part = images_[start:stop]
      if len(part) < chunk:   # padded: one compiled program for every set
        part = np.concatenate([part, np.zeros((chunk - len(part),
                                               *part.shape[1:]), part.dtype)])
      out.append(np.asarray(forward(params, part))[:stop - start])
    return np.concatenate(out).astype(np.float32)

  return Setup(task, make_loss(graphdef, rest), optimizer,
               {'params': params, 'opt_state': optimizer.init(params)},
               batch, logits)


def step_maker(config: ml_collections.ConfigDict, run: Setup):
  """``() -> train_step`` for ``loop.Loop.train``: compiles, then steps.

  The shared step (``steps.make_train_step``) on this example's loss and
  optimizer.
  """
  return steps.step_maker(
      steps.make_train_step(config, run.loss_fn, run.optimizer,
                            per_example=config_schema.PER_EXAMPLE),
      run.state, run.batch)


def predictions(logits: np.ndarray) -> np.ndarray:
  """The class of each row of ``logits`` [n, C]; -1 where a logit is NaN.

  A model that diverged has no prediction: argmax would call a row of NaN
  class 0, and its accuracies (memorisation included) would read as those
  of a poor but working model.
  """
  logits = np.asarray(logits)
  return np.where(np.isnan(logits).any(axis=1), -1,
                  np.argmax(logits, axis=1))


def _accuracy(predicted: np.ndarray, labels: np.ndarray,
              where: np.ndarray) -> float | None:
  """Share of ``where`` (indices) with ``predicted == labels``.

  None if ``where`` is empty; NaN if an example of it has no prediction
  (``predictions``: the model diverged).
  """
  if len(where) == 0:
    return None
  if np.any(predicted[where] < 0):
    return float('nan')
  return float(np.mean(predicted[where] == labels[where]))


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
  """Mean softmax cross-entropy of logits [n, C] and int labels [n], float64."""
  logits = np.asarray(logits, np.float64)
  top = logits.max(axis=1, keepdims=True)
  log_z = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
  return float(np.mean(log_z - logits[np.arange(len(labels)), labels]))


def accuracies(task: data_lib.Task, train_logits: np.ndarray,
               test_logits: np.ndarray) -> dict[str, float | None]:
  """The metrics of an evaluation, from logits of every image.

  Args:
    task: the run's task.
    train_logits: [n_train, C] logits of the whole training split (the
      validation examples included).
    test_logits: [n_test, C] logits of the test set.

  Returns:
    ``test_accuracy`` and ``test_loss`` (the clean test set);
    ``train_accuracy`` (the examples the run trains on, against the labels
    it trains on); ``clean_train_accuracy`` (those of them whose label is
    true); ``memorisation`` (those whose label was corrupted, against the
    corrupted label: how much noise the model has fitted) and
    ``corrupted_true_accuracy`` (the same examples against their true
    label); ``validation_accuracy`` (the early-stopping split, against its
    noisy labels; None without one). Accuracies over no example (no
    corrupted label at 0% noise) are None; over examples whose logits are
    NaN (a diverged model), NaN.
  """
  dataset = task.dataset
  predicted = predictions(train_logits)
  trained = task.train
  corrupted = trained[task.corrupted[trained]]
  clean = trained[~task.corrupted[trained]]
  test_predicted = predictions(test_logits)
  return {
      'test_accuracy': _accuracy(test_predicted, dataset.test_labels,
                                 np.arange(len(test_predicted))),
      'test_loss': cross_entropy(test_logits, dataset.test_labels),
      'train_accuracy': _accuracy(predicted, task.noisy_labels, trained),
      'clean_train_accuracy': _accuracy(predicted, dataset.train_labels,
                                        clean),
      'memorisation': _accuracy(predicted, task.noisy_labels, corrupted),
      'corrupted_true_accuracy': _accuracy(predicted, dataset.train_labels,
                                           corrupted),
      'validation_accuracy': _accuracy(predicted, task.noisy_labels,
                                       task.validation),
  }


def noisy_label_loss(logits: np.ndarray, labels: np.ndarray,
                     noise_fraction: float) -> float:
  """Expected cross-entropy against symmetric-noise labels (float64).

  Each label kept with probability 1 - f, else replaced by one of the other
  C - 1 classes uniformly: (1 - f) CE(y) + f / (C - 1) sum_{j != y} CE(j),
  exact, with no sampling. On the clean test set it is the population loss
  of the task trained on.
  """
  logits = np.asarray(logits, np.float64)
  top = logits.max(axis=1, keepdims=True)
  log_p = logits - top - np.log(np.exp(logits - top).sum(axis=1,
                                                          keepdims=True))
  classes = logits.shape[1]
  own = -log_p[np.arange(len(labels)), labels]
  others = -log_p.sum(axis=1) - own
  return float(np.mean((1 - noise_fraction) * own
                       + noise_fraction / (classes - 1) * others))


def evaluator(run: Setup, config=None):
  """``state -> row``: ``accuracies`` and the mask fraction.

  With the population-loss estimate (``config.snr.population_risk``) the
  row also holds the tracker's estimates, ``batch_fraction``,
  ``train_loss`` (the examples trained on, against the labels trained on)
  and, for symmetric noise, ``population_loss`` (``noisy_label_loss`` on
  the test set; None for class flips, whose population the test set does
  not give as simply).
  """
  dataset = run.task.dataset
  trained = run.task.train

  def evaluate(state):
    params = state['params']
    train_logits = run.logits(params, dataset.train_images)
    test_logits = run.logits(params, dataset.test_images)
    row = {**accuracies(run.task, train_logits, test_logits),
           'mask_fraction': loop.mask_fraction(state['opt_state'])}
    estimates = population.row_fields(state['opt_state'], 'noisy_labels')
    if estimates:
      symmetric = config is not None and (config.noise_type == 'symmetric'
                                          or config.noise_fraction == 0)
      row.update(
          estimates, batch_fraction=len(run.batch(0)[1]) / len(trained),
          train_loss=cross_entropy(train_logits[trained],
                                   run.task.noisy_labels[trained]),
          population_loss=(noisy_label_loss(
              test_logits, dataset.test_labels, config.noise_fraction)
                           if symmetric else None))
    return row
  return evaluate


def best(rows, key: str):
  """The row of largest ``key`` (the earliest among equals), or None.

  Rows where ``key`` is None or NaN (a diverged model) are not candidates.
  """
  rows = [r for r in rows if r.get(key) is not None
          and not math.isnan(r[key])]
  return max(rows, key=lambda r: (r[key], -r['step'])) if rows else None


def _percent(value) -> str:
  return '  n/a ' if value is None else f'{value:6.1%}'


def progress_line(row: loop.Row) -> str:
  return loop.progress_line(
      row, f'test {_percent(row["test_accuracy"])} | clean train '
      f'{_percent(row["clean_train_accuracy"])} | memorised '
      f'{_percent(row["memorisation"])}')


def progress_fields(row: loop.Row) -> dict[str, Any]:
  return {'test': _percent(row['test_accuracy']).strip(),
          'memorised': _percent(row['memorisation']).strip(),
          'mask': row['mask_fraction']}


FINAL_KEYS = ('test_accuracy', 'test_loss', 'train_accuracy',
              'clean_train_accuracy', 'memorisation',
              'corrupted_true_accuracy', 'validation_accuracy')


def summarize(config, rows: list[loop.Row], step: int,
              task: data_lib.Task) -> dict[str, Any]:
  """``result.json``: best and final accuracies, the early-stopping pick.

  Args:
    config: the run's config.
    rows: its metrics.
    step: its step counter (the final step if it logged no row).
    task: its task (the sizes recorded).
  """
  top = best(rows, 'test_accuracy')
  pick = (best(rows, 'validation_accuracy')
          if config.optimizer in config_schema.HOLD_OUT else None)
  return {
      'optimizer': config.optimizer,
      'seed': config.seed,
      'dataset': config.dataset,
      'noise_type': config.noise_type,
      'noise_fraction': config.noise_fraction,
      'num_train': len(task.train),
      'num_corrupted': int(task.corrupted[task.train].sum()),
      'num_validation': len(task.validation),
      'best_test_accuracy': None if top is None else top['test_accuracy'],
      'best_test_step': None if top is None else top['step'],
      **loop.final(rows, step, FINAL_KEYS),
      # Early stopping on the noisy validation split (adam_early_stop
      # only): the step of best validation accuracy and the test accuracy
      # and memorisation there.
      'early_stop_step': None if pick is None else pick['step'],
      'early_stop_test_accuracy': (None if pick is None
                                   else pick['test_accuracy']),
      'early_stop_memorisation': (None if pick is None
                                  else pick['memorisation']),
      'seconds_per_step': loop.seconds_per_step(rows),
  }


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> dict[str, Any]:
  """Trains, evaluates, logs, checkpoints and resumes; returns the summary.

  The summary (also written to ``workdir/result.json``, see ``summarize``)
  holds the best clean test accuracy and its step, the final accuracies
  (``accuracies``: test, clean training part, memorisation of the corrupted
  labels, ...) and the early-stopping pick (``adam_early_stop``: the step of
  best validation accuracy and the test accuracy there).

  Nothing is written before the config (and the dataset, and the noise it
  asks for) is validated. The run records its config (``config.json``),
  where it ran (``provenance.json``) and its label noise
  (``corrupted_indices.npy``, ``noisy_labels.npy``; ``save_labels``). While
  stderr is a terminal a progress bar shows steps/s, the ETA and the latest
  accuracies. Every save draws ``curves.png``. Ctrl-C stops after the
  current step, saves a checkpoint there and raises
  ``interrupt.TrainingInterrupted``; calling this again with the same
  config and workdir resumes exactly.

  Raises:
    schema.ConfigError: for a config the schema refuses (an unprepared TFDS
      dataset included), or a config, data or label noise that differ
      from those of the run in ``workdir`` (``check_same_task``); before
      anything is written.
    interrupt.TrainingInterrupted: on Ctrl-C, once the state is saved.
  """
  config_schema.validate(config)
  task = make_task(config)
  # The config first (its refusal names the field), then the data and the
  # label noise it gives now, before anything is written.
  checkpoint_lib.check_same_run(workdir, config,
                                config_schema.MAY_CHANGE_ON_RESUME)
  check_same_task(workdir, task)
  loop.start_run(workdir, config,
                 may_change=config_schema.MAY_CHANGE_ON_RESUME)
  save_labels(workdir, task)
  run = setup(config, task)
  training = loop.Loop(workdir, example_dir=os.path.dirname(__file__),
                       num_steps=config.num_steps,
                       eval_every=config.eval_every,
                       checkpoint_every=config.checkpoint_every,
                       desc=f'{config.optimizer} seed {config.seed}')
  title = (f'{config.optimizer} seed {config.seed}: {config.dataset}, '
           f'{config.noise_fraction:.0%} {config.noise_type} noise')
  training.train(
      training.restore(run.state), step_maker(config, run),
      evaluator(run, config),
      line=progress_line, show=progress_fields,
      on_save=lambda rows: figures.run_curves(
          rows, os.path.join(workdir, 'curves.png'), title=title))
  result = summarize(config, training.rows, training.step, task)
  loop.write_result(workdir, result)
  return result
