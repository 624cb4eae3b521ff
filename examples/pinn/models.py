# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The PINN's network in Flax NNX: a tanh MLP from (x, t) to u.

The inputs are rescaled to [-1, 1] (x / pi - 1, 2 t - 1) inside the model;
every trained layer is an ``nnx.Linear`` with Flax's default (LeCun normal)
kernel initialisation and zero biases.
"""

from __future__ import annotations

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np


class TanhMLP(nnx.Module):
  """u(x, t): ``hidden_layers`` tanh layers of ``hidden_width``, then linear.

  Called on points [n, 2] it returns [n]; on one point [2], a scalar.
  """

  def __init__(self, hidden_layers: int, hidden_width: int, *,
               rngs: nnx.Rngs):
    sizes = [2] + [hidden_width] * hidden_layers
    self.hidden = nnx.List([nnx.Linear(m, n, rngs=rngs)
                            for m, n in zip(sizes[:-1], sizes[1:])])
    self.out = nnx.Linear(hidden_width, 1, rngs=rngs)

  def __call__(self, points: jax.Array) -> jax.Array:
    scale = jnp.array([1.0 / np.pi, 2.0], points.dtype)
    h = points * scale - 1.0
    for layer in self.hidden:
      h = jnp.tanh(layer(h))
    return self.out(h)[..., 0]


def create(config) -> TanhMLP:
  return TanhMLP(config.hidden_layers, config.hidden_width,
                 rngs=nnx.Rngs(config.seed))
