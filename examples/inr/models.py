# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Implicit neural representations in Flax NNX: SIREN and a Fourier-feature MLP.

* ``Siren`` (Sitzmann et al. 2020): x -> sin(omega_0 (W x + b)) per hidden
  layer, then a linear read-out. Their initialisation: the first layer's
  weights U(-1/in, 1/in), every later layer's (the read-out included)
  U(-sqrt(6/in)/omega_0, sqrt(6/in)/omega_0); biases keep PyTorch's default,
  U(-1/sqrt(in), 1/sqrt(in)), as their code does.
* ``FourierReluMLP`` (Tancik et al. 2020): gamma(x) = [cos(2 pi B x),
  sin(2 pi B x)] with a fixed B ~ N(0, scale^2) (not trained), then a ReLU
  MLP and a linear read-out (Flax's default initialisation).

Every trained layer is an ``nnx.Linear`` on [pixels, features], with the
sine's omega_0 applied to its output outside it: the plain dense layers
that snr_optax's fast exact statistics take in one extra matrix product.
"""

from __future__ import annotations

import math

from flax import nnx
import jax
import jax.numpy as jnp


def uniform(bound: float) -> nnx.Initializer:
  """U(-bound, bound), the initialiser of Sitzmann et al."""
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


def siren_weight_bound(fan_in: int, omega_0: float, first: bool) -> float:
  """The bound of a SIREN layer's uniform weights (Sitzmann et al., 3.2)."""
  return 1.0 / fan_in if first else math.sqrt(6.0 / fan_in) / omega_0


def bias_bound(fan_in: int) -> float:
  """PyTorch's default bias bound, which Sitzmann et al.'s code keeps."""
  return 1.0 / math.sqrt(fan_in)


class SineLayer(nnx.Module):
  """sin(omega_0 (x W + b)) with SIREN's initialisation."""

  def __init__(self, in_features: int, out_features: int, *, omega_0: float,
               first: bool, rngs: nnx.Rngs):
    self.omega_0 = omega_0
    self.linear = nnx.Linear(
        in_features, out_features,
        kernel_init=uniform(siren_weight_bound(in_features, omega_0, first)),
        bias_init=uniform(bias_bound(in_features)), rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return jnp.sin(self.omega_0 * self.linear(x))


class Siren(nnx.Module):
  """Coordinates [b, in_features] -> intensities [b, out_features]."""

  def __init__(self, in_features: int, out_features: int, *,
               hidden_layers: int = 3, hidden_width: int = 256,
               first_omega_0: float = 30.0, hidden_omega_0: float = 30.0,
               rngs: nnx.Rngs):
    widths = [in_features] + [hidden_width] * hidden_layers
    self.layers = nnx.List([
        SineLayer(a, b, omega_0=first_omega_0 if i == 0 else hidden_omega_0,
                  first=i == 0, rngs=rngs)
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]))])
    self.output = nnx.Linear(
        hidden_width, out_features,
        kernel_init=uniform(siren_weight_bound(hidden_width, hidden_omega_0,
                                               first=False)),
        bias_init=uniform(bias_bound(hidden_width)), rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    for layer in self.layers:
      x = layer(x)
    return self.output(x)


class FourierBasis(nnx.Variable):
  """The fixed random frequencies B of Fourier features (never trained)."""


class FourierReluMLP(nnx.Module):
  """gamma(x) = [cos(2 pi B x), sin(2 pi B x)], then a ReLU MLP."""

  def __init__(self, in_features: int, out_features: int, *,
               hidden_layers: int = 3, hidden_width: int = 256,
               features: int = 256, scale: float = 10.0, rngs: nnx.Rngs):
    self.basis = FourierBasis(
        scale * jax.random.normal(rngs.params(), (in_features, features)))
    widths = [2 * features] + [hidden_width] * hidden_layers
    self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs)
                            for a, b in zip(widths[:-1], widths[1:])])
    self.output = nnx.Linear(hidden_width, out_features, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    projected = 2 * jnp.pi * x @ self.basis[...]
    x = jnp.concatenate([jnp.cos(projected), jnp.sin(projected)], axis=-1)
    for layer in self.layers:
      x = jax.nn.relu(layer(x))
    return self.output(x)


def create(config, out_features: int) -> nnx.Module:
  """The model ``config.model`` names, seeded by ``config.seed``."""
  rngs = nnx.Rngs(config.seed)
  if config.model == 'siren':
    return Siren(2, out_features, hidden_layers=config.hidden_layers,
                 hidden_width=config.hidden_width,
                 first_omega_0=config.siren.first_omega_0,
                 hidden_omega_0=config.siren.hidden_omega_0, rngs=rngs)
  return FourierReluMLP(2, out_features, hidden_layers=config.hidden_layers,
                        hidden_width=config.hidden_width,
                        features=config.fourier.features,
                        scale=config.fourier.scale, rngs=rngs)
