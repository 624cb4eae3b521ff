# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""optax's wrapper tests, adapted to the SNR optimizers; non-finite steps.

Adapted from optax 0.2.8 (the pinned version):
``optax/transforms/_conditionality_test.py``,
``optax/schedules/_inject_test.py`` and
``optax/tree_utils/_state_utils_test.py``, with ``snr_adam`` driven by
per-example gradients (in the three input forms: per-example, ``GradStats``,
mean with ``grad_stats=``) and ``streaming_snr_adamw`` by mean gradients. The
optimizer suites are in ``optax_contract_test.py``.

Adapted, with what changed:

* ``test_apply_if_finite``: for ``so.apply_if_finite`` with optax's three
  inner optimizers, and with a per-example SGD (``snr_mask`` then SGD) in
  each input form; ``optax.apply_if_finite`` with the streaming optimizer and
  in the ``grad_stats=`` form, where it applies.
* ``test_apply_if_finite_pmap``: the NaN arises inside the loss (arctanh(2)),
  the step is ``jax.jit`` over a batch sharded on 8 devices (``pmap`` is
  what optax tested; sharded ``jit`` is how this library is run).
* ``ConditionallyTransformTest``, ``ConditionallyMaskTest``: with the SNR
  optimizers as the inner transformation, in the forms where they apply.
* ``InjectHyperparamsTest``: every test, with the SNR optimizers' own
  hyperparameters (schedules for ``learning_rate``, ``alpha``, ``rho``;
  static ``b1``; the dtype tests, where a bfloat16 decay rate is refused).
* ``StateUtilsTest``: ``tree_map_params``, ``tree_get`` (``mask_fraction``
  included) and ``tree_set`` on the SNR optimizers' states.

Not applicable, and why:

* ``conditionally_mask``/``conditionally_transform`` around a per-example
  transformation fed per-example gradients or a ``GradStats``: their reject
  branch returns ``updates`` (or zeros like it), a batch or a ``GradStats``,
  where the accept branch returns parameter-shaped updates, so ``lax.cond``
  refuses the pair (``test_per_example_forms_are_refused_by_lax_cond``). In
  the ``grad_stats=`` form they work and are tested.
* ``optax.skip_not_finite`` is a ``should_skip_update_fn`` of
  ``optax.MultiSteps``, which cannot hold a per-example transformation; it is
  tested with ``streaming_snr_adamw``. ``so.apply_if_finite`` is the skip
  mechanism of the per-example forms.
* ``test_prng_key_not_hyperparameter``, ``StatefulTest`` and
  ``test_dict_based_optimizers``/``test_tree_get_all_with_path``'s
  generic cases test optax's machinery on optax's own objects, not an
  optimizer: nothing of ours is in them.
