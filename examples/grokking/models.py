# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The decoder-only transformer of Power et al. (2022), in Flax NNX.

Two pre-LN blocks of width 128 with 4 heads and causal attention, learned
token and position embeddings, and a linear head on the last position (the
'=' token), which predicts the answer c of ``a op b = c``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


class Block(nnx.Module):
  """Pre-LN transformer block: causal self-attention and a ReLU MLP."""

  def __init__(self, width: int, heads: int, mlp_ratio: int, *,
               rngs: nnx.Rngs):
    self.ln_attn = nnx.LayerNorm(width, rngs=rngs)
    self.attn = nnx.MultiHeadAttention(heads, width, decode=False,
                                       keep_rngs=False, rngs=rngs)
    self.ln_mlp = nnx.LayerNorm(width, rngs=rngs)
    self.mlp_in = nnx.Linear(width, mlp_ratio * width, rngs=rngs)
    self.mlp_out = nnx.Linear(mlp_ratio * width, width, rngs=rngs)

  def __call__(self, h: jax.Array, mask: jax.Array) -> jax.Array:
    h = h + self.attn(self.ln_attn(h), mask=mask)
    return h + self.mlp_out(jax.nn.relu(self.mlp_in(self.ln_mlp(h))))


class Transformer(nnx.Module):
  """Tokens [b, seq] -> logits over the answers [b, n_classes]."""

  def __init__(self, vocab_size: int, n_classes: int, seq_len: int, *,
               width: int = 128, depth: int = 2, heads: int = 4,
               mlp_ratio: int = 4, rngs: nnx.Rngs):
    self.token_embed = nnx.Embed(vocab_size, width, rngs=rngs)
    self.position_embed = nnx.Embed(seq_len, width, rngs=rngs)
    self.blocks = nnx.List([Block(width, heads, mlp_ratio, rngs=rngs)
                            for _ in range(depth)])
    self.ln_final = nnx.LayerNorm(width, rngs=rngs)
    self.head = nnx.Linear(width, n_classes, rngs=rngs)

  def __call__(self, tokens: jax.Array) -> jax.Array:
    # Positions per example (not one shared row), so that the position table
    # is read like any embedding and the fast statistics recognise it.
    positions = jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape)
    h = self.token_embed(tokens) + self.position_embed(positions)
    mask = nnx.make_causal_mask(tokens)
    for block in self.blocks:
      h = block(h, mask)
    return self.head(self.ln_final(h[:, -1]))
