# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of combine_stats and multi_term_value_and_grad_stats.

The reference is a loop over examples (``jax.grad`` of each term's loss on
one-example batches) and float64 NumPy, sharing no code with the library:
mu = sum_t w_t mu_t, nu = sum_t w_t^2 M2_t / (b_t (b_t - 1)), and the
stratified delete-one jackknife that nu is.
"""

import os
import sys

if 'jax' not in sys.modules and ('--xla_force_host_platform_device_count'
                                 not in os.environ.get('XLA_FLAGS', '')):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                             ' --xla_force_host_platform_device_count=8')

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl.testing import absltest
from absl.testing import parameterized
from flax import nnx
import jax
import jax.numpy as jnp
from jax.sharding import AxisType
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np
import optax

import snr_optax as so
from tests import numpy_reference as ref

BETA = 5.0
# Unequal sizes (one term at the minimum of 2) and unequal weights.
SIZES = {'residual': 16, 'initial': 8, 'boundary': 2}
WEIGHTS = {'residual': 1.0, 'initial': 10.0, 'boundary': 0.3}


class _MLP(nnx.Module):

  def __init__(self, rngs):
    self.l1 = nnx.Linear(2, 8, rngs=rngs)
    self.l2 = nnx.Linear(8, 1, rngs=rngs)

  def __call__(self, x):
    return self.l2(jnp.tanh(self.l1(x)))[..., 0]


_MODEL = []


def _model():
  if not _MODEL:
    _MODEL.append(_build_model())
  return _MODEL[0]


def _build_model():
  graphdef, params = nnx.split(_MLP(nnx.Rngs(0)), nnx.Param)

  def u(params, xt):
    return nnx.merge(graphdef, params)(xt)

  def residual(params, batch):
    # u_t + beta u_x at each point: a directional derivative per point.
    def one(p):
      return jax.jvp(lambda z: u(params, z[None])[0], (p,),
                     (jnp.array([BETA, 1.0]),))[1]
    return jnp.mean(jax.vmap(one)(batch) ** 2)

  def initial(params, batch):
    return jnp.mean((u(params, batch['xt']) - batch['y']) ** 2)

  def boundary(params, batch):
    return jnp.mean((u(params, batch['left']) - u(params, batch['right']))
                    ** 2)

  return params, {'residual': residual, 'initial': initial,
                  'boundary': boundary}


def _batches(seed=0, sizes=None):
  sizes = sizes or SIZES
  rng = np.random.default_rng(seed)
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  b = sizes['boundary']
  t = rng.uniform(size=(b, 1))
  return {
      'residual': f32(rng.uniform(size=(sizes['residual'], 2)) * [6.28, 1.0]),
      'initial': {'xt': f32(np.c_[rng.uniform(size=sizes['initial']) * 6.28,
                                  np.zeros(sizes['initial'])]),
                  'y': f32(rng.normal(size=sizes['initial']))},
      'boundary': {'left': f32(np.c_[np.zeros(b), t]),
                   'right': f32(np.c_[np.full(b, 6.28), t])},
  }


def _flat(tree):
  return np.concatenate([np.ravel(np.asarray(x, np.float64))
                         for x in jax.tree.leaves(tree)])


_GRADS = {}


def _per_example_loop(loss, params, batch):
  """[b, n_params] float64: jax.grad on each one-example batch."""
  b = jax.tree.leaves(batch)[0].shape[0]
  if loss not in _GRADS:
    _GRADS[loss] = jax.jit(jax.grad(loss))
  grad = _GRADS[loss]
  return np.stack([_flat(grad(params, jax.tree.map(lambda x: x[i:i + 1],
                                                   batch)))
                   for i in range(b)])


def _reference(losses, params, batches, weights):
  """(mu, nu, loss) of sum_t w_t L_t in float64, from the loop."""
  mu = nu = value = 0.0
  for name, loss in losses.items():
    g = _per_example_loop(loss, params, batches[name])
    mean, m2, b = ref.stats(g)
    w = weights[name]
    mu = mu + w * mean
    nu = nu + w ** 2 * ref.loo_noise(m2, b)
    value = value + w * float(jax.jit(loss)(params, batches[name]))
  return mu, nu, value


def _stratified_jackknife(per_term, weights):
  """sum_t (b_t-1)/b_t sum_i (theta_(ti) - theta_(t.))^2, by brute force.

  theta_(ti) is the weighted sum of the terms' means with example i of term
  t left out of its own term.
  """
  def theta(drop_term=None, drop=None):
    total = 0.0
    for name, g in per_term.items():
      if name == drop_term:
        g = np.delete(g, drop, axis=0)
      total = total + weights[name] * g.mean(0)
    return total
  nu = 0.0
  for name, g in per_term.items():
    b = g.shape[0]
    thetas = np.stack([theta(name, i) for i in range(b)])
    nu = nu + (b - 1) / b * ((thetas - thetas.mean(0)) ** 2).sum(0)
  return nu


class CombineStatsTest(parameterized.TestCase):

  def _terms(self, seed=0):
    rng = np.random.default_rng(seed)
    f32 = lambda a: np.asarray(a, np.float32)
    return {name: {'w': f32(rng.normal(size=(b, 3, 2))
                            + rng.normal(size=(3, 2))),
                   'b': f32(rng.normal(size=(b,)) * 2.0)}
            for name, b in SIZES.items()}

  def test_matches_the_formula_and_the_stratified_jackknife(self):
    per_term = self._terms()
    stats = {k: so.stats_from_per_example(
        jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), g))
             for k, g in per_term.items()}
    got = jax.jit(so.combine_stats)(stats, WEIGHTS)
    flat = {k: np.stack([_flat(jax.tree.map(lambda x, i=i: x[i], g))
                         for i in range(SIZES[k])])
            for k, g in per_term.items()}
    mu = sum(WEIGHTS[k] * ref.stats(g)[0] for k, g in flat.items())
    nu = sum(WEIGHTS[k] ** 2 * ref.loo_noise(*ref.stats(g)[1:])
             for k, g in flat.items())
    m2 = sum(WEIGHTS[k] ** 2 * ref.stats(g)[1] for k, g in flat.items())
    np.testing.assert_allclose(_flat(got.mean), mu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_flat(got.loo_noise), nu, rtol=1e-5)
    np.testing.assert_allclose(_flat(got.noise), nu, rtol=1e-5)
    np.testing.assert_allclose(_flat(got.sum_sq_dev), m2, rtol=1e-5)
    np.testing.assert_allclose(_flat(got.variance), m2 / sum(SIZES.values()),
                               rtol=1e-5)
    self.assertEqual(int(got.count), sum(SIZES.values()))
    np.testing.assert_allclose(
        _flat(got.loo_noise), _stratified_jackknife(flat, WEIGHTS), rtol=1e-5)

  def test_one_term_is_the_scaled_loss_and_lists_work(self):
    g = self._terms()['initial']
    single = so.stats_from_per_example(g)
    got = so.combine_stats([single], [3.0])
    scaled = so.stats_from_per_example(jax.tree.map(lambda x: 3.0 * x, g))
    for field in ('mean', 'sum_sq_dev', 'loo_noise', 'variance'):
      np.testing.assert_allclose(_flat(getattr(got, field)),
                                 _flat(getattr(scaled, field)), rtol=1e-5)
    unweighted = so.combine_stats((single, single))
    np.testing.assert_allclose(_flat(unweighted.loo_noise),
                               2 * _flat(single.loo_noise), rtol=1e-6)

  def test_combining_combined_statistics_is_exact(self):
    per_term = self._terms()
    stats = {k: so.stats_from_per_example(g) for k, g in per_term.items()}
    flat = so.combine_stats(stats, WEIGHTS)
    inner = so.combine_stats({k: stats[k] for k in ('initial', 'boundary')},
                             {'initial': 5.0, 'boundary': 0.15})
    nested = so.combine_stats([stats['residual'], inner], [1.0, 2.0])
    for field in ('mean', 'loo_noise', 'sum_sq_dev'):
      np.testing.assert_allclose(_flat(getattr(nested, field)),
                                 _flat(getattr(flat, field)), rtol=1e-5)

  def test_traced_weights(self):
    stats = {k: so.stats_from_per_example(g)
             for k, g in self._terms().items()}
    want = so.combine_stats(stats, WEIGHTS)
    got = jax.jit(so.combine_stats)(
        stats, {k: jnp.float32(w) for k, w in WEIGHTS.items()})
    np.testing.assert_allclose(_flat(got.loo_noise), _flat(want.loo_noise),
                               rtol=1e-6)

  @parameterized.named_parameters(
      ('zero', 0.0, 'finite number > 0'),
      ('negative', -1.0, 'finite number > 0'),
      ('nan', float('nan'), 'finite number > 0'),
      ('inf', float('inf'), 'finite number > 0'),
      ('vector', np.ones(2), 'scalar'),
      ('text', 'one', 'number'),
      # Regression: these passed the check and failed later with a
      # TypeError (a numeric string) or OverflowError, or were taken as 1.
      ('numeric_text', '1', 'number'),
      ('bool', True, 'number'),
      ('huge_int', 10**400, 'number'))
  def test_bad_weight_is_refused_naming_the_term(self, weight, message):
    stats = {k: so.stats_from_per_example(g)
             for k, g in self._terms().items()}
    with self.assertRaisesRegex(ValueError,
                                r"weights\['initial'\] must be .*" + message):
      so.combine_stats(stats, dict(WEIGHTS, initial=weight))

  def test_bad_containers_and_terms_are_refused(self):
    stats = {k: so.stats_from_per_example(g)
             for k, g in self._terms().items()}
    one = stats['residual']
    cases = [
        (lambda: so.combine_stats({}), 'at least one term'),
        (lambda: so.combine_stats(one), 'single GradStats'),
        (lambda: so.combine_stats({'a': one.mean}), r"\['a'\] is a dict"),
        (lambda: so.combine_stats(stats, {'residual': 1.0}),
         'keys of stats'),
        (lambda: so.combine_stats(stats, [1.0, 2.0, 3.0]), 'keys of stats'),
        (lambda: so.combine_stats([one, one], [1.0]), 'list or tuple of 2'),
        (lambda: so.combine_stats(
            {'a': one, 'b': so.stats_from_per_example({'w': jnp.ones((2, 3))})}),
         r"term \['b'\] do not have the structure of those of term \['a'\]"),
        (lambda: so.combine_stats(
            [one, so.GradStats(one.mean, one.sum_sq_dev, jnp.int32(1))]),
         r'term \[1\] has 1 example, but .* at least 2'),
        # Regression: a combined term whose noise does not match its mean
        # failed inside jax.tree.map with a multi-line pytree error.
        (lambda: so.combine_stats(
            [one, one._replace(noise=[jnp.ones(2)])]),
         r'noise of term \[1\] do not have the structure of its mean'),
    ]
    for fn, message in cases:
      with self.assertRaisesRegex(ValueError, message):
        fn()

  def test_merging_combined_statistics_is_refused(self):
    stats = {k: so.stats_from_per_example(g)
             for k, g in self._terms().items()}
    combined = so.combine_stats(stats, WEIGHTS)
    with self.assertRaisesRegex(ValueError, 'merge the statistics of each'):
      so.merge_stats(combined, stats['residual'])
    params = jax.tree.map(lambda x: jnp.zeros(x.shape[1:]),
                          self._terms()['residual'])
    opt = so.accumulate_stats(so.snr_adam(1e-2), 2)
    with self.assertRaisesRegex(ValueError, 'accumulate_stats cannot merge'):
      opt.update(combined, opt.init(params), params)

  def test_noise_of_another_structure_is_refused_by_the_masks(self):
    s = so.GradStats({'w': jnp.ones(2)}, {'w': jnp.ones(2)}, jnp.int32(3),
                     noise={'v': jnp.ones(2)})
    with self.assertRaisesRegex(ValueError, 'GradStats.noise do not have'):
      so.compute_mask(s)


class MultiTermValueAndGradStatsTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ('vmap', 'vmap', None), ('microbatch', 'microbatch', 3),
      ('fast', 'fast', None), ('auto', 'auto', None))
  def test_every_method_matches_the_per_example_loop(self, method,
                                                     microbatch_size):
    params, losses = _model()
    batches = _batches()
    fn = jax.jit(so.multi_term_value_and_grad_stats(
        losses, WEIGHTS, method=method, microbatch_size=microbatch_size))
    loss, stats = fn(params, batches)
    mu, nu, value = _reference(losses, params, batches, WEIGHTS)
    np.testing.assert_allclose(float(loss), value, rtol=1e-5)
    np.testing.assert_allclose(_flat(stats.mean), mu, rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(_flat(stats.loo_noise), nu, rtol=2e-4,
                               atol=1e-9)
    self.assertEqual(int(stats.count), sum(SIZES.values()))

  def test_lists_has_aux_and_traced_weights(self):
    params, losses = _model()
    batches = _batches()
    names = list(SIZES)

    def with_aux(loss):
      return lambda p, b: (loss(p, b), {'value': loss(p, b)})
    fn = jax.jit(so.multi_term_value_and_grad_stats(
        [with_aux(losses[k]) for k in names], has_aux=True, method='vmap'))
    (loss, aux), stats = fn(params, [batches[k] for k in names],)
    self.assertIsInstance(aux, list)
    mu, nu, value = _reference(losses, params, batches,
                               dict.fromkeys(names, 1.0))
    np.testing.assert_allclose(float(loss), value, rtol=1e-5)
    np.testing.assert_allclose(
        sum(float(a['value']) for a in aux), value, rtol=1e-5)
    np.testing.assert_allclose(_flat(stats.loo_noise), nu, rtol=2e-4,
                               atol=1e-9)

    @jax.jit
    def traced(weights, params, batches):
      return so.multi_term_value_and_grad_stats(
          losses, weights, method='vmap')(params, batches)
    _, stats = traced({k: jnp.float32(w) for k, w in WEIGHTS.items()},
                      params, batches)
    _, nu, _ = _reference(losses, params, batches, WEIGHTS)
    np.testing.assert_allclose(_flat(stats.loo_noise), nu, rtol=2e-4,
                               atol=1e-9)

  def test_typed_keys_are_independent_across_terms(self):
    def noisy(params, batch, key):   # per-example noise from the key
      e = jax.random.normal(key, batch.shape)
      return jnp.mean((params['w'] * batch - e) ** 2)
    params = {'w': jnp.float32(0.5)}
    batches = {'a': jnp.arange(1.0, 5.0), 'b': jnp.arange(2.0, 5.0)}
    weights = {'a': 1.0, 'b': 2.0}
    key = jax.random.key(3)
    loss, stats = so.multi_term_value_and_grad_stats(
        {'a': noisy, 'b': noisy}, weights, method='vmap')(params, batches,
                                                          key)
    mu = nu = 0.0
    for t, name in enumerate(batches):
      g = []
      for i, x in enumerate(np.asarray(batches[name])):
        k = jax.random.fold_in(jax.random.fold_in(key, t), i)
        g.append(float(jax.grad(noisy)(params, jnp.float32([x]), k)['w']))
      mean, m2, b = ref.stats(np.array(g))
      mu += weights[name] * mean
      nu += weights[name] ** 2 * ref.loo_noise(m2, b)
    np.testing.assert_allclose(float(stats.mean['w']), mu, rtol=1e-5)
    np.testing.assert_allclose(float(stats.loo_noise['w']), nu, rtol=1e-5)
    self.assertTrue(np.isfinite(float(loss)))

  def test_bad_input_is_refused_naming_the_term(self):
    params, losses = _model()
    batches = _batches()
    fn = so.multi_term_value_and_grad_stats(losses, WEIGHTS, method='vmap')
    one_point = dict(batches, initial=jax.tree.map(lambda x: x[:1],
                                                   batches['initial']))
    summed = dict(losses, initial=lambda p, b: jnp.sum(
        (jax.vmap(lambda x: x)(b['y']) - p['l2']['bias'][...]) ** 2))
    cases = [
        (lambda: fn(params, one_point),
         r"batch of term \['initial'\]: batch size 1 .* at least 2"),
        (lambda: fn(params, {'residual': batches['residual']}),
         'keys of loss_fns'),
        (lambda: fn(params, list(batches.values())), 'keys of loss_fns'),
        (lambda: so.multi_term_value_and_grad_stats(
            summed, WEIGHTS, method='vmap')(params, batches),
         r"Term \['initial'\]: Cannot compute"),
        (lambda: so.multi_term_value_and_grad_stats(losses, dict(
            WEIGHTS, boundary=-1.0)), r"weights\['boundary'\] must be"),
        (lambda: so.multi_term_value_and_grad_stats(losses, [1.0]),
         'dict with the keys of loss_fns'),
        (lambda: so.multi_term_value_and_grad_stats(losses, method='exact'),
         'Unknown method'),
        (lambda: so.multi_term_value_and_grad_stats([]), 'at least one term'),
        (lambda: so.multi_term_value_and_grad_stats(losses['residual']),
         'must be a dict, list or tuple'),
        (lambda: so.multi_term_value_and_grad_stats([losses['residual'], 2]),
         r'loss_fns\[1\] is a int'),
        (lambda: so.multi_term_value_and_grad_stats(
            [losses['residual']])(params, (batches['residual'],) * 2),
         'list or tuple of 1 batches'),
    ]
    for call, message in cases:
      with self.assertRaisesRegex(ValueError, message):
        call()


class TransformationsTest(parameterized.TestCase):
  """Combined statistics through the masks and SNR-Adam, step by step."""

  @parameterized.parameters(('before', 'hard'), ('after', 'snr'))
  def test_snr_adam_matches_numpy(self, placement, mode):
    params, losses = _model()
    lr = 1e-2
    opt = so.snr_adam(lr, mode=mode, placement=placement)
    stats_fn = so.multi_term_value_and_grad_stats(losses, WEIGHTS,
                                                  method='vmap')

    @jax.jit
    def step(params, state, batches):
      _, stats = stats_fn(params, batches)
      updates, state = opt.update(stats, state, params)
      return optax.apply_updates(params, updates), state

    state = opt.init(params)
    adam = ref.Adam(_flat(params).shape)
    want = _flat(params)
    for k in range(3):
      batches = _batches(seed=k)
      mu, nu, _ = _reference(losses, params, batches, WEIGHTS)
      q = ref.mask(mu, nu, mode=mode)
      if placement == 'before':
        want = want - lr * adam.direction(q * mu)
      else:
        want = want - lr * q * adam.direction(mu)
      params, state = step(params, state, batches)
      np.testing.assert_allclose(_flat(params), want, rtol=1e-4, atol=1e-5)
    fraction = float(optax.tree_utils.tree_get(state, 'mask_fraction'))
    np.testing.assert_allclose(fraction, q.mean(), rtol=1e-5)

  def test_snr_mask_gated_compute_mask_and_grad_stats_form(self):
    params, losses = _model()
    batches = _batches()
    _, stats = jax.jit(so.multi_term_value_and_grad_stats(
        losses, WEIGHTS, method='vmap'))(params, batches)
    mu, nu, _ = _reference(losses, params, batches, WEIGHTS)
    q = ref.mask(mu, nu, mode='soft', alpha=0.5)
    np.testing.assert_allclose(
        _flat(so.compute_mask(stats, mode='soft', alpha=0.5)), q, atol=1e-4)
    tx = so.snr_mask(mode='soft', alpha=0.5)
    out, _ = tx.update(stats, tx.init(params), params)
    np.testing.assert_allclose(_flat(out), q * mu, rtol=1e-4, atol=1e-6)
    out, _ = tx.update(stats.mean, tx.init(params), params, grad_stats=stats)
    np.testing.assert_allclose(_flat(out), q * mu, rtol=1e-4, atol=1e-6)
    gated = so.gated(optax.sgd(1.0), mode='soft', alpha=0.5)
    out, _ = gated.update(stats, gated.init(params), params)
    np.testing.assert_allclose(_flat(out), -q * mu, rtol=1e-4, atol=1e-6)

  def test_apply_if_finite_sees_the_combined_noise(self):
    params = {'w': jnp.zeros(2)}
    good = so.stats_from_per_example({'w': jnp.ones((3, 2))})
    bad = so.GradStats({'w': jnp.ones(2)}, {'w': jnp.zeros(2)}, jnp.int32(4),
                       noise={'w': jnp.array([1.0, jnp.inf])})
    opt = so.apply_if_finite(so.snr_adam(0.1), 3)
    state = opt.init(params)
    updates, state = opt.update(so.combine_stats([good, bad]), state, params)
    self.assertFalse(bool(state.last_finite))
    np.testing.assert_array_equal(updates['w'], 0.0)


class ShardingTest(parameterized.TestCase):
  """A multi-term SNR-Adam step on 8 devices equals the one-device step."""

  @parameterized.named_parameters(('explicit', AxisType.Explicit),
                                  ('auto', AxisType.Auto))
  def test_sharded_equals_single_device(self, axis_type):
    if jax.device_count() < 8:
      self.skipTest('needs 8 devices')
    params, losses = _model()
    sizes = {'residual': 16, 'initial': 8, 'boundary': 8}
    batches = _batches(sizes=sizes)
    opt = so.snr_adam(1e-2, mode='snr')
    stats_fn = so.multi_term_value_and_grad_stats(losses, WEIGHTS,
                                                  method='vmap')

    @jax.jit
    def step(params, state, batches):
      loss, stats = stats_fn(params, batches)
      updates, state = opt.update(stats, state, params)
      return optax.apply_updates(params, updates), state, loss, stats

    want = step(params, opt.init(params), batches)
    mesh = jax.make_mesh((8,), ('data',), axis_types=(axis_type,))
    replicated = jax.device_put(params, NamedSharding(mesh, P()))
    sharded = so.sharding.shard_batch(batches, mesh)
    with jax.set_mesh(mesh):
      got = step(replicated, opt.init(replicated), sharded)
    for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=2e-4,
                                 atol=2e-6)
    for x in jax.tree.leaves(got[0]):
      self.assertTrue(x.sharding.is_fully_replicated)


if __name__ == '__main__':
  absltest.main()
