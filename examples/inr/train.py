# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Fitting an implicit neural representation to a noisy image.

Importable and testable: ``main.py`` only parses flags, and the notebook
imports this module. ``train_and_evaluate(config, workdir)`` fits one model
to the noisy pixels, evaluates every ``eval_every`` steps on every pixel
(PSNR against the noisy targets it trains on, against the clean image, and
against the noisy held-out pixels), logs ``metrics.jsonl``, checkpoints
with orbax every ``checkpoint_every`` steps, resumes exactly from the last
checkpoint, and draws the images and curves as PNG files.

It is the shared loop (``examples/common/loop.py``) fed with this example's
pieces: ``setup`` (image, model, loss, optimizer), ``step_maker`` (the
compiled step), ``evaluator`` (a metrics row), ``Reconstructions`` (the
images kept and drawn) and ``summarize`` (``result.json``).
"""

from __future__ import annotations

from collections.abc import Callable
import json
import os
from typing import Any, NamedTuple

from flax import nnx
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from examples.common import checkpoint
from examples.common import loop
from examples.common import population
from examples.common import schema
from examples.common import steps
from examples.inr import config_schema
from examples.inr import data as data_lib
from examples.inr import figures
from examples.inr import models


def make_optimizer(config) -> optax.GradientTransformation:
  """The optimizer named by ``config.optimizer``; decay is never masked.

  The learning rate is constant, as in SIREN's image fitting.
  """
  lr = config.learning_rate
  if config.optimizer in ('adam', 'adam_early_stop'):
    if config.weight_decay:
      return optax.adamw(lr, config.b1, config.b2,
                         weight_decay=config.weight_decay)
    return optax.adam(lr, config.b1, config.b2)
  return steps.snr_optimizer(config, lr)


def make_loss(graphdef, rest):
  """Mean squared error per pixel, averaged over the batch.

  The mean of per-example losses (each pixel's mean over its channels) is
  what per-example statistics take: example i's gradient is the gradient
  on the one-pixel batch.
  """
  def loss_fn(params, batch):
    coords, targets = batch
    prediction = nnx.merge(graphdef, params, rest)(coords)
    return jnp.mean(jnp.square(prediction - targets))
  return loss_fn


def batch_indices(seed: int, step: int, n_train: int,
                  batch_size: int) -> np.ndarray:
  """The training pixels of a step (indices into the run's training pixels).

  ``loop.batch_indices`` on a stream of its own (``data.BATCH_STREAM``),
  apart from the noise's and the held-out pixels'. Looked up here at each
  step: the tests interrupt training through it
  (examples/common/testing.py).
  """
  return loop.batch_indices(seed, step, n_train, batch_size,
                            stream=(data_lib.BATCH_STREAM,))


def training_pixels(config, image: data_lib.Image) -> np.ndarray:
  """The pixels a run trains on: every one, or all but the held-out ones.

  Only the early-stopping baseline gives up its held-out pixels; the rule
  claims to need no validation set, so every other run trains on them all.
  """
  if config.optimizer in config_schema.HOLD_OUT:
    return np.flatnonzero(~image.holdout)
  return np.arange(image.side * image.side)


def first_at(rows, key: str, value: float):
  """The first row whose ``key`` is at least ``value``, or None."""
  return next((r for r in rows if r.get(key) is not None
               and r[key] >= value), None)


def best(rows, key: str):
  """The row of largest ``key`` (the earliest among equals), or None."""
  rows = [r for r in rows if r.get(key) is not None]
  return max(rows, key=lambda r: (r[key], -r['step'])) if rows else None


class Setup(NamedTuple):
  """A run before its first step: the image, loss, optimizer and state."""
  image: data_lib.Image
  train_pixels: np.ndarray       # the pixels it trains on (training_pixels)
  loss_fn: Callable[..., Any]
  optimizer: optax.GradientTransformation
  state: dict[str, Any]          # {'params', 'opt_state'}
  batch: Callable[[int], Any]    # step -> (coordinates, noisy targets)
  predict: Callable[[Any], Any]  # params -> [pixels, channels], every pixel


def setup(config: ml_collections.ConfigDict) -> Setup:
  """The noisy image, model, loss and optimizer of ``config``."""
  image = data_lib.make_image(config.image, config.side, config.noise_sigma,
                              config.holdout_fraction, config.seed)
  train_pixels = training_pixels(config, image)
  coords = image.coords[train_pixels]
  targets = image.noisy_targets[train_pixels]
  graphdef, params, rest = nnx.split(models.create(config, image.channels),
                                     nnx.Param, ...)
  optimizer = population.wrap(make_optimizer(config), config.snr)
  full_batch = (jnp.asarray(coords), jnp.asarray(targets))

  def batch(step):
    if config.batch_size == 0:
      return full_batch
    idx = batch_indices(config.seed, step, len(train_pixels),
                        config.batch_size)
    return (coords[idx], targets[idx])

  all_coords = jnp.asarray(image.coords)
  predict = jax.jit(lambda p: nnx.merge(graphdef, p, rest)(all_coords))
  return Setup(image, train_pixels, make_loss(graphdef, rest), optimizer,
               {'params': params, 'opt_state': optimizer.init(params)},
               batch, predict)


def step_maker(config: ml_collections.ConfigDict, run: Setup):
  """``() -> train_step`` for ``loop.Loop.train``: compiles, then steps.

  The shared step (``steps.make_train_step``) on this example's loss and
  optimizer.
  """
  return steps.step_maker(
      steps.make_train_step(config, run.loss_fn, run.optimizer,
                            per_example=config_schema.PER_EXAMPLE),
      run.state, run.batch)


def psnrs(run: Setup, prediction: np.ndarray) -> dict[str, float]:
  """Fit, clean and held-out PSNR of a reconstruction [pixels, channels]."""
  noisy, held = run.image.noisy_targets, run.image.holdout
  return {
      'fit_psnr': data_lib.psnr(prediction[run.train_pixels],
                                noisy[run.train_pixels]),
      'clean_psnr': data_lib.psnr(prediction, run.image.clean_targets),
      'holdout_psnr': data_lib.psnr(prediction[held], noisy[held]),
  }


def losses(run: Setup, prediction: np.ndarray,
           noise_sigma: float) -> dict[str, float]:
  """The training loss and its population value, in the loss's units.

  ``train_loss``: the loss trained on (mean over the training pixels of
  the squared error against their noisy targets); ``population_loss``: its
  expectation over a fresh draw of the noise at every pixel, the squared
  error against the clean image plus sigma^2 (exact, no sampling).
  """
  pixels = run.train_pixels
  noisy = run.image.noisy_targets
  clean = run.image.clean_targets
  return {
      'train_loss': float(np.mean(np.square(
          prediction[pixels].astype(np.float64) - noisy[pixels]))),
      'population_loss': float(np.mean(np.square(
          prediction.astype(np.float64) - clean)) + noise_sigma ** 2),
  }


def evaluator(run: Setup, on_prediction=None, noise_sigma: float = 0.0):
  """``state -> row``: PSNRs on every pixel and the mask fraction.

  ``on_prediction(row, prediction)``, if given, sees each evaluation's
  reconstruction ([pixels, channels], float32). With the population-loss
  estimate (``config.snr.population_risk``) the row also holds the
  tracker's estimates, ``batch_fraction`` and ``losses`` (at the image's
  ``noise_sigma``).
  """

  def evaluate(state):
    prediction = np.asarray(run.predict(state['params']), np.float32)
    row = {**psnrs(run, prediction),
           'mask_fraction': loop.mask_fraction(state['opt_state'])}
    estimates = population.row_fields(state['opt_state'], 'inr')
    if estimates:
      fraction = len(run.batch(0)[1]) / len(run.train_pixels)
      row.update(estimates, batch_fraction=fraction,
                 **losses(run, prediction, noise_sigma))
    if on_prediction is not None:
      on_prediction(row, prediction)
    return row
  return evaluate


class Reconstructions:
  """The reconstructions a run keeps, as ``.npy`` files and ``images.png``.

  The latest evaluation's (written at each save), the best clean PSNR's so
  far and, with early stopping, the best held-out PSNR's (written when they
  change); ``save`` also draws ``images.png`` and ``psnr.png``.

  Args:
    workdir: the run's directory.
    config: the run's config.
    image: its image.
    rows: ``() -> rows`` logged so far (``loop.Loop.rows``).
  """

  KINDS = ('latest', 'best_clean', 'early_stop')

  def __init__(self, workdir: str, config, image: data_lib.Image,
               rows: Callable[[], list[loop.Row]]):
    self.workdir = workdir
    self.title = f'{config.optimizer} seed {config.seed}'
    self.image = image
    self.holds_out = config.optimizer in config_schema.HOLD_OUT
    self.rows = rows
    self.shown = {}

  def path(self, kind: str) -> str:
    return os.path.join(self.workdir, f'reconstruction_{kind}.npy')

  def _write(self, kind, prediction):
    self.shown[kind] = prediction.reshape(self.image.clean.shape)
    if loop.is_chief():
      # Whole or not at all: a run killed in the middle of the write would
      # leave a file that the resumed run cannot load.
      path = self.path(kind)
      with open(path + '.tmp', 'wb') as f:
        np.save(f, self.shown[kind])
      os.replace(path + '.tmp', path)

  def observe(self, row: loop.Row, prediction: np.ndarray) -> None:
    """An evaluation's row (not logged yet) and its reconstruction."""
    previous = self.rows()
    self.shown['latest'] = prediction.reshape(self.image.clean.shape)
    if all(row['clean_psnr'] > r['clean_psnr'] for r in previous):
      self._write('best_clean', prediction)
    if self.holds_out and all(row['holdout_psnr'] > r['holdout_psnr']
                              for r in previous):
      self._write('early_stop', prediction)

  def save(self, rows: list[loop.Row]) -> None:
    """At a checkpoint: the latest reconstruction, the images and curves."""
    self._write('latest', self.shown['latest'])
    for kind in self.KINDS:
      if kind not in self.shown and os.path.exists(self.path(kind)):
        self.shown[kind] = np.load(self.path(kind))   # from before a resume
    image = self.image
    noisy_psnr = data_lib.psnr(image.noisy, image.clean)
    last = rows[-1]
    panels = [('clean', image.clean), (f'noisy ({noisy_psnr:.1f} dB)',
                                       image.noisy),
              (f'step {last["step"]} ({last["clean_psnr"]:.1f} dB)',
               self.shown['latest'])]
    top = best(rows, 'clean_psnr')
    if 'best_clean' in self.shown and top is not None:
      panels.append((f'best clean, step {top["step"]} '
                     f'({top["clean_psnr"]:.1f} dB)',
                     self.shown['best_clean']))
    pick = best(rows, 'holdout_psnr') if self.holds_out else None
    if 'early_stop' in self.shown and pick is not None:
      panels.append((f'early-stop pick, step {pick["step"]} '
                     f'({pick["clean_psnr"]:.1f} dB)',
                     self.shown['early_stop']))
    figures.images(panels, os.path.join(self.workdir, 'images.png'),
                   title=self.title)
    figures.psnr_curves(rows, os.path.join(self.workdir, 'psnr.png'),
                        title=self.title, noisy_psnr=noisy_psnr,
                        holds_out=self.holds_out)


