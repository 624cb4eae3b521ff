# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Training a physics-informed network on the convection equation.

Importable and testable: ``main.py`` only parses flags.
``train_and_evaluate(config, workdir)`` trains a tanh MLP u(x, t) on three
loss terms, each the mean over its own points,

    L = w_r mean_i r(p_i)^2 + w_0 mean_j (u(x_j, 0) - y_j)^2
        + w_b mean_k (u(0, t_k) - u(2 pi, t_k))^2,

with r = u_t + beta u_x by autodiff at collocation points p_i, noisy
observations y_j of the initial condition sin(x_j), and periodic-boundary
pairs at times t_k. With ``lbfgs_after`` > 0, the optimizer of the config
trains the first ``lbfgs_after`` steps and ``optax.lbfgs`` the rest, on
the full-batch loss (every point of every term), the same for every
optimizer. Every ``eval_every`` steps it evaluates on a grid (the
relative L2 error against the exact solution) and at the observed initial
points (the error of u(x, 0) against the noisy and the clean values, and
how much of the noise the network has fitted); it logs ``metrics.jsonl``,
checkpoints with orbax, resumes exactly and draws the solution, the error
and the curves as PNG files.

``snr_adam`` takes the exact per-example statistics of the three terms,
combined (``snr_optax.multi_term_value_and_grad_stats``): means added with
the weights, leave-one-out noises with the weights squared.
"""

from __future__ import annotations

from collections.abc import Callable
import os
from typing import Any, NamedTuple

from absl import logging
from flax import nnx
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

import snr_optax as so
from examples.common import loop
from examples.common import snr_config
from examples.common import steps
from examples.pinn import config_schema
from examples.pinn import figures
from examples.pinn import models
from examples.pinn import problem


def learning_rate(config) -> optax.Schedule | float:
  """The schedule every optimizer shares: constant, or cosine to a floor.

  The cosine's length is ``decay_steps``, not ``num_steps``, so that a run
  can be extended (resumed with more steps) on the same schedule.
  """
  if config.schedule == 'constant':
    return config.learning_rate
  return optax.cosine_decay_schedule(config.learning_rate, config.decay_steps,
                                     alpha=config.final_lr_fraction)


def make_optimizer(config) -> optax.GradientTransformation:
  """The optimizer named by ``config.optimizer``; decay is never masked."""
  lr = learning_rate(config)
  if config.optimizer == 'adam':
    return optax.adam(lr, config.b1, config.b2)
  if config.optimizer == 'adamw':
    return optax.adamw(lr, config.b1, config.b2,
                       weight_decay=config.weight_decay)
  return steps.snr_optimizer(config, lr)


def make_losses(u_point: Callable[[Any, jax.Array], jax.Array],
                u_points: Callable[[Any, jax.Array], jax.Array],
                beta: float) -> dict[str, Callable[..., jax.Array]]:
  """The three terms, each an ordinary mean over its own batch.

  Args:
    u_point: ``(params, point [2]) -> u`` at one point.
    u_points: ``(params, points [n, 2]) -> u [n]``.
    beta: the convection speed.

  Returns:
    ``{'residual', 'initial', 'boundary'}`` -> ``loss(params, batch)``: the
    residual's batch is collocation points [n, 2]; the initial condition's
    ``(points [n, 2], noisy values [n])``; the boundary's times [n].
  """
  def residual(params, points):
    r = problem.residual_operator(lambda p: u_point(params, p), beta)(points)
    return jnp.mean(jnp.square(r))

  def initial(params, batch):
    points, values = batch
    return jnp.mean(jnp.square(u_points(params, points) - values))

  def boundary(params, times):
    left = jnp.stack([jnp.zeros_like(times), times], axis=1)
    right = jnp.stack([jnp.full_like(times, problem.X_MAX), times], axis=1)
    return jnp.mean(jnp.square(u_points(params, left)
                               - u_points(params, right)))

  return {'residual': residual, 'initial': initial, 'boundary': boundary}


def weights(config) -> dict[str, float]:
  return {term: float(config.weights[term]) for term in config_schema.TERMS}


def total_loss(config, losses):
  """``(params, batches) -> L``: the weighted sum of the terms' losses."""
  w = weights(config)

  def total(params, batches):
    return sum(w[t] * losses[t](params, batches[t]) for t in losses)
  return total


