# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Modular arithmetic tables a op b = c (mod p), as in Power et al. (2022).

Every pair appears exactly once. Inputs are the tokens ``[a, op, b, =]``
(numbers 0..p-1, then ``op`` = p and ``=`` = p + 1); the target is c, the
answer alone, on which loss and accuracy are computed.
"""

from __future__ import annotations

import dataclasses

import numpy as np

OPERATIONS = ('division', 'multiplication', 'addition', 'subtraction')


@dataclasses.dataclass(frozen=True)
class Split:
  train_x: np.ndarray   # [n_train, 4] int32 tokens
  train_y: np.ndarray   # [n_train] int32 answers
  val_x: np.ndarray
  val_y: np.ndarray
  p: int

  @property
  def vocab_size(self) -> int:
    return self.p + 2

  @property
  def seq_len(self) -> int:
    """Tokens per equation (4: a, op, b, =), as the data has them."""
    return self.train_x.shape[1]


def is_prime(p: int) -> bool:
  return p >= 2 and all(p % k for k in range(2, int(p ** 0.5) + 1))


def num_equations(operation: str, p: int) -> int:
  """The size of the table: p^2 pairs, p(p - 1) for division (b != 0)."""
  return p * (p - 1) if operation == 'division' else p * p


def num_train(operation: str, p: int, train_fraction: float) -> int:
  """How many equations the training split gets; ValueError if too few.

  Computed without building the table, so that a config is checked before
  a run starts.
  """
  if not 0 < train_fraction < 1:
    raise ValueError(f'train_fraction must lie in (0, 1), got '
                     f'{train_fraction}')
  total = num_equations(operation, p)
  n_train = int(round(train_fraction * total))
  if n_train < 2 or n_train == total:
    raise ValueError(f'train_fraction {train_fraction} leaves {n_train} of '
                     f'{total} equations for training; each side needs at '
                     'least two (change train_fraction or p)')
  return n_train


def table(operation: str, p: int) -> tuple[np.ndarray, np.ndarray]:
  """All equations of ``operation`` mod ``p``: tokens [n, 4], answers [n]."""
  if operation not in OPERATIONS:
    raise ValueError(f'unknown operation {operation!r}; valid: '
                     + ', '.join(OPERATIONS))
  if p < 3 or not is_prime(p):
    raise ValueError(f'p must be a prime >= 3, got {p}')
  a, b = (g.ravel() for g in np.meshgrid(np.arange(p), np.arange(p),
                                         indexing='ij'))
  if operation == 'division':
    # a / b = c  <=>  a = b c; every (b != 0, c) pair gives one equation.
    keep = b != 0
    a, b = a[keep], b[keep]
    c = (a * pow_mod_inverse(b, p)) % p
  elif operation == 'multiplication':
    c = (a * b) % p
  elif operation == 'addition':
    c = (a + b) % p
  else:
    c = (a - b) % p
  tokens = np.stack([a, np.full_like(a, p), b, np.full_like(a, p + 1)], 1)
  return tokens.astype(np.int32), c.astype(np.int32)


def pow_mod_inverse(b: np.ndarray, p: int) -> np.ndarray:
  """b^(p-2) mod p, the inverse of b mod a prime p (Fermat)."""
  return np.array([pow(int(x), p - 2, p) for x in b], dtype=np.int64)


def make_split(operation: str, p: int, train_fraction: float,
               seed: int) -> Split:
  """A random train/validation split of the whole table."""
  n_train = num_train(operation, p, train_fraction)
  x, y = table(operation, p)
  order = np.random.default_rng(seed).permutation(len(y))
  train, val = order[:n_train], order[n_train:]
  return Split(x[train], y[train], x[val], y[val], p)
