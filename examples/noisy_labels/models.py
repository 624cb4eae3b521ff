# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Classifiers in Flax NNX: an MLP and a small CNN, images -> logits.

* ``MLP``: the image flattened, ``hidden_layers`` ReLU layers of
  ``hidden_width``, a linear read-out to the classes.
* ``CNN``: two blocks of 3 x 3 convolution (``channels``, then twice as
  many; 'SAME' padding), ReLU and 2 x 2 max pooling, then the MLP's head
  (``hidden_layers`` ReLU layers and the read-out) on the flattened maps.

Flax's default initialisation (LeCun normal kernels, zero biases). Every
parameter is an ``nnx.Linear`` or ``nnx.Conv`` kernel or bias, which
snr_optax's exact statistics take (``so.stats_plan`` says how: one extra
product per dense layer, per-example gradients for the convolutions).
"""

from __future__ import annotations

from flax import nnx
import jax

MODELS = ('mlp', 'cnn')


class Head(nnx.Module):
  """[b, features] -> ReLU layers -> logits [b, num_classes]."""

  def __init__(self, in_features: int, num_classes: int, *,
               hidden_layers: int, hidden_width: int, rngs: nnx.Rngs):
    widths = [in_features] + [hidden_width] * hidden_layers
    self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs)
                            for a, b in zip(widths[:-1], widths[1:])])
    self.output = nnx.Linear(widths[-1], num_classes, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    for layer in self.layers:
      x = jax.nn.relu(layer(x))
    return self.output(x)


class MLP(nnx.Module):
  """Images [b, h, w, c] -> logits [b, num_classes]."""

  def __init__(self, image_shape: tuple[int, int, int], num_classes: int, *,
               hidden_layers: int, hidden_width: int, rngs: nnx.Rngs):
    h, w, c = image_shape
    self.head = Head(h * w * c, num_classes, hidden_layers=hidden_layers,
                     hidden_width=hidden_width, rngs=rngs)

  def __call__(self, images: jax.Array) -> jax.Array:
    return self.head(images.reshape(images.shape[0], -1))


def pooled_side(side: int) -> int:
  """A side after two 2 x 2 max poolings ('VALID': odd sides round down)."""
  return side // 2 // 2


class CNN(nnx.Module):
  """Images [b, h, w, c] -> logits [b, num_classes]; h, w >= 4."""

  def __init__(self, image_shape: tuple[int, int, int], num_classes: int, *,
               channels: int, hidden_layers: int, hidden_width: int,
               rngs: nnx.Rngs):
    h, w, c = image_shape
    self.conv1 = nnx.Conv(c, channels, (3, 3), padding='SAME', rngs=rngs)
    self.conv2 = nnx.Conv(channels, 2 * channels, (3, 3), padding='SAME',
                          rngs=rngs)
    features = pooled_side(h) * pooled_side(w) * 2 * channels
    self.head = Head(features, num_classes, hidden_layers=hidden_layers,
                     hidden_width=hidden_width, rngs=rngs)

  def __call__(self, images: jax.Array) -> jax.Array:
    x = images
    for conv in (self.conv1, self.conv2):
      x = nnx.max_pool(jax.nn.relu(conv(x)), (2, 2), strides=(2, 2))
    return self.head(x.reshape(x.shape[0], -1))


def create(config, image_shape: tuple[int, int, int],
           num_classes: int) -> nnx.Module:
  """The model ``config.model`` names, initialised from ``config.seed``."""
  rngs = nnx.Rngs(config.seed)
  if config.model == 'mlp':
    return MLP(image_shape, num_classes, hidden_layers=config.hidden_layers,
               hidden_width=config.hidden_width, rngs=rngs)
  return CNN(image_shape, num_classes, channels=config.cnn.channels,
             hidden_layers=config.hidden_layers,
             hidden_width=config.hidden_width, rngs=rngs)