def make_lbfgs_step(config, losses, full_batches):
  """``(params, lbfgs_state) -> (params, lbfgs_state)``: one L-BFGS step.

  ``optax.lbfgs`` (memory 10, zoom line search) on the full-batch loss:
  every collocation point, initial observation and boundary time.
  """
  lbfgs = optax.lbfgs()
  total = total_loss(config, losses)

  def full_loss(params):
    return total(params, full_batches)
  value_and_grad = optax.value_and_grad_from_state(full_loss)

  def lbfgs_step(params, lbfgs_state):
    value, grad = value_and_grad(params, state=lbfgs_state)
    updates, lbfgs_state = lbfgs.update(grad, lbfgs_state, params,
                                        value=value, grad=grad,
                                        value_fn=full_loss)
    return optax.apply_updates(params, updates), lbfgs_state

  return lbfgs, jax.jit(lbfgs_step)


def lbfgs_started(state) -> bool:
  """Whether L-BFGS has taken a step (a state without it: False)."""
  if 'lbfgs_state' not in state:
    return False
  return int(optax.tree_utils.tree_get(state['lbfgs_state'], 'count')) > 0


def make_train_step(config, losses, optimizer):
  """One jitted step: the gradient (or the terms' statistics), the update."""
  if config.optimizer in config_schema.PER_EXAMPLE:
    grads_fn = so.multi_term_value_and_grad_stats(
        losses, weights(config), **snr_config.stats_kwargs(config.snr))
  else:
    grads_fn = jax.value_and_grad(total_loss(config, losses))

  def train_step(params, opt_state, batches):
    loss, grads = grads_fn(params, batches)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  return jax.jit(train_step)


def batch_indices(seed: int, step: int,
                  sizes: tuple[tuple[int, int], ...]) -> list[np.ndarray]:
  """The points of every term at a step (indices into its fixed points).

  Args:
    seed: the run's seed.
    step: the steps done before this one.
    sizes: ``(points, batch)`` per term, in the order of
      ``config_schema.TERMS`` (batch 0: all of them).

  Returns:
    One index array per term: ``loop.batch_indices`` on a stream per term,
    apart from the points' and the noise's streams. Looked up here, once
    per step: the tests interrupt training through it
    (examples/common/testing.py).
  """
  return [loop.batch_indices(seed, step, n, batch_size,
                             stream=(problem.BATCH_STREAM, k))
          for k, (n, batch_size) in enumerate(sizes)]


class Setup(NamedTuple):
  """A run before its first step: the task, losses, optimizer and state."""
  task: problem.Task
  losses: dict[str, Callable[..., Any]]
  optimizer: optax.GradientTransformation
  state: dict[str, Any]           # {'params', 'opt_state'}
  batch: Callable[[int], Any]     # step -> {'residual', 'initial', 'boundary'}
  lbfgs_step: Callable[..., Any] | None  # (params, lbfgs_state) -> both
  predict: Callable[[Any], Any]   # params -> u on the grid [nt, nx]
  initial_u: Callable[[Any], Any]  # params -> u at the observed initial points
  residual_rms: Callable[[Any], Any]  # params -> RMS residual on the grid


def setup(config: ml_collections.ConfigDict) -> Setup:
  """The points, noisy initial data, model, losses and optimizer."""
  task = problem.make_task(config)
  graphdef, params = nnx.split(models.create(config), nnx.Param)

  def u_points(params, points):
    return nnx.merge(graphdef, params)(points)

  def u_point(params, point):
    return u_points(params, point[None])[0]

  losses = make_losses(u_point, u_points, config.beta)
  optimizer = make_optimizer(config)
  collocation = task.collocation
  initial = (task.initial, task.initial_noisy)
  boundary = task.boundary_t

  sizes = ((config.n_collocation, config.collocation_batch),
           (config.n_initial, config.initial_batch),
           (config.n_boundary, config.boundary_batch))

  def batch(step):
    r, i, b = batch_indices(config.seed, step, sizes)
    return {'residual': collocation[r],
            'initial': (initial[0][i], initial[1][i]),
            'boundary': boundary[b]}

  grid = jnp.asarray(problem.grid_points(task))
  shape = (len(task.grid_t), len(task.grid_x))
  initial_points = jnp.asarray(task.initial)

  @jax.jit
  def predict(params):
    return u_points(params, grid).reshape(shape)

  @jax.jit
  def residual_rms(params):
    r = problem.residual_operator(lambda p: u_point(params, p),
                                  config.beta)(grid)
    return jnp.sqrt(jnp.mean(jnp.square(r)))

  state = {'params': params, 'opt_state': optimizer.init(params)}
  lbfgs_step = None
  if config.lbfgs_after:
    full = {'residual': jnp.asarray(collocation),
            'initial': (jnp.asarray(initial[0]), jnp.asarray(initial[1])),
            'boundary': jnp.asarray(boundary)}
    lbfgs, lbfgs_step = make_lbfgs_step(config, losses, full)
    state['lbfgs_state'] = lbfgs.init(params)
  return Setup(task, losses, optimizer, state, batch, lbfgs_step, predict,
               jax.jit(lambda p: u_points(p, initial_points)), residual_rms)


