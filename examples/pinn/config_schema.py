# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""What a PINN config may hold: every field, its meaning and its range.

``validate(config)`` runs before anything is written or JAX is loaded;
``main.py``'s ``--help`` lists the same fields with their defaults.
"""

from __future__ import annotations

import ml_collections

from examples.common import schema
from examples.common import snr_config

OPTIMIZERS = ('adam', 'adamw', 'snr_adam', 'streaming_snr_adamw')
# The optimizers that take per-example statistics (snr.method): those of
# the three loss terms, combined (snr_optax.multi_term_value_and_grad_stats).
PER_EXAMPLE = ('snr_adam',)
SCHEDULES = ('constant', 'cosine')
TERMS = ('residual', 'initial', 'boundary')


def _points(what: str) -> schema.Field:
  return schema.integer(at_least=2, help=what)


def _batch(what: str) -> schema.Field:
  return schema.integer(
      at_least=0, where=(lambda b: b == 0 or b >= 2, '0 or >= 2'),
      help=f'{what} per step; 0: all of them every step')


FIELDS = {
    # The task.
    'beta': schema.real(above=0, help='convection speed: u_t + beta u_x = 0'),
    'noise_sigma': schema.real(
        at_least=0, help='std of the Gaussian noise on the observed initial '
        'values sin(x) (0: exact initial data)'),
    'n_collocation': _points('collocation points of the residual (uniform '
                             'in [0, 2 pi) x [0, 1], drawn once per seed)'),
    'n_initial': _points('observed initial-condition points (x uniform, '
                         't = 0)'),
    'n_boundary': _points('times of the periodic-boundary pairs '
                          'u(0, t) = u(2 pi, t)'),
    'collocation_batch': _batch('collocation points'),
    'initial_batch': _batch('initial-condition points'),
    'boundary_batch': _batch('boundary pairs'),
    'weights.residual': schema.real(above=0, help="the residual term's "
                                    'weight'),
    'weights.initial': schema.real(above=0, help="the initial-condition "
                                   "term's weight"),
    'weights.boundary': schema.real(above=0, help="the boundary term's "
                                    'weight'),
    'seed': schema.seed(help='points, noise, initialisation and batch order'),
    # The model.
    'hidden_layers': schema.integer(at_least=1, help='tanh hidden layers'),
    'hidden_width': schema.integer(at_least=1, help='units per hidden layer'),
    # The optimizer.
    'optimizer': schema.choice(*OPTIMIZERS, help='the optimizer'),
    'learning_rate': schema.real(above=0, help='peak learning rate'),
    'schedule': schema.choice(*SCHEDULES, help='learning-rate schedule, the '
                              'same for every optimizer'),
    'decay_steps': schema.integer(
        at_least=1, help='cosine: steps from the peak to the floor (then '
        'held there)'),
    'final_lr_fraction': schema.real(
        at_least=0, at_most=1, help='cosine: the last learning rate as a '
        'fraction of the peak'),
    'b1': schema.real(at_least=0, below=1, help="Adam's beta1"),
    'b2': schema.real(at_least=0, below=1, help="Adam's beta2"),
    'weight_decay': schema.real(
        at_least=0, help='decoupled weight decay (adamw and the SNR '
        'optimizers; adam has none), never masked'),
    'lbfgs_after': schema.integer(
        at_least=0, help='the first optimizer trains this many steps, '
        'optax.lbfgs (full batch) the rest, the same for every optimizer; '
        '0: no L-BFGS'),
    # The SNR mask (snr_adam, streaming_snr_adamw).
    **snr_config.fields(
        placement_help='snr_adam: mask the gradient before Adam, or after'),
    # Evaluation.
    'grid_nx': schema.integer(at_least=2, help='evaluation grid: abscissae '
                              'in [0, 2 pi)'),
    'grid_nt': schema.integer(at_least=2, help='evaluation grid: times in '
                              '[0, 1]'),
    # The loop.
    **schema.loop_fields(
        eval_help='steps between evaluations on the grid',
        checkpoint_help='steps between checkpoints (and figures)'),
    'target_rel_l2': schema.real(
        above=0, help='relative L2 error whose first crossing (<=) '
        'result.json reports as steps_to_target'),
}


def _batches_fit_the_points(config):
  for name, points in (('collocation', 'n_collocation'),
                       ('initial', 'n_initial'), ('boundary', 'n_boundary')):
    batch = config[f'{name}_batch']
    if batch > config[points]:
      raise ValueError(f'config.{name}_batch {batch} exceeds config.{points} '
                       f'{config[points]}; 0 takes them all')


def _adam_has_no_weight_decay(config):
  if config.optimizer == 'adam' and config.weight_decay:
    raise ValueError(f'config.weight_decay {config.weight_decay!r} with '
                     "optimizer 'adam', which has none; use 'adamw' or set "
                     'it to 0')


def _lbfgs_starts_within_the_budget(config):
  if config.lbfgs_after and config.lbfgs_after >= config.num_steps:
    raise ValueError(f'config.lbfgs_after {config.lbfgs_after} is not below '
                     f'config.num_steps {config.num_steps}: L-BFGS would '
                     'never start; 0 turns it off')


def _no_population_estimate(config):
  # The shared snr group has the field; this example does not wire it (no
  # measured population loss of the three terms to compare it with), and a
  # flag accepted and ignored reads as a run that logged nothing.
  if config.snr.population_risk:
    raise ValueError('config.snr.population_risk: the PINN example does not '
                     'log the population-loss estimate; leave it False (the '
                     'grokking, inr and noisy_labels examples do)')


CHECKS = (_batches_fit_the_points, _adam_has_no_weight_decay,
          _lbfgs_starts_within_the_budget, _no_population_estimate)

# What a resumed run may change: its budget (the schedule's length is
# decay_steps), what it logs and saves, and the error it reports the
# crossing of. Anything else is another run.
MAY_CHANGE_ON_RESUME = ('num_steps', 'eval_every', 'checkpoint_every',
                        'target_rel_l2')


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ``schema.ConfigError`` (a ValueError) for a bad configuration."""
  schema.validate(config, FIELDS, CHECKS)
