# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""What an INR config may hold: every field, its meaning and its range.

``validate(config)`` runs before anything is written or JAX is loaded (it
reads the image, with scikit-image, to check that it exists and is large
enough); ``main.py``'s ``--help`` lists the same fields with their defaults.
"""

from __future__ import annotations

import ml_collections

from examples.common import schema
from examples.common import snr_config
from examples.inr import data

OPTIMIZERS = ('adam', 'adam_early_stop', 'snr_adam', 'streaming_snr_adamw')
# The optimizers that take per-example statistics (snr.method).
PER_EXAMPLE = ('snr_adam',)
# The optimizers that train on all but the held-out pixels and pick the
# step of best held-out PSNR (early stopping on a validation set).
HOLD_OUT = ('adam_early_stop',)
MODELS = ('siren', 'fourier_relu')

FIELDS = {
    # The task.
    'image': schema.text(help='skimage:<name> (an image of skimage.data, e.g. '
                  'skimage:camera, skimage:astronaut) or the path of an image '
                  'file, grey or RGB'),
    'side': schema.integer(at_least=4, help='the image is resized to side x '
                           'side pixels (its centre square, anti-aliased)'),
    'noise_sigma': schema.real(above=0, help='std of the Gaussian noise added '
                               'to the targets, on the [0, 1] scale (at most '
                               '10)'),
    'holdout_fraction': schema.real(
        above=0, below=1, help='share of pixels held out for early stopping '
        '(adam_early_stop trains on the rest)'),
    'seed': schema.seed(help='noise, held-out pixels, initialisation and '
                        'batch order'),
    # The model.
    'model': schema.choice(*MODELS, help='SIREN or a ReLU MLP on Fourier '
                           'features'),
    'hidden_layers': schema.integer(at_least=1, help='hidden layers'),
    'hidden_width': schema.integer(at_least=1, help='units per hidden layer'),
    'siren.first_omega_0': schema.real(
        above=0, help="SIREN: the first layer's frequency omega_0"),
    'siren.hidden_omega_0': schema.real(
        above=0, help="SIREN: the later layers' omega_0"),
    'fourier.features': schema.integer(
        at_least=1, help='fourier_relu: random frequencies (2x features)'),
    'fourier.scale': schema.real(
        above=0, help='fourier_relu: std of the frequencies (per unit of '
        'the [-1, 1] coordinates)'),
    # The optimizer.
    'optimizer': schema.choice(*OPTIMIZERS, help='the optimizer'),
    'learning_rate': schema.real(above=0, help='learning rate (constant)'),
    'b1': schema.real(at_least=0, below=1, help="Adam's beta1"),
    'b2': schema.real(at_least=0, below=1, help="Adam's beta2"),
    'weight_decay': schema.real(at_least=0,
                                help='decoupled weight decay, never masked'),
    'batch_size': schema.integer(
        at_least=0, where=(lambda b: b == 0 or b >= 2, '0 or >= 2'),
        help='pixels per step; 0: every training pixel (the full image)'),
    # The SNR mask (snr_adam, streaming_snr_adamw).
    **snr_config.fields(
        placement_help='snr_adam: mask the gradient before Adam, or after'),
    # The loop.
    **schema.loop_fields(
        eval_help='steps between evaluations on every pixel',
        checkpoint_help='steps between checkpoints (and image files)'),
    'target_clean_psnr': schema.real(
        above=0, help='clean PSNR (dB) whose first crossing result.json '
        'reports as steps_to_target'),
}


def _image_is_readable_and_large_enough(config):
  try:
    data.resize(data.read(config.image), config.side)
  except ValueError as e:
    raise ValueError(f'config.image: {e}') from None


def num_train(config) -> int:
  """How many pixels the run trains on (all but the held out, or all)."""
  pixels = config.side * config.side
  if config.optimizer in HOLD_OUT:
    return pixels - data.num_holdout(pixels, config.holdout_fraction)
  return pixels


def _holdout_leaves_pixels_on_both_sides(config):
  pixels = config.side * config.side
  held = data.num_holdout(pixels, config.holdout_fraction)
  if held >= pixels - 1:
    raise ValueError(f'config.holdout_fraction {config.holdout_fraction} '
                     f'holds out {held} of the {pixels} pixels of a '
                     f'{config.side} x {config.side} image; leave at least '
                     'two for training')


def _batch_fits_the_pixels(config):
  n_train = num_train(config)
  if config.batch_size > n_train:
    raise ValueError(f'config.batch_size {config.batch_size} exceeds the '
                     f'{n_train} training pixels of a {config.side} x '
                     f'{config.side} image ({config.optimizer}); 0 takes them '
                     'all')


# The largest noise_sigma: ten times the image's [0, 1] range (a noisy
# image 20 dB below its noise). Far beyond it the float32 targets first
# bury the image below their precision, then overflow (sigma 1e39 made the
# noisy image infinite and every PSNR NaN).
MAX_NOISE_SIGMA = 10.0


def _noise_is_on_the_image_scale(config):
  if config.noise_sigma > MAX_NOISE_SIGMA:
    raise ValueError(f'config.noise_sigma must be at most {MAX_NOISE_SIGMA:g} '
                     "(ten times the image's [0, 1] range); got "
                     f'{config.noise_sigma!r}')


CHECKS = (_noise_is_on_the_image_scale, _holdout_leaves_pixels_on_both_sides,
          _batch_fits_the_pixels, _image_is_readable_and_large_enough)

# What a resumed run may change: its budget, what it logs and saves, and
# the PSNR it reports the crossing of. Anything else is another run.
MAY_CHANGE_ON_RESUME = ('num_steps', 'eval_every', 'checkpoint_every',
                        'target_clean_psnr')


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ``schema.ConfigError`` (a ValueError) for a bad configuration."""
  schema.validate(config, FIELDS, CHECKS)
