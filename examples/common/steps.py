# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The training step every example shares: gradients, update, apply.

An example's ``train.py`` gives its loss, its optimizer and which of its
optimizers take per-example statistics; ``make_train_step`` jits the step
and ``step_maker`` compiles it for ``loop.Loop.train``::

  def step_maker(config, run):
    return steps.step_maker(
        steps.make_train_step(config, run.loss_fn, run.optimizer,
                              per_example=config_schema.PER_EXAMPLE),
        run.state, run.batch)
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import jax
import ml_collections
import optax

import snr_optax as so
from examples.common import snr_config


def snr_optimizer(config: ml_collections.ConfigDict,
                  learning_rate: optax.ScalarOrSchedule
                  ) -> optax.GradientTransformation:
  """``so.snr_adam`` or ``so.streaming_snr_adamw``: ``config.optimizer``'s.

  Every example builds them the same way: Adam's ``b1``, ``b2``, decoupled
  ``weight_decay`` (never masked), and the mask of ``config.snr``
  (``snr.placement`` for snr_adam; ``snr.rho`` and ``snr.warmup_steps`` for
  the streaming form).

  Raises:
    ValueError: ``config.optimizer`` is neither (the schema refuses it first).
  """
  snr = config.snr
  mask = snr_config.mask_kwargs(snr)
  if config.optimizer == 'snr_adam':
    return so.snr_adam(learning_rate, config.b1, config.b2,
                       placement=snr.placement,
                       weight_decay=config.weight_decay, **mask)
  if config.optimizer == 'streaming_snr_adamw':
    return so.streaming_snr_adamw(learning_rate, config.b1, config.b2,
                                  rho=snr.rho,
                                  weight_decay=config.weight_decay,
                                  warmup_steps=snr.warmup_steps, **mask)
  raise ValueError(f'config.optimizer {config.optimizer!r} is not an SNR '
                   'optimizer')


def make_train_step(config: ml_collections.ConfigDict,
                    loss_fn: Callable[..., Any],
                    optimizer: optax.GradientTransformation, *,
                    per_example: Collection[str],
                    has_aux: bool = False,
                    out_shardings: tuple[Any, Any] | None = None):
  """One jitted step: gradient or per-example statistics, update, apply.

  Args:
    config: the run's config: ``optimizer`` names the optimizer, ``snr``
      how its statistics are computed (``snr_config.stats_kwargs``).
    loss_fn: ``(params, batch) -> loss`` (``(loss, aux)`` with ``has_aux``),
      the mean of per-example losses.
    optimizer: the run's optimizer; one in ``per_example`` (or any, with
      ``config.snr.population_risk``) updates from ``GradStats``, any other
      from the batch-mean gradient.
    per_example: the optimizers that take per-example statistics (the
      schema's ``PER_EXAMPLE``).
    has_aux: ``loss_fn`` returns ``(loss, aux)``; the step returns both.
    out_shardings: where the new params and optimizer state go (a mesh's
      shardings of them), or None: where jit puts them.

  Returns:
    ``jax.jit`` of ``(params, opt_state, batch) -> (params, opt_state,
    loss)``, or ``(params, opt_state, loss, aux)`` with ``has_aux``.
  """
  # With config.snr.population_risk every optimizer is wrapped in
  # so.track_population_risk (examples/common/population.py), which reads
  # per-example statistics; the optimizer inside still sees the mean.
  if config.optimizer in per_example or config.snr.get('population_risk'):
    grads_fn = so.value_and_grad_stats(
        loss_fn, has_aux=has_aux, **snr_config.stats_kwargs(config.snr))
  else:
    grads_fn = jax.value_and_grad(loss_fn, has_aux=has_aux)

  def train_step(params, opt_state, batch):
    value, grads = grads_fn(params, batch)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    if has_aux:
      loss, aux = value
      return params, opt_state, loss, aux
    return params, opt_state, value

  if out_shardings is None:
    return jax.jit(train_step)
  return jax.jit(train_step, out_shardings=(
      *out_shardings, *(None,) * (2 if has_aux else 1)))


def step_maker(train_step, state: dict[str, Any],
               batch: Callable[[int], Any]):
  """``() -> train_step`` for ``loop.Loop.train``: compiles, then steps.

  Args:
    train_step: ``make_train_step``'s jitted step.
    state: the run's initial ``{'params', 'opt_state'}``: the shapes (and
      placement) the step is compiled for.
    batch: ``step -> batch`` of that step, looked up at each step.
  """
  def make_step():
    step_fn = train_step.lower(state['params'], state['opt_state'],
                               batch(0)).compile()

    def step(current, number):
      params, opt_state = step_fn(current['params'], current['opt_state'],
                                  batch(number))[:2]
      return {'params': params, 'opt_state': opt_state}
    return step
  return make_step