"""

import os
import sys

if 'jax' not in sys.modules and ('--xla_force_host_platform_device_count'
                                 not in os.environ.get('XLA_FLAGS', '')):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                             ' --xla_force_host_platform_device_count=8')

# pylint: disable=g-import-not-at-top,wrong-import-position
from typing import NamedTuple

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np
import optax
from optax._src import test_utils

import snr_optax as so
from snr_optax._src import stats as stats_lib

FORMS = ('per_example', 'stats', 'grad_stats')
W = jnp.array([1.5, 0.5, 1.25, 0.75])   # per-example weights, mean exactly 1


def _in_form(form, per_example):
  """(updates, extra args) of per-example gradients in an input form."""
  if form == 'per_example':
    return per_example, {}
  stats = so.stats_from_per_example(per_example)
  if form == 'stats':
    return stats, {}
  return stats.mean, {'grad_stats': stats}


def _weighted(grads):
  """Per-example gradients w_i * grads: their mean is ``grads``."""
  return jax.tree.map(
      lambda g: W.astype(g.dtype).reshape((-1,) + (1,) * np.ndim(g))
      * jnp.asarray(g)[None], grads)


def _build_sgd():
  return optax.sgd(1.0)


def _build_stateful_sgd():
  return optax.sgd(1.0, momentum=0.0)


def _build_sgd_extra_args():

  def init_fn(params):
    del params
    return {'foo': 1}

  def update_fn(grads, state, params=None, *, foo=None, **extra_args):
    del extra_args, foo, params
    return grads, state

  t = optax.GradientTransformationExtraArgs(init_fn, update_fn)
  return optax.chain(_build_sgd(), t)


def _build_snr_sgd():
  # snr_mask of identical-sign examples is the mean (q = 1), then SGD.
  return optax.chain(so.snr_mask(mode='hard'), optax.sgd(1.0))


class ApplyIfFiniteTest(parameterized.TestCase):
  """optax's test_apply_if_finite for so.apply_if_finite."""

  def _check(self, opt, grads_of):
    """optax's sequence: 1 good, 2 bad, 1 good, 2 bad, 1 accepted bad."""
    one = jnp.array(1.0)
    nan = jnp.array(jnp.nan)
    params = jnp.array(0.0)
    state = opt.init(params)

    def step(params, state, x):
      updates, kwargs = grads_of(params, x)
      updates, state = opt.update(updates, state, params, **kwargs)
      return optax.apply_updates(params, updates), state

    # Do one successful param update
    params, state = step(params, state, one)
    # We know exactly what should be the value of params since we are
    # effectively using sgd in all cases.
    self.assertEqual(-1.0, float(jax.tree.flatten(params)[0][0]))
    self.assertTrue(bool(getattr(state, 'last_finite')))
    # Check 2 rejected param updates
    for step_ in range(2):
      params, state = step(params, state, nan)
      self.assertEqual(-1.0, float(jax.tree.flatten(params)[0][0]))
      self.assertFalse(bool(getattr(state, 'last_finite')))
      self.assertEqual(step_ + 1, int(getattr(state, 'notfinite_count')))
    # Next successful param update
    params, state = step(params, state, one)
    self.assertEqual(-2.0, float(jax.tree.flatten(params)[0][0]))
    self.assertTrue(bool(getattr(state, 'last_finite')))
    # Again 2 rejected param updates
    for step_ in range(2):
      params, state = step(params, state, nan)
      self.assertEqual(-2.0, float(jax.tree.flatten(params)[0][0]))
      self.assertFalse(bool(getattr(state, 'last_finite')))
      self.assertEqual(step_ + 1, int(getattr(state, 'notfinite_count')))
    # Next param update with NaN is accepted since we reached maximum
    params, state = step(params, state, nan)
    self.assertTrue(bool(jnp.isnan(jax.tree.flatten(params)[0][0])))
    self.assertEqual(5, int(getattr(state, 'total_notfinite')))

  @parameterized.named_parameters(
      ('sgd', _build_sgd),
      ('stateful_sgd', _build_stateful_sgd),
      ('sgd_extra_args', _build_sgd_extra_args),
  )
  def test_apply_if_finite(self, opt_builder):
    def fn(p, x):
      return p * x
    grads_fn = jax.grad(jax.jit(fn))
    self._check(so.apply_if_finite(opt_builder(), 2),
                lambda p, x: (grads_fn(p, x), {}))

  @parameterized.parameters(*FORMS)
  def test_apply_if_finite_per_example(self, form):
    def loss(p, w):      # example i: w_i * p * x; the batch mean is p * x
      return jnp.mean(w * p)
    per_example = so.per_example_grads(loss)

    def grads_of(p, x):
      return _in_form(form, per_example(p, W * x))
    self._check(so.apply_if_finite(_build_snr_sgd(), 2), grads_of)

  @parameterized.parameters('streaming', 'grad_stats')
  def test_optax_apply_if_finite_where_it_applies(self, use):
    """optax's wrapper sees a non-finite mean: streaming, grad_stats=."""
    if use == 'streaming':
      opt = optax.apply_if_finite(optax.chain(
          so.streaming_snr_adamw(1.0, weight_decay=0.0, alpha=0.0),
          optax.scale(0.1 / 1.0)), 2)
      params = jnp.array(0.0)
      state = opt.init(params)
      updates, state = opt.update(jnp.array(1.0), state, params)
      self.assertTrue(bool(state.last_finite))
      bad, state_bad = opt.update(jnp.array(jnp.nan), state, params)
      self.assertFalse(bool(state_bad.last_finite))
      self.assertEqual(float(bad), 0.0)
      test_utils.assert_trees_all_equal(state_bad.inner_state,
                                        state.inner_state)
      return
    opt = optax.apply_if_finite(_build_snr_sgd(), 2)
    self._check(opt, lambda p, x: _in_form(
        'grad_stats', _weighted(x * jnp.ones_like(p))))

  def test_apply_if_finite_sharded(self):
    """optax's pmap test: NaNs made inside the loss, on a sharded batch."""
    mesh = jax.make_mesh((8,), ('data',),
                         axis_types=(jax.sharding.AxisType.Auto,))
    batch_sharding = jax.sharding.NamedSharding(mesh, jax.P('data'))
    replicated = jax.sharding.NamedSharding(mesh, jax.P())

    def fn(p, x):     # per-example arctanh(x_i) * p; arctanh(2) is NaN
      return jnp.mean(jnp.arctanh(x) * p)

    opt = so.apply_if_finite(_build_snr_sgd(), 2)
    stats_fn = so.value_and_grad_stats(fn)

    @jax.jit
    def fn_update(params, opt_state, x):
      _, stats = stats_fn(params, x)
      updates, new_opt_state = opt.update(stats, opt_state, params)
      return optax.apply_updates(params, updates), new_opt_state

    half = jax.device_put(jnp.full([16], 0.5), batch_sharding)
    two = jax.device_put(jnp.full([16], 2.0), batch_sharding)
    params = jax.device_put(jnp.array(0.0), replicated)
    opt_state = opt.init(params)
    # Do one successful param update
    params, opt_state = fn_update(params, opt_state, half)
    self.assertTrue(bool(opt_state.last_finite))
    np.testing.assert_allclose(params, -np.arctanh(0.5), rtol=1e-6)
    # Check 2 rejected param updates
    for step in range(2):
      params, opt_state = fn_update(params, opt_state, two)
      self.assertFalse(bool(opt_state.last_finite))
      self.assertEqual(step + 1, opt_state.notfinite_count.item())
    # Next successful param update
    params, opt_state = fn_update(params, opt_state, half)
    self.assertTrue(bool(opt_state.last_finite))
    # Again 2 rejected param updates
    for step in range(2):
      params, opt_state = fn_update(params, opt_state, two)
      self.assertFalse(bool(opt_state.last_finite))
      self.assertEqual(step + 1, opt_state.notfinite_count.item())
    # Next param update with NaN is accepted since we reached maximum
    _, opt_state = fn_update(params, opt_state, two)
    self.assertEqual(5, opt_state.total_notfinite.item())

  @parameterized.parameters(-1, 1.5, True, None)
  def test_bad_max_consecutive_errors(self, value):
    with self.assertRaisesRegex(ValueError, 'max_consecutive_errors must be '
                                'an int >= 0'):
      so.apply_if_finite(optax.sgd(1.0), value)


def _params():
  rng = np.random.default_rng(0)
  return {'w': jnp.asarray(rng.normal(size=(3, 2)), jnp.float32),
          'b': jnp.asarray(rng.normal(size=(2,)), jnp.float32)}


def _per_example(seed=0, b=4):
  rng = np.random.default_rng(seed)
  return {'w': jnp.asarray(rng.normal(size=(b, 3, 2)) + 1.0, jnp.float32),
          'b': jnp.asarray(rng.normal(size=(b, 2)) - 1.0, jnp.float32)}


