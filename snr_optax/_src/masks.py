# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The SNR masks q in [0, 1]: pure mathematics on (mean, loo_noise) pytrees."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from snr_optax._src import stats as stats_lib
from snr_optax._src import validation

PyTree = Any

MODES = ('hard', 'soft', 'snr')
REDUCTIONS = ('element', 'tensor')


def _q_from_energies(signal, noise, mode, alpha, softness):
  """q from signal energy mu^2 and noise nu (both >= 0, finite, not huge)."""
  threshold = alpha * noise
  if mode == 'hard':
    return (signal > threshold).astype(signal.dtype)
  if mode == 'soft':
    # signal > threshold >= 0 implies signal > 0: the division is safe there.
    safe = jnp.where(signal > 0, signal, 1)
    return jnp.where(signal > threshold, 1 - threshold / safe, 0)
  # 'snr': signal / (signal + softness * alpha * nu); 0 where both vanish.
  denominator = signal + softness * threshold
  safe = jnp.where(denominator > 0, denominator, 1)
  return jnp.where(denominator > 0, signal / safe, 0)


# sqrt(nu)/|mu| is capped here before it is squared, so that q stays finite
# (and exact to far below float32 resolution) when it would overflow.
_RATIO_CAP = 1e18


def _real_statistics(mu, nu):
  """(|mu|, real nu, finite, q's dtype); complex mu's energy is |mu|^2."""
  dtype = jnp.finfo(stats_lib.accumulation_dtype(mu.dtype)).dtype
  mu = mu.astype(stats_lib.accumulation_dtype(mu.dtype))
  finite = jnp.isfinite(mu) & jnp.isfinite(nu)
  return jnp.abs(mu), jnp.real(nu).astype(dtype), finite, dtype


def _element_mask(mu, nu, mode, alpha, softness):
  # a = |mu| (the modulus for complex mu: optax's |g|^2 convention).
  a, nu, finite, dtype = _real_statistics(mu, nu)
  alpha = jnp.asarray(alpha, dtype)
  # Work with a = |mu| and c = sqrt(nu), never with mu^2 or nu*alpha directly:
  # a and c are representable whenever mu and nu are, so no finite input
  # overflows or underflows into a wrong or NaN mask.
  c = jnp.sqrt(jnp.maximum(nu, 0))
  beats = a > jnp.sqrt(alpha) * c              # mu^2 > alpha nu
  if mode == 'hard':
    q = beats.astype(dtype)
  else:
    ratio = jnp.minimum(c / jnp.where(a > 0, a, 1), _RATIO_CAP)  # sqrt(nu)/|mu|
    if mode == 'soft':
      q = jnp.where(beats, 1 - alpha * jnp.square(ratio), 0)
    else:   # 'snr': mu^2 / (mu^2 + s alpha nu) = 1 / (1 + s alpha ratio^2)
      shrink = jnp.asarray(softness, dtype) * alpha * jnp.square(ratio)
      q = jnp.where(a > 0, 1 / (1 + shrink), 0)
  # A non-finite statistic must not turn into a finite-looking mask.
  return jnp.where(finite, q, jnp.nan)


def _tensor_mask(mu, nu, mode, alpha, softness):
  a, nu, finite, dtype = _real_statistics(mu, nu)
  nu = jnp.maximum(nu, 0)
  z = jnp.maximum(jnp.max(a, initial=0), jnp.sqrt(jnp.max(nu, initial=0)))
  z = jnp.where(z > 0, z, 1)
  signal = jnp.sum(jnp.square(a / z))           # sum_k |mu_k|^2, scaled
  noise = jnp.sum(nu / jnp.square(z))
  q = _q_from_energies(signal, noise, mode, jnp.asarray(alpha, dtype),
                       jnp.asarray(softness, dtype))
  q = jnp.where(jnp.all(finite), q, jnp.nan)
  return jnp.broadcast_to(q, a.shape)


def check_mask_args(mode: str, alpha, softness, reduction: str) -> None:
  """Validates the mask hyperparameters shared by every transformation."""
  validation.check_choice('mode', mode, MODES)
  validation.check_choice('reduction', reduction, REDUCTIONS)
  validation.check_nonnegative('alpha', alpha)
  validation.check_nonnegative('softness', softness)


