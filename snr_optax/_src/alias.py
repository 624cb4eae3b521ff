# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Complete optimizers: chains of the SNR transformations with Adam."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from snr_optax._src import transforms
from snr_optax._src import validation

PLACEMENTS = ('before', 'after')


def _decoupled_weight_decay(weight_decay,
                            mask=None) -> optax.GradientTransformation:
  """``optax.add_decayed_weights(weight_decay, mask)``, skipped for a zero.

  A literal zero is skipped; a traced value (``optax.inject_hyperparams``)
  always keeps the transform. Both states are empty, so the chain's state
  has the same leaves either way.
  """
  validation.check_nonnegative('weight_decay', weight_decay)
  if (not isinstance(weight_decay, jax.core.Tracer)
      and not callable(weight_decay) and np.ndim(weight_decay) == 0
      and np.asarray(weight_decay) == 0):   # complex under inject_hyperparams
    return optax.identity()
  return optax.add_decayed_weights(weight_decay, mask)


def _in_params_dtype(
    inner: optax.GradientTransformationExtraArgs
) -> optax.GradientTransformationExtraArgs:
  """``inner`` with its updates cast to the parameters' dtypes, if given.

  A learning rate or weight decay held in float32 (``optax.inject_hyperparams``
  with ``hyperparam_dtype=jnp.float32``) would otherwise promote the updates
  of bfloat16 parameters to float32 (as with ``optax.adamw``). The state is
  ``inner``'s own.
  """
  def update_fn(updates, state, params=None, **extra_args):
    updates, state = inner.update(updates, state, params, **extra_args)
    if params is not None:
      updates = jax.tree.map(
          lambda u, p: None if u is None else u.astype(jnp.result_type(p)),
          updates, params, is_leaf=lambda x: x is None)
    return updates, state

  return optax.GradientTransformationExtraArgs(inner.init, update_fn)


def _adam(b1, b2, eps) -> optax.GradientTransformation:
  # The dtype first: a bfloat16 0.999 is 1.0, which the range refuses.
  validation.check_decay_dtypes(b1=b1, b2=b2)
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

  ``placement="before"`` (the default) is

    ``chain(snr_mask(...), scale_by_adam(b1, b2, eps),
    add_decayed_weights(weight_decay), scale_by_learning_rate(lr))``

  so Adam's moments see only the masked mean :math:`q\mu`.
  ``placement="after"`` is the placement of the paper's Algorithm 1,

    ``chain(gated(scale_by_adam(b1, b2, eps), ...), add_decayed_weights(...),
    scale_by_learning_rate(lr))``

  where Adam sees :math:`\mu` and its direction is multiplied by q. Weight
  decay is decoupled (AdamW-style) and never masked. Adam's moments are kept
  in float32 for float16/bfloat16 parameters.

  ``update`` takes per-example gradients, a :class:`snr_optax.GradStats`, or
  batch-mean gradients with ``grad_stats=`` (see :func:`snr_optax.snr_mask`),
  and returns updates in the parameters' dtype in each form. A non-finite
  gradient or statistic gives a NaN update; wrap the optimizer in
  :func:`snr_optax.apply_if_finite` (not ``optax.apply_if_finite``, which sees
  only ``updates``) to skip such steps with the state untouched.

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

  Raises:
    ValueError: for an unknown ``mode``, ``reduction`` or ``placement``, a
      decay outside [0, 1), a negative ``eps``, ``alpha``, ``softness`` or
      ``weight_decay``, or a decay rate held in bfloat16/float16 (as
      ``optax.inject_hyperparams`` makes it for such parameters unless given
      ``hyperparam_dtype=jnp.float32``).

  References:
    Litman and Guo, `A Theory of Generalization in Deep Learning
    <https://arxiv.org/abs/2605.01172>`_, 2026 (Algorithm 1).
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
  return _in_params_dtype(optax.chain(
      *head, _decoupled_weight_decay(weight_decay),
      optax.scale_by_learning_rate(learning_rate)))