def progress_line(row: loop.Row) -> str:
  return loop.progress_line(
      row, f'fit {row["fit_psnr"]:6.2f} dB | clean {row["clean_psnr"]:6.2f} '
      f'dB | held-out {row["holdout_psnr"]:6.2f} dB')


def progress_fields(row: loop.Row) -> dict[str, Any]:
  return {'fit': f'{row["fit_psnr"]:.2f} dB',
          'clean': f'{row["clean_psnr"]:.2f} dB',
          'mask': row['mask_fraction']}


def summarize(config, rows: list[loop.Row], step: int,
              noisy_psnr: float | None = None) -> dict[str, Any]:
  """``result.json``: best and final PSNRs, the early-stopping pick.

  Args:
    config: the run's config.
    rows: its metrics.
    step: its step counter (the final step if it logged no row).
    noisy_psnr: the noisy image's PSNR against the clean one, recorded as
      the PSNR that fitting the noise exactly gives.
  """
  top = best(rows, 'clean_psnr')
  pick = (best(rows, 'holdout_psnr')
          if config.optimizer in config_schema.HOLD_OUT else None)
  target = first_at(rows, 'clean_psnr', config.target_clean_psnr)
  return {
      'optimizer': config.optimizer,
      'seed': config.seed,
      'side': config.side,
      'noise_sigma': config.noise_sigma,
      'noisy_psnr': noisy_psnr,
      'trains_on_holdout': config.optimizer not in config_schema.HOLD_OUT,
      'best_clean_psnr': None if top is None else top['clean_psnr'],
      'best_clean_step': None if top is None else top['step'],
      **loop.final(rows, step, ('clean_psnr', 'fit_psnr', 'holdout_psnr')),
      # Early stopping on the held-out pixels (adam_early_stop only): the
      # step of best held-out PSNR and the clean PSNR there.
      'early_stop_step': None if pick is None else pick['step'],
      'early_stop_clean_psnr': None if pick is None else pick['clean_psnr'],
      'target_clean_psnr': config.target_clean_psnr,
      **loop.at_target(target),
      'seconds_per_step': loop.seconds_per_step(rows),
  }