def compute_mask(
    stats_or_mean: stats_lib.GradStats | PyTree,
    loo_noise: PyTree | None = None,
    *,
    mode: str = 'hard',
    alpha: jax.typing.ArrayLike = 1.0,
    softness: jax.typing.ArrayLike = 1.0,
    reduction: str = 'element',
) -> PyTree:
  r"""The per-parameter SNR mask q in [0, 1].

  With mean gradient :math:`\mu`, leave-one-out noise
  :math:`\nu = \sigma^2 / (b - 1)` and threshold multiplier :math:`\alpha`:

  =========  =====================================================  ==========
  ``mode``   q                                                      boundary
  =========  =====================================================  ==========
  ``hard``   :math:`1[\mu^2 > \alpha\nu]` (the theorem's rule)       0
  ``soft``   :math:`\max(0, 1 - \alpha\nu / \mu^2)` (James-Stein)    0
  ``snr``    :math:`\mu^2 / (\mu^2 + s\,\alpha\nu)`, s = softness    1/(1+s)
  =========  =====================================================  ==========

  Every mode gives q = 0 where mu = nu = 0, and ``hard``/``soft`` give 1 where
  nu = 0 < |mu|. With ``reduction="tensor"`` one q per leaf is formed from
  :math:`\sum_k \mu_k^2` and :math:`\sum_k \nu_k` and broadcast to the leaf.

  The comparison is made after scaling mu and sqrt(nu) by their maximum, so no
  finite input (zeros, tiny or huge values, float16, bfloat16) yields NaN or
  Inf; a non-finite mu or nu yields q = NaN, so that a broken step can never
  look finite. q is returned in the statistics' dtype (at least float32).

  Args:
    stats_or_mean: a :class:`snr_optax.GradStats`, or a pytree of means mu.
    loo_noise: the pytree of nu, required with a pytree of means and
      forbidden with a ``GradStats``.
    mode: ``"hard"``, ``"soft"`` or ``"snr"``.
    alpha: threshold multiplier alpha >= 0 (may be a traced array).
    softness: s >= 0 for ``"snr"`` (may be a traced array).
    reduction: ``"element"`` (per coordinate) or ``"tensor"`` (per leaf).

  Returns:
    A pytree of q with the structure and shapes of the mean.

  References:
    Litman and Guo, `A Theory of Generalization in Deep Learning
    <https://arxiv.org/abs/2605.01172>`_, 2026 (section 6).
    Balles and Hennig, `Dissecting Adam: The Sign, Magnitude and Variance of
    Stochastic Gradients <https://arxiv.org/abs/1705.07774>`_, 2018 (the
    ``snr`` factor).

  Examples:
    >>> import jax.numpy as jnp
    >>> import snr_optax as so
    >>> mu, nu = jnp.array([2.0, 1.0, 0.0]), jnp.array([1.0, 1.0, 0.0])
    >>> so.compute_mask(mu, nu, mode='hard')
    Array([1., 0., 0.], dtype=float32)
    >>> so.compute_mask(mu, nu, mode='soft')
    Array([0.75, 0.  , 0.  ], dtype=float32)
    >>> so.compute_mask(mu, nu, mode='snr')
    Array([0.8, 0.5, 0. ], dtype=float32)
  """
  check_mask_args(mode, alpha, softness, reduction)
  if isinstance(stats_or_mean, stats_lib.GradStats):
    if loo_noise is not None:
      raise ValueError('Pass either a GradStats or (mean, loo_noise), '
                       'not both.')
    mean, noise = stats_or_mean.mean, stats_or_mean.loo_noise
    if stats_or_mean.noise is not None:
      validation.check_same_structure(noise, mean, what='GradStats.noise',
                                      reference_name='GradStats.mean')
  else:
    if loo_noise is None:
      raise ValueError('compute_mask needs loo_noise when given a pytree of '
                       'means (or pass a GradStats).')
    mean, noise = stats_or_mean, loo_noise
    validation.check_same_structure(noise, mean, what='loo_noise',
                                    reference_name='the means')
  # optax.inject_hyperparams casts hyperparameters to complex parameters'
  # dtype; the thresholds are real (check_mask_args refused an imaginary
  # part where it could see one).
  alpha, softness = (jnp.real(v) if jnp.iscomplexobj(v) else v
                     for v in (alpha, softness))
  leaf_mask = _element_mask if reduction == 'element' else _tensor_mask
  return jax.tree.map(
      lambda m, n: leaf_mask(m, n, mode, alpha, softness), mean, noise)


def mask_fraction(q: PyTree) -> jax.Array:
  """The mean of q over all coordinates of all leaves (a float32 scalar)."""
  leaves = jax.tree.leaves(q)
  if not leaves:
    return jnp.zeros([], jnp.float32)
  total = sum(jnp.sum(leaf, dtype=jnp.float32) for leaf in leaves)
  size = sum(leaf.size for leaf in leaves)
  return total / size
