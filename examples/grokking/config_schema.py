# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""What a grokking config may hold: every field, its meaning and its range.

``validate(config)`` runs before anything is written or JAX is loaded;
``main.py``'s ``--help`` lists the same fields with their defaults.
"""

from __future__ import annotations

import ml_collections

from examples.common import schema
from examples.common import snr_config
from examples.grokking import data

OPTIMIZERS = ('adamw', 'snr_adam', 'streaming_snr_adamw', 'grokfast',
              'snr_adam_grokfast')
# The optimizers that take per-example statistics (snr.method).
PER_EXAMPLE = ('snr_adam', 'snr_adam_grokfast')

FIELDS = {
    # The task.
    'operation': schema.choice(*data.OPERATIONS,
                               help='a op b = c (mod p)'),
    'p': schema.integer(at_least=3, where=(data.is_prime, 'a prime'),
                        help='the modulus'),
    'train_fraction': schema.real(above=0, below=1,
                                  help='share of the table for training'),
    'seed': schema.seed(help='split, initialisation and batch order'),
    # The model.
    'width': schema.integer(at_least=1, help='transformer width'),
    'depth': schema.integer(at_least=1, help='transformer blocks'),
    'heads': schema.integer(at_least=1,
                            help='attention heads (must divide width)'),
    'mlp_ratio': schema.integer(at_least=1, help='MLP width / width'),
    # The optimizer.
    'optimizer': schema.choice(*OPTIMIZERS, help='the optimizer'),
    'learning_rate': schema.real(above=0,
                                 help='learning rate after warm-up'),
    'warmup_steps': schema.integer(
        at_least=0, help='linear warm-up of the learning rate from lr/10'),
    'b1': schema.real(at_least=0, below=1, help="Adam's beta1"),
    'b2': schema.real(at_least=0, below=1, help="Adam's beta2"),
    'weight_decay': schema.real(at_least=0,
                                help='decoupled weight decay, never masked'),
    'batch_size': schema.integer(
        at_least=2, help='examples per step (at most the training split)'),
    # The SNR mask (snr_adam, streaming_snr_adamw, snr_adam_grokfast).
    **snr_config.fields(),
    # Grokfast (grokfast, snr_adam_grokfast).
    'grokfast.alpha': schema.real(at_least=0, at_most=1,
                                  help="Grokfast's EMA momentum"),
    'grokfast.lamb': schema.real(at_least=0,
                                 help="Grokfast's amplification"),
    # Devices.
    'mesh_data': schema.integer(
        at_least=-1, help='0: one device; N: batch over N devices; -1: all'),
    'mesh_fsdp': schema.integer(
        at_least=1, help='devices the parameters are split over'),
    # The loop.
    **schema.loop_fields(
        eval_help='steps between evaluations on the whole data'),
    'target_val_accuracy': schema.real(
        at_least=0, at_most=1,
        help='held-out accuracy that counts as grokked'),
    'stop_at_target': schema.boolean(
        help='stop once held-out accuracy reaches the target'),
    'steps_after_target': schema.integer(
        at_least=0, help='with stop_at_target: steps to go on for'),
}


def _heads_divide_width(config):
  if config.width % config.heads:
    raise ValueError(f'config.width {config.width} is not divisible by '
                     f'config.heads {config.heads}')


def _batch_fits_the_split(config):
  n_train = data.num_train(config.operation, config.p, config.train_fraction)
  if config.batch_size > n_train:
    raise ValueError(f'config.batch_size {config.batch_size} exceeds the '
                     f'{n_train} training equations of {config.operation} '
                     f'mod {config.p} at train_fraction '
                     f'{config.train_fraction}')


CHECKS = (_heads_divide_width, _batch_fits_the_split)

# What a resumed run may change: its budget, what it logs and saves, when it
# stops, and how it is laid out on devices. Anything else is another run.
MAY_CHANGE_ON_RESUME = ('num_steps', 'eval_every', 'checkpoint_every',
                        'target_val_accuracy', 'stop_at_target',
                        'steps_after_target', 'mesh_data', 'mesh_fsdp')


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ``schema.ConfigError`` (a ValueError) for a bad configuration."""
  schema.validate(config, FIELDS, CHECKS)
