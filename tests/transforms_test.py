# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of snr_mask, gated, scale_by_streaming_snr and the aliases."""

import functools

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np
import optax

import snr_optax as so
from tests import numpy_reference as ref

MODES = ('hard', 'soft', 'snr')
B = 6
SHAPES = {'w': (3, 4), 'b': (4,)}


def _params(dtype=jnp.float32):
  rng = np.random.default_rng(0)
  return {k: jnp.asarray(rng.normal(size=s), dtype) for k, s in SHAPES.items()}


def _per_example_steps(n_steps, seed=0, dtype=jnp.float32):
  """Per-example gradients with a mix of strong, weak and no signal."""
  rng = np.random.default_rng(seed)
  steps = []
  for _ in range(n_steps):
    step = {}
    for k, s in SHAPES.items():
      signal = rng.normal(size=s) * rng.choice([0.0, 0.5, 4.0], size=s)
      step[k] = jnp.asarray(signal + rng.normal(size=(B,) + s), dtype)
    steps.append(step)
  return steps


def _run(tx, steps, params, *, form='per_example'):
  """Runs ``tx.update`` under jit on each step; returns updates and state."""
  state = tx.init(params)

  @jax.jit
  def step(g, state):
    if form == 'per_example':
      return tx.update(g, state, params)
    stats = so.stats_from_per_example(g)
    if form == 'stats':
      return tx.update(stats, state, params)
    return tx.update(jax.tree.map(lambda m, p: m.astype(p.dtype), stats.mean,
                                  params), state, params, grad_stats=stats)

  updates = []
  for g in steps:
    u, state = step(g, state)
    updates.append(u)
  return updates, state


class SNRMaskTest(parameterized.TestCase):

  @parameterized.product(mode=MODES, reduction=('element', 'tensor'),
                         form=('per_example', 'stats', 'extra_arg'))
  def test_matches_numpy_over_steps(self, mode, reduction, form):
    steps = _per_example_steps(3)
    tx = so.snr_mask(mode=mode, alpha=0.7, softness=2.0, reduction=reduction)
    updates, state = _run(tx, steps, _params(), form=form)
    for u, g in zip(updates, steps):
      fractions = []
      for k in SHAPES:
        mu, m2, b = ref.stats(g[k])
        q = ref.mask(mu, ref.loo_noise(m2, b), mode=mode, alpha=0.7,
                     softness=2.0, reduction=reduction)
        np.testing.assert_allclose(u[k], q * mu, rtol=1e-4, atol=1e-5)
        fractions.append(q.ravel())
    np.testing.assert_allclose(state.mask_fraction,
                               np.concatenate(fractions).mean(), rtol=1e-5)

  def test_without_params_checks_common_batch_axis(self):
    tx = so.snr_mask()
    g = _per_example_steps(1)[0]
    u, _ = tx.update(g, tx.init(_params()))
    self.assertEqual(u['w'].shape, (3, 4))

  def test_mask_fraction_is_findable_with_tree_get(self):
    opt = so.snr_adam(1e-2)
    _, state = _run(opt, _per_example_steps(1), _params())
    fraction = optax.tree_utils.tree_get(state, 'mask_fraction')
    self.assertEqual(fraction.shape, ())
    self.assertEqual(fraction.dtype, jnp.float32)
    self.assertTrue(0 < float(fraction) < 1)