def streaming_snr_adamw(
    learning_rate: optax.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    mu_dtype: Any | None = None,
    weight_decay: optax.ScalarOrSchedule = 1e-4,
    mask: Any | Callable[[optax.Params], Any] | None = None,
    *,
    nesterov: bool = False,
    rho: jax.typing.ArrayLike = 0.99,
    mode: str = 'snr',
    alpha: jax.typing.ArrayLike = 1.0,
    softness: jax.typing.ArrayLike = 1.0,
    reduction: str = 'element',
    warmup_steps: jax.typing.ArrayLike = 10,
) -> optax.GradientTransformationExtraArgs:
  r"""AdamW gated by the streaming SNR mask (no per-example gradients).

  A drop-in replacement for ``optax.adamw``: its positional arguments in its
  order (``learning_rate, b1, b2, eps, eps_root, mu_dtype, weight_decay,
  mask``) and ``nesterov`` keyword-only as there; the SNR arguments are
  keyword-only. It is

    ``chain(scale_by_streaming_snr(b1, b2, eps, rho, eps_root=eps_root,
    mu_dtype=mu_dtype, nesterov=nesterov, ...),
    add_decayed_weights(weight_decay, mask), scale_by_learning_rate(lr))``

  so the update is

  .. math::
    u_t = -\eta_t \left(q_t \frac{\hat m_t}{\sqrt{\hat v_t +
      \epsilon_{root}} + \epsilon} + \lambda \theta_t\right)

  with q the streaming SNR mask of :func:`snr_optax.scale_by_streaming_snr`
  (one extra state vector). With q = 1 (during ``warmup_steps``, or
  ``alpha=0``) it equals ``optax.adamw`` with the same arguments. Weight decay
  is never masked by q; ``mask`` selects the parameters it applies to, as in
  ``optax.adamw``.

  Args:
    learning_rate: a scalar or an ``optax`` schedule.
    b1: Adam's first-moment decay.
    b2: Adam's second-moment decay.
    eps: Adam's denominator term.
    eps_root: added inside the square root, as in ``optax.adamw``.
    mu_dtype: the dtype of the first moment (``None``: the parameters'
      dtype, at least float32).
    weight_decay: decoupled weight decay (never gated by q).
    mask: a pytree of booleans like the parameters, or a callable returning
      one, selecting the leaves weight decay applies to (``optax.adamw``'s
      ``mask``).
    nesterov: Nesterov momentum, as in ``optax.adamw``.
    rho: decay of the centred variance EMA s.
    mode: ``"hard"``, ``"soft"`` or ``"snr"``.
    alpha: threshold multiplier alpha >= 0.
    softness: softness s >= 0 of the ``"snr"`` mask.
    reduction: ``"element"`` or ``"tensor"``.
    warmup_steps: number of first steps with q = 1.

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Raises:
    ValueError: as :func:`snr_optax.scale_by_streaming_snr`, or for a
      negative ``weight_decay``.

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

    With the mask held open it is ``optax.adamw``:

    >>> g = {'w': jnp.array([0.5, -1.0])}
    >>> ours = so.streaming_snr_adamw(0.1, 0.9, 0.99, 1e-8, 0.0, None, 0.1,
    ...                               nesterov=True, alpha=0.0)
    >>> theirs = optax.adamw(0.1, 0.9, 0.99, 1e-8, 0.0, None, 0.1,
    ...                      nesterov=True)
    >>> u1, _ = ours.update(g, ours.init(params), params)
    >>> u2, _ = theirs.update(g, theirs.init(params), params)
    >>> bool(jnp.allclose(u1['w'], u2['w']))
    True
  """
  return _in_params_dtype(optax.chain(
      transforms.scale_by_streaming_snr(
          b1, b2, eps, rho, eps_root=eps_root, mu_dtype=mu_dtype,
          nesterov=nesterov, mode=mode, alpha=alpha, softness=softness,
          reduction=reduction, warmup_steps=warmup_steps),
      _decoupled_weight_decay(weight_decay, mask),
      optax.scale_by_learning_rate(learning_rate)))
