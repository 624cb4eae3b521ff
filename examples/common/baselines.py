# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Baseline gradient filters written as optax transformations."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class GrokfastEMAState(NamedTuple):
  """State of :func:`grokfast_ema`.

  Attributes:
    count: the number of steps taken (int32).
    ema: the exponential moving average of the incoming updates.
  """
  count: jax.Array
  ema: optax.Updates


def grokfast_ema(alpha: float = 0.98,
                 lamb: float = 2.0) -> optax.GradientTransformation:
  r"""Grokfast's EMA gradient filter: amplifies the slow part of gradients.

  .. math::
    e_t = \alpha e_{t-1} + (1 - \alpha) g_t \ (e_1 = g_1), \qquad
    u_t = g_t + \lambda e_t

  As in the authors' ``gradfilter_ema``: the average starts at the first
  gradient (no bias correction) and the filtered gradient replaces the
  gradient in front of the optimizer, so chain it before ``scale_by_adam``.

  References:
    Lee, Kang, Kim and Lee, `Grokfast: Accelerated Grokking by Amplifying
    Slow Gradients <https://arxiv.org/abs/2405.20233>`_, 2024.

  Args:
    alpha: the EMA's momentum.
    lamb: the amplification factor.

  Returns:
    An ``optax.GradientTransformation``.
  """

  def init_fn(params):
    return GrokfastEMAState(count=jnp.zeros([], jnp.int32),
                            ema=optax.tree.zeros_like(params))

  def update_fn(updates, state, params=None):
    del params
    first = state.count == 0
    ema = jax.tree.map(
        lambda e, g: jnp.where(first, g, alpha * e + (1 - alpha) * g
                               ).astype(e.dtype), state.ema, updates)
    filtered = jax.tree.map(lambda g, e: (g + lamb * e).astype(g.dtype),
                            updates, ema)
    return filtered, GrokfastEMAState(optax.safe_increment(state.count), ema)

  return optax.GradientTransformation(init_fn, update_fn)
