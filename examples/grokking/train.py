# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Grokking modular arithmetic: data, optimizers and the training loop.

Importable and testable: ``main.py`` only parses flags, and the notebook
imports this module. ``train_and_evaluate(config, workdir)`` trains one
model, evaluates on the whole held-out set every ``eval_every`` steps, logs
``metrics.jsonl``, checkpoints with orbax every ``checkpoint_every`` steps,
resumes exactly from the last checkpoint, and draws ``curves.png``.

It is the shared loop (``examples/common/loop.py``) fed with this example's
pieces: ``setup`` (data, model, optimizer, placement), ``step_maker`` (the
compiled step), ``evaluator`` (a metrics row), ``stopper`` and
``summarize`` (``result.json``).
"""

from __future__ import annotations

from collections.abc import Callable
import os
from typing import Any, NamedTuple

from flax import nnx
import jax
import jax.numpy as jnp
import ml_collections
import optax

import snr_optax as so
from examples.common import baselines
from examples.common import loop
from examples.common import population
from examples.common import plots
from examples.common import schema
from examples.common import snr_config
from examples.common import steps
from examples.grokking import config_schema
from examples.grokking import data as data_lib
from examples.grokking import models


def learning_rate_schedule(config) -> optax.Schedule:
  """Linear warm-up from lr/10 over ``warmup_steps``, then constant."""
  return optax.linear_schedule(config.learning_rate / 10,
                               config.learning_rate,
                               max(config.warmup_steps, 1))


def make_optimizer(config) -> optax.GradientTransformation:
  """The optimizer named by ``config.optimizer``; decay is never masked."""
  lr = learning_rate_schedule(config)
  snr = config.snr
  mask = snr_config.mask_kwargs(snr)
  adam = optax.scale_by_adam(config.b1, config.b2)
  tail = [optax.add_decayed_weights(config.weight_decay),
          optax.scale_by_learning_rate(lr)]
  grokfast = lambda: baselines.grokfast_ema(config.grokfast.alpha,
                                            config.grokfast.lamb)
  if config.optimizer == 'adamw':
    return optax.adamw(lr, config.b1, config.b2,
                       weight_decay=config.weight_decay)
  if config.optimizer == 'grokfast':
    return optax.chain(grokfast(), adam, *tail)
  if config.optimizer == 'snr_adam_grokfast':
    # Composition: the filter sees the SNR-masked mean (or, "after", the
    # mean), and Adam sees the filtered gradient.
    if snr.placement == 'before':
      return optax.chain(so.snr_mask(**mask), grokfast(), adam, *tail)
    return optax.chain(so.gated(optax.chain(grokfast(), adam), **mask),
                       *tail)
  return steps.snr_optimizer(config, lr)


def create_model(config, split: data_lib.Split) -> models.Transformer:
  return models.Transformer(
      split.vocab_size, split.p, split.seq_len, width=config.width,
      depth=config.depth,
      heads=config.heads, mlp_ratio=config.mlp_ratio,
      rngs=nnx.Rngs(config.seed))


def make_loss(graphdef):
  def loss_fn(params, batch):
    x, y = batch
    logits = nnx.merge(graphdef, params)(x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, jnp.mean(jnp.argmax(logits, -1) == y)
  return loss_fn


def make_mesh(config) -> jax.sharding.Mesh | None:
  """The device mesh of ``config.mesh_data`` x ``config.mesh_fsdp``."""
  if config.mesh_data == 0:
    return None
  # Auto axes: with parameters split over 'fsdp', explicit axes would need
  # out_sharding annotations in the model wherever a split axis is
  # contracted (snr_optax's statistics work on either kind).
  try:
    return so.sharding.make_mesh({'data': config.mesh_data,
                                  'fsdp': config.mesh_fsdp},
                                 axis_type=jax.sharding.AxisType.Auto)
  except ValueError as e:
    # Valid on its own, but not on this machine: still the user's input.
    raise schema.ConfigError(
        f'config.mesh_data={config.mesh_data} x config.mesh_fsdp='
        f'{config.mesh_fsdp} does not fit the {jax.device_count()} devices '
        f'of this run ({e} mesh_data=-1 takes all of them)') from None


# The examples of a step. Looked up here at each step: the tests interrupt
# training through it (examples/common/testing.py).
batch_indices = loop.batch_indices


class Setup(NamedTuple):
  """A run before its first step: data, loss, optimizer, placed state."""
  split: data_lib.Split
  loss_fn: Callable[..., Any]
  optimizer: optax.GradientTransformation
  state: dict[str, Any]          # {'params', 'opt_state'}
  batch: Callable[[int], Any]    # step -> the (placed) batch of that step
  out_shardings: tuple[Any, Any] | None


def setup(config: ml_collections.ConfigDict,
          mesh: jax.sharding.Mesh | None) -> Setup:
  """The data split, model, loss and optimizer of ``config``, placed."""
  split = data_lib.make_split(config.operation, config.p,
                              config.train_fraction, config.seed)
  graphdef, params = nnx.split(create_model(config, split), nnx.Param)
  optimizer = population.wrap(make_optimizer(config), config.snr)
  put_batch = lambda batch: batch
  if mesh is not None:
    # Batch over 'data'; parameters, and so the optimizer state made from
    # them, over 'fsdp' (replicated when that axis has one device).
    params = jax.device_put(params, so.sharding.fsdp_shardings(
        params, mesh, 'fsdp'))
    put_batch = lambda batch: so.sharding.shard_batch(batch, mesh, 'data')
  opt_state = optimizer.init(params)
  out_shardings = None if mesh is None else (
      so.sharding.shardings_of(params, mesh),
      so.sharding.shardings_of(opt_state, mesh))

  def batch(step):
    idx = batch_indices(config.seed, step, len(split.train_y),
                        config.batch_size)
    return put_batch((split.train_x[idx], split.train_y[idx]))

  return Setup(split, make_loss(graphdef), optimizer,
               {'params': params, 'opt_state': opt_state}, batch,
               out_shardings)


def step_maker(config: ml_collections.ConfigDict, run: Setup):
  """``() -> train_step`` for ``loop.Loop.train``: compiles, then steps.

  The shared step (``steps.make_train_step``) on a loss that also returns
  the batch's accuracy, placed on the run's mesh (``run.out_shardings``).
  """
  return steps.step_maker(
      steps.make_train_step(config, run.loss_fn, run.optimizer,
                            per_example=config_schema.PER_EXAMPLE,
                            has_aux=True, out_shardings=run.out_shardings),
      run.state, run.batch)


def evaluator(run: Setup):
  """``state -> row``: loss and accuracy on the whole train and held-out sets."""
  evaluate_fn = jax.jit(run.loss_fn)
  train = (run.split.train_x, run.split.train_y)
  val = (run.split.val_x, run.split.val_y)

  def evaluate(state):
    train_loss, train_acc = evaluate_fn(state['params'], train)
    val_loss, val_acc = evaluate_fn(state['params'], val)
    row = {'train_loss': float(train_loss),
           'train_accuracy': float(train_acc),
           'val_loss': float(val_loss), 'val_accuracy': float(val_acc),
           'mask_fraction': loop.mask_fraction(state['opt_state'])}
    estimates = population.row_fields(state['opt_state'], 'grokking')
    if estimates:   # the held-out pairs are the population
      fraction = len(run.batch(0)[1]) / len(run.split.train_y)
      row.update(estimates, population_loss=row['val_loss'],
                 batch_fraction=fraction)
    return row
  return evaluate


def first_at_target(config, rows: list[loop.Row]) -> loop.Row | None:
  """The first evaluation at or above ``target_val_accuracy``."""
  return next((r for r in rows
               if r['val_accuracy'] >= config.target_val_accuracy), None)


def stopper(config):
  """``rows -> bool``: stop ``steps_after_target`` after the target."""
  def stop(rows):
    first = first_at_target(config, rows)
    return (config.stop_at_target and first is not None
            and rows[-1]['step'] >= first['step'] + config.steps_after_target)
  return stop


def progress_line(row: loop.Row) -> str:
  return loop.progress_line(
      row, f'train acc {100 * row["train_accuracy"]:6.1f}% | val acc '
      f'{100 * row["val_accuracy"]:6.1f}% | val loss {row["val_loss"]:.3f}')


def progress_fields(row: loop.Row) -> dict[str, Any]:
  return {'train acc': f'{row["train_accuracy"]:.1%}',
          'val acc': f'{row["val_accuracy"]:.1%}',
          'val loss': row['val_loss'], 'mask': row['mask_fraction']}


def summarize(config, rows: list[loop.Row], step: int) -> dict[str, Any]:
  """``result.json``: steps and seconds to the target, final metrics."""
  return {
      'optimizer': config.optimizer,
      'seed': config.seed,
      'target_val_accuracy': config.target_val_accuracy,
      **loop.at_target(first_at_target(config, rows)),
      **loop.final(rows, step, ('val_accuracy', 'train_accuracy')),
      'seconds_per_step': loop.seconds_per_step(rows),
  }


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> dict[str, Any]:
  """Trains, evaluates, logs, checkpoints and resumes; returns the summary.

  The summary (also written to ``workdir/result.json``) holds the step and
  the training seconds at which held-out accuracy first reached
  ``target_val_accuracy`` (None if not reached) and the final metrics.

  Nothing is written before the config is validated and the device mesh is
  built. The run records its config (``config.json``) and where it ran
  (``provenance.json``: code, versions, devices, XLA flags). While stderr
  is a terminal a progress bar shows steps/s, the ETA and the latest
  metrics. Ctrl-C stops after the current step, saves a checkpoint there
  and raises ``interrupt.TrainingInterrupted``; calling this again with the
  same config and workdir resumes exactly.

  Raises:
    schema.ConfigError: for a config the schema refuses, whose mesh does
      not fit the devices, or that differs from the one of the run in
      ``workdir``; before anything is written.
    interrupt.TrainingInterrupted: on Ctrl-C, once the state is saved.
  """
  config_schema.validate(config)
  mesh = make_mesh(config)
  loop.start_run(workdir, config,
                 may_change=config_schema.MAY_CHANGE_ON_RESUME)
  run = setup(config, mesh)
  name = f'{config.optimizer} seed {config.seed}'
  training = loop.Loop(workdir, example_dir=os.path.dirname(__file__),
                       num_steps=config.num_steps,
                       eval_every=config.eval_every,
                       checkpoint_every=config.checkpoint_every, desc=name)
  training.train(
      training.restore(run.state), step_maker(config, run), evaluator(run),
      stop=stopper(config), line=progress_line, show=progress_fields,
      on_save=lambda rows: plots.training_curves(
          rows, os.path.join(workdir, 'curves.png'), title=name,
          target=config.target_val_accuracy))
  result = summarize(config, training.rows, training.step)
  loop.write_result(workdir, result)
  return result
