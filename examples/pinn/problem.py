# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The convection problem: its operator, exact solution, points and data.

    u_t + beta u_x = 0,   x in [0, 2 pi) periodic,   t in [0, 1],
    u(x, 0) = sin(x),     exact solution u(x, t) = sin(x - beta t).

The setting of Krishnapriyan et al. (2021), "Characterizing possible
failure modes in physics-informed neural networks", where a plain PINN
fits beta = 5 and fails at beta = 30. Here the initial condition is
*observed* at ``n_initial`` points with Gaussian noise of std
``noise_sigma`` (seeded), so a network can fit the noise.

Points live in the (x, t) plane as float32 arrays ``[n, 2]``. Everything
random is a pure function of the seed (NumPy's ``default_rng([seed,
stream])``, one stream per use), so a run is reproduced by its config.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

X_MAX = 2 * np.pi
T_MAX = 1.0

# The random streams of a seed: default_rng([seed, stream]).
COLLOCATION_STREAM = 1
INITIAL_STREAM = 2
BOUNDARY_STREAM = 3
# The per-step batch orders (loop.batch_indices' stream=), apart from all.
BATCH_STREAM = 10


def exact(x, t, beta: float):
  """u(x, t) = sin(x - beta t); NumPy or JAX arrays."""
  lib = jnp if isinstance(x, jax.Array) or isinstance(t, jax.Array) else np
  return lib.sin(x - beta * t)


def residual_operator(u: Callable[[jax.Array], jax.Array], beta: float
                      ) -> Callable[[jax.Array], jax.Array]:
  """``points [n, 2] -> u_t + beta u_x`` at each point, by autodiff.

  ``u`` maps one point (x, t) of shape [2] to a scalar. The operator is one
  forward-mode derivative per point along the characteristic direction
  (beta, 1): d/ds u((x, t) + s (beta, 1)) = beta u_x + u_t, vectorised with
  ``jax.vmap``; every point's value depends on that point alone.
  """
  direction = jnp.array([beta, 1.0], jnp.float32)

  def at(point):
    return jax.jvp(u, (point,), (direction.astype(point.dtype),))[1]
  return jax.vmap(at)


class Task(NamedTuple):
  """The fixed points and data of a run (see ``make_task``)."""
  collocation: np.ndarray      # [n_collocation, 2] (x, t), uniform
  initial: np.ndarray          # [n_initial, 2] (x, 0)
  initial_clean: np.ndarray    # [n_initial] sin(x)
  initial_noisy: np.ndarray    # [n_initial] sin(x) + N(0, sigma^2)
  boundary_t: np.ndarray       # [n_boundary] times of the periodic pairs
  grid_x: np.ndarray           # [grid_nx] evaluation abscissae
  grid_t: np.ndarray           # [grid_nt] evaluation times
  grid_exact: np.ndarray       # [grid_nt, grid_nx] u on the grid


def initial_values(n: int, sigma: float, seed: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """``(x, clean, noisy)``: n uniform abscissae, sin(x), sin(x) + noise."""
  rng = np.random.default_rng([seed, INITIAL_STREAM])
  x = rng.uniform(0.0, X_MAX, n)
  clean = np.sin(x)
  noisy = clean + sigma * rng.standard_normal(n)
  return (x.astype(np.float32), clean.astype(np.float32),
          noisy.astype(np.float32))


def grid(nx: int, nt: int) -> tuple[np.ndarray, np.ndarray]:
  """The evaluation grid: nx abscissae in [0, 2 pi), nt times in [0, 1]."""
  return (np.linspace(0.0, X_MAX, nx, endpoint=False, dtype=np.float32),
          np.linspace(0.0, T_MAX, nt, dtype=np.float32))


def make_task(config) -> Task:
  """The points, noisy initial data and evaluation grid of ``config``."""
  rng = np.random.default_rng([config.seed, COLLOCATION_STREAM])
  collocation = np.stack([rng.uniform(0.0, X_MAX, config.n_collocation),
                          rng.uniform(0.0, T_MAX, config.n_collocation)],
                         axis=1).astype(np.float32)
  x0, clean, noisy = initial_values(config.n_initial, config.noise_sigma,
                                    config.seed)
  initial = np.stack([x0, np.zeros_like(x0)], axis=1)
  boundary_t = np.random.default_rng([config.seed, BOUNDARY_STREAM]).uniform(
      0.0, T_MAX, config.n_boundary).astype(np.float32)
  gx, gt = grid(config.grid_nx, config.grid_nt)
  grid_exact = exact(gx[None, :].astype(np.float64),
                     gt[:, None].astype(np.float64), config.beta)
  return Task(collocation, initial, clean, noisy, boundary_t, gx, gt,
              grid_exact.astype(np.float32))


def grid_points(task: Task) -> np.ndarray:
  """The grid as points [grid_nt * grid_nx, 2], time-major."""
  xx, tt = np.meshgrid(task.grid_x, task.grid_t)
  return np.stack([xx.ravel(), tt.ravel()], axis=1).astype(np.float32)


def relative_l2(prediction: np.ndarray, reference: np.ndarray) -> float:
  """||prediction - reference||_2 / ||reference||_2 over the grid."""
  prediction = np.asarray(prediction, np.float64)
  reference = np.asarray(reference, np.float64)
  return float(np.linalg.norm(prediction - reference)
               / np.linalg.norm(reference))


def rmse(a: np.ndarray, b: np.ndarray) -> float:
  return float(np.sqrt(np.mean(np.square(np.asarray(a, np.float64)
                                         - np.asarray(b, np.float64)))))
