# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""An independent float64 NumPy reference of the library's mathematics.

Written from the formulas of the README's "Conventions" (the mean, the
two-pass M2, nu = M2 / (b (b - 1)), the three masks and their per-tensor
form, the streaming form), sharing no code with the library, so that tests
compare two implementations rather than one with itself.
"""

from __future__ import annotations

import numpy as np


def stats(per_example: np.ndarray):
  """(mean, sum of squared deviations, b) over axis 0, in float64."""
  g = np.asarray(per_example, np.float64)
  b = g.shape[0]
  mean = g.sum(0) / b
  return mean, ((g - mean) ** 2).sum(0), b


def loo_noise(sum_sq_dev, b):
  return sum_sq_dev / b / (b - 1)


def mask(mu, nu, mode='hard', alpha=1.0, softness=1.0, reduction='element'):
  """q of the README's table (hard, soft, snr), elementwise or per tensor."""
  mu = np.asarray(mu, np.float64)
  nu = np.asarray(nu, np.float64)
  if reduction == 'tensor':
    sig, noi = np.sum(mu ** 2), np.sum(nu)
    return np.full(mu.shape, _q(sig, noi, mode, alpha, softness))
  q = np.vectorize(lambda s, n: _q(s, n, mode, alpha, softness))
  return q(mu ** 2, nu).astype(np.float64)


def _q(sig, noi, mode, alpha, softness):
  if mode == 'hard':
    return float(sig > alpha * noi)
  if mode == 'soft':
    if sig <= alpha * noi:
      return 0.0
    return 1.0 - alpha * noi / sig
  if mode == 'snr':
    if sig == 0:
      return 0.0
    return sig / (sig + softness * alpha * noi)
  raise ValueError(mode)


class Adam:
  """Plain Adam on float64 arrays (Kingma and Ba), optax's conventions."""

  def __init__(self, shape, b1=0.9, b2=0.999, eps=1e-8):
    self.m = np.zeros(shape)
    self.v = np.zeros(shape)
    self.t = 0
    self.b1, self.b2, self.eps = b1, b2, eps

  def direction(self, g):
    self.t += 1
    self.m = self.b1 * self.m + (1 - self.b1) * g
    self.v = self.b2 * self.v + (1 - self.b2) * g ** 2
    m_hat = self.m / (1 - self.b1 ** self.t)
    v_hat = self.v / (1 - self.b2 ** self.t)
    return m_hat / (np.sqrt(v_hat) + self.eps)


def snr_adam_updates(per_example_steps, params_steps, lr, *, placement,
                     weight_decay=0.0, **mask_kwargs):
  """Updates of SNR-Adam over several steps of per-example gradients."""
  adam = Adam(per_example_steps[0].shape[1:])
  out = []
  for g, p in zip(per_example_steps, params_steps):
    mu, m2, b = stats(g)
    q = mask(mu, loo_noise(m2, b), **mask_kwargs)
    if placement == 'before':
      direction = adam.direction(q * mu)
    else:
      direction = q * adam.direction(mu)
    out.append(-lr * (direction + weight_decay * np.asarray(p, np.float64)))
  return out


def streaming_updates(grad_steps, lr, *, b1=0.9, b2=0.999, eps=1e-8,
                      rho=0.99, weight_decay=0.0, warmup_steps=0,
                      params_steps=None, **mask_kwargs):
  """Updates of streaming SNR-AdamW over several steps.

  s_t = rho s_{t-1} + (1 - rho)(g_t - m_{t-1})^2 beside Adam's m and v;
  q = mask(m_hat, s_hat); update -lr (q m_hat / (sqrt(v_hat) + eps) +
  weight_decay p).
  """
  shape = np.shape(grad_steps[0])
  m, v, s = np.zeros(shape), np.zeros(shape), np.zeros(shape)
  out = []
  for t, g in enumerate(grad_steps, start=1):
    g = np.asarray(g, np.float64)
    s = rho * s + (1 - rho) * (g - m) ** 2
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g ** 2
    m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    s_hat = s / (1 - rho ** t)
    q = 1.0 if t <= warmup_steps else mask(m_hat, s_hat, **mask_kwargs)
    direction = q * m_hat / (np.sqrt(v_hat) + eps)
    decay = 0.0 if params_steps is None else weight_decay * np.asarray(
        params_steps[t - 1], np.float64)
    out.append(-lr * (direction + decay))
  return out
