# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""A validation-free, leave-one-out estimate of the population-loss change.

Each example of a batch is a one-point held-out set for the update computed
from the others. To first order in the update, and with the update's
derivative with respect to the batch mean diagonal, the statistics the masks
already need (mu and nu) give that held-out estimate in closed form.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from snr_optax._src import accumulation
from snr_optax._src import stats as stats_lib
from snr_optax._src import transforms
from snr_optax._src import validation

PyTree = Any
GradStats = stats_lib.GradStats

# The largest bound on the dropped off-diagonal term, relative to the gap's
# own terms, accepted as "the update's derivative is diagonal"; an
# elementwise update gives exactly 0.
DIAGONAL_TOLERANCE = 1e-3


class PopulationRiskDelta(NamedTuple):
  r"""First-order estimates of one step's loss changes (float32 scalars).

  Attributes:
    train: the predicted change of the batch (training) loss,
      :math:`\sum_k u_k \mu_k`.
    population: the leave-one-out estimate of the change of the population
      loss, :math:`\sum_k u_k \mu_k - \sum_k J_k \nu_k`.
  """
  train: jax.Array
  population: jax.Array

  @property
  def gap(self) -> jax.Array:
    r"""The step's estimated generalisation-gap change, population - train.

    Equal to :math:`-\sum_k J_k \nu_k`: the part of the training-loss change
    that each example owes to its own gradient.
    """
    return self.population - self.train


def _check_real(tree: PyTree, what: str) -> None:
  for leaf in jax.tree.leaves(tree):
    if jnp.issubdtype(jnp.result_type(leaf), jnp.complexfloating):
      raise ValueError(f'{what} has a complex leaf; the population-risk '
                       'estimate is defined for real parameters only.')


def _check_floating(tree: PyTree, what: str) -> None:
  for leaf in jax.tree.leaves(tree):
    if not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
      raise ValueError(f'{what} has a leaf of dtype {jnp.result_type(leaf)}; '
                       'the population-risk estimate differentiates the '
                       'update in the batch mean, which must be floating.')


def _tree_dot(a: PyTree, b: PyTree) -> jax.Array:
  """sum over all leaves and coordinates of a * b, in at least float32."""
  terms = [jnp.sum(x.astype(stats_lib.accumulation_dtype(x.dtype))
                   * y.astype(stats_lib.accumulation_dtype(y.dtype)))
           for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))]
  return sum(terms, jnp.zeros([], jnp.float32)).astype(jnp.float32)