class SNRAdamTest(parameterized.TestCase):

  @parameterized.product(mode=MODES, placement=('before', 'after'),
                         weight_decay=(0.0, 0.1))
  def test_matches_numpy_adam_over_steps(self, mode, placement, weight_decay):
    steps = _per_example_steps(5)
    params = _params()
    opt = so.snr_adam(0.05, mode=mode, placement=placement,
                      weight_decay=weight_decay)
    updates, _ = _run(opt, steps, params)
    for k in SHAPES:
      want = ref.snr_adam_updates([np.asarray(g[k]) for g in steps],
                                  [np.asarray(params[k])] * len(steps), 0.05,
                                  placement=placement,
                                  weight_decay=weight_decay, mode=mode)
      for u, w in zip(updates, want):
        np.testing.assert_allclose(u[k], w, rtol=2e-4, atol=2e-6)

  def test_placements_differ(self):
    steps = _per_example_steps(4)
    before, _ = _run(so.snr_adam(0.1, mode='snr'), steps, _params())
    after, _ = _run(so.snr_adam(0.1, mode='snr', placement='after'), steps,
                    _params())
    self.assertGreater(np.max(np.abs(before[-1]['w'] - after[-1]['w'])), 1e-3)

  def test_weight_decay_is_never_masked(self):
    row = jnp.ones((1,) + SHAPES['w'])
    g = {'w': jnp.concatenate([row, -row] * 3), 'b': jnp.zeros((B, 4))}
    params = _params()
    for placement in ('before', 'after'):
      opt = so.snr_adam(0.1, weight_decay=0.5, placement=placement)
      u, state = opt.update(g, opt.init(params), params)
      self.assertEqual(float(optax.tree_utils.tree_get(state,
                                                       'mask_fraction')), 0.0)
      np.testing.assert_allclose(u['w'], -0.1 * 0.5 * params['w'], rtol=1e-6)

  def test_learning_rate_schedule(self):
    schedule = optax.linear_schedule(1.0, 0.0, 4)
    steps = _per_example_steps(3)
    scheduled, _ = _run(so.snr_adam(schedule), steps, _params())
    for t, u in enumerate(scheduled):
      plain, _ = _run(so.snr_adam(1.0), steps[:t + 1], _params())
      np.testing.assert_allclose(u['w'], plain[-1]['w'] * (1 - t / 4),
                                 rtol=1e-5, atol=1e-7)

  def test_jit_does_not_recompile_across_steps(self):
    traces = []
    opt = so.snr_adam(1e-2, mode='snr')
    params = _params()

    @jax.jit
    def step(g, state, params):
      traces.append(1)
      u, state = opt.update(g, state, params)
      return optax.apply_updates(params, u), state

    state = opt.init(params)
    for g in _per_example_steps(4):
      params, state = step(g, state, params)
    self.assertLen(traces, 1)

  def test_unknown_placement_lists_valid_values(self):
    with self.assertRaisesRegex(ValueError, "placement='middle'.*'before', "
                                "'after'"):
      so.snr_adam(1e-3, placement='middle')

  @parameterized.parameters(('b1', 1.0), ('b2', -0.1))
  def test_betas_out_of_range(self, name, value):
    with self.assertRaisesRegex(ValueError, f'{name} must lie in'):
      so.snr_adam(1e-3, **{name: value})

  def test_negative_weight_decay(self):
    with self.assertRaisesRegex(ValueError, 'weight_decay must be >= 0'):
      so.snr_adam(1e-3, weight_decay=-1.0)


