# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of the leave-one-out population-risk estimate.

References are explicit: per-example gradients from a Python loop over the
examples, leave-one-out updates made by running the optimizer on the mean of
the other examples, inner products in float64 NumPy, and Adam's derivative by
hand.
"""

import os

import jax
import jax.numpy as jnp
from jax.sharding import AxisType
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np
import optax
from absl.testing import absltest
from absl.testing import parameterized

import snr_optax as so

B = 16
# The full matrix (README: SNR_OPTAX_SLOW=1); the default run takes one case
# of each kind.
SLOW = os.environ.get('SNR_OPTAX_SLOW') == '1'


def _model():
  keys = jax.random.split(jax.random.key(0), 4)
  params = {'w1': 0.5 * jax.random.normal(keys[0], (3, 8)),
            'b1': jnp.zeros(8),
            'w2': 0.5 * jax.random.normal(keys[1], (8, 2))}
  x = jax.random.normal(keys[2], (B, 3))
  y = jax.random.normal(keys[3], (B, 2))

  def loss(params, batch):
    x, y = batch
    h = jnp.tanh(x @ params['w1'] + params['b1'])
    return jnp.mean(jnp.sum((h @ params['w2'] - y) ** 2, axis=-1))
  return params, loss, (x, y)


def _per_example_loop(loss, params, batch):
  """[b, ...] gradients, one jax.grad per example (no vmap, no library)."""
  x, y = batch
  grad = jax.jit(jax.grad(loss))    # one example at a time, one program
  grads = [grad(params, (x[i:i + 1], y[i:i + 1])) for i in range(x.shape[0])]
  return {k: np.stack([np.asarray(g[k], np.float64) for g in grads])
          for k in params}


def _dot(a, b):
  return sum(float(np.sum(np.asarray(a[k], np.float64)
                          * np.asarray(b[k], np.float64))) for k in a)


def _loo_reference(opt, state, params, per_example):
  """(1/b) sum_i <g_i, U(mu^(-i))>: the optimizer run on each LOO mean."""
  b = next(iter(per_example.values())).shape[0]
  total = 0.0
  update = jax.jit(lambda stats: opt.update(stats.mean, state, params,
                                            grad_stats=stats)[0])
  for i in range(b):
    rest = {k: np.delete(g, i, axis=0) for k, g in per_example.items()}
    u = update(so.stats_from_per_example(jax.tree.map(jnp.asarray, rest)))
    total += _dot({k: g[i] for k, g in per_example.items()}, u)
  return total / b


def _stats64(per_example):
  mean = {k: g.mean(0) for k, g in per_example.items()}
  b = next(iter(per_example.values())).shape[0]
  nu = {k: ((g - g.mean(0)) ** 2).sum(0) / (b * (b - 1))
        for k, g in per_example.items()}
  return mean, nu


class PopulationRiskDeltaTest(parameterized.TestCase):

  def test_linear_update_equals_explicit_leave_one_out(self):
    # For u = a + c * mu the first-order form is exact: it must equal the
    # explicit average of <g_i, u^(-i)> to rounding.
    params, loss, batch = _model()
    per_example = _per_example_loop(loss, params, batch)
    rng = np.random.default_rng(0)
    a = {k: rng.normal(size=v.shape[1:]) for k, v in per_example.items()}
    c = {k: -rng.uniform(0.01, 0.2, size=v.shape[1:])
         for k, v in per_example.items()}
    mean, _ = _stats64(per_example)
    want = 0.0
    for i in range(B):
      loo_mean = {k: (B * mean[k] - g[i]) / (B - 1)
                  for k, g in per_example.items()}
      want += _dot({k: g[i] for k, g in per_example.items()},
                   {k: a[k] + c[k] * loo_mean[k] for k in a})
    want /= B
    stats = so.value_and_grad_stats(loss)(params, batch)[1]
    u = {k: jnp.asarray(a[k] + c[k] * mean[k], jnp.float32) for k in a}
    delta = so.population_risk_delta(
        stats, u, {k: jnp.asarray(v, jnp.float32) for k, v in c.items()})
    np.testing.assert_allclose(float(delta.population), want, rtol=1e-4)
    np.testing.assert_allclose(float(delta.train), _dot(u, mean), rtol=1e-5)

  def test_sgd_gap_is_learning_rate_times_total_noise(self):
    params, loss, batch = _model()
    per_example = _per_example_loop(loss, params, batch)
    _, nu = _stats64(per_example)
    stats = so.value_and_grad_stats(loss)(params, batch)[1]
    for lr in (0.01, 0.1):
      u = jax.tree.map(lambda m, lr=lr: -lr * m, stats.mean)
      slope = jax.tree.map(lambda m, lr=lr: jnp.full_like(m, -lr), stats.mean)
      delta = so.population_risk_delta(stats, u, slope)
      want = lr * sum(float(v.sum()) for v in nu.values())
      np.testing.assert_allclose(float(delta.gap), want, rtol=1e-4)
      self.assertGreater(float(delta.gap), 0.0)

  def test_fewer_than_two_examples_give_nan(self):
    stats = so.GradStats(mean={'w': jnp.ones(2)}, sum_sq_dev={'w': jnp.zeros(2)},
                         count=jnp.asarray(1, jnp.int32))
    delta = so.population_risk_delta(stats, {'w': -stats.mean['w']},
                                     {'w': -jnp.ones(2)})
    self.assertTrue(np.isnan(float(delta.population)))
    # The tracker: NaN estimates, but its diagonality check has nothing to
    # probe (nu is NaN), so diagonal_error stays finite for the next steps.
    tracker = so.track_population_risk(optax.sgd(0.1))
    _, state = jax.jit(tracker.update)(
        stats, tracker.init({'w': jnp.zeros(2)}), {'w': jnp.zeros(2)})
    self.assertTrue(np.isnan(float(state.last.population)))
    self.assertEqual(float(state.diagonal_error), 0.0)

  def test_combined_statistics_take_the_first_order_form(self):
    # Two terms with weights 1 and 2: nu = sum_t w_t^2 nu_t; the curvature
    # term would need each term's mean, so it is refused.
    rng = np.random.default_rng(3)
    terms = [rng.normal(size=(b, 3)) for b in (5, 9)]
    stats = so.combine_stats(
        [so.stats_from_per_example({'w': jnp.asarray(t, jnp.float32)})
         for t in terms], [1.0, 2.0])
    nu = sum(w * w * t.var(0, ddof=1) / len(t) for w, t in zip((1, 2), terms))
    u = {'w': -0.1 * stats.mean['w']}
    delta = so.population_risk_delta(stats, u, {'w': jnp.full(3, -0.1)})
    np.testing.assert_allclose(float(delta.gap), 0.1 * nu.sum(), rtol=1e-5)
    with self.assertRaisesRegex(ValueError, 'combined'):
      so.population_risk_delta(stats, u, {'w': jnp.full(3, -0.1)},
                               {'w': jnp.zeros(3)})
    tracker = so.track_population_risk(optax.sgd(0.1))
    zeros = {'w': jnp.zeros(3)}
    _, state = jax.jit(tracker.update)(stats, tracker.init(zeros), zeros)
    np.testing.assert_allclose(float(state.last.gap), 0.1 * nu.sum(),
                               rtol=1e-5)

  def test_bad_input_is_one_clear_line(self):
    stats = so.GradStats(mean={'w': jnp.ones(2)}, sum_sq_dev={'w': jnp.ones(2)},
                         count=jnp.asarray(4, jnp.int32))
    cases = [
        ((stats.mean, {'w': jnp.ones(2)}, {'w': jnp.ones(2)}), 'GradStats'),
        ((stats, {'v': jnp.ones(2)}, {'w': jnp.ones(2)}), 'updates'),
        ((stats, {'w': jnp.ones(2)}, {'w': jnp.ones(3)}), 'slope'),
        ((stats, {'w': jnp.ones(2, jnp.complex64)}, {'w': jnp.ones(2)}),
         'complex'),
    ]
    for args, fragment in cases:
      with self.assertRaisesRegex(ValueError, fragment) as cm:
        so.population_risk_delta(*args)
      self.assertNotIn('\n', str(cm.exception))


def _numpy_adam(m0, v0, t, lr, b1, b2, eps):
  """optax.adam's update of one step as a function of g (NumPy float64)."""
  def update(g):
    m = b1 * m0 + (1 - b1) * g
    v = b2 * v0 + (1 - b2) * g * g
    return -lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
  return update