def population_risk_delta(stats: GradStats, updates: PyTree, slope: PyTree,
                          curvature: PyTree | None = None
                          ) -> PopulationRiskDelta:
  r"""Leave-one-out estimate of a step's population-loss change.

  For a batch of b per-example gradients :math:`g_i` with mean :math:`\mu`
  and leave-one-out noise :math:`\nu = M_2 / (b (b - 1))`
  (:attr:`snr_optax.GradStats.loo_noise`), and a step that moves the
  parameters by :math:`u = U(\mu)` (the update an optimizer returns, its
  state held fixed), the batch loss changes to first order by

  .. math::
    \Delta L_{\text{train}} \approx \textstyle\sum_k u_k \mu_k .

  That inner product pairs every example with an update it helped make. Each
  example :math:`i` is instead a one-point held-out set for the update made
  from the other b - 1 examples, :math:`u^{(-i)} = U(\mu^{(-i)})` with
  :math:`\mu^{(-i)} = \mu + (\mu - g_i)/(b - 1)`; for a fresh batch,
  :math:`\tfrac1b \sum_i \langle g_i, u^{(-i)} \rangle` is an unbiased
  estimate of the population-loss change of such an update. To first order,
  :math:`u^{(-i)} \approx u + J (\mu - g_i)/(b - 1)` with
  :math:`J = \partial u / \partial \mu`, and since
  :math:`\sum_i (g_i - \mu) = 0`,

  .. math::
    \Delta L_{\text{pop}} \approx \textstyle\sum_k u_k \mu_k
      - \frac{1}{b(b-1)} \sum_i (g_i - \mu)^\top J (g_i - \mu)
      = \sum_k u_k \mu_k - \sum_k J_{kk} \nu_k

  where the last form holds for a diagonal J (every elementwise optimizer:
  SGD, Adam, the masks with ``reduction="element"``). For
  :math:`u = -\eta P q \mu` with a preconditioner P and mask q held fixed,
  :math:`J = -\eta P q` and the estimate is
  :math:`-\eta \sum_k P_k q_k (\mu_k^2 - \nu_k)`: a coordinate lowers the
  estimated population loss only where :math:`\mu_k^2 > \nu_k`, the rule of
  the masks.

  Given the diagonal second derivative :math:`C = \partial^2 u /
  \partial \mu^2` (``curvature``), the next term of the expansion is added,

  .. math::
    + \tfrac12 \textstyle\sum_k \mu_k C_k \nu_k / (b - 1),

  which leaves out only a term in the third central moment of the examples
  and higher orders. An optimizer whose update is not linear in mu (Adam)
  needs it: its first-order error relative to the gap is of order
  :math:`\mu C / (J (b - 1))`, not small in the noise-dominated coordinates
  that matter.

  Assumptions: first order in u (no curvature of the loss), J diagonal, the
  optimizer state and the noise :math:`\nu` held fixed under leaving one
  out, and a batch not seen before (with reused data the held-out examples
  are not held out). The estimate is for an update made from b - 1
  examples. A discontinuous update (the hard mask, sign) is expanded where
  it is smooth: the flips of q or of a sign that leaving one example out
  causes are not seen.

  Args:
    stats: the step's :class:`snr_optax.GradStats` (b >= 2; b < 2 gives
      NaN, never a finite guess).
    updates: the update u, structured like ``stats.mean``.
    slope: the diagonal :math:`J_{kk} = \partial u_k / \partial \mu_k`,
      structured like ``stats.mean`` (e.g. ``-learning_rate`` for SGD).
      :func:`snr_optax.track_population_risk` computes it for any optimizer.
    curvature: optionally, the diagonal :math:`\partial^2 u_k / \partial
      \mu_k^2`, structured like ``stats.mean`` (0 for SGD). Combined
      statistics of several terms (:func:`snr_optax.combine_stats`) take
      only the first-order form: the second-order term would need each
      term's mean.

  Returns:
    A :class:`PopulationRiskDelta` of float32 scalars, in the units of the
    loss.

  Raises:
    ValueError: if ``updates``, ``slope`` or ``curvature`` is not structured
      like ``stats.mean``, or has a complex leaf; if ``curvature`` is given
      with combined statistics.

  References:
    Litman and Guo, `A Theory of Generalization in Deep Learning
    <https://arxiv.org/abs/2605.01172>`_, 2026.
    Efron and Stein, The jackknife estimate of variance, Ann. Statist. 9(3),
    1981.

  Examples:
    SGD (slope -lr) on a mean 1 with noise 0.25 in one coordinate:

    >>> import jax.numpy as jnp
    >>> import snr_optax as so
    >>> stats = so.GradStats(mean={'w': jnp.array([1.0])},
    ...                      sum_sq_dev={'w': jnp.array([3.0])},
    ...                      count=jnp.asarray(4, jnp.int32))  # nu = 0.25
    >>> lr = 0.1
    >>> delta = so.population_risk_delta(stats, {'w': -lr * stats.mean['w']},
    ...                                  {'w': jnp.array([-lr])})
    >>> print(f'{delta.train:.3f} {delta.population:.3f} {delta.gap:.3f}')
    -0.100 -0.075 0.025
  """
  if not isinstance(stats, GradStats):
    raise ValueError('stats must be a snr_optax.GradStats, got '
                     f'{type(stats).__name__}.')
  validation.check_same_structure(updates, stats.mean, what='updates',
                                  reference_name='stats.mean')
  validation.check_same_structure(slope, stats.mean, what='slope',
                                  reference_name='stats.mean')
  _check_real(updates, 'updates')
  _check_real(slope, 'slope')
  _check_real(stats.mean, 'stats.mean')
  train = _tree_dot(updates, stats.mean)
  population = train - _tree_dot(slope, stats.loo_noise)
  if curvature is not None:
    if stats.noise is not None:
      raise ValueError(
          'curvature needs the statistics of one batch: these are combined '
          'statistics of several terms (GradStats.noise is set), whose '
          'second-order term would need each term\'s mean; pass '
          'curvature=None for the first-order estimate.')
    validation.check_same_structure(curvature, stats.mean, what='curvature',
                                    reference_name='stats.mean')
    _check_real(curvature, 'curvature')
    # nu / (b - 1) = M2 / (b (b - 1)^2): the mean squared leave-one-out
    # change of the mean.
    count = jnp.asarray(stats.count)
    shift = jax.tree.map(
        lambda nu: nu / (count.astype(nu.dtype) - 1), stats.loo_noise)
    population = population + 0.5 * _tree_dot(
        jax.tree.map(lambda c, m: c * m.astype(c.dtype), curvature,
                     stats.mean), shift)
  return PopulationRiskDelta(train=train, population=population)