def step_maker(config: ml_collections.ConfigDict, run: Setup):
  """``() -> train_step`` for ``loop.Loop.train``: compiles, then steps.

  From step ``lbfgs_after`` on (if > 0), the step is L-BFGS's on the
  full-batch loss; the first optimizer's state is kept as it was.
  """
  def make_step():
    step_fn = make_train_step(config, run.losses, run.optimizer).lower(
        run.state['params'], run.state['opt_state'], run.batch(0)).compile()
    lbfgs_fn = None if run.lbfgs_step is None else run.lbfgs_step.lower(
        run.state['params'], run.state['lbfgs_state']).compile()

    def train_step(state, step):
      if lbfgs_fn is not None and step >= config.lbfgs_after:
        if step == config.lbfgs_after:
          logging.info('step %d: L-BFGS takes over (full-batch loss) to step '
                       '%d', step + 1, config.num_steps)
        params, lbfgs_state = lbfgs_fn(state['params'], state['lbfgs_state'])
        return {**state, 'params': params, 'lbfgs_state': lbfgs_state}
      params, opt_state, _ = step_fn(state['params'], state['opt_state'],
                                     run.batch(step))
      return {**state, 'params': params, 'opt_state': opt_state}
    return train_step
  return make_step


def noise_fit(u0: np.ndarray, clean: np.ndarray, noisy: np.ndarray
              ) -> float | None:
  """How much of the initial data's noise the network reproduces.

  The least-squares coefficient a of the error u(x_j, 0) - sin(x_j) on the
  noise e_j = y_j - sin(x_j): 0 when the error is unrelated to the noise, 1
  when the network passes through the noisy values. None without noise.
  """
  e = np.asarray(noisy, np.float64) - clean
  if not np.any(e):
    return None
  return float(np.dot(np.asarray(u0, np.float64) - clean, e) / np.dot(e, e))


def metrics(run: Setup, params) -> dict[str, Any]:
  """The relative L2 error on the grid and the initial-data errors."""
  task = run.task
  prediction = np.asarray(run.predict(params))
  u0 = np.asarray(run.initial_u(params))
  return {
      'rel_l2': problem.relative_l2(prediction, task.grid_exact),
      'residual_rms': float(run.residual_rms(params)),
      'ic_error_clean': problem.rmse(u0, task.initial_clean),
      'ic_error_noisy': problem.rmse(u0, task.initial_noisy),
      'noise_fit': noise_fit(u0, task.initial_clean, task.initial_noisy),
  }


def evaluator(run: Setup, on_prediction=None):
  """``state -> row``: the errors and the mask fraction (None once L-BFGS
  has taken over: the first optimizer's mask no longer acts)."""
  def evaluate(state):
    row = {**metrics(run, state['params']),
           'mask_fraction': None if lbfgs_started(state)
                            else loop.mask_fraction(state['opt_state'])}
    if on_prediction is not None:
      on_prediction(row, np.asarray(run.predict(state['params'])))
    return row
  return evaluate