def _derivatives(update, g):
  """dU/dg and d2U/dg2 by central differences (float64)."""
  h = 1e-4 * np.maximum(np.abs(g), 1e-3)
  up, mid, down = update(g + h), update(g), update(g - h)
  return (up - down) / (2 * h), (up - 2 * mid + down) / (h * h)


class TrackPopulationRiskTest(parameterized.TestCase):

  def _run(self, opt, steps=3, lr_batches=None):
    params, loss, batch = _model()
    tracker = so.track_population_risk(opt)
    state = tracker.init(params)
    stats_fn = jax.jit(lambda p, b: so.value_and_grad_stats(loss)(p, b)[1])
    update = jax.jit(tracker.update)
    history = []
    for step in range(steps):
      x, y = batch
      shifted = (jnp.roll(x, step, axis=0) * (1 + 0.1 * step), y)
      stats = stats_fn(params, shifted)
      inner_before = state.inner_state
      updates, state = update(stats, state, params)
      history.append((params, shifted, inner_before, stats, updates, state))
      params = optax.apply_updates(params, updates)
    return loss, history

  def test_sgd_equals_explicit_leave_one_out(self):
    opt = optax.sgd(0.05, momentum=0.9)
    loss, history = self._run(opt)
    for params, batch, inner_before, _, updates, state in history:
      per_example = _per_example_loop(loss, params, batch)
      want = _loo_reference(opt, inner_before, params, per_example)
      np.testing.assert_allclose(float(state.last.population), want,
                                 rtol=2e-4)
      mean, _ = _stats64(per_example)
      np.testing.assert_allclose(float(state.last.train), _dot(updates, mean),
                                 rtol=2e-4)
    self.assertEqual(int(history[-1][-1].count), 3)
    np.testing.assert_allclose(
        float(history[-1][-1].population_change),
        sum(float(h[-1].last.population) for h in history), rtol=1e-5)

  def test_returns_the_inner_update_unchanged(self):
    params, loss, batch = _model()
    opt = so.snr_adam(1e-2)
    stats = so.value_and_grad_stats(loss)(params, batch)[1]
    want, _ = opt.update(stats, opt.init(params), params)
    tracker = so.track_population_risk(opt)
    got, _ = tracker.update(stats, tracker.init(params), params)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
      np.testing.assert_array_equal(g, w)

  @parameterized.named_parameters(
      ('adam', None), ('snr_adam_before', 'before'),
      ('snr_adam_after', 'after'))
  def test_adam_matches_hand_derivatives(self, placement):
    # The estimate sum(u mu) - sum(J nu) + sum(mu U'' nu) / (2 (b - 1)) with
    # J and U'' of a NumPy Adam by finite differences, the mask q by hand.
    lr, b1, b2, eps = 1e-2, 0.9, 0.999, 1e-8
    if placement is None:
      opt = optax.adam(lr, b1, b2, eps)
    else:
      opt = so.snr_adam(lr, b1, b2, eps, placement=placement)
    loss, history = self._run(opt, steps=4)
    for params, batch, inner_before, _, updates, state in history[1:]:
      adam = optax.tree_utils.tree_get(inner_before, 'ScaleByAdamState')
      per_example = _per_example_loop(loss, params, batch)
      mean, nu = _stats64(per_example)
      want = _dot(updates, mean)
      for k in mean:
        q = (mean[k] ** 2 > nu[k]).astype(np.float64)
        if placement is None:
          q = np.ones_like(q)
        adam_k = _numpy_adam(np.asarray(adam.mu[k], np.float64),
                             np.asarray(adam.nu[k], np.float64),
                             int(adam.count) + 1, lr, b1, b2, eps)
        if placement == 'before':
          u_of = lambda g, q=q, adam_k=adam_k: adam_k(q * g)
        else:
          u_of = lambda g, q=q, adam_k=adam_k: q * adam_k(g)
        np.testing.assert_allclose(u_of(mean[k]), updates[k], rtol=1e-4,
                                   atol=1e-9)
        slope, curvature = _derivatives(u_of, mean[k])
        want += float(np.sum(-slope * nu[k]
                             + mean[k] * curvature * nu[k] / (2 * (B - 1))))
      np.testing.assert_allclose(float(state.last.population), want,
                                 rtol=1e-3)

  def test_quadratic_update_with_symmetric_examples_is_exact(self):
    # u = -lr (g + c g^2), elementwise: the expansion to second order is
    # exact but for a term in the third central moment, which examples in
    # pairs mu +- d make zero.
    lr, c = 0.1, 3.0

    def quadratic():
      def update(g, state, params=None):
        del params
        return jax.tree.map(lambda x: -lr * (x + c * x * x), g), state
      return optax.with_extra_args_support(optax.GradientTransformation(
          lambda p: optax.EmptyState(), update))
    rng = np.random.default_rng(2)
    mean = {'w': rng.normal(size=(4, 3)), 'b': rng.normal(size=(3,))}
    half = {k: 2 * rng.normal(size=(B // 2,) + v.shape)
            for k, v in mean.items()}
    per_example = {k: np.concatenate([mean[k] + half[k], mean[k] - half[k]])
                   for k in mean}
    params = jax.tree.map(jnp.zeros_like, mean)
    with jax.enable_x64(True):
      opt = quadratic()
      want = _loo_reference(opt, opt.init(params), params, per_example)
      stats = so.stats_from_per_example(
          jax.tree.map(jnp.asarray, per_example))
      tracker = so.track_population_risk(opt)
      _, state = jax.jit(tracker.update)(stats, tracker.init(params), params)
      # float32 outputs
      np.testing.assert_allclose(float(state.last.population), want,
                                 rtol=1e-6)
      # the second-order term matters here: the first-order form is off
      first_order = float(state.last.train) - sum(
          float(np.sum(-lr * (1 + 2 * c * mean[k]) * nu_k))
          for k, nu_k in _stats64(per_example)[1].items())
      self.assertGreater(abs(first_order - want), 1e-3)

  def test_adam_error_shrinks_with_the_noise(self):
    if not SLOW:   # x64 compiles of their own; the hand derivatives cover Adam
      self.skipTest('SNR_OPTAX_SLOW=1 runs it')
    # Adam is not polynomial in mu: what the expansion leaves out, relative
    # to the gap it estimates, shrinks like the examples' spread s.
    params, loss, batch = _model()
    with jax.enable_x64(True):
      params, batch = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64),
                                   (params, batch))
      per_example = _per_example_loop(loss, params, batch)
      mean, _ = _stats64(per_example)
      opt = optax.adam(1e-2)
      state = opt.init(params)
      for _ in range(5):   # leave the first, sign-like steps behind
        _, state = opt.update(jax.tree.map(jnp.asarray, mean), state, params)
      errors = []
      for s in (0.025, 0.0125):
        scaled = {k: mean[k] + s * (g - mean[k])
                  for k, g in per_example.items()}
        want = _loo_reference(opt, state, params, scaled)
        stats = so.stats_from_per_example(jax.tree.map(jnp.asarray, scaled))
        tracker = so.track_population_risk(opt)
        t_state = tracker.init(params)._replace(inner_state=state)
        _, t_state = jax.jit(tracker.update)(stats, t_state, params)
        errors.append(abs(float(t_state.last.population) - want)
                      / abs(float(t_state.last.gap)))
    self.assertLess(errors[0], 0.2)
    self.assertLess(errors[1], 0.6 * errors[0])

  def test_non_diagonal_update_is_refused_as_nan(self):
    params, loss, batch = _model()
    stats = so.value_and_grad_stats(loss)(params, batch)[1]
    clipping = so.track_population_risk(
        optax.chain(optax.clip_by_global_norm(1e-3), optax.sgd(0.1)))
    _, state = clipping.update(stats, clipping.init(params), params)
    self.assertGreater(float(state.diagonal_error), so_tolerance())
    self.assertTrue(np.isnan(float(state.last.population)))
    self.assertTrue(np.isnan(float(state.population_change)))
    loose = so.track_population_risk(
        optax.chain(optax.clip_by_global_norm(1e9), optax.sgd(0.1)))
    _, state = loose.update(stats, loose.init(params), params)
    self.assertEqual(float(state.diagonal_error), 0.0)
    self.assertTrue(np.isfinite(float(state.last.population)))

  def test_clipping_is_refused_when_the_noise_is_small(self):
    # Regression: the check compared the dropped off-diagonal term with
    # |train| + |gap|. With little noise the gap is ~1e-5 of the training
    # change, so global-norm clipping passed as diagonal (1e-4) and gave a
    # finite population estimate whose gap was ~30x the explicit
    # leave-one-out average's: the noise lies mostly along the mean, which
    # clipping removes and the diagonal form cannot see.
    rng = np.random.default_rng(4)
    mean = rng.normal(size=(2, 8))
    per_example = {'w': mean * (1 + 0.05 * rng.normal(size=(B, 1, 1)))
                        + 0.01 * rng.normal(size=(B, 2, 8))}
    params = {'w': jnp.zeros((2, 8))}
    opt = optax.chain(optax.clip_by_global_norm(0.1), optax.sgd(0.1))
    stats = so.stats_from_per_example(jax.tree.map(jnp.asarray, per_example))
    tracker = so.track_population_risk(opt)
    _, state = jax.jit(tracker.update)(stats, tracker.init(params), params)
    self.assertGreater(float(state.diagonal_error), 10 * so_tolerance())
    self.assertTrue(np.isnan(float(state.last.population)))
    # What the diagonal form would have said, against the explicit average.
    want = _loo_reference(opt, opt.init(params), params, per_example)
    u, _ = opt.update(stats.mean, opt.init(params), params)
    slope = jax.jacfwd(lambda m: opt.update({'w': m}, opt.init(params))[0]
                       ['w'])(stats.mean['w'])
    slope = jnp.diagonal(slope.reshape(16, 16)).reshape(2, 8)
    diagonal = so.population_risk_delta(stats, u, {'w': slope})
    self.assertGreater(abs(float(diagonal.population) - want),
                       5 * abs(want - float(diagonal.train)))

  @parameterized.named_parameters(
      ('adam_float32', 'adam', jnp.float32),
      ('snr_bfloat16', 'snr', jnp.bfloat16),
      ('streaming_float16', 'streaming', jnp.float16))
  def test_elementwise_updates_pass_the_check_exactly(self, name, dtype):
    if not SLOW and name != 'snr':
      self.skipTest('SNR_OPTAX_SLOW=1 runs every optimizer and dtype')
    # Regression: the check compared J r with (J 1) r, computed by two
    # differently compiled derivatives; their rounding (bfloat16 or float16
    # optimizers, or Adam's first step, where J is the cancellation of
    # larger terms) read as a non-diagonal J and every estimate was NaN.
    params, loss, (x, y) = _model()
    params, x, y = jax.tree.map(lambda a: a.astype(dtype), (params, x, y))
    opt = {'adam': lambda: optax.adam(1e-2),
           'snr': lambda: so.snr_adam(1e-2, mode='snr'),
           'streaming': lambda: so.streaming_snr_adamw(1e-2)}[name]()
    tracker = so.track_population_risk(opt)
    state = tracker.init(params)
    update = jax.jit(tracker.update)
    stats_fn = jax.jit(lambda p, b: so.value_and_grad_stats(loss)(p, b)[1])
    for step in range(2):
      stats = stats_fn(params, (x * (1 + step), y))
      updates, state = update(stats, state, params)
      params = optax.apply_updates(params, updates)
      self.assertEqual(float(state.diagonal_error), 0.0)
      self.assertTrue(np.isfinite(float(state.last.population)))

  def test_inner_state_keeps_its_dtypes(self):
    # Regression: the float32 batch mean went to a plain optax optimizer of
    # bfloat16 parameters, whose moments turned float32 (a scan's carry
    # broke). The inner optimizer now gets the mean in the parameters'
    # dtype, as it would without the tracker.
    params, loss, batch = _model()
    params = jax.tree.map(lambda a: a.astype(jnp.bfloat16), params)
    opt = optax.adam(1e-2)
    tracker = so.track_population_risk(opt)

    def body(carry, _):
      params, state = carry
      stats = so.value_and_grad_stats(loss)(params, batch)[1]
      updates, state = jax.jit(tracker.update)(stats, state, params)
      return (optax.apply_updates(params, updates), state), updates
    state = tracker.init(params)
    (_, final), _ = jax.lax.scan(body, (params, state), None, length=2)
    self.assertEqual(jax.tree.map(lambda a: a.dtype, final.inner_state),
                     jax.tree.map(lambda a: a.dtype, state.inner_state))
    stats = so.value_and_grad_stats(loss)(params, batch)[1]
    got, _ = jax.jit(tracker.update)(stats, state, params)
    want, _ = jax.jit(opt.update)(
        optax.tree.cast_like(stats.mean, params), opt.init(params), params)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
      np.testing.assert_array_equal(g, w)

  def test_refuses_to_wrap_accumulation(self):
    # Regression: wrapped around accumulate_stats or MultiSteps, the tracker
    # differentiated the update in one micro-batch's mean and paired it with
    # that micro-batch's noise: finite, wrong estimates. The other order is
    # exact: it sees the merged statistics.
    params, loss, (x, y) = _model()
    for inner in (so.accumulate_stats(optax.sgd(0.1), 2),
                  optax.MultiSteps(optax.sgd(0.1), 2),
                  optax.chain(optax.scale(1.0),
                              so.accumulate_stats(optax.sgd(0.1), 2))):
      with self.assertRaisesRegex(ValueError, 'accumulate_stats') as cm:
        so.track_population_risk(inner).init(params)
      self.assertNotIn('\n', str(cm.exception))
    outer = so.accumulate_stats(so.track_population_risk(optax.sgd(0.1)), 2)
    state = outer.init(params)
    for half in range(2):
      part = (x[half * 8:(half + 1) * 8], y[half * 8:(half + 1) * 8])
      stats = so.value_and_grad_stats(loss)(params, part)[1]
      _, state = outer.update(stats, state, params)
    direct = so.track_population_risk(optax.sgd(0.1))
    stats = so.value_and_grad_stats(loss)(params, (x, y))[1]
    _, want = direct.update(stats, direct.init(params), params)
    np.testing.assert_allclose(float(state.inner_state.last.population),
                               float(want.last.population), rtol=1e-5)

  def test_apply_if_finite_inside_keeps_the_step(self):
    # so.apply_if_finite outside the tracker would skip a clipped step for
    # its NaN estimate; inside (as documented) the step is taken.
    params, loss, batch = _model()
    inner = optax.chain(optax.clip_by_global_norm(1e-3), optax.sgd(0.1))
    stats = so.value_and_grad_stats(loss)(params, batch)[1]
    want, _ = inner.update(stats.mean, inner.init(params), params)
    tracker = so.track_population_risk(so.apply_if_finite(inner, 3))
    got, state = jax.jit(tracker.update)(stats, tracker.init(params), params)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
      np.testing.assert_allclose(g, w, rtol=1e-6)
    self.assertTrue(bool(state.inner_state.last_finite))
    self.assertTrue(np.isnan(float(state.last.population)))

  def test_initial_state_can_be_donated(self):
    # Regression: init used one zero array for five fields, and a jitted
    # step donating the state failed ("donate the same buffer twice").
    params, loss, batch = _model()
    tracker = so.track_population_risk(optax.sgd(0.1))

    @jax.jit
    def stats_of(params):
      return so.value_and_grad_stats(loss)(params, batch)[1]
    step = jax.jit(tracker.update, donate_argnums=(1,))
    state = tracker.init(params)
    for _ in range(2):
      _, state = step(stats_of(params), state, params)
    self.assertEqual(int(state.count), 2)

  def test_integer_statistics_are_one_clear_line(self):
    stats = so.GradStats(mean={'w': jnp.ones(2, jnp.int32)},
                         sum_sq_dev={'w': jnp.ones(2, jnp.int32)},
                         count=jnp.asarray(4, jnp.int32))
    tracker = so.track_population_risk(optax.sgd(0.1))
    with self.assertRaisesRegex(ValueError, 'floating') as cm:
      tracker.update(stats, tracker.init({'w': jnp.zeros(2, jnp.int32)}),
                     {'w': jnp.zeros(2, jnp.int32)})
    self.assertNotIn('\n', str(cm.exception))

  def test_example_order_does_not_matter(self):
    params, loss, (x, y) = _model()
    perm = np.random.default_rng(1).permutation(B)
    tracker = so.track_population_risk(so.snr_adam(1e-2, mode='snr'))
    results = []
    for batch in ((x, y), (x[perm], y[perm])):
      stats = so.value_and_grad_stats(loss)(params, batch)[1]
      _, state = jax.jit(tracker.update)(stats, tracker.init(params), params)
      results.append((float(state.last.train), float(state.last.population)))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5)

  def test_accepts_per_example_gradients_and_grad_stats(self):
    params, loss, batch = _model()
    per_example = so.per_example_grads(loss)(params, batch)
    stats = so.stats_from_per_example(per_example)
    tracker = so.track_population_risk(so.snr_adam(1e-2))
    got = []
    for args, kwargs in (((per_example,), {}), ((stats,), {}),
                         ((stats.mean,), {'grad_stats': stats})):
      _, state = jax.jit(tracker.update)(*args, tracker.init(params), params,
                                         **kwargs)
      got.append(float(state.last.population))
    np.testing.assert_allclose(got, got[0], rtol=1e-6)