class TrackPopulationRiskState(NamedTuple):
  """State of :func:`track_population_risk`.

  Attributes:
    inner_state: the state of the wrapped optimizer.
    count: the number of steps tracked (int32).
    train_change: the sum over steps of :attr:`PopulationRiskDelta.train`
      (float32): the estimated change of the training loss since ``init``.
    population_change: the sum over steps of
      :attr:`PopulationRiskDelta.population` (float32): the estimated change
      of the population loss since ``init``.
    last: the last step's :class:`PopulationRiskDelta`.
    diagonal_error: the largest relative deviation seen of the update's
      derivative from a diagonal one (float32; exactly 0 for an elementwise
      update); above ``DIAGONAL_TOLERANCE`` the step's estimates are NaN.

  A NaN estimate (a derivative refused as not diagonal, b < 2, statistics
  not finite) makes ``train_change`` and ``population_change`` NaN from
  then on: their sum is not known. ``last`` is each step's own.
  """
  inner_state: optax.OptState
  count: jax.Array
  train_change: jax.Array
  population_change: jax.Array
  last: PopulationRiskDelta
  diagonal_error: jax.Array


def _probe(mean: PyTree, noise: PyTree
           ) -> tuple[PyTree, PyTree, PyTree]:
  r"""Fixed tangents of the noise's scale, shaped (and sharded) like ``mean``.

  Returns the probe :math:`r_k = \mathrm{sign}(\mu_k)\, 2^{e_k - h_k - E}`
  (:math:`2^{e_k - 1} \le \sqrt{\nu_k} < 2^{e_k}`, E the largest
  :math:`e_k`, 0 where nu is 0), the signs :math:`s_k = \pm 1` that flip
  it, and the noise in the probe's units, :math:`\nu_k 2^{-2E}`;
  :math:`h_k \in \{0, 1\}` and :math:`s_k` are hashes of the coordinate's
  position.

  * Along the sign of the mean, the couplings through a norm of the mean or
    of the update (global-norm clipping, tensor-wise masks, trust ratios)
    add up instead of cancelling to ~1/sqrt(n) of it as along random signs;
    the hashed magnitudes and flips see the others.
  * Scaled by :math:`2^{-E}` to at most 1, like the tangent of ones, so
    that it does not underflow in a float16 optimizer.

  Derived elementwise, so that it takes the layout of ``mean`` on any mesh.
  """
  def hashed(x, bit):
    index = jnp.zeros(x.shape, jnp.uint32)
    for axis in range(x.ndim):
      index = index * jnp.uint32(x.shape[axis]) + jax.lax.broadcasted_iota(
          jnp.uint32, x.shape, axis)
    index = index + jnp.zeros_like(x, jnp.uint32)  # x's sharding
    bits = (index * jnp.uint32(2654435761)) >> bit   # Knuth's hash
    return (bits & 1).astype(jnp.int32)

  none = jnp.iinfo(jnp.int32).min
  exponents = jax.tree.map(
      lambda m, nu: jnp.where(nu > 0, jnp.frexp(
          jnp.sqrt(nu).astype(m.dtype))[1].astype(jnp.int32), none),
      mean, noise)
  largest = functools.reduce(
      jnp.maximum, [jnp.max(e, initial=none) for e in
                    jax.tree.leaves(exponents)], jnp.asarray(none))
  largest = jnp.where(largest == none, 0, largest)

  def probe(m, e):
    magnitude = jnp.ldexp(jnp.ones_like(m), jnp.where(
        e == none, 0, e - hashed(m, 15) - largest))
    return jnp.where(e == none, jnp.zeros_like(m),
                     jnp.where(m >= 0, magnitude, -magnitude))
  flips = jax.tree.map(
      lambda m: (2 * hashed(m, 16) - 1).astype(m.dtype), mean)
  weights = jax.tree.map(
      lambda m, nu: jnp.ldexp(nu.astype(m.dtype), -2 * largest), mean, noise)
  return jax.tree.map(probe, mean, exponents), flips, weights


