# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of accumulate_stats and of the refusal of generic accumulation."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np
import optax

import snr_optax as so
from tests import numpy_reference as ref

FORMS = ('per_example', 'stats', 'extra_arg')
SHAPE = (3, 4)
MULTI_STEPS_ERROR = (r'optax\.MultiSteps cannot wrap .* keep only the last '
                     r'micro-batch.s statistics; use '
                     r'snr_optax\.accumulate_stats\(opt, k\)')


def _params(dtype=jnp.float32):
  rng = np.random.default_rng(0)
  return {'w': jnp.asarray(rng.normal(size=SHAPE), dtype)}


def _micro_batches(sizes, seed=0, dtype=jnp.float32):
  """Per-example gradients of one coordinate-wise model, batch by batch.

  A fixed signal per coordinate (none, weak or strong) plus unit noise, so
  that the hard mask has coordinates on both sides and far from its boundary.
  """
  rng = np.random.default_rng(seed)
  signal = rng.normal(size=SHAPE) * rng.choice([0.0, 0.5, 4.0], size=SHAPE)
  return [{'w': jnp.asarray(signal + rng.normal(size=(b,) + SHAPE), dtype)}
          for b in sizes]


def _feed(opt, state, g, params, form):
  """One ``opt.update`` call with micro-batch ``g`` in the given input form."""
  if form == 'per_example':
    return opt.update(g, state, params)
  stats = so.stats_from_per_example(g)
  if form == 'stats':
    return opt.update(stats, state, params)
  mean = jax.tree.map(lambda m, p: m.astype(p.dtype), stats.mean, params)
  return opt.update(mean, state, params, grad_stats=stats)


def _run(opt, batches, params, form='per_example', jit=True):
  state = opt.init(params)
  step = jax.jit(_feed, static_argnums=(0, 4)) if jit else _feed
  updates = []
  for g in batches:
    u, state = step(opt, state, g, params, form)
    updates.append(u)
  return updates, state


def _concat(batches):
  return jax.tree.map(lambda *g: jnp.concatenate(g), *batches)