class StreamingTest(parameterized.TestCase):

  @parameterized.product(mode=MODES, reduction=('element', 'tensor'),
                         warmup_steps=(0, 3))
  def test_matches_numpy_over_steps(self, mode, reduction, warmup_steps):
    rng = np.random.default_rng(2)
    grads = [{k: jnp.asarray(rng.normal(size=s) + 0.5, jnp.float32)
              for k, s in SHAPES.items()} for _ in range(8)]
    params = _params()
    opt = so.streaming_snr_adamw(0.01, rho=0.9, weight_decay=0.2, mode=mode,
                                 reduction=reduction, alpha=0.8,
                                 warmup_steps=warmup_steps)
    updates, state = _run(opt, grads, params)
    for k in SHAPES:
      want = ref.streaming_updates(
          [np.asarray(g[k]) for g in grads], 0.01, rho=0.9, weight_decay=0.2,
          warmup_steps=warmup_steps, params_steps=[np.asarray(params[k])] * 8,
          mode=mode, reduction=reduction, alpha=0.8)
      for u, w in zip(updates, want):
        np.testing.assert_allclose(u[k], w, rtol=2e-4, atol=1e-7)
    self.assertEqual(int(optax.tree_utils.tree_get(state, 'count')), 8)

  def test_one_extra_state_vector_over_adam(self):
    params = _params()
    n_params = sum(p.size for p in jax.tree.leaves(params))
    size = lambda s: sum(x.size for x in jax.tree.leaves(s))
    adam = size(optax.adam(1e-3).init(params))
    ours = size(so.streaming_snr_adamw(1e-3).init(params))
    # Adam has count + m + v; we add s and the scalar mask_fraction.
    self.assertEqual(ours - adam, n_params + 1)

  def test_warmup_holds_q_at_one(self):
    opt = so.scale_by_streaming_snr(warmup_steps=2, mode='hard')
    params = {'w': jnp.zeros(3)}
    state = opt.init(params)
    fractions = []
    for _ in range(3):
      _, state = opt.update({'w': jnp.array([1.0, -1.0, 2.0])}, state)
      fractions.append(float(state.mask_fraction))
    # t = 3 of a constant gradient: s_hat > m_hat^2 early (m is biased).
    self.assertEqual(fractions[:2], [1.0, 1.0])

  def test_per_example_input_is_rejected_with_a_hint(self):
    opt = so.streaming_snr_adamw(1e-3)
    params = _params()
    with self.assertRaisesRegex(ValueError, r"\['b'\] has shape \(6, 4\).*"
                                'per-example'):
      opt.update(_per_example_steps(1)[0], opt.init(params), params)


class CompositionTest(parameterized.TestCase):

  @parameterized.parameters(
      dict(factory=so.snr_adam, kwargs=dict(mode='snr', alpha=0.5,
                                            softness=2.0, weight_decay=0.1),
           per_example=True),
      dict(factory=so.snr_adam, kwargs=dict(placement='after', alpha=2.0),
           per_example=True),
      dict(factory=so.streaming_snr_adamw,
           kwargs=dict(rho=0.9, alpha=0.5, warmup_steps=2, weight_decay=0.1),
           per_example=False))
  def test_inject_hyperparams(self, factory, kwargs, per_example):
    steps = _per_example_steps(4)
    if not per_example:
      steps = [jax.tree.map(lambda g: g.mean(0), s) for s in steps]
    plain, _ = _run(factory(0.03, **kwargs), steps, _params())
    injected_tx = optax.inject_hyperparams(factory)(0.03, **kwargs)
    injected, state = _run(injected_tx, steps, _params())
    for a, b in zip(plain, injected):
      jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5,
                                                           atol=1e-7), a, b)
    for name in kwargs:
      if not isinstance(kwargs[name], str):
        self.assertIn(name, state.hyperparams)

  def test_injected_alpha_moves_the_mask(self):
    tx = optax.inject_hyperparams(so.snr_adam)(learning_rate=0.1, alpha=0.0)
    params = _params()
    state = tx.init(params)
    g = _per_example_steps(1)[0]
    step = jax.jit(tx.update)
    fractions = []
    for alpha in (0.0, 1.0, 100.0):
      state.hyperparams['alpha'] = jnp.asarray(alpha)
      _, new_state = step(g, state, params)
      fractions.append(float(optax.tree_utils.tree_get(new_state.inner_state,
                                                       'mask_fraction')))
    self.assertEqual(fractions[0], 1.0)
    self.assertTrue(fractions[0] > fractions[1] > fractions[2])

  def test_apply_if_finite_with_stats_as_extra_arg(self):
    opt = optax.apply_if_finite(so.snr_adam(0.1, mode='snr'), 3)
    params = _params()
    state = opt.init(params)
    g = _per_example_steps(2)

    @jax.jit
    def step(g, state):
      stats = so.stats_from_per_example(g)
      return opt.update(stats.mean, state, params, grad_stats=stats)

    u, state = step(g[0], state)
    bad = dict(g[1], w=g[1]['w'].at[2, 0, 0].set(jnp.nan))
    u_bad, state_bad = step(bad, state)
    self.assertFalse(bool(state_bad.last_finite))
    jax.tree.map(np.testing.assert_array_equal, state_bad.inner_state,
                 state.inner_state)
    jax.tree.map(lambda x: np.testing.assert_array_equal(x, 0), u_bad)

  def test_apply_if_finite_after_snr_mask(self):
    opt = optax.chain(so.snr_mask(mode='soft'),
                      optax.apply_if_finite(optax.adam(0.1), 3))
    params = _params()
    g = _per_example_steps(2)
    u, state = opt.update(g[0], opt.init(params), params)
    bad = dict(g[1], b=g[1]['b'].at[0, 1].set(jnp.inf))
    u_bad, state_bad = opt.update(bad, state, params)
    self.assertFalse(bool(state_bad[1].last_finite))
    jax.tree.map(np.testing.assert_array_equal, state_bad[1].inner_state,
                 state[1].inner_state)

  def test_apply_if_finite_with_streaming(self):
    opt = optax.apply_if_finite(so.streaming_snr_adamw(0.1), 3)
    params = _params()
    state = opt.init(params)
    _, state = opt.update(jax.tree.map(jnp.ones_like, params), state, params)
    bad = jax.tree.map(lambda p: jnp.full_like(p, jnp.nan), params)
    _, state_bad = opt.update(bad, state, params)
    jax.tree.map(np.testing.assert_array_equal, state_bad.inner_state,
                 state.inner_state)

  def test_nan_per_example_gradient_never_looks_finite(self):
    for opt in (so.snr_adam(0.1), so.snr_adam(0.1, placement='after'),
                so.snr_mask(mode='hard')):
      params = _params()
      g = _per_example_steps(1)[0]
      g['w'] = g['w'].at[0, 0, 0].set(jnp.nan)
      u, _ = opt.update(g, opt.init(params), params)
      self.assertTrue(np.isnan(u['w'][0, 0]))

  def test_gated_passes_extra_args_and_composes(self):
    tx = optax.chain(so.gated(optax.scale_by_belief(), mode='snr'),
                     optax.scale(-0.1))
    updates, state = _run(tx, _per_example_steps(2), _params())
    self.assertEqual(updates[0]['w'].shape, (3, 4))
    self.assertIsInstance(state[0], so.GatedState)


