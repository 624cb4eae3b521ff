# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Complete optimizers: chains of the SNR transformations with Adam."""

from __future__ import annotations

import jax
import numpy as np
import optax

from snr_optax._src import transforms
from snr_optax._src import validation

PLACEMENTS = ('before', 'after')


def _decoupled_weight_decay(weight_decay) -> optax.GradientTransformation:
  """``optax.add_decayed_weights``, skipped for a literal zero.

  A traced value (``optax.inject_hyperparams``) always keeps the transform, so
  the chain's structure never depends on a hyperparameter's value.
  """
  validation.check_nonnegative('weight_decay', weight_decay)
  if (not isinstance(weight_decay, jax.core.Tracer)
      and not callable(weight_decay) and np.ndim(weight_decay) == 0
      and float(weight_decay) == 0.0):
    return optax.identity()
  return optax.add_decayed_weights(weight_decay)


def _adam(b1, b2, eps) -> optax.GradientTransformation:
  for name, value in (('b1', b1), ('b2', b2)):
    validation.check_in_range(name, value, 0.0, 1.0)
  validation.check_nonnegative('eps', eps)
  return transforms.with_float32_moments(optax.scale_by_adam(b1, b2, eps))


def snr_adam(
    learning_rate: optax.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    *,
    mode: str = 'hard',
    alpha: jax.typing.ArrayLike = 1.0,
    softness: jax.typing.ArrayLike = 1.0,
    reduction: str = 'element',
    placement: str = 'before',
    weight_decay: jax.typing.ArrayLike = 0.0,
) -> optax.GradientTransformationExtraArgs:
  r"""Adam on the SNR-masked mean of per-example gradients.

  ``placement="before"`` (the design card's default) is

    ``chain(snr_mask(...), scale_by_adam(b1, b2, eps),
    add_decayed_weights(weight_decay), scale_by_learning_rate(lr))``

  so Adam's moments see only the masked mean :math:`q\mu`.
  ``placement="after"`` is Algorithm 1's

    ``chain(gated(scale_by_adam(b1, b2, eps), ...), add_decayed_weights(...),
    scale_by_learning_rate(lr))``

  where Adam sees :math:`\mu` and its direction is multiplied by q. Weight
  decay is decoupled (AdamW-style) and never masked. Adam's moments are kept
  in float32 for float16/bfloat16 parameters.

  ``update`` takes per-example gradients, a :class:`snr_optax.GradStats`, or
  batch-mean gradients with ``grad_stats=`` (see :func:`snr_optax.snr_mask`).

  Args:
    learning_rate: a scalar or an ``optax`` schedule.
    b1: Adam's first-moment decay.
    b2: Adam's second-moment decay.
    eps: Adam's denominator term.
    mode: ``"hard"``, ``"soft"`` or ``"snr"``.
    alpha: threshold multiplier alpha >= 0.
    softness: softness s >= 0 of the ``"snr"`` mask.
    reduction: ``"element"`` or ``"tensor"``.
    placement: ``"before"`` or ``"after"`` Adam.
    weight_decay: decoupled weight decay (never masked).

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  References:
    Litman and Guo, `A Theory of Generalization in Deep Learning
    <https://arxiv.org/abs/2605.01172>`_, 2026.
    Kingma and Ba, `Adam: A Method for Stochastic Optimization
    <https://arxiv.org/abs/1412.6980>`_, 2014.

  Examples:
    >>> import jax, jax.numpy as jnp, optax
    >>> import snr_optax as so
    >>> def loss(params, batch):                  # an ordinary batch-mean loss
    ...   x, y = batch
    ...   return jnp.mean((x @ params['w'] - y) ** 2)
    >>> x = jax.random.normal(jax.random.key(0), (32, 3))
    >>> batch = (x, x @ jnp.array([1.0, -2.0, 0.5]))
    >>> params = {'w': jnp.zeros(3)}
    >>> opt = so.snr_adam(learning_rate=0.1)
    >>> state = opt.init(params)
    >>> stats_fn = so.value_and_grad_stats(loss)
    >>> for _ in range(100):
    ...   value, stats = stats_fn(params, batch)
    ...   updates, state = opt.update(stats, state, params)
    ...   params = optax.apply_updates(params, updates)
    >>> print(f'{loss(params, batch):.4f}')
    0.0000
  """
  validation.check_choice('placement', placement, PLACEMENTS)
  mask_args = dict(mode=mode, alpha=alpha, softness=softness,
                   reduction=reduction)
  adam = _adam(b1, b2, eps)
  if placement == 'before':
    head = [transforms.snr_mask(**mask_args), adam]
  else:
    head = [transforms.gated(adam, **mask_args)]
  return optax.chain(*head, _decoupled_weight_decay(weight_decay),
                     optax.scale_by_learning_rate(learning_rate))


def streaming_snr_adamw(
    learning_rate: optax.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    rho: jax.typing.ArrayLike = 0.99,
    weight_decay: jax.typing.ArrayLike = 1e-4,
    *,
    mode: str = 'snr',
    alpha: jax.typing.ArrayLike = 1.0,
    softness: jax.typing.ArrayLike = 1.0,
    reduction: str = 'element',
    warmup_steps: jax.typing.ArrayLike = 10,
) -> optax.GradientTransformationExtraArgs:
  r"""AdamW gated by the streaming SNR mask (no per-example gradients).

  ``chain(scale_by_streaming_snr(...), add_decayed_weights(weight_decay),
  scale_by_learning_rate(lr))``: a drop-in replacement for ``optax.adamw``
  that keeps one extra state vector. Weight decay is never masked.

  Args:
    learning_rate: a scalar or an ``optax`` schedule.
    b1: Adam's first-moment decay.
    b2: Adam's second-moment decay.
    eps: Adam's denominator term.
    rho: decay of the centred variance EMA.
    weight_decay: decoupled weight decay (never masked).
    mode: ``"hard"``, ``"soft"`` or ``"snr"``.
    alpha: threshold multiplier alpha >= 0.
    softness: softness s >= 0 of the ``"snr"`` mask.
    reduction: ``"element"`` or ``"tensor"``.
    warmup_steps: number of first steps with q = 1.

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  References:
    Litman and Guo, `A Theory of Generalization in Deep Learning
    <https://arxiv.org/abs/2605.01172>`_, 2026 (Algorithm 1).
    Loshchilov and Hutter, `Decoupled Weight Decay Regularization
    <https://arxiv.org/abs/1711.05101>`_, 2019.

  Examples:
    >>> import jax, jax.numpy as jnp, optax
    >>> import snr_optax as so
    >>> params = {'w': jnp.array([3.0, -2.0])}
    >>> opt = so.streaming_snr_adamw(learning_rate=0.1, weight_decay=0.0)
    >>> state = opt.init(params)
    >>> loss = lambda p: jnp.sum(p['w'] ** 2)
    >>> for _ in range(200):
    ...   updates, state = opt.update(jax.grad(loss)(params), state, params)
    ...   params = optax.apply_updates(params, updates)
    >>> bool(loss(params) < 1e-2)
    True
  """
  return optax.chain(
      transforms.scale_by_streaming_snr(
          b1, b2, eps, rho, mode=mode, alpha=alpha, softness=softness,
          reduction=reduction, warmup_steps=warmup_steps),
      _decoupled_weight_decay(weight_decay),
      optax.scale_by_learning_rate(learning_rate))