def _check_no_accumulation(inner_state: optax.OptState) -> None:
  """Refuses an inner optimizer that accumulates micro-batches."""
  kinds = (accumulation.AccumulateStatsState, optax.MultiStepsState)
  nodes = jax.tree.leaves(inner_state, is_leaf=lambda x: isinstance(x, kinds))
  if any(isinstance(node, kinds) for node in nodes):
    raise ValueError(
        'track_population_risk cannot wrap snr_optax.accumulate_stats or '
        'optax.MultiSteps: it would see each micro-batch\'s statistics, not '
        'those of the step the update is made from; wrap the other way, '
        'snr_optax.accumulate_stats(snr_optax.track_population_risk(opt), k).')


def track_population_risk(
    inner: optax.GradientTransformation,
) -> optax.GradientTransformationExtraArgs:
  r"""Wraps an optimizer to estimate each step's population-loss change.

  ``update`` takes the step's :class:`snr_optax.GradStats` (or batch-mean
  gradients with ``grad_stats=``, or per-example gradients, as
  :func:`snr_optax.snr_mask`), passes the batch mean to ``inner`` together
  with ``grad_stats=`` (so :func:`snr_optax.snr_adam`, :func:`snr_optax.gated`
  and any plain optax optimizer take it alike), returns ``inner``'s update
  unchanged, and records :func:`population_risk_delta` of the step in its
  state, with the slope and curvature

  .. math::
    J_{kk} = \partial u_k / \partial \mu_k, \quad
    C_k = \partial^2 u_k / \partial \mu_k^2

  computed by forward-mode differentiation (twice) of ``inner.update`` with
  respect to the batch mean (in ``updates`` and in ``grad_stats.mean``
  alike), the optimizer state and the noise statistic held fixed. These are
  the exact derivatives of the update the optimizer takes, so they include
  what the hand formula of a fixed preconditioner leaves out:

  * Adam (``optax.scale_by_adam``, step t, :math:`D = \sqrt{\hat v} +
    \epsilon`): :math:`J = -\eta/D \, [(1-\beta_1)/(1-\beta_1^t) -
    \hat m\, g\, (1-\beta_2) / ((1-\beta_2^t) \sqrt{\hat v} D)]`; the second
    term is the current gradient's share in :math:`\hat v`. On the first
    step Adam's update is sign(mu) and J is ~0, so the estimate equals the
    training change there: a first-order estimate cannot see the sign flips
    that leaving one example out causes. Where Adam's input is of the
    order of its :math:`\epsilon` (a coordinate that a mask before Adam
    nearly closes, :math:`q \mu \sim 10^{-8}`, while its moments are as
    small) the update is a step of that width, J is large, and its
    estimate is not to be trusted (measured on Gaussian gradients of 400
    coordinates, b = 256: snr_adam's first step gave twice the explicit
    leave-one-out gap; after five steps on other batches, within 0.1%).
  * the hard mask (``mode="hard"``, before or after Adam) is piecewise
    constant in mu: J is Adam's times q, the issue's :math:`-\eta P q`
    with P Adam's. The flips of q that leaving one example out causes are
    not seen, and they can be most of the gap: on Gaussian gradients of
    400 coordinates whose SNRs span three decades, ``snr_adam``'s default
    hard mask (before Adam, after five steps) gave 27%, 27%, 30% and 48%
    of the explicit leave-one-out gap at b = 64, 256, 1024 and 4096,
    where the ``"snr"`` mask's estimate was within 1%.
  * the ``"snr"``/``"soft"`` masks add their derivative in mu at fixed nu.
  * :func:`snr_optax.streaming_snr_adamw`: its mask reads Adam's first
    moment, so J includes the mask's derivative through it.

  Where a derivative is not finite (NaN or infinite) but the update is, J
  (or C) is taken as 0: Adam's square root at a second moment of exactly 0,
  the case of coordinates that a mask before Adam has never passed, whose
  update does not move with mu; the ``"snr"`` mask's derivatives, which
  overflow float32 where |mu| is a tiny fraction of sqrt(nu) and q ~ 0.

  The estimate needs a diagonal J. Every step checks it with two more
  derivatives, along a fixed probe of the noise's scale, :math:`r_k =
  \pm\sqrt{\nu_k}` within a factor 2 (signs those of mu, so that couplings
  through a norm of the mean or of the update add up), and along r with
  some signs :math:`s_k` flipped: :math:`e = J (s r) - s (J r)` is exactly
  0 for an elementwise update (a sign flip commutes with every rounding,
  in any dtype) and :math:`J_{\text{off}} (s r) - s J_{\text{off}} r`
  otherwise. ``diagonal_error`` keeps the largest :math:`\lVert r \rVert
  \lVert e \rVert / (\sum_k |J_k| \nu_k + \tfrac12 \sum_k |\mu_k C_k| \nu_k
  / (b - 1))` seen: the dropped term bounded relative to the gap's own
  terms (relative to the training change, a coupling as large as the gap
  would pass unseen when the noise is small). Above ``DIAGONAL_TOLERANCE``
  (1e-3; for example under ``optax.clip_by_global_norm`` while it clips,
  ``optax.lamb``, ``optax.adafactor``, or a ``"tensor"`` reduction of a
  soft mask where its coupling matters) the step's estimates are NaN
  rather than wrong, and so are the sums in the state from then on.

  The inner optimizer gets the batch mean cast to the dtype of the
  gradients (``grad_stats=`` form) or of the parameters, as without the
  tracker, so its state keeps its dtypes; the derivatives are taken with
  respect to the statistics' mean (at least float32).

  Composition: the tracker must see the step the update is made from, so
  it refuses to wrap :func:`snr_optax.accumulate_stats` or
  ``optax.MultiSteps``; wrap it instead,
  ``so.accumulate_stats(so.track_population_risk(opt), k)``. Put
  :func:`snr_optax.apply_if_finite` inside it,
  ``so.track_population_risk(so.apply_if_finite(opt, n))``: outside, it
  reads the tracker's state and would skip every step whose estimate is
  NaN (refused as not diagonal), finite as its update is.

  With combined statistics of several terms (:func:`snr_optax.combine_stats`)
  the estimate is first order (no curvature term).

  Costs four forward-mode derivatives of ``inner.update`` (one of second
  order, two along the probe) and a few reductions: elementwise work of
  the size of the parameters, but several times the optimizer's own (on a
  2-core CPU with jaxlib 0.10, ``benchmarks/step_time.py``: +14 ms on a
  670k-parameter MLP, whose step with fast statistics at b = 256 goes from
  4.8 to 18.8 ms; +8% on a transformer step of 73 ms).

  Args:
    inner: the optimizer (any ``optax.GradientTransformation``).

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose state is
    :class:`TrackPopulationRiskState`.

  Raises:
    ValueError: (at ``update``) for statistics that are not structured like
      the parameters, or complex or integer ones; (at ``init`` and
      ``update``) if ``inner`` accumulates micro-batches
      (:func:`snr_optax.accumulate_stats`, ``optax.MultiSteps``).

  References:
    Litman and Guo, `A Theory of Generalization in Deep Learning
    <https://arxiv.org/abs/2605.01172>`_, 2026.

  Examples:
    >>> import jax, jax.numpy as jnp, optax
    >>> import snr_optax as so
    >>> def loss(params, batch):
    ...   x, y = batch
    ...   return jnp.mean((x @ params['w'] - y) ** 2)
    >>> x = jax.random.normal(jax.random.key(0), (32, 3))
    >>> y = x @ jnp.array([1.0, -2.0, 0.5])
    >>> params = {'w': jnp.zeros(3)}
    >>> opt = so.track_population_risk(optax.sgd(0.05))
    >>> state = opt.init(params)
    >>> value, stats = so.value_and_grad_stats(loss)(params, (x, y))
    >>> updates, state = opt.update(stats, state, params)
    >>> after = loss(optax.apply_updates(params, updates), (x, y))
    >>> d = state.last     # first-order predictions of the change
    >>> bool(d.population > d.train), bool(after - value < 0)
    (True, True)
  """
  inner = optax.with_extra_args_support(inner)

  def init_fn(params):
    # A new array for each field: one array in several leaves could not be
    # donated (jax.jit(..., donate_argnums=...) refuses a buffer twice).
    zero = lambda: jnp.zeros([], jnp.float32)
    inner_state = inner.init(params)
    _check_no_accumulation(inner_state)
    return TrackPopulationRiskState(
        inner_state=inner_state, count=jnp.zeros([], jnp.int32),
        train_change=zero(), population_change=zero(),
        last=PopulationRiskDelta(train=zero(), population=zero()),
        diagonal_error=zero())

  def update_fn(updates, state, params=None, *, grad_stats=None,
                **extra_args):
    stats, reference = transforms.stats_and_reference(updates, params,
                                                      grad_stats)
    _check_real(stats.mean, 'the statistics')
    _check_floating(stats.mean, 'the statistics')
    _check_no_accumulation(state.inner_state)

    def step(mean):
      # The inner optimizer gets the mean in the gradients' (or parameters')
      # dtype, as without the tracker, so that its state keeps its dtypes;
      # the derivatives are taken in the statistics' precision.
      step_stats = stats._replace(mean=mean)
      return inner.update(optax.tree.cast_like(mean, reference),
                          state.inner_state, params, grad_stats=step_stats,
                          **extra_args)

    new_updates, inner_state = step(stats.mean)
    ones = jax.tree.map(jnp.ones_like, stats.mean)

    def derivative(mean, tangent):
      return jax.jvp(lambda m: step(m)[0], (mean,), (tangent,))[1]

    # Where a derivative is not finite but the update is, the forward pass
    # met 0 * inf or an overflow whose true value is 0 or tiny: Adam's square
    # root at a second moment of exactly 0 (coordinates a mask has never
    # passed, whose update does not move with mu), the snr mask's 1/|mu|^3
    # where |mu| is ~1e-13 of sqrt(nu) and q ~ 0.
    defined = lambda jvp: jax.tree.map(
        lambda d, u: jnp.where(~jnp.isfinite(d) & jnp.isfinite(u), 0, d),
        jvp, new_updates)
    slope, curvature = jax.jvp(lambda m: derivative(m, ones), (stats.mean,),
                               (ones,))
    slope, curvature = defined(slope), defined(curvature)
    delta = population_risk_delta(
        stats, new_updates, slope,
        curvature if stats.noise is None else None)
    # The off-diagonal part of J along a probe r of the noise's scale
    # (r_k ~ sqrt(nu_k)): the derivative along r with the signs s_k of some
    # coordinates flipped, less s times the one along r, is exactly 0 for an
    # elementwise update (a sign flip commutes with every rounding) and
    # J_off (s r) - s J_off r otherwise. Bounded by Cauchy-Schwarz and
    # compared with the gap's own terms, sum_k |J_k| nu_k (+ the
    # curvature's), in the probe's units: of the order of the gap's error
    # where J is not diagonal. (Compared with |train| instead, a coupling as
    # large as the gap passed unseen when the noise is small:
    # clip_by_global_norm while it clips.)
    probe, flips, weights = _probe(stats.mean, stats.loo_noise)
    along_probe = defined(derivative(stats.mean, probe))
    along_flipped = defined(derivative(
        stats.mean, jax.tree.map(jnp.multiply, flips, probe)))
    off_diagonal = jax.tree.map(
        lambda a, b, s: b.astype(s.dtype) - s * a.astype(s.dtype),
        along_probe, along_flipped, flips)
    bound = jnp.sqrt(_tree_dot(probe, probe) * _tree_dot(off_diagonal,
                                                         off_diagonal))
    scale = _tree_dot(jax.tree.map(jnp.abs, slope), weights)
    if stats.noise is None:
      count = jnp.asarray(stats.count)
      scale = scale + 0.5 * _tree_dot(
          jax.tree.map(lambda c, m: jnp.abs(c * m.astype(c.dtype)),
                       curvature, stats.mean),
          jax.tree.map(lambda w: w / (count.astype(w.dtype) - 1), weights))
    error = jnp.where(bound == 0, 0.0,
                      bound / jnp.maximum(scale, jnp.finfo(jnp.float32).tiny))
    delta = jax.tree.map(
        lambda d: jnp.where(error > DIAGONAL_TOLERANCE, jnp.nan, d), delta)
    return new_updates, TrackPopulationRiskState(
        inner_state=inner_state, count=optax.safe_increment(state.count),
        train_change=state.train_change + delta.train,
        population_change=state.population_change + delta.population,
        last=delta,
        diagonal_error=jnp.maximum(state.diagonal_error, error))

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