class Solutions:
  """The latest predicted solution, saved as ``.npy`` and drawn as PNG."""

  def __init__(self, workdir: str, config, task: problem.Task):
    self.workdir = workdir
    self.title = (f'{config.optimizer} seed {config.seed}, beta '
                  f'{config.beta:g}, sigma {config.noise_sigma:g}')
    self.task = task
    self.latest = None

  def observe(self, row: loop.Row, prediction: np.ndarray) -> None:
    del row
    self.latest = prediction

  def save(self, rows: list[loop.Row]) -> None:
    if self.latest is None:
      return
    path = os.path.join(self.workdir, 'solution_latest.npy')
    with open(path + '.tmp', 'wb') as f:
      np.save(f, self.latest)
    os.replace(path + '.tmp', path)
    figures.solution(self.task, self.latest,
                     os.path.join(self.workdir, 'solution.png'),
                     title=f'{self.title}, step {rows[-1]["step"]}')
    figures.error_curves(rows, os.path.join(self.workdir, 'errors.png'),
                         title=self.title, sigma=self.task_sigma)

  @property
  def task_sigma(self) -> float:
    e = self.task.initial_noisy - self.task.initial_clean
    return float(np.sqrt(np.mean(np.square(e))))


def progress_line(row: loop.Row) -> str:
  fit = row['noise_fit']
  return loop.progress_line(
      row, f'rel L2 {row["rel_l2"]:.4f} | IC error clean '
      f'{row["ic_error_clean"]:.4f} noisy {row["ic_error_noisy"]:.4f} | '
      f'noise fit {"n/a" if fit is None else f"{fit:.3f}"}')


def progress_fields(row: loop.Row) -> dict[str, Any]:
  return {'rel_l2': f'{row["rel_l2"]:.4f}', 'mask': row['mask_fraction']}


def first_at_most(rows, key: str, value: float):
  """The first row whose ``key`` is at most ``value``, or None."""
  return next((r for r in rows if r.get(key) is not None
               and r[key] <= value), None)


def summarize(config, rows: list[loop.Row], step: int) -> dict[str, Any]:
  """``result.json``: the final and best errors, the step at the target."""
  finite = [r for r in rows if r.get('rel_l2') is not None
            and np.isfinite(r['rel_l2'])]
  top = min(finite, key=lambda r: (r['rel_l2'], r['step'])) if finite else None
  target = first_at_most(rows, 'rel_l2', config.target_rel_l2)
  switch = next((r for r in rows if config.lbfgs_after
                 and r['step'] == config.lbfgs_after), None)
  return {
      'optimizer': config.optimizer,
      'seed': config.seed,
      'beta': config.beta,
      'noise_sigma': config.noise_sigma,
      'learning_rate': config.learning_rate,
      'best_rel_l2': None if top is None else top['rel_l2'],
      'best_rel_l2_step': None if top is None else top['step'],
      **loop.final(rows, step, ('rel_l2', 'residual_rms', 'ic_error_clean',
                                'ic_error_noisy', 'noise_fit')),
      'target_rel_l2': config.target_rel_l2,
      **loop.at_target(target),
      # With L-BFGS: the steps of the first optimizer and its error then.
      'lbfgs_after': config.lbfgs_after,
      'first_phase_rel_l2': None if switch is None else switch['rel_l2'],
      'seconds_per_step': loop.seconds_per_step(rows),
  }


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> dict[str, Any]:
  """Trains, evaluates, logs, checkpoints and resumes; returns the summary.

  The summary (also ``workdir/result.json``) holds the final and best
  relative L2 errors, the first step at ``target_rel_l2`` and the final
  initial-data errors. Nothing is written before the config is validated.
  Ctrl-C stops after the current step, saves a checkpoint there and raises
  ``interrupt.TrainingInterrupted``; calling this again with the same
  config and workdir resumes exactly.

  Raises:
    schema.ConfigError: for a config the schema refuses, or one that
      differs from the run's in ``workdir``; before anything is written.
    interrupt.TrainingInterrupted: on Ctrl-C, once the state is saved.
  """
  config_schema.validate(config)
  loop.start_run(workdir, config,
                 may_change=config_schema.MAY_CHANGE_ON_RESUME)
  run = setup(config)
  training = loop.Loop(workdir, example_dir=os.path.dirname(__file__),
                       num_steps=config.num_steps,
                       eval_every=config.eval_every,
                       checkpoint_every=config.checkpoint_every,
                       desc=f'{config.optimizer} seed {config.seed}')
  kept = Solutions(workdir, config, run.task)
  training.train(
      training.restore(run.state), step_maker(config, run),
      evaluator(run, kept.observe), line=progress_line,
      show=progress_fields, on_save=kept.save if loop.is_chief() else None)
  result = summarize(config, training.rows, training.step)
  loop.write_result(workdir, result)
  return result