def _assert_trees_finite_equal(test, a, b):
  jax.tree.map(lambda x, y: (np.testing.assert_array_equal(x, y),
                             test.assertTrue(np.all(np.isfinite(
                                 np.asarray(x, np.float64).real)))), a, b)


class NonFiniteStatisticsTest(parameterized.TestCase):
  """Non-finite statistics never reach the parameters or the state.

  Finite per-example gradients whose M2 exceeds the float range give an inf
  M2, a NaN mask and a NaN update (never a finite-looking one), which
  so.apply_if_finite skips.
  """

  def _huge_batch(self):
    # Finite per-example gradients whose M2 (1.8e39) exceeds float32.
    g = _per_example(1)
    return dict(g, w=g['w'].at[:2, 0, 0].set(jnp.array([3e19, -3e19]))
                .at[2:, 0, 0].set(0.0))

  def test_huge_finite_gradients_give_inf_m2_and_nan_mask(self):
    stats = so.stats_from_per_example(self._huge_batch())
    self.assertTrue(np.isfinite(stats.mean['w'][0, 0]))
    self.assertEqual(float(stats.sum_sq_dev['w'][0, 0]), np.inf)
    for mode in ('hard', 'soft', 'snr'):
      for reduction in ('element', 'tensor'):
        q = so.compute_mask(stats, mode=mode, reduction=reduction)
        self.assertTrue(np.isnan(q['w'][0, 0]), (mode, reduction))

  @parameterized.product(form=FORMS, placement=('before', 'after'),
                         reduction=('element', 'tensor'))
  def test_huge_finite_gradients_are_visible_not_finite_looking(
      self, form, placement, reduction):
    opt = so.snr_adam(0.1, placement=placement, reduction=reduction)
    params = _params()
    updates, kwargs = _in_form(form, self._huge_batch())
    u, _ = opt.update(updates, opt.init(params), params, **kwargs)
    self.assertTrue(np.isnan(u['w'][0, 0]))

  def test_optax_apply_if_finite_misses_them_in_the_grad_stats_form(self):
    """optax.apply_if_finite sees the (finite) mean only, not the M2."""
    opt = optax.apply_if_finite(so.snr_adam(0.1), 3)
    params = _params()
    updates, kwargs = _in_form('grad_stats', self._huge_batch())
    u, state = opt.update(updates, opt.init(params), params, **kwargs)
    self.assertTrue(bool(state.last_finite))
    self.assertTrue(np.isnan(u['w'][0, 0]))          # what so.apply_if_finite
    self.assertTrue(np.isnan(optax.tree.get(state.inner_state, 'mu')['w'][
        0, 0]))                                        # catches

  @parameterized.parameters('per_example', 'stats')
  def test_optax_apply_if_finite_does_not_take_the_other_forms(self, form):
    """Its reject branch is shaped like the input (README)."""
    opt = optax.apply_if_finite(so.snr_adam(0.1), 3)
    params = _params()
    updates, kwargs = _in_form(form, _per_example(0))
    with self.assertRaisesRegex(TypeError, 'cond branch'):
      opt.update(updates, opt.init(params), params, **kwargs)

  @parameterized.product(
      form=FORMS, placement=('before', 'after'),
      bad=('huge', 'inf', 'nan', 'nan_all'))
  def test_so_apply_if_finite_keeps_params_and_state(self, form, placement,
                                                     bad):
    opt = so.apply_if_finite(so.snr_adam(0.1, placement=placement,
                                         weight_decay=0.1), 2)
    params = _params()
    step = jax.jit(lambda g, s, p, kw: opt.update(g, s, p, **kw))
    good_updates, good_kwargs = _in_form(form, _per_example(0))
    u, state = step(good_updates, opt.init(params), params, good_kwargs)
    params = optax.apply_updates(params, u)
    g = {'huge': self._huge_batch(),
         'inf': dict(_per_example(2),
                     b=_per_example(2)['b'].at[1, 0].set(jnp.inf)),
         'nan': dict(_per_example(2),
                     w=_per_example(2)['w'].at[3, 2, 1].set(jnp.nan)),
         'nan_all': jax.tree.map(lambda x: jnp.full_like(x, jnp.nan),
                                 _per_example(2))}[bad]
    updates, kwargs = _in_form(form, g)
    for count in (1, 2):
      u_bad, state_bad = step(updates, state, params, kwargs)
      new_params = optax.apply_updates(params, u_bad)
      _assert_trees_finite_equal(self, new_params, params)
      _assert_trees_finite_equal(self, state_bad.inner_state,
                                 state.inner_state)
      jax.tree.map(lambda x, p: self.assertEqual(x.dtype, p.dtype), u_bad,
                   params)
      self.assertFalse(bool(state_bad.last_finite))
      self.assertEqual(int(state_bad.notfinite_count), count)
      self.assertEqual(int(state_bad.total_notfinite), count)
      state = state_bad
    # The third consecutive one goes through (max_consecutive_errors=2).
    u_through, state_through = step(updates, state, params, kwargs)
    self.assertEqual(int(state_through.notfinite_count), 3)
    self.assertFalse(all(np.all(np.isfinite(u))
                         for u in jax.tree.leaves(u_through)))
    # A finite step resets the consecutive count, not the total.
    _, state_ok = step(good_updates, state, params, good_kwargs)
    self.assertEqual(int(state_ok.notfinite_count), 0)
    self.assertEqual(int(state_ok.total_notfinite), 2)
    self.assertTrue(bool(state_ok.last_finite))

  def test_huge_examples_do_not_overflow_the_mean(self):
    g = jnp.array([[3e38, 1.0], [3e38, 2.0], [3e38, 4.0]], jnp.float32)
    stats = so.stats_from_per_example(g)
    np.testing.assert_allclose(stats.mean, [3e38, 7 / 3], rtol=1e-6)
    np.testing.assert_allclose(stats.sum_sq_dev, [0.0, 14 / 3], rtol=1e-6)

  def test_scaled_mean_is_bitwise_the_plain_mean(self):
    """The scaling by 2^-k is exact in the normal range."""
    rng = np.random.default_rng(0)
    for b in (2, 3, 5, 8, 33):
      g = jnp.asarray(rng.normal(size=(b, 64)) * 10.0 ** rng.integers(
          -30, 30, size=(1, 64)), jnp.float32)
      plain = jax.jit(lambda g: stats_lib.batch_sum(g) / g.shape[0])(g)
      mean = jax.jit(so.stats_from_per_example)(g).mean
      np.testing.assert_array_equal(mean, plain)
      np.testing.assert_allclose(
          mean, np.sum(np.asarray(g, np.float64), axis=0) / b, rtol=1e-5)

  def test_streaming_does_not_overflow_its_moments(self):
    """A mean gradient of 3e19: (1 - b2) g^2 is finite, so v and s are."""
    opt = so.streaming_snr_adamw(0.1, warmup_steps=0)
    params = {'w': jnp.zeros(3)}
    state = opt.init(params)
    for t, g in enumerate(([3e19, 1.0, -2.0], [-3e19, 1.0, -2.0]), 1):
      u, state = opt.update({'w': jnp.array(g, jnp.float32)}, state, params)
      self.assertTrue(np.all(np.isfinite(u['w'])))
      if t == 1:   # m_hat = g, v_hat = g^2 = 9e38, s_hat = g^2: q = 1/2
        np.testing.assert_allclose(u['w'], [-0.05, -0.05, 0.05], rtol=1e-5)
    inner = state[0]
    for leaf in (inner.mu['w'], inner.nu['w'], inner.s['w']):
      self.assertTrue(np.all(np.isfinite(leaf)))
    np.testing.assert_allclose(inner.nu['w'][0],
                               (1 - 0.999) * 9e38 * (0.999 + 1), rtol=1e-5)

  def test_a_state_overflow_is_a_non_finite_step(self):
    """Adam's v of a finite mean gradient of 3e19 overflows (optax's Adam).

    Its update looks finite (m / sqrt(inf) = 0); so.apply_if_finite sees
    the state turn non-finite and skips the step.
    """
    params = {'w': jnp.zeros(2)}
    g = {'w': jnp.full((4, 2), 3e19, jnp.float32)}     # M2 = 0, mean 3e19
    bare = so.snr_adam(0.1)
    u, bare_state = bare.update(g, bare.init(params), params)
    self.assertTrue(np.all(np.isfinite(u['w'])))
    self.assertFalse(np.all(np.isfinite(optax.tree.get(bare_state,
                                                      'nu')['w'])))
    opt = so.apply_if_finite(so.snr_adam(0.1), 2)
    state = opt.init(params)
    u, new_state = opt.update(g, state, params)
    self.assertFalse(bool(new_state.last_finite))
    np.testing.assert_array_equal(u['w'], 0.0)
    _assert_trees_finite_equal(self, new_state.inner_state, state.inner_state)

  def test_a_state_that_starts_non_finite_is_not_a_failure(self):
    """Only values a step turns non-finite count (a best value at inf)."""
    inner = optax.chain(optax.sgd(1.0), optax.contrib.reduce_on_plateau())
    opt = so.apply_if_finite(inner, 2)
    params = jnp.zeros(2)
    state = opt.init(params)
    self.assertFalse(np.isfinite(float(optax.tree.get(state, 'best_value'))))
    u, state = opt.update(jnp.ones(2), state, params, value=jnp.asarray(1.0))
    self.assertTrue(bool(state.last_finite))
    np.testing.assert_allclose(u, -1.0)

  @parameterized.parameters(0, 10)
  def test_streaming_non_finite_gradient_is_visible(self, warmup_steps):
    """Also during warm-up, where q is held at 1."""
    opt = so.apply_if_finite(
        so.streaming_snr_adamw(0.1, warmup_steps=warmup_steps), 2)
    params = {'w': jnp.ones(3)}
    state = opt.init(params)
    _, state = opt.update({'w': jnp.array([1.0, 2.0, 3.0])}, state, params)
    bare = so.streaming_snr_adamw(0.1, warmup_steps=warmup_steps)
    u_bare, _ = bare.update({'w': jnp.array([1.0, jnp.inf, 3.0])},
                            state.inner_state, params)
    self.assertTrue(np.isnan(u_bare['w'][1]))
    u, state_bad = opt.update({'w': jnp.array([1.0, jnp.inf, 3.0])}, state,
                              params)
    np.testing.assert_array_equal(u['w'], 0.0)
    _assert_trees_finite_equal(self, state_bad.inner_state, state.inner_state)