class DtypeTest(parameterized.TestCase):

  @parameterized.product(
      dtype=('float32', 'float16', 'bfloat16'),
      opt_name=('before', 'after', 'streaming', 'mask'))
  def test_dtypes_are_preserved_and_finite(self, dtype, opt_name):
    opt = {
        'before': lambda: so.snr_adam(1e-3, weight_decay=0.1),
        'after': lambda: so.snr_adam(1e-3, placement='after'),
        'streaming': lambda: so.streaming_snr_adamw(1e-3),
        'mask': lambda: so.snr_mask(mode='snr'),
    }[opt_name]()
    params = _params(dtype)
    # Tiny gradients: their squares underflow float16.
    steps = [jax.tree.map(lambda g: (g * 1e-4).astype(dtype), s)
             for s in _per_example_steps(3)]
    if opt_name == 'streaming':
      steps = [jax.tree.map(lambda g: g.mean(0).astype(dtype), s)
               for s in steps]
    state = opt.init(params)
    dtypes = jax.tree.map(lambda x: x.dtype, state)
    step = jax.jit(lambda g, s: opt.update(g, s, params))
    for g in steps:
      u, state = step(g, state)
      jax.tree.map(lambda x, p: self.assertEqual(x.dtype, p.dtype), u, params)
      self.assertTrue(all(np.all(np.isfinite(np.asarray(x, np.float32)))
                          for x in jax.tree.leaves(u)))
      self.assertEqual(jax.tree.map(lambda x: x.dtype, state), dtypes)
    if opt_name in ('before', 'after', 'streaming'):
      self.assertTrue(any(np.any(np.asarray(x, np.float32) != 0)
                          for x in jax.tree.leaves(u)))


