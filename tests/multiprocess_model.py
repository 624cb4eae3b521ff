# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The model and batch shared by multiprocess_test and its workers."""

from flax import nnx
import jax
import numpy as np
import optax


class Model(nnx.Module):

  def __init__(self, rngs):
    self.embed = nnx.Embed(7, 8, rngs=rngs)
    self.hidden = nnx.Linear(8 * 3, 16, rngs=rngs)
    self.head = nnx.Linear(16, 5, rngs=rngs)

  def __call__(self, tokens):
    h = self.embed(tokens).reshape(tokens.shape[0], -1)
    return self.head(jax.nn.tanh(self.hidden(h)))


def setup():
  graphdef, params = nnx.split(Model(nnx.Rngs(0)), nnx.Param)

  def loss_fn(params, batch):
    logits = nnx.merge(graphdef, params)(batch[0])
    return optax.softmax_cross_entropy_with_integer_labels(
        logits, batch[1]).mean()

  rng = np.random.default_rng(0)
  batch = (rng.integers(0, 7, (16, 3)).astype(np.int32),
           rng.integers(0, 5, 16).astype(np.int32))
  return params, loss_fn, batch