class _Step(NamedTuple):
  updates: object
  state: object


class ConditionallyTransformTest(parameterized.TestCase):
  """optax's conditionally_transform/mask around the SNR optimizers."""

  NUM_STEPS = 3

  @parameterized.product(name=('snr_adam', 'streaming'),
                          wrapper=('transform', 'mask'))
  def test_conditionally(self, name, wrapper):
    # After NUM_STEPS the inner optimizer is no longer called: its state is
    # kept, and the updates pass through (transform) or are zeroed (mask).
    params = _params()
    if name == 'snr_adam':
      inner = so.snr_adam(0.1)
      feed = lambda i: _in_form('grad_stats', _per_example(i))
    else:
      inner = so.streaming_snr_adamw(0.1)
      feed = lambda i: (jax.tree.map(lambda g: g.mean(0), _per_example(i)),
                        {})
    wrap = {'transform': optax.transforms.conditionally_transform,
            'mask': optax.transforms.conditionally_mask}[wrapper]
    opt = wrap(inner, lambda step: step < self.NUM_STEPS)
    state = opt.init(params)
    plain_state = inner.init(params)
    update_fn = jax.jit(lambda g, s, kw: opt.update(g, s, params, **kw))
    for i in range(self.NUM_STEPS):
      g, kw = feed(i)
      updates, state = update_fn(g, state, kw)
      want, plain_state = inner.update(g, plain_state, params, **kw)
      test_utils.assert_trees_all_close(updates, want, rtol=1e-6)
    for i in range(2):
      g, kw = feed(10 + i)
      updates, new_state = update_fn(g, state, kw)
      if wrapper == 'transform':
        test_utils.assert_trees_all_equal(updates, g)
      else:
        jax.tree.map(lambda u: np.testing.assert_array_equal(u, 0.0),
                     updates)
      test_utils.assert_trees_all_equal(new_state.inner_state,
                                        state.inner_state)
      state = new_state

  def test_conditionally_mask_with_extra_args(self):
    """should_update reads the loss; grad_stats= travels to snr_adam."""
    params = _params()
    inner = so.snr_adam(0.1)

    def should_update(step, loss, **extra_args):
      del step, extra_args
      return loss > 0.1

    opt = optax.transforms.conditionally_mask(inner, should_update,
                                              forward_extra_args=True)
    state = opt.init(params)
    g, kw = _in_form('grad_stats', _per_example(0))
    updates, state = opt.update(g, state, params, loss=0.2, **kw)
    want, _ = inner.update(g, inner.init(params), params, **kw)
    test_utils.assert_trees_all_close(updates, want, rtol=1e-6)
    updates, _ = opt.update(g, state, params, loss=0.0, **kw)
    jax.tree.map(lambda u: np.testing.assert_array_equal(u, 0.0), updates)

  @parameterized.product(form=('per_example', 'stats'),
                         wrapper=('conditionally_mask',
                                  'conditionally_transform'))
  def test_per_example_forms_are_refused_by_lax_cond(self, form, wrapper):
    opt = getattr(optax.transforms, wrapper)(so.snr_adam(0.1),
                                             lambda step: step < 3)
    params = _params()
    g, kw = _in_form(form, _per_example(0))
    with self.assertRaisesRegex(TypeError, 'branch'):
      opt.update(g, opt.init(params), params, **kw)

  def test_skip_not_finite_with_multi_steps_and_streaming(self):
    opt = optax.MultiSteps(so.streaming_snr_adamw(0.1), every_k_schedule=2,
                           should_skip_update_fn=optax.skip_not_finite)
    params = {'w': jnp.ones(3)}
    state = opt.init(params)
    _, state = opt.update({'w': jnp.array([1.0, 2.0, 3.0])}, state, params)
    inner_before = state.inner_opt_state
    _, state_bad = opt.update({'w': jnp.array([1.0, jnp.nan, 3.0])}, state,
                              params)
    self.assertTrue(bool(state_bad.skip_state['should_skip']))
    test_utils.assert_trees_all_equal(state_bad.inner_opt_state, inner_before)
    test_utils.assert_trees_all_equal(state_bad.acc_grads, state.acc_grads)