# The run's image: its fingerprint (data.fingerprint) and where it came from.
IMAGE_FILE = 'image.json'


def check_same_image(workdir: str, config) -> dict[str, Any]:
  """``image.json`` of this run; refuses an image changed since it started.

  ``config.image`` names a file, whose pixels may change while its name,
  and so the config, stays the same: resuming would go on fitting another
  image, against PSNRs logged on the first.

  Raises:
    schema.ConfigError: ``workdir`` holds a run (a checkpoint) started on
      other pixels; nothing is written.
  """
  record = {'image': config.image,
            'sha256': data_lib.fingerprint(config.image)}
  path = os.path.join(workdir, IMAGE_FILE)
  checkpoints = os.path.join(workdir, 'checkpoints')
  if (os.path.isfile(path) and os.path.isdir(checkpoints)
      and os.listdir(checkpoints)):
    with open(path) as f:
      before = json.load(f).get('sha256')
    if before != record['sha256']:
      raise schema.ConfigError(
          f'config.image: {config.image} is not the image the run in '
          f'{workdir} started on (its pixels changed: sha256 '
          f'{str(before)[:12]}... there, {record["sha256"][:12]}... now); '
          'restore that image or give a new --workdir')
  return record


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> dict[str, Any]:
  """Trains, evaluates, logs, checkpoints and resumes; returns the summary.

  The summary (also written to ``workdir/result.json``, see ``summarize``)
  holds the best clean PSNR and its step, the final clean, fit and held-out
  PSNRs, the early-stopping pick (``adam_early_stop``: the step of best
  held-out PSNR and the clean PSNR there) and the first step at
  ``target_clean_psnr``.

  Nothing is written before the config (and the image) is validated. The
  run records its config (``config.json``) and where it ran
  (``provenance.json``). While stderr is a terminal a progress bar shows
  steps/s, the ETA and the latest PSNRs. Every save writes ``images.png``
  (clean, noisy, the latest reconstruction, the best-clean one and, with
  early stopping, the pick), ``psnr.png`` and the reconstructions as
  ``.npy`` (``Reconstructions``). Ctrl-C stops after the current step,
  saves a checkpoint there and raises ``interrupt.TrainingInterrupted``;
  calling this again with the same config and workdir resumes exactly.

  Raises:
    schema.ConfigError: for a config the schema refuses (an unreadable or
      too small image included), or that differs from the one of the run
      in ``workdir``, or an image whose pixels changed since that run
      started (``check_same_image``); before anything is written.
    interrupt.TrainingInterrupted: on Ctrl-C, once the state is saved.
  """
  config_schema.validate(config)
  # Another config first (the clearer message), then other pixels under
  # the same image path; both before anything is written.
  checkpoint.check_same_run(workdir, config,
                            config_schema.MAY_CHANGE_ON_RESUME)
  image_record = check_same_image(workdir, config)
  loop.start_run(workdir, config,
                 may_change=config_schema.MAY_CHANGE_ON_RESUME)
  if loop.is_chief():
    with open(os.path.join(workdir, IMAGE_FILE), 'w') as f:
      json.dump(image_record, f, indent=1)
  run = setup(config)
  training = loop.Loop(workdir, example_dir=os.path.dirname(__file__),
                       num_steps=config.num_steps,
                       eval_every=config.eval_every,
                       checkpoint_every=config.checkpoint_every,
                       desc=f'{config.optimizer} seed {config.seed}')
  kept = Reconstructions(workdir, config, run.image, lambda: training.rows)
  training.train(
      training.restore(run.state), step_maker(config, run),
      evaluator(run, kept.observe, config.noise_sigma), line=progress_line,
      show=progress_fields, on_save=kept.save)
  result = summarize(config, training.rows, training.step,
                     data_lib.psnr(run.image.noisy, run.image.clean))
  loop.write_result(workdir, result)
  return result
