# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""What a noisy-labels config may hold: every field, its meaning and range.

``validate(config)`` runs before anything is written or JAX is loaded (it
opens a TFDS dataset's files to check that it is prepared, and loads the
digits to count them); ``main.py``'s ``--help`` lists the same fields with
their defaults.
"""

from __future__ import annotations

import ml_collections

from examples.common import schema
from examples.common import snr_config
from examples.noisy_labels import data

OPTIMIZERS = ('adam', 'adam_early_stop', 'snr_adam', 'streaming_snr_adamw')
# The optimizers that take per-example statistics (snr.method).
PER_EXAMPLE = ('snr_adam',)
# The optimizers that train on all but a validation split of the (noisy)
# training set and report the step of best validation accuracy.
HOLD_OUT = ('adam_early_stop',)
MODELS = ('mlp', 'cnn')

FIELDS = {
    # The task.
    'dataset': schema.choice(
        *data.DATASETS, help='digits (scikit-learn, offline), synthetic '
        '(tests), or a TFDS dataset prepared as array_record'),
    'data_dir': schema.text(help="TFDS's data directory; '' for its default "
                            '($TFDS_DATA_DIR or ~/tensorflow_datasets)'),
    'train_examples': schema.integer(
        at_least=0, help='train on the first this many training examples; '
        '0: all'),
    'noise_type': schema.choice(
        *data.NOISE_TYPES, help='symmetric (a random other class), '
        "asymmetric (the dataset's class-pair flips) or cyclic (c -> c+1)"),
    'noise_fraction': schema.real(
        at_least=0, below=1, help='symmetric: share of training labels '
        'corrupted (exactly round(fraction * n)); asymmetric, cyclic: share '
        'of each flipped class, below 0.5'),
    'validation_fraction': schema.real(
        above=0, below=1, help='adam_early_stop: share of the noisy training '
        'set held out for early stopping'),
    'seed': schema.seed(help='label noise, validation split, '
                        'initialisation and batch order'),
    # The model.
    'model': schema.choice(*MODELS, help='an MLP or a small CNN'),
    'hidden_layers': schema.integer(
        at_least=0, help='ReLU layers of the head (0: a linear read-out)'),
    'hidden_width': schema.integer(at_least=1, help='units per head layer'),
    'cnn.channels': schema.integer(
        at_least=1, help="cnn: the first convolution's channels (the second "
        'has twice as many)'),
    # The optimizer.
    'optimizer': schema.choice(*OPTIMIZERS, help='the optimizer'),
    'learning_rate': schema.real(above=0, help='learning rate (constant)'),
    'b1': schema.real(at_least=0, below=1, help="Adam's beta1"),
    'b2': schema.real(at_least=0, below=1, help="Adam's beta2"),
    'weight_decay': schema.real(
        at_least=0, help='decoupled weight decay (AdamW), never masked'),
    'batch_size': schema.integer(at_least=2, help='examples per step'),
    # The SNR mask (snr_adam, streaming_snr_adamw).
    **snr_config.fields(
        placement_help='snr_adam: mask the gradient before Adam, or after'),
    # The loop.
    **schema.loop_fields(
        eval_help='steps between evaluations (test set, training set)',
        checkpoint_help='steps between checkpoints (and curves.png)'),
}


def _dataset_is_readable(config):
  if config.dataset in data.TFDS_DATASETS:
    data.check_prepared(config.dataset, config.data_dir)


def available_train_examples(config) -> int:
  """The size of the dataset's training split (before ``train_examples``)."""
  if config.dataset in data.TFDS_DATASETS:
    return len(data.tfds_source(config.dataset, 'train', config.data_dir))
  return len(data.load(config.dataset).train_labels)


def _train_examples_exist(config):
  available = available_train_examples(config)
  if config.train_examples > available:
    raise ValueError(f'config.train_examples {config.train_examples} '
                     f'exceeds the {available} training examples of '
                     f'{config.dataset}; 0 takes them all')


def num_train(config) -> int:
  """How many examples the run trains on (all, or all but the validation)."""
  n = config.train_examples or available_train_examples(config)
  if config.optimizer in HOLD_OUT:
    return n - data.num_validation(n, config.validation_fraction)
  return n


def _batch_fits_the_training_set(config):
  n_train = num_train(config)
  if config.batch_size > n_train:
    raise ValueError(f'config.batch_size {config.batch_size} exceeds the '
                     f'{n_train} examples {config.optimizer} trains on '
                     f'({config.dataset})')


def _flips_leave_each_class_its_label(config):
  # Class flips (asymmetric, cyclic) flip this share of every class in the
  # map: from 0.5 on, the noise is a class's most common label.
  if config.noise_type != 'symmetric':
    try:
      data.check_flip_fraction(config.noise_fraction)
    except ValueError as e:
      raise ValueError(f'config.noise_fraction: {e}') from None


# The config-only check first: a bad noise is refused before any file is read.
CHECKS = (_flips_leave_each_class_its_label, _dataset_is_readable,
          _train_examples_exist, _batch_fits_the_training_set)

# What a resumed run may change: its budget, what it logs and saves, and
# where the TFDS files are. Anything else is another run.
MAY_CHANGE_ON_RESUME = ('num_steps', 'eval_every', 'checkpoint_every',
                        'data_dir')


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ``schema.ConfigError`` (a ValueError) for a bad configuration."""
  schema.validate(config, FIELDS, CHECKS)