class InjectHyperparamsTest(parameterized.TestCase):
  """optax's _inject_test with the SNR optimizers."""

  def test_updates(self):
    """A learning-rate schedule, as optax's test_updates."""
    schedule = optax.piecewise_constant_schedule(3.0, {1: 5, 7: 2, 12: 1.5})
    ours = optax.inject_hyperparams(so.snr_adam)(learning_rate=schedule)
    theirs = optax.inject_hyperparams(optax.adam)(learning_rate=schedule)
    params = [jnp.zeros([], dtype=jnp.float32)]
    state = jax.jit(ours.init)(params)
    state_theirs = theirs.init(params)

    # A no-op change, to verify that tree map works.
    state = optax.tree.map_params(ours, lambda v: v, state)

    update_fn = jax.jit(ours.update)
    expected_step_size = [3.0] * 2 + [15.0] * 6 + [30.0] * 5 + [45.0] * 3
    grads = [jnp.ones([], dtype=jnp.float32)]
    for i in range(15):
      # Identical-sign examples with mean 1: q = 1, so this is Adam.
      updates, state = update_fn(_weighted(grads), state, params)
      want, state_theirs = theirs.update(grads, state_theirs, params)
      np.testing.assert_allclose(updates[0], want[0], rtol=1e-6)
      np.testing.assert_allclose(-updates[0], expected_step_size[i + 1],
                                 rtol=1e-3)

  @parameterized.parameters('alpha', 'rho')
  def test_hyperparams_state(self, name):
    schedule = optax.piecewise_constant_schedule(0.8, {3: 0.5, 9: 1.25})
    optim = optax.inject_hyperparams(so.streaming_snr_adamw)(
        0.1, **{name: schedule})
    params = [jnp.zeros([2, 3]) for _ in range(3)]
    state = jax.jit(optim.init)(params)
    update_fn = jax.jit(optim.update)

    expected = [0.8] * 4 + [0.4] * 6 + [0.5] * 2
    grads = jax.tree.map(jnp.ones_like, params)
    for i in range(12):
      np.testing.assert_almost_equal(state.hyperparams[name], expected[i])
      _, state = update_fn(grads, state, params)

    np.testing.assert_almost_equal(state.hyperparams[name], expected[-1])

  def test_constant_hyperparams(self):
    optim = optax.inject_hyperparams(so.scale_by_streaming_snr)(
        b1=0.0, b2=0.0, rho=0.0, warmup_steps=100)

    params = [jnp.zeros([2, 3]) for _ in range(3)]
    state = jax.jit(optim.init)(params)
    update_fn = jax.jit(optim.update)

    grads = jax.tree.map(jnp.ones_like, params)
    for _ in range(5):
      updates, state = update_fn(grads, state, params)
      np.testing.assert_almost_equal(state.hyperparams['b1'], 0.0)
      np.testing.assert_almost_equal(state.hyperparams['b2'], 0.0)
      np.testing.assert_almost_equal(state.hyperparams['rho'], 0.0)
      np.testing.assert_almost_equal(state.hyperparams['eps'], 1e-8)
      np.testing.assert_almost_equal(state.hyperparams['eps_root'], 0.0)
      np.testing.assert_almost_equal(state.hyperparams['alpha'], 1.0)
      np.testing.assert_almost_equal(state.hyperparams['softness'], 1.0)
      self.assertEqual(int(state.hyperparams['warmup_steps']), 100)
      test_utils.assert_trees_all_close(updates, grads)

  @parameterized.parameters(*FORMS)
  def test_overriding_hyperparam(self, form):
    optim = optax.inject_hyperparams(so.snr_adam)(0.1)
    params = _params()
    state = jax.jit(optim.init)(params)
    update_fn = jax.jit(lambda g, s, kw: optim.update(g, s, params, **kw))
    g, kw = _in_form(form, _per_example(3))
    fractions = []
    for alpha in (0.0, 1.0, 1e6):
      state.hyperparams['alpha'] = alpha
      _, new_state = update_fn(g, state, kw)
      fractions.append(float(optax.tree.get(new_state, 'mask_fraction')))
    self.assertEqual(fractions[0], 1.0)
    self.assertGreater(fractions[0], fractions[1])
    self.assertGreater(fractions[1], fractions[2])

  @parameterized.named_parameters(('string', 'mask'), ('list', ['mask']))
  def test_static_args(self, static_args):
    optim = optax.inject_hyperparams(so.streaming_snr_adamw,
                                     static_args=static_args)(
                                         0.1, weight_decay=0.5,
                                         mask=lambda p: jax.tree.map(
                                             lambda x: x.ndim > 1, p))
    params = [jnp.ones((1, 2)), jnp.ones(2), jnp.ones((1, 1, 1))]
    grads = params
    state = jax.jit(optim.init)(params)
    updates, state = jax.jit(optim.update)(grads, state, params)
    plain = so.streaming_snr_adamw(0.1, weight_decay=0.5, mask=lambda p: [
        True, False, True])
    expected, _ = plain.update(grads, plain.init(params), params)
    self.assertNotIn('mask', state.hyperparams)
    # (float32 hyperparameter arrays against Python floats: rounding.)
    test_utils.assert_trees_all_close(updates, expected, rtol=1e-5)
    no_decay, _ = so.streaming_snr_adamw(0.1, weight_decay=0.0).update(
        grads, plain.init(params), params)
    test_utils.assert_trees_all_close(updates[1], no_decay[1], rtol=1e-5)
    self.assertFalse(np.allclose(updates[0], no_decay[0]))

  @parameterized.named_parameters(('one_arg', 'b1'), ('two_arg', ['b1', 'b2']))
  def test_numeric_static_args(self, static_args):
    for factory, grads_of in ((so.snr_adam, _weighted),
                              (so.streaming_snr_adamw, lambda g: g)):
      optim = optax.inject_hyperparams(factory, static_args=static_args)(
          0.1, b1=0.9, b2=0.95)
      params = [jnp.ones((1, 2)), jnp.ones(2), jnp.ones((1, 1, 1))]
      state = jax.jit(optim.init)(params)
      _, state = jax.jit(optim.update)(grads_of(params), state, params)
      assert not set(state.hyperparams.keys()).intersection(set(static_args))

  @parameterized.named_parameters(
      ('f32hyp bf16param bf16grad', jnp.float32, jnp.bfloat16, jnp.bfloat16),
      ('f32hyp f32param bf16grad', jnp.float32, jnp.float32, jnp.bfloat16),
      ('f32hyp bf16param f32grad', jnp.float32, jnp.bfloat16, jnp.float32),
  )
  def test_hyperparam_dtypes(self, hyperparam_dtype, param_dtype, grad_dtype):
    """Tests that hyperparam dtype override works as desired."""
    for factory, grads_of in ((so.snr_adam, _weighted),
                              (so.streaming_snr_adamw, lambda g: g)):
      optim = optax.inject_hyperparams(
          factory, hyperparam_dtype=hyperparam_dtype)(0.1, b1=0.9, b2=0.95)
      params = [
          jnp.ones((1, 2), dtype=param_dtype),
          jnp.ones(2, dtype=param_dtype),
          jnp.ones((1, 1, 1), dtype=param_dtype),
      ]
      grads = jax.tree.map(lambda x: x.astype(grad_dtype), params)
      state = jax.jit(optim.init)(params)
      self.assertEqual(state.hyperparams['b1'].dtype, hyperparam_dtype)
      self.assertEqual(state.hyperparams['b2'].dtype, hyperparam_dtype)

      updates, state = jax.jit(optim.update)(grads_of(grads), state, params)

      self.assertEqual(state.hyperparams['b1'].dtype, hyperparam_dtype)
      self.assertEqual(state.hyperparams['b2'].dtype, hyperparam_dtype)
      jax.tree.map(lambda u, p: self.assertEqual(u.dtype, p.dtype), updates,
                   params)

  @parameterized.product(
      factory=('snr_adam', 'streaming_snr_adamw', 'scale_by_streaming_snr'),
      narrow=(jnp.bfloat16, jnp.float16))
  def test_narrow_decay_rates_are_refused(self, factory, narrow):
    """optax's bf16-hyperparameter cases: b2 = 0.999 would round to 1."""
    factory = getattr(so, factory)
    kwargs = {} if factory is so.scale_by_streaming_snr else {
        'learning_rate': 0.1}
    params = [jnp.ones((1, 2), dtype=narrow)]
    msg = (r'b2 \(' + jnp.dtype(narrow).name + r', .* after rounding\).*'
           r'hyperparam_dtype=jnp.float32')
    # Default dtype: the parameters' (optax's test_hyperparam_default_dtype).
    with self.assertRaisesRegex(ValueError, msg):
      optax.inject_hyperparams(factory)(**kwargs).init(params)
    # An explicit hyperparam_dtype (optax's 'bf16hyp ...' cases).
    with self.assertRaisesRegex(ValueError, msg):
      optax.inject_hyperparams(factory, hyperparam_dtype=narrow)(
          **kwargs).init(jax.tree.map(lambda p: p.astype(jnp.float32),
                                      params))
    # Under jit the value is traced; the message says so.
    optim = optax.inject_hyperparams(factory, hyperparam_dtype=jnp.float32)(
        **kwargs)
    state = optim.init(params)
    state.hyperparams['b2'] = jnp.asarray(0.999, narrow)
    with self.assertRaisesRegex(ValueError, r'b2 \(.*traced\)'):
      grads = params if factory is not so.snr_adam else _weighted(params)
      jax.jit(optim.update)(grads, state, params)

  def test_hyperparam_default_dtype(self):
    params = [jnp.ones((1, 2), dtype=jnp.float32), jnp.ones(2)]
    for factory in (so.snr_adam, so.streaming_snr_adamw):
      optim = optax.inject_hyperparams(factory)(0.1, b1=0.9, b2=0.95)
      state = jax.jit(optim.init)(params)
      self.assertEqual(state.hyperparams['b1'].dtype, jnp.float32)
      self.assertEqual(state.hyperparams['b2'].dtype, jnp.float32)
      optim = optax.inject_hyperparams(factory)(
          0.1, b1=jnp.array(0.9, dtype=jnp.float32), b2=jnp.asarray(0.95))
      state = jax.jit(optim.init)(params)
      self.assertEqual(state.hyperparams['b1'].dtype, jnp.float32)

  @parameterized.parameters(*FORMS)
  def test_inject_hyperparams_starts_with_step_count_zero(self, form):
    """Checks that inject_hyperparams uses step count 0 in the first update."""
    opt = optax.inject_hyperparams(so.snr_adam)(lambda count: count)
    params = jnp.zeros(3)
    g, kw = _in_form(form, _weighted(jnp.array([-1.0, 0.5, 1.0])))
    updates, _ = jax.jit(lambda g, kw: opt.update(g, opt.init(params), params,
                                                  **kw))(g, kw)
    np.testing.assert_array_equal(updates, np.zeros(3))


