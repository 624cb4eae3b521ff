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
"""

from __future__ import annotations

import os
from typing import Any

from flax import nnx
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

import snr_optax as so
from examples.common import loop
from examples.inr import config_schema
from examples.inr import data as data_lib
from examples.inr import figures
from examples.inr import models


def make_optimizer(config) -> optax.GradientTransformation:
  """The optimizer named by ``config.optimizer``; decay is never masked.

  The learning rate is constant, as in SIREN's image fitting.
  """
  lr = config.learning_rate
  snr = config.snr
  mask = dict(mode=snr.mode, alpha=snr.alpha, softness=snr.softness,
              reduction=snr.reduction)
  if config.optimizer in ('adam', 'adam_early_stop'):
    if config.weight_decay:
      return optax.adamw(lr, config.b1, config.b2,
                         weight_decay=config.weight_decay)
    return optax.adam(lr, config.b1, config.b2)
  if config.optimizer == 'snr_adam':
    return so.snr_adam(lr, config.b1, config.b2, placement=snr.placement,
                       weight_decay=config.weight_decay, **mask)
  return so.streaming_snr_adamw(lr, config.b1, config.b2, rho=snr.rho,
                                weight_decay=config.weight_decay,
                                warmup_steps=snr.warmup_steps, **mask)


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


def make_train_step(config, loss_fn, optimizer):
  """One jitted step: gradient or per-example statistics, update, apply."""
  if config.optimizer in config_schema.PER_EXAMPLE:
    grads_fn = so.value_and_grad_stats(
        loss_fn, method=config.snr.method,
        microbatch_size=(config.snr.microbatch_size
                         if config.snr.method == 'microbatch' else None))
  else:
    grads_fn = jax.value_and_grad(loss_fn)

  def train_step(params, opt_state, batch):
    loss, grads = grads_fn(params, batch)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  return jax.jit(train_step)


def batch_indices(seed: int, step: int, n_train: int,
                  batch_size: int) -> np.ndarray:
  """The training pixels of a step: epochs of a fresh permutation.

  A pure function of (seed, step), so a resumed run sees the same batches;
  ``batch_size`` 0 is every training pixel, in order, every step. The last
  ``n_train % batch_size`` pixels of an epoch's permutation are dropped.
  """
  if batch_size == 0:
    return np.arange(n_train)
  per_epoch = n_train // batch_size
  epoch, within = divmod(step, per_epoch)
  order = np.random.default_rng([seed, epoch]).permutation(n_train)
  return order[within * batch_size:(within + 1) * batch_size]


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


def summarize(rows, config, image: data_lib.Image,
              final_step: int) -> dict[str, Any]:
  """``result.json``: best and final PSNRs, the early-stopping pick."""
  last = rows[-1] if rows else {}
  top = best(rows, 'clean_psnr')
  pick = (best(rows, 'holdout_psnr')
          if config.optimizer in config_schema.HOLD_OUT else None)
  target = first_at(rows, 'clean_psnr', config.target_clean_psnr)
  return {
      'optimizer': config.optimizer,
      'seed': config.seed,
      'side': config.side,
      'noise_sigma': config.noise_sigma,
      # The PSNR of the noisy image itself: what fitting the noise gives.
      'noisy_psnr': data_lib.psnr(image.noisy, image.clean),
      'trains_on_holdout': config.optimizer not in config_schema.HOLD_OUT,
      'best_clean_psnr': None if top is None else top['clean_psnr'],
      'best_clean_step': None if top is None else top['step'],
      'final_step': last.get('step', final_step),
      'final_clean_psnr': last.get('clean_psnr'),
      'final_fit_psnr': last.get('fit_psnr'),
      'final_holdout_psnr': last.get('holdout_psnr'),
      # Early stopping on the held-out pixels (adam_early_stop only): the
      # step of best held-out PSNR and the clean PSNR there.
      'early_stop_step': None if pick is None else pick['step'],
      'early_stop_clean_psnr': None if pick is None else pick['clean_psnr'],
      'target_clean_psnr': config.target_clean_psnr,
      'steps_to_target': None if target is None else target['step'],
      'seconds_to_target': (None if target is None
                            else target['train_seconds']),
      'seconds_per_step': (last.get('train_seconds', 0.0)
                           / max(last.get('step', 1), 1)),
  }


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
  ``.npy``. Ctrl-C stops after the current step, saves a checkpoint there
  and raises ``interrupt.TrainingInterrupted``; calling this again with the
  same config and workdir resumes exactly.

  Raises:
    schema.ConfigError: for a config the schema refuses (an unreadable or
      too small image included), or that differs from the one of the run
      in ``workdir``; before anything is written.
    interrupt.TrainingInterrupted: on Ctrl-C, once the state is saved.
  """
  config_schema.validate(config)
  loop.start_run(workdir, config,
                 may_change=config_schema.MAY_CHANGE_ON_RESUME)
  image = data_lib.make_image(config.image, config.side, config.noise_sigma,
                              config.holdout_fraction, config.seed)
  holds_out = config.optimizer in config_schema.HOLD_OUT
  train_pixels = training_pixels(config, image)
  held_pixels = np.flatnonzero(image.holdout)
  train_coords = image.coords[train_pixels]
  train_targets = image.noisy_targets[train_pixels]

  model = models.create(config, image.channels)
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  optimizer = make_optimizer(config)
  loss_fn = make_loss(graphdef, rest)
  opt_state = optimizer.init(params)
  full_batch = (jnp.asarray(train_coords), jnp.asarray(train_targets))

  def batch(step):
    if config.batch_size == 0:
      return full_batch
    idx = batch_indices(config.seed, step, len(train_pixels),
                        config.batch_size)
    return (train_coords[idx], train_targets[idx])

  all_coords = jnp.asarray(image.coords)
  predict = jax.jit(lambda p: nnx.merge(graphdef, p, rest)(all_coords))
  # The reconstructions shown and saved: the latest evaluation's, the best
  # clean PSNR's so far and (early stopping) the best held-out PSNR's.
  shown = {}

  def make_step():
    step_fn = make_train_step(config, loss_fn, optimizer).lower(
        params, opt_state, batch(0)).compile()

    def train_step(state, step):
      new_params, new_opt_state, _ = step_fn(
          state['params'], state['opt_state'], batch(step))
      return {'params': new_params, 'opt_state': new_opt_state}
    return train_step

  def evaluate(state):
    prediction = np.asarray(predict(state['params']), np.float32)
    noisy = image.noisy_targets
    row = {
        'fit_psnr': data_lib.psnr(prediction[train_pixels],
                                  noisy[train_pixels]),
        'clean_psnr': data_lib.psnr(prediction, image.clean_targets),
        'holdout_psnr': data_lib.psnr(prediction[held_pixels],
                                      noisy[held_pixels]),
        'mask_fraction': loop.mask_fraction(state['opt_state']),
    }
    shown['latest'] = prediction
    previous = run.rows
    if all(row['clean_psnr'] > r['clean_psnr'] for r in previous):
      shown['best_clean'] = prediction
      save_prediction('best_clean', prediction)
    if holds_out and all(row['holdout_psnr'] > r['holdout_psnr']
                         for r in previous):
      shown['early_stop'] = prediction
      save_prediction('early_stop', prediction)
    return row

  def save_prediction(name, prediction):
    if loop.is_chief():
      path = os.path.join(workdir, f'reconstruction_{name}.npy')
      np.save(path, prediction.reshape(image.clean.shape))

  def on_save(rows):
    save_prediction('latest', shown['latest'])
    for name in ('best_clean', 'early_stop'):
      if name not in shown:     # from before a resume: read it back
        path = os.path.join(workdir, f'reconstruction_{name}.npy')
        if os.path.exists(path):
          shown[name] = np.load(path)
    top = best(rows, 'clean_psnr')
    pick = best(rows, 'holdout_psnr') if holds_out else None
    last = rows[-1]
    panels = [('clean', image.clean),
              (f'noisy ({data_lib.psnr(image.noisy, image.clean):.1f} dB)',
               image.noisy),
              (f'step {last["step"]} ({last["clean_psnr"]:.1f} dB)',
               shown['latest'])]
    if 'best_clean' in shown and top is not None:
      panels.append((f'best clean, step {top["step"]} '
                     f'({top["clean_psnr"]:.1f} dB)', shown['best_clean']))
    if 'early_stop' in shown and pick is not None:
      panels.append((f'early-stop pick, step {pick["step"]} '
                     f'({pick["clean_psnr"]:.1f} dB)', shown['early_stop']))
    title = f'{config.optimizer} seed {config.seed}'
    figures.images([(t, np.reshape(p, image.clean.shape)) for t, p in panels],
                   os.path.join(workdir, 'images.png'), title=title)
    figures.psnr_curves(rows, os.path.join(workdir, 'psnr.png'), title=title,
                        noisy_psnr=data_lib.psnr(image.noisy, image.clean),
                        holds_out=holds_out)

  def line(row):
    mask = row['mask_fraction']
    return (f'step {row["step"]:6d} | fit {row["fit_psnr"]:6.2f} dB | clean '
            f'{row["clean_psnr"]:6.2f} dB | held-out '
            f'{row["holdout_psnr"]:6.2f} dB | mask '
            f'{"n/a" if mask is None else f"{mask:.3f}"} | '
            f'{row["seconds_per_step"]:.3f} s/step')

  run = loop.Loop(workdir, example_dir=os.path.dirname(__file__),
                  num_steps=config.num_steps, eval_every=config.eval_every,
                  checkpoint_every=config.checkpoint_every,
                  desc=f'{config.optimizer} seed {config.seed}')
  state = run.restore({'params': params, 'opt_state': opt_state})
  run.train(
      state, make_step, evaluate, line=line, on_save=on_save,
      show=lambda row: {'fit': f'{row["fit_psnr"]:.2f} dB',
                        'clean': f'{row["clean_psnr"]:.2f} dB',
                        'mask': row['mask_fraction']})
  result = summarize(run.rows, config, image, run.step)
  loop.write_result(workdir, result)
  return result