def so_tolerance():
  from snr_optax._src import population   # pylint: disable=g-import-not-at-top
  return population.DIAGONAL_TOLERANCE


class ShardedTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    if jax.device_count() < 8:
      self.skipTest('needs 8 devices')

  @parameterized.named_parameters(('auto', AxisType.Auto),
                                  ('explicit', AxisType.Explicit))
  def test_sharded_equals_single_device(self, axis_type):
    if not SLOW and axis_type == AxisType.Auto:
      self.skipTest('SNR_OPTAX_SLOW=1 runs Auto axes too (Explicit is the '
                    'default of jax.make_mesh)')
    params, loss, batch = _model()
    opt = so.track_population_risk(so.snr_adam(1e-2, placement='after'))

    @jax.jit
    def step(params, state, batch):
      stats = so.value_and_grad_stats(loss)(params, batch)[1]
      return opt.update(stats, state, params)

    want = step(params, opt.init(params), batch)[1]
    mesh = jax.make_mesh((4, 2), ('data', 'model'),
                         axis_types=(axis_type, axis_type))
    with jax.set_mesh(mesh):
      sharded = {'w1': jax.device_put(params['w1'],
                                      NamedSharding(mesh, P(None, 'model'))),
                 'b1': jax.device_put(params['b1'],
                                      NamedSharding(mesh, P('model'))),
                 'w2': jax.device_put(params['w2'], NamedSharding(mesh, P()))}
      data = jax.device_put(batch, NamedSharding(mesh, P('data')))
      got = step(sharded, opt.init(sharded), data)[1]
    for field in ('train', 'population'):
      np.testing.assert_allclose(float(getattr(got.last, field)),
                                 float(getattr(want.last, field)), rtol=1e-4)
    self.assertEqual(float(got.diagonal_error), 0.0)   # elementwise: exact


if __name__ == '__main__':
  absltest.main()