class ErrorTest(parameterized.TestCase):

  def test_per_example_shape_mismatch_names_leaf_and_shapes(self):
    opt = so.snr_adam(1e-3)
    params = _params()
    g = _per_example_steps(1)[0]
    g['w'] = g['w'][:, :2]
    with self.assertRaisesRegex(ValueError, r"\['w'\] has shape \(6, 2, 4\), "
                                r'but params has shape \(3, 4\); expected '
                                r'\(6, 3, 4\)'):
      opt.update(g, opt.init(params), params)

  def test_missing_batch_axis_says_so(self):
    opt = so.snr_mask()
    params = {'w': jnp.zeros((4, 4))}
    with self.assertRaisesRegex(ValueError, 'already averaged'):
      opt.update({'w': jnp.ones((4, 4))}, opt.init(params), params)

  def test_scalar_leaf_without_batch_axis(self):
    opt = so.snr_mask()
    with self.assertRaisesRegex(ValueError, r"\['s'\] is a scalar"):
      opt.update({'s': jnp.ones(()), 'w': jnp.ones((3, 2))},
                 opt.init(None))

  def test_batch_of_one(self):
    opt = so.snr_adam(1e-3)
    params = {'w': jnp.zeros(3)}
    with self.assertRaisesRegex(ValueError, 'batch size 1.*at least 2'):
      opt.update({'w': jnp.ones((1, 3))}, opt.init(params), params)

  def test_structure_mismatch(self):
    opt = so.snr_mask()
    params = {'w': jnp.zeros(3)}
    with self.assertRaisesRegex(ValueError, 'structure of params'):
      opt.update({'v': jnp.ones((2, 3))}, opt.init(params), params)

  def test_gradstats_mismatch(self):
    opt = so.snr_mask()
    params = {'w': jnp.zeros(3)}
    stats = so.stats_from_per_example({'w': jnp.ones((2, 4))})
    with self.assertRaisesRegex(ValueError, r"GradStats.mean leaf \['w'\]"):
      opt.update(stats, opt.init(params), params)

  def test_grad_stats_extra_arg_must_be_gradstats(self):
    opt = so.snr_mask()
    params = {'w': jnp.zeros(3)}
    with self.assertRaisesRegex(ValueError, 'grad_stats must be'):
      opt.update(params, opt.init(params), params, grad_stats={'w': 1})

  @parameterized.parameters(
      functools.partial(so.snr_mask, mode='x'),
      functools.partial(so.gated, optax.identity(), reduction='x'),
      functools.partial(so.scale_by_streaming_snr, mode='x'),
      functools.partial(so.streaming_snr_adamw, 1e-3, reduction='x'))
  def test_unknown_choices(self, factory):
    with self.assertRaisesRegex(ValueError, "Unknown .*='x'; valid values"):
      factory()

  def test_streaming_rho_out_of_range(self):
    with self.assertRaisesRegex(ValueError, 'rho must lie in'):
      so.scale_by_streaming_snr(rho=1.5)


class ComplexInjectedHyperparametersTest(absltest.TestCase):
  """inject_hyperparams casts hyperparameters to complex parameters' dtype."""

  def test_optimizers_take_them_as_optax_does(self):
    params = {'c': jnp.array([1 + 2j, -1j], jnp.complex64)}
    per_example = {'c': jnp.array([[1 + 1j, 2j], [1 - 1j, 1j]],
                                  jnp.complex64)}
    for make in (so.snr_adam, so.streaming_snr_adamw):
      opt = optax.inject_hyperparams(make)(learning_rate=0.1)
      grads = per_example if make is so.snr_adam else {
          'c': per_example['c'].mean(0)}
      updates, _ = opt.update(grads, opt.init(params), params)
      self.assertEqual(updates['c'].dtype, jnp.complex64)
      self.assertTrue(bool(jnp.all(jnp.isfinite(updates['c']))))

  def test_a_complex_weight_decay_is_refused(self):
    with self.assertRaisesRegex(ValueError, 'weight_decay must be real'):
      so.snr_adam(0.1, weight_decay=1 + 1j)


if __name__ == '__main__':
  absltest.main()