class AccumulateStatsTest(parameterized.TestCase):

  @parameterized.product(form=FORMS, sizes=((4, 4, 4), (2, 7, 3, 5)))
  def test_statistics_equal_those_of_the_concatenated_batch(self, form,
                                                            sizes):
    batches = _micro_batches(sizes)
    opt = so.accumulate_stats(optax.sgd(1.0), len(sizes))
    _, state = _run(opt, batches[:-1], _params(), form)
    mu, m2, b = ref.stats(np.concatenate([g['w'] for g in batches[:-1]]))
    acc = state.acc_stats
    self.assertEqual(int(acc.count), b)
    self.assertEqual(int(state.mini_step), len(sizes) - 1)
    self.assertEqual(acc.mean['w'].dtype, jnp.float32)
    np.testing.assert_allclose(acc.mean['w'], mu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acc.sum_sq_dev['w'], m2, rtol=1e-5)
    np.testing.assert_allclose(acc.loo_noise['w'], ref.loo_noise(m2, b),
                               rtol=1e-5)

  @parameterized.product(form=FORMS, mode=('hard', 'soft', 'snr'),
                         placement=('before', 'after'))
  def test_updates_equal_snr_adam_on_the_whole_batch(self, form, mode,
                                                     placement):
    sizes = (2, 7, 3, 5)
    k = len(sizes)
    batches = _micro_batches(sizes * 3, seed=1)    # three updates
    params = _params()
    kwargs = dict(mode=mode, placement=placement, weight_decay=0.1)
    updates, state = _run(so.accumulate_stats(so.snr_adam(0.05, **kwargs), k),
                          batches, params, form)
    wholes = [_concat(batches[i:i + k]) for i in range(0, len(batches), k)]
    expected, _ = _run(so.snr_adam(0.05, **kwargs), wholes, params)
    reference = ref.snr_adam_updates(
        [np.asarray(g['w']) for g in wholes], [np.asarray(params['w'])] * 3,
        0.05, placement=placement, weight_decay=0.1, mode=mode)
    for step, u in enumerate(updates):
      if step % k < k - 1:
        np.testing.assert_array_equal(u['w'], np.zeros(SHAPE))
      else:
        np.testing.assert_allclose(u['w'], expected[step // k]['w'],
                                   rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(u['w'], reference[step // k], rtol=2e-4,
                                   atol=2e-6)
    self.assertEqual(int(state.gradient_step), 3)
    self.assertEqual(int(state.effective_batch_size), sum(sizes))
    self.assertEqual(int(state.acc_stats.count), 0)

  def test_single_example_micro_batches(self):
    batches = _micro_batches((1,) * 6, seed=2)
    params = _params()
    updates, _ = _run(so.accumulate_stats(so.snr_adam(0.1), 6), batches,
                      params)
    expected, _ = _run(so.snr_adam(0.1), [_concat(batches)], params)
    np.testing.assert_allclose(updates[-1]['w'], expected[0]['w'], rtol=1e-5,
                               atol=1e-7)

  def test_least_squares_sign(self):
    # Where optax.MultiSteps went wrong (the update followed the last
    # micro-batch's statistics alone): 3 parameters, 4 micro-batches of 8.
    # At the least-squares solution the gradients are noise; with this seed
    # the first coordinate of the whole batch's mean gradient and of the last
    # micro-batch's have opposite signs, and both beat their LOO noise.
    rng = np.random.default_rng(89)
    w_true = np.array([1.0, -2.0, 0.5], np.float32)
    x = rng.normal(size=(32, 3)).astype(np.float32)
    y = (x @ w_true + rng.normal(size=32)).astype(np.float32)
    params = {'w': jnp.asarray(w_true)}

    def loss(params, batch):
      xb, yb = batch
      return jnp.mean((xb @ params['w'] - yb) ** 2)

    stats_fn = jax.jit(so.value_and_grad_stats(loss))
    micro = [(x[i:i + 8], y[i:i + 8]) for i in range(0, 32, 8)]
    opt = so.accumulate_stats(so.snr_adam(0.05), 4)
    state = opt.init(params)
    for batch in micro:
      _, stats = stats_fn(params, batch)
      updates, state = opt.update(stats.mean, state, params, grad_stats=stats)

    whole = so.snr_adam(0.05)
    _, whole_stats = stats_fn(params, (x, y))
    expected, _ = whole.update(whole_stats, whole.init(params), params)
    np.testing.assert_allclose(updates['w'], expected['w'], rtol=1e-6)
    # The independent reference: sign of q * mu over all 32 examples.
    g = 2 * (x @ w_true - y)[:, None] * x
    mu, m2, b = ref.stats(g)
    q = ref.mask(mu, ref.loo_noise(m2, b))
    self.assertEqual(q[0], 1.0)
    self.assertEqual(np.sign(updates['w'][0]), -np.sign(mu[0]))
    # What optax.MultiSteps applied: the last micro-batch's statistics alone.
    last_mu, last_m2, last_b = ref.stats(g[24:])
    self.assertEqual(ref.mask(last_mu, ref.loo_noise(last_m2, last_b))[0], 1)
    self.assertEqual(np.sign(last_mu[0]), -np.sign(mu[0]))

  @parameterized.parameters(
      ('snr_mask_chain',), ('gated',), ('plain_sgd',))
  def test_other_inner_transformations(self, name):
    inner = {
        'snr_mask_chain': lambda: optax.chain(so.snr_mask(mode='soft'),
                                              optax.sgd(0.3)),
        'gated': lambda: so.gated(optax.scale_by_adam(), mode='snr'),
        'plain_sgd': lambda: optax.sgd(0.3),
    }[name]
    batches = _micro_batches((3, 5, 2), seed=3)
    params = _params()
    updates, _ = _run(so.accumulate_stats(inner(), 3), batches, params,
                      form='stats')
    if name == 'plain_sgd':   # SGD on the mean of all ten examples
      expected = -0.3 * np.mean(np.asarray(_concat(batches)['w']), axis=0)
    else:
      expected = _run(inner(), [_concat(batches)], params,
                      form='stats')[0][0]['w']
    np.testing.assert_allclose(updates[-1]['w'], expected, rtol=1e-5,
                               atol=1e-7)

  def test_plain_inner_sees_the_count_weighted_mean(self):
    # optax.MultiSteps would average the two means: (0 + 10) / 2 = 5.
    batches = [{'w': jnp.zeros((6,) + SHAPE)}, {'w': jnp.full((2,) + SHAPE,
                                                               10.0)}]
    updates, _ = _run(so.accumulate_stats(optax.scale(1.0), 2), batches,
                      _params())
    np.testing.assert_allclose(updates[-1]['w'], np.full(SHAPE, 2.5))

  @parameterized.parameters(jnp.float32, jnp.bfloat16, jnp.float16)
  def test_dtypes_and_scan(self, dtype):
    params = _params(dtype)
    batches = _micro_batches((4,) * 6, seed=4, dtype=dtype)
    stacked = _concat([jax.tree.map(lambda a: a[None], g) for g in batches])
    opt = so.accumulate_stats(so.snr_adam(0.1), 3)

    def body(state, g):
      return opt.update(g, state, params)[::-1]

    state, updates = jax.lax.scan(body, opt.init(params), stacked)
    self.assertEqual(updates['w'].dtype, dtype)
    self.assertEqual(state.acc_stats.mean['w'].dtype, jnp.float32)
    self.assertEqual(state.acc_stats.sum_sq_dev['w'].dtype, jnp.float32)
    np.testing.assert_array_equal(np.asarray(updates['w'], np.float32)[[0, 1, 3, 4]],
                                  np.zeros((4,) + SHAPE))
    whole = [_concat(batches[:3]), _concat(batches[3:])]
    expected, _ = _run(so.snr_adam(0.1), whole, params)
    for step, e in zip((2, 5), expected):
      np.testing.assert_allclose(np.asarray(updates['w'][step], np.float32),
                                 np.asarray(e['w'], np.float32), rtol=1e-2,
                                 atol=1e-3)
    # The statistics stay those of the float32 values of the inputs.
    _, state = _run(opt, batches[:2], params, jit=False)
    mu, m2, _ = ref.stats(np.concatenate(
        [np.asarray(g['w'], np.float32) for g in batches[:2]]))
    np.testing.assert_allclose(state.acc_stats.mean['w'], mu, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(state.acc_stats.sum_sq_dev['w'], m2,
                               rtol=1e-5)

  def test_inner_schedules_advance_once_per_update(self):
    schedule = optax.linear_schedule(1.0, 0.0, 10)
    params = _params()
    batches = _micro_batches((3,) * 9, seed=5)
    for inner in (optax.inject_hyperparams(so.snr_adam)(learning_rate=schedule),
                  so.snr_adam(schedule)):
      opt = so.accumulate_stats(inner, 3)
      updates, state = _run(opt, batches, params)
      # Every counter inside (Adam's, the schedule's, inject_hyperparams's)
      # counts updates, not micro-batches.
      counts = optax.tree_utils.tree_get_all_with_path(state.inner_state,
                                                       'count')
      self.assertGreaterEqual(len(counts), 2)
      self.assertEqual({int(c) for _, c in counts}, {3})
      # The t-th update used the learning rate schedule(t), t = 0, 1, 2.
      wholes = [_concat(batches[i:i + 3]) for i in range(0, 9, 3)]
      unit, _ = _run(so.snr_adam(1.0), wholes, params)
      for t in range(3):
        np.testing.assert_allclose(updates[3 * t + 2]['w'],
                                   unit[t]['w'] * schedule(t), rtol=1e-5,
                                   atol=1e-7)
      if isinstance(state.inner_state, optax.InjectStatefulHyperparamsState):
        self.assertAlmostEqual(
            float(state.inner_state.hyperparams['learning_rate']),
            float(schedule(2)), places=6)

  def test_tree_get_and_tree_set_reach_the_inner_state(self):
    params = _params()
    opt = so.accumulate_stats(
        optax.inject_hyperparams(so.snr_adam)(learning_rate=0.1), 2)
    _, state = _run(opt, _micro_batches((3, 3)), params)
    fraction = optax.tree_utils.tree_get(state, 'mask_fraction')
    self.assertEqual(fraction.shape, ())
    self.assertTrue(0 < float(fraction) < 1)
    inner_fraction = state.inner_state.inner_state[0].mask_fraction
    self.assertEqual(float(fraction), float(inner_fraction))
    state = optax.tree_utils.tree_set(state, learning_rate=0.5)
    self.assertEqual(
        float(optax.tree_utils.tree_get(state, 'learning_rate')), 0.5)

  def test_learning_rate_set_by_tree_set_is_used(self):
    params = _params()
    batches = _micro_batches((3, 3), seed=6)
    opt = so.accumulate_stats(
        optax.inject_hyperparams(so.snr_adam)(learning_rate=0.1), 2)
    state = optax.tree_utils.tree_set(opt.init(params), learning_rate=0.5)
    for g in batches:
      u, state = opt.update(g, state, params)
    unit, _ = _run(so.snr_adam(1.0), [_concat(batches)], params)
    np.testing.assert_allclose(u['w'], 0.5 * unit[0]['w'], rtol=1e-5,
                               atol=1e-7)

  def test_every_k_schedule_varies_the_effective_batch(self):
    opt = so.accumulate_stats(so.snr_adam(0.1),
                              lambda step: jnp.where(step < 2, 1, 3))
    params = _params()
    state = opt.init(params)
    self.assertFalse(bool(state.has_updated))
    update = jax.jit(opt.update)
    pattern, sizes = [], []
    for g in _micro_batches((4,) * 8, seed=7):
      _, state = update(g, state, params)
      pattern.append(bool(state.has_updated))
      sizes.append(int(state.effective_batch_size))
    self.assertEqual(pattern, [True, True, False, False, True, False, False,
                               True])
    self.assertEqual(sizes, [4, 4, 4, 4, 12, 12, 12, 12])
    self.assertEqual(int(state.gradient_step), 4)

  def test_should_skip_update_fn_drops_a_micro_batch(self):
    batches = _micro_batches((3, 3, 3), seed=8)
    bad = {'w': batches[1]['w'].at[0, 0, 0].set(jnp.nan)}
    params = _params()
    opt = so.accumulate_stats(so.snr_adam(0.1), 2,
                              should_skip_update_fn=optax.skip_not_finite)
    updates, state = _run(opt, [batches[0], bad, batches[2]], params)
    self.assertEqual(int(state.skip_state['num_not_finite']), 0)
    np.testing.assert_array_equal(updates[1]['w'], np.zeros(SHAPE))
    expected, _ = _run(so.snr_adam(0.1), [_concat([batches[0], batches[2]])],
                       params)
    np.testing.assert_allclose(updates[2]['w'], expected[0]['w'], rtol=1e-5,
                               atol=1e-7)
    self.assertEqual(int(state.effective_batch_size), 6)

  def test_non_finite_micro_batch_gives_non_finite_update(self):
    batches = _micro_batches((3, 3), seed=9)
    batches[0] = {'w': batches[0]['w'].at[0, 0, 0].set(jnp.inf)}
    updates, _ = _run(so.accumulate_stats(so.snr_adam(0.1), 2), batches,
                      _params())
    self.assertFalse(np.isfinite(updates[1]['w'][0, 0]))

  def test_sharded_batch_equals_single_device(self):
    n = jax.device_count()
    if 8 % n:
      self.skipTest(f'{n} devices do not divide a micro-batch of 8')
    mesh = jax.make_mesh((n,), ('data',))
    batches = _micro_batches((8,) * 4, seed=13)
    params = _params()
    opt = so.accumulate_stats(so.snr_adam(0.1), 2)
    expected, _ = _run(opt, batches, params)
    sharded = [jax.device_put(g, jax.sharding.NamedSharding(
        mesh, jax.sharding.PartitionSpec('data'))) for g in batches]
    with jax.set_mesh(mesh):
      updates, state = _run(opt, sharded, params)
    self.assertEqual(int(state.gradient_step), 2)
    for u, e in zip(updates, expected):
      np.testing.assert_allclose(u['w'], e['w'], rtol=1e-6, atol=1e-7)

  def test_abstract_init(self):
    params = {'w': jax.ShapeDtypeStruct(SHAPE, jnp.bfloat16)}
    state = so.accumulate_stats(optax.sgd(0.1), 2).init(params)
    self.assertEqual(state.acc_stats.mean['w'].shape, SHAPE)
    self.assertEqual(state.acc_stats.mean['w'].dtype, jnp.float32)

  def test_complex_parameters(self):
    rng = np.random.default_rng(10)
    batches = [{'w': jnp.asarray(rng.normal(size=(b, 3))
                                 + 1j * rng.normal(size=(b, 3)),
                                 jnp.complex64)} for b in (2, 5)]
    params = {'w': jnp.zeros(3, jnp.complex64)}
    _, state = _run(so.accumulate_stats(optax.sgd(0.1), 3), batches, params)
    g = np.concatenate([np.asarray(x['w']) for x in batches])
    mu = g.mean(0)
    np.testing.assert_allclose(state.acc_stats.mean['w'], mu, rtol=1e-5)
    np.testing.assert_allclose(state.acc_stats.sum_sq_dev['w'],
                               (np.abs(g - mu) ** 2).sum(0), rtol=1e-5)

  def test_doctest_style_readme_loop(self):
    def loss(params, batch):
      x, y = batch
      return jnp.mean((x @ params['w'] - y) ** 2)

    x = jax.random.normal(jax.random.key(0), (32, 3))
    batch = (x, x @ jnp.array([1.0, -2.0, 0.5]))
    params = {'w': jnp.zeros(3)}
    stats_fn = so.value_and_grad_stats(loss)
    opt = so.accumulate_stats(so.snr_adam(0.1), 4)
    state = opt.init(params)

    @jax.jit
    def micro_step(params, state, micro):
      _, stats = stats_fn(params, micro)
      updates, state = opt.update(stats, state, params)
      return optax.apply_updates(params, updates), state

    for _ in range(100):
      for i in range(4):
        micro = jax.tree.map(lambda a, i=i: a[8 * i:8 * (i + 1)], batch)
        params, state = micro_step(params, state, micro)
    self.assertLess(float(loss(params, batch)), 1e-3)
    self.assertEqual(int(state.gradient_step), 100)


class BadInputTest(parameterized.TestCase):

  @parameterized.parameters(0, -1, 2.5, True, '4', None)
  def test_bad_every_k(self, k):
    with self.assertRaisesRegex(ValueError, 'every_k_schedule must be an int'):
      so.accumulate_stats(so.snr_adam(0.1), k)

  def test_numpy_int_every_k(self):
    opt = so.accumulate_stats(so.snr_adam(0.1), np.int64(2))
    _, state = _run(opt, _micro_batches((3, 3)), _params())
    self.assertTrue(bool(state.has_updated))

  def test_micro_batch_shape_mismatch_names_the_leaf(self):
    opt = so.accumulate_stats(so.snr_adam(0.1), 2)
    params = _params()
    state = opt.init(params)
    with self.assertRaisesRegex(ValueError, r"\['w'\].*\(5, 3, 3\)"):
      opt.update({'w': jnp.zeros((5, 3, 3))}, state, params)
    with self.assertRaisesRegex(ValueError, r"GradStats.mean leaf \['w'\]"):
      opt.update(so.stats_from_per_example({'w': jnp.zeros((5, 3, 3))}),
                 state, params)
    with self.assertRaisesRegex(ValueError, 'grad_stats must be a'):
      opt.update(params, state, params, grad_stats=params)
    with self.assertRaisesRegex(ValueError, r'batch size 0'):
      opt.update({'w': jnp.zeros((0,) + SHAPE)}, state, params)

  def test_without_params_the_state_shapes_are_checked(self):
    opt = so.accumulate_stats(so.snr_adam(0.1), 2)
    state = opt.init(_params())
    with self.assertRaisesRegex(ValueError, 'initialised with'):
      opt.update({'w': jnp.zeros((5, 3, 3))}, state)

  def test_should_skip_update_fn_must_return_a_boolean_scalar(self):
    opt = so.accumulate_stats(
        so.snr_adam(0.1), 2,
        should_skip_update_fn=lambda *a: (jnp.zeros([2], bool), ()))
    params = _params()
    with self.assertRaisesRegex(ValueError, 'boolean scalar'):
      opt.update(_micro_batches((3,))[0], opt.init(params), params)


class GenericAccumulationIsRefusedTest(parameterized.TestCase):

  @parameterized.parameters(
      ('snr_adam',), ('snr_adam_after',), ('snr_mask_chain',), ('gated',),
      ('inject_hyperparams',), ('accumulate_stats',), ('apply_if_finite',))
  def test_multi_steps_init(self, name):
    inner = {
        'snr_adam': lambda: so.snr_adam(0.05),
        'snr_adam_after': lambda: so.snr_adam(0.05, placement='after'),
        'snr_mask_chain': lambda: optax.chain(so.snr_mask(), optax.sgd(0.1)),
        'gated': lambda: so.gated(optax.scale_by_adam()),
        'inject_hyperparams': lambda: optax.inject_hyperparams(so.snr_adam)(
            learning_rate=0.05),
        'accumulate_stats': lambda: so.accumulate_stats(optax.sgd(0.1), 2),
        'apply_if_finite': lambda: optax.apply_if_finite(so.snr_adam(0.05),
                                                         3),
    }[name]()
    with self.assertRaisesRegex(ValueError, MULTI_STEPS_ERROR):
      optax.MultiSteps(inner, 4).init(_params())
    with self.assertRaisesRegex(ValueError, MULTI_STEPS_ERROR):
      jax.jit(optax.MultiSteps(inner, 4).gradient_transformation().init)(
          _params())

  @parameterized.parameters('per_example', 'extra_arg')
  def test_multi_steps_update(self, form):
    # A state built without MultiSteps.init (e.g. restored): the update is
    # refused at trace time too, before optax's or our shape errors.
    params = _params()
    inner = so.snr_adam(0.05)
    state = optax.MultiStepsState(
        mini_step=jnp.zeros([], jnp.int32),
        gradient_step=jnp.zeros([], jnp.int32),
        inner_opt_state=inner.init(params),
        acc_grads=jax.tree.map(jnp.zeros_like, params))
    ms = optax.MultiSteps(inner, 4)
    with self.assertRaisesRegex(ValueError, MULTI_STEPS_ERROR):
      jax.jit(_feed, static_argnums=(0, 4))(ms, state,
                                            _micro_batches((3,))[0], params,
                                            form)

  def test_multi_steps_around_the_streaming_form_is_fine(self):
    # The streaming form takes ordinary gradients: averaging them is right.
    ms = optax.MultiSteps(so.streaming_snr_adamw(0.1), 2)
    params = _params()
    state = ms.init(params)
    for _ in range(2):
      u, state = ms.update(params, state, params)
    self.assertTrue(bool(ms.has_updated(state)))
    self.assertTrue(np.all(np.isfinite(u['w'])))

  def test_averaged_gradients_point_at_accumulate_stats(self):
    tx = so.snr_adam(0.1)
    params = _params()
    with self.assertRaisesRegex(
        ValueError, r'already averaged.*optax\.MultiSteps, optax\.apply_every'
        r'.*snr_optax\.accumulate_stats'):
      tx.update({'w': jnp.ones(SHAPE)}, tx.init(params), params)

  def test_stacked_micro_batches_point_at_accumulate_stats(self):
    tx = so.snr_adam(0.1)
    params = _params()
    with self.assertRaisesRegex(
        ValueError, r'\(4, 8, 3, 4\).*micro-batches stacked.*'
        r'snr_optax\.accumulate_stats'):
      tx.update({'w': jnp.ones((4, 8) + SHAPE)}, tx.init(params), params)

  def test_apply_every_before_a_per_example_transformation(self):
    # What can and cannot be caught (README, "Gradient accumulation").
    params = _params()
    tx = optax.chain(optax.apply_every(2), so.snr_mask())
    state = tx.init(params)
    # A GradStats, or micro-batches of different sizes, fail inside optax's
    # apply_every, before any snr_optax code runs.
    with self.assertRaises((ValueError, TypeError)):
      tx.update(so.stats_from_per_example(_micro_batches((3,))[0]), state,
                params)
    _, state2 = tx.update(_micro_batches((3,))[0], state, params)
    with self.assertRaises((ValueError, TypeError)):
      tx.update(_micro_batches((5,))[0], state2, params)

  def test_apply_every_before_the_mask_is_not_detected(self):
    # Documented as not detectable (README): with per-example micro-batches
    # of one size, the mask sees zeros, then per index i the sum of example i
    # of each micro-batch; with grad_stats=, apply_every has no effect.
    batches = _micro_batches((4, 4), seed=12)
    params = _params()
    tx = optax.chain(optax.apply_every(2), so.snr_mask())
    updates, _ = _run(tx, batches, params, jit=False)
    np.testing.assert_array_equal(updates[0]['w'], np.zeros(SHAPE))
    summed = {'w': batches[0]['w'] + batches[1]['w']}
    np.testing.assert_allclose(updates[1]['w'],
                               _run(so.snr_mask(), [summed], params)[0][0]['w'],
                               rtol=1e-6)
    updates, _ = _run(tx, batches, params, form='extra_arg', jit=False)
    for g, u in zip(batches, updates):
      np.testing.assert_allclose(u['w'],
                                 _run(so.snr_mask(), [g], params)[0][0]['w'],
                                 rtol=1e-6)

  def test_apply_every_after_the_mask_sums_masked_means(self):
    # chain(snr_mask(), apply_every(k)) masks each micro-batch on its own
    # statistics and sums the masked means: a well-defined (different)
    # optimizer, not refused, and not an accumulation of the statistics.
    batches = _micro_batches((4, 4), seed=11)
    params = _params()
    tx = optax.chain(so.snr_mask(), optax.apply_every(2))
    updates, _ = _run(tx, batches, params)
    per_batch = [_run(so.snr_mask(), [g], params)[0][0]['w'] for g in batches]
    np.testing.assert_allclose(updates[1]['w'], per_batch[0] + per_batch[1],
                               rtol=1e-6)


if __name__ == '__main__':
  absltest.main()