class FakeShardSpec(NamedTuple):
  sharding_axis: int | None


class StateUtilsTest(parameterized.TestCase):
  """optax's _state_utils_test on the SNR optimizers' states."""

  def _fake_params(self):
    return {'my/fake/module': {'w': jnp.zeros((1, 2)), 'b': jnp.zeros(3)},
            'my/other/fake/module': {'w': jnp.zeros((4, 5)),
                                     'b': jnp.zeros(6)}}

  def _fake_param_sharding(self):
    return {'my/fake/module': {'w': FakeShardSpec(0), 'b': FakeShardSpec(1)},
            'my/other/fake/module': {'w': FakeShardSpec(2),
                                     'b': FakeShardSpec(3)}}

  def test_streaming(self):
    opt = so.streaming_snr_adamw(1e-4)
    opt_state = opt.init(self._fake_params())
    spec = optax.tree.map_params(
        opt, lambda _, spec: spec, opt_state, self._fake_param_sharding(),
        transform_non_params=lambda _: FakeShardSpec(None))
    inner = spec[0]
    self.assertIsInstance(inner, so.ScaleByStreamingSNRState)
    for field in ('mu', 'nu', 's'):
      self.assertEqual(getattr(inner, field), self._fake_param_sharding())
    self.assertEqual(inner.count, FakeShardSpec(None))
    self.assertEqual(inner.mask_fraction, FakeShardSpec(None))

  @parameterized.parameters('before', 'after')
  def test_snr_adam(self, placement):
    opt = so.snr_adam(1e-4, placement=placement)
    opt_state = opt.init(self._fake_params())
    spec = optax.tree.map_params(
        opt, lambda _, spec: spec, opt_state, self._fake_param_sharding(),
        transform_non_params=lambda _: FakeShardSpec(None))
    adam = optax.tree.get(spec, 'ScaleByAdamState')
    self.assertEqual(adam.mu, self._fake_param_sharding())
    self.assertEqual(adam.nu, self._fake_param_sharding())
    self.assertEqual(adam.count, FakeShardSpec(None))
    self.assertEqual(optax.tree.get(spec, 'mask_fraction'),
                     FakeShardSpec(None))

  def test_inject_hparams(self):
    for factory in (so.snr_adam, so.streaming_snr_adamw):
      opt = optax.inject_hyperparams(factory)(learning_rate=1e-3)
      params = self._fake_params()
      state = opt.init(params)
      state = optax.tree.map_params(opt, lambda v: v + 1, state)
      self.assertEqual(1e-3, state.hyperparams['learning_rate'])
      params_plus_one = jax.tree.map(lambda v: v + 1, params)
      test_utils.assert_trees_all_close(optax.tree.get(state, 'mu'),
                                        params_plus_one)

  def test_map_params_to_none(self):
    opt = so.streaming_snr_adamw(1e-4)
    state = opt.init({'a': jnp.zeros((1, 2))})
    state = optax.tree.map_params(opt, lambda _: None, state)
    self.assertEqual(state[0].mu, {'a': None})
    self.assertEqual(state[0].s, {'a': None})

  @parameterized.named_parameters(
      ('snr_adam', lambda: so.snr_adam(42.0), True),
      ('snr_adam_after', lambda: so.snr_adam(42.0, placement='after'), True),
      ('snr_mask', so.snr_mask, True),
      ('gated', lambda: so.gated(optax.adam(1.0)), True),
      ('streaming', lambda: so.streaming_snr_adamw(42.0), False),
      ('apply_if_finite', lambda: so.apply_if_finite(so.snr_adam(42.0), 2),
       True),
      ('injected', lambda: optax.inject_hyperparams(so.snr_adam)(42.0), True),
  )
  def test_tree_get_mask_fraction(self, make, per_example):
    opt = make()
    params = _params()
    state = opt.init(params)
    self.assertEqual(float(optax.tree.get(state, 'mask_fraction')), 0.0)
    g = _per_example(0)
    if not per_example:
      g = jax.tree.map(lambda x: x.mean(0), g)
    _, state = jax.jit(opt.update)(g, state, params)

    @jax.jit
    def get(state):
      return optax.tree.get(state, 'mask_fraction')
    fraction = float(get(state))
    self.assertGreater(fraction, 0.0)
    self.assertLessEqual(fraction, 1.0)

  def test_tree_get(self):
    params = jnp.array([1.0, 2.0, 3.0])

    with self.subTest('Test with unique value matching the key'):
      solver = optax.inject_hyperparams(so.snr_adam)(learning_rate=42.0)
      state = solver.init(params)
      self.assertEqual(optax.tree.get(state, 'learning_rate'), 42.0)
      self.assertEqual(optax.tree.get(state, 'alpha'), 1.0)

    with self.subTest('Test with no value matching the key'):
      state = optax.inject_hyperparams(so.snr_adam)(42.0).init(params)
      self.assertIsNone(optax.tree.get(state, 'ema'))
      self.assertEqual(optax.tree.get(state, 'ema', default=7.0), 7.0)

    with self.subTest('Test with multiple values matching the key'):
      solver = optax.chain(
          optax.inject_hyperparams(so.streaming_snr_adamw)(42.0),
          optax.inject_hyperparams(so.streaming_snr_adamw)(42.0),
      )
      state = solver.init(params)
      self.assertRaises(KeyError, optax.tree.get, state, 'learning_rate')

    with self.subTest('Test jitted tree_get'):
      opt = optax.inject_hyperparams(so.streaming_snr_adamw)(
          learning_rate=lambda x: 1 / (x + 1))
      state = opt.init(params)

      @jax.jit
      def get_learning_rate(state):
        return optax.tree.get(
            state, 'learning_rate',
            filtering=lambda _, value: isinstance(value, jnp.ndarray))

      for i in range(4):
        _, state = opt.update(params, state, params)
        self.assertEqual(get_learning_rate(state), 1 / (i + 1))

    with self.subTest('Test filtering for specific state'):
      opt = optax.chain(optax.add_noise(1.0, 0.9, 0),
                        so.scale_by_streaming_snr())
      state = opt.init(params)

      def filtering(path, _):
        return (isinstance(path[-1], optax.tree_utils.NamedTupleKey)
                and path[-1].tuple_name == 'ScaleByStreamingSNRState')

      count = optax.tree.get(state, 'count', filtering=filtering)
      self.assertEqual(count, jnp.asarray(0, dtype=jnp.int32))

    with self.subTest('Test extracting a state'):
      opt = optax.chain(optax.add_noise(1.0, 0.9, 0),
                        so.scale_by_streaming_snr())
      state = opt.init(params)
      streaming = optax.tree.get(state, 'ScaleByStreamingSNRState')
      test_utils.assert_trees_all_equal(
          streaming, so.scale_by_streaming_snr().init(params))

  def test_tree_set(self):
    params = jnp.array([1.0, 2.0, 3.0])

    with self.subTest('Test modifying injected hyperparams'):
      opt = optax.inject_hyperparams(so.streaming_snr_adamw)(1.0)
      state = opt.init(params)
      new_state = optax.tree.set(state, learning_rate=2.0, rho=0.5,
                                 alpha=3.0)
      self.assertEqual(optax.tree.get(new_state, 'learning_rate'), 2.0)
      self.assertEqual(optax.tree.get(new_state, 'rho'), 0.5)
      self.assertEqual(optax.tree.get(new_state, 'alpha'), 3.0)

    with self.subTest('Test modifying a value not present in the state'):
      opt = optax.inject_hyperparams(so.snr_adam)(learning_rate=1.0)
      state = opt.init(params)
      self.assertRaises(KeyError, optax.tree.set, state, ema=2.0)

    with self.subTest('A set alpha acts on the next update'):
      opt = optax.inject_hyperparams(so.snr_adam)(learning_rate=1.0)
      state = opt.init(params)
      g = jnp.array([[1.0, 1.0, 1.0], [1.0, -1.0, 0.5]])
      fractions = []
      for alpha in (0.0, 100.0):
        _, new_state = jax.jit(opt.update)(
            g, optax.tree.set(state, alpha=alpha), params)
        fractions.append(float(optax.tree.get(new_state, 'mask_fraction')))
      # w[0]: examples agree (q = 1); w[1]: mean 0 (q = 0); w[2]: mu^2 =
      # 0.5625 against nu = 0.0625, so q = 1 at alpha 0 and 0 at alpha 100.
      np.testing.assert_allclose(fractions, [2 / 3, 1 / 3], rtol=1e-6)

    with self.subTest('Test jitted tree_set'):

      @jax.jit
      def set_alpha(state, alpha):
        return optax.tree.set(state, alpha=alpha)

      opt = optax.inject_hyperparams(so.snr_adam)(learning_rate=1.0)
      state = opt.init(params)
      for i in range(4):
        state = set_alpha(state, jnp.asarray(float(i)))
        self.assertEqual(float(optax.tree.get(state, 'alpha')), float(i))


if __name__ == '__main__':
  absltest.main()
