# Copyright 2019 DeepMind Technologies Limited. All Rights Reserved.
# Copyright 2026 The snr_optax Authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
# ==============================================================================
"""optax's ``transforms/_accumulation_test.py`` (0.2.8), adapted.

The tests of ``optax.MultiSteps`` run against :func:`snr_optax.accumulate_stats`
with the same structure, data and assertions, changed only where the two
differ:

* each call takes one micro-batch of *per-example* gradients (or a
  ``GradStats``), so ``jax.grad`` becomes its ``jax.vmap`` over one-example
  batches (``_per_example_grads``) and a scalar gradient ``g`` becomes the two examples ``[g, g]`` (same mean);
* the wrapped optimizer starts with ``so.snr_mask()`` (or is
  ``so.snr_adam``), which turns the accumulated statistics into the masked
  mean; on the tests' data every example agrees, so the mask is 1 and the
  expected numbers are optax's;
* ``ms_opt.has_updated(state)`` is ``state.has_updated``, and ``acc_grads``
  is ``acc_stats``.

Not applicable, kept as skipped tests with the reason: ``test_ema`` and
``test_ema_debias`` (they test ``optax.ema``, an average over steps that has
no counterpart here). The options ``use_grad_mean`` and ``accumulator_dtype``
do not exist: the accumulator always forms the exact mean of all examples
(never a sum) in at least float32; the tests that pass them keep the rest of
their assertions.
"""

import functools

from absl.testing import absltest
from absl.testing import parameterized
import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

import snr_optax as so

OPTIMIZERS_TO_TEST = [
    # optax: adam(learning_rate=0.1) and adam(..., mu_dtype=jnp.float32).
    {'opt_name': 'snr_adam', 'opt_kwargs': {'learning_rate': 0.1}},
    {'opt_name': 'snr_adam', 'opt_kwargs': {'learning_rate': 0.1,
                                            'placement': 'after'}},
]


class Loss(flax.linen.Module):

  @flax.linen.compact
  def __call__(self, x, dtype=jnp.float32, param_dtype=jnp.float32):
    return jnp.sum(
        flax.linen.Dense(10, dtype=dtype, param_dtype=param_dtype)(x) ** 2
    )


def _per_example_grads(loss_apply):
  """jax.grad of the loss on each one-example batch, vmapped over the batch.

  optax's Loss sums over the batch, which snr_optax.per_example_grads (made
  for batch-mean losses) refuses; on one example sum and mean agree.
  """
  return jax.vmap(jax.grad(lambda params, x: loss_apply(params, x[None])),
                  in_axes=(None, 0))


def _two_examples(tree):
  """Per-example gradients of two identical examples with mean ``tree``."""
  return jax.tree.map(lambda g: jnp.stack([g, g]), tree)


def _stats(mean):
  """A micro-batch's GradStats with the given means and no spread."""
  mean = jax.tree.map(jnp.asarray, mean)
  return so.GradStats(mean, jax.tree.map(jnp.zeros_like, mean),
                      jnp.asarray(2, jnp.int32))


def _skip_large_means(stats, gradient_step, params, max_squared_norm):
  # optax.skip_large_updates on what MultiSteps would see, the mean gradient.
  return optax.skip_large_updates(stats.mean, gradient_step, params,
                                  max_squared_norm)


class AccumulationTest(parameterized.TestCase):

  def test_ema(self):
    self.skipTest('Not applicable: tests optax.ema (an exponential moving '
                  'average over steps); accumulate_stats has no EMA.')

  def test_ema_debias(self):
    self.skipTest('Not applicable: tests optax.ema with debiasing; '
                  'accumulate_stats has no EMA.')

  def test_skip_not_finite(self):
    # accumulate_stats hands should_skip_update_fn the micro-batch GradStats;
    # optax.skip_not_finite takes it as it is.
    step = jnp.zeros([], dtype=jnp.int32)

    with self.subTest('test_pos_inf'):
      should_skip, skip_state = optax.skip_not_finite(
          _stats([jnp.array(float('inf')), jnp.zeros([])]), step, None
      )
      self.assertTrue(bool(should_skip))
      self.assertTrue(bool(skip_state['should_skip']))
      self.assertEqual(int(skip_state['num_not_finite']), 1)

    with self.subTest('test_neg_inf'):
      should_skip, skip_state = optax.skip_not_finite(
          _stats([jnp.array(-float('inf')), jnp.zeros([])]), step, None
      )
      self.assertTrue(bool(should_skip))
      self.assertTrue(bool(skip_state['should_skip']))
      self.assertEqual(int(skip_state['num_not_finite']), 1)

    with self.subTest('test_nan'):
      should_skip, skip_state = optax.skip_not_finite(
          _stats([jnp.array(float('nan')), jnp.zeros([])]), step, None
      )
      self.assertTrue(bool(should_skip))
      self.assertTrue(bool(skip_state['should_skip']))
      self.assertEqual(int(skip_state['num_not_finite']), 1)

    with self.subTest('test_finite'):
      should_skip, skip_state = optax.skip_not_finite(
          _stats([jnp.array(11.0), jnp.zeros([])]), step, None
      )
      self.assertFalse(bool(should_skip))
      self.assertFalse(bool(skip_state['should_skip']))
      self.assertEqual(int(skip_state['num_not_finite']), 0)

  def test_skip_large_updates(self):
    # optax.skip_large_updates would also count sum_sq_dev and count in the
    # norm; on statistics it is applied to the mean (_skip_large_means).
    step = jnp.zeros([], dtype=jnp.int32)

    with self.subTest('test_inf'):
      should_skip, skip_state = _skip_large_means(
          _stats([jnp.array(float('inf')), jnp.zeros([])]), step, None, 100.0
      )
      self.assertTrue(bool(should_skip))
      self.assertTrue(bool(skip_state['should_skip']))
      self.assertEqual(float(skip_state['norm_squared']), float('inf'))

    with self.subTest('test_nan'):
      should_skip, skip_state = _skip_large_means(
          _stats([jnp.array(float('nan')), jnp.zeros([])]), step, None, 100.0
      )
      self.assertTrue(bool(should_skip))
      self.assertTrue(bool(skip_state['should_skip']))
      # Recall that NaN != NaN.
      norm_squared = float(skip_state['norm_squared'])
      self.assertNotEqual(norm_squared, norm_squared)

    with self.subTest('test_large'):
      should_skip, skip_state = _skip_large_means(
          _stats([jnp.array(11.0), jnp.zeros([])]), step, None, 100.0
      )
      self.assertTrue(bool(should_skip))
      self.assertTrue(bool(skip_state['should_skip']))
      self.assertEqual(float(skip_state['norm_squared']), 121.0)

    with self.subTest('test_small'):
      should_skip, skip_state = _skip_large_means(
          _stats([jnp.zeros([]), jnp.zeros([])]), step, None, 100.0
      )
      self.assertFalse(bool(should_skip))
      self.assertFalse(bool(skip_state['should_skip']))
      self.assertEqual(float(skip_state['norm_squared']), 0.0)

    with self.subTest('test_through_accumulate_stats'):
      opt = so.accumulate_stats(
          optax.chain(so.snr_mask(), optax.sgd(1.0)), 1,
          should_skip_update_fn=functools.partial(_skip_large_means,
                                                  max_squared_norm=100.0))
      params = {'a': jnp.zeros([])}
      state = opt.init(params)
      updates, state = opt.update(_two_examples({'a': jnp.array(11.0)}),
                                  state, params)
      self.assertEqual(float(updates['a']), 0.0)
      self.assertEqual(int(state.gradient_step), 0)
      updates, state = opt.update(_two_examples({'a': jnp.array(3.0)}),
                                  state, params)
      self.assertEqual(float(updates['a']), -3.0)

  def test_multi_steps(self):
    batch_size = 32
    x_size = 7
    # Parameters should be updated only every `k_steps` optimization steps.
    k_steps = 4
    data = jnp.ones([batch_size, x_size])
    loss = Loss()

    params = loss.init({'params': jax.random.key(0)}, data)['params']

    def loss_apply(params, data):
      return loss.apply({'params': params}, data)

    ms_opt = so.accumulate_stats(
        # Use a non-trivial inner optimizer:
        # * it has a state,
        # * it requires the params for the update.
        optax.chain(
            so.snr_mask(),
            optax.scale_by_adam(),
            optax.add_decayed_weights(1e-2),
            optax.scale(-1e-4),
        ),
        k_steps,
    )

    opt_init, opt_update = ms_opt

    # Put the training in one function, to check that the update is indeed
    # jittable.
    def train_step(data, opt_state, params):
      grad = _per_example_grads(loss_apply)(params, data)
      updates, opt_state = opt_update(grad, opt_state, params)
      return updates, opt_state

    opt_state = opt_init(params)

    prev_loss = loss_apply(params, data)
    for idx in range(5 * k_steps):
      updates, opt_state = jax.jit(train_step)(data, opt_state, params)
      new_params = optax.apply_updates(params, updates)
      new_loss = loss_apply(new_params, data)
      if idx % k_steps < k_steps - 1:
        # The parameters should not have changed and the loss should be
        # constant.
        jax.tree.map(np.testing.assert_array_equal, new_params, params)
        np.testing.assert_equal(new_loss, prev_loss)
        self.assertFalse(opt_state.has_updated)
      else:
        # This is a step where parameters should actually have been updated, and
        # the loss should accordingly go down.
        np.testing.assert_array_less(new_loss, prev_loss)
        prev_loss = new_loss
        self.assertTrue(opt_state.has_updated)
        # Here: the update saw all k_steps * batch_size examples.
        self.assertEqual(int(opt_state.effective_batch_size),
                         k_steps * batch_size)
      params = new_params

  def test_multi_steps_every_k_schedule(self):
    # Test a non-trivial schedule which varies over time.
    ms_opt = so.accumulate_stats(
        optax.chain(so.snr_mask(), optax.sgd(1e-4)),
        lambda grad_step: jnp.where(grad_step < 2, 1, 3)
    )
    opt_init, opt_update = ms_opt
    params = {'a': jnp.zeros([])}
    opt_state = opt_init(params)
    grad = _two_examples({'a': jnp.zeros([])})
    self.assertFalse(opt_state.has_updated)
    # First two steps have 1 mini-step per update.
    for _ in range(2):
      _, opt_state = opt_update(grad, opt_state, params)
      self.assertTrue(opt_state.has_updated)
    # Subsequently, mini-steps should have 3 mini-steps per update.
    for _ in range(5):
      for _ in range(2):
        _, opt_state = opt_update(grad, opt_state, params)
        self.assertFalse(opt_state.has_updated)
      _, opt_state = opt_update(grad, opt_state, params)
      self.assertTrue(opt_state.has_updated)

  def test_multi_steps_scan_dtype_stability(self):
    # Testing if accumulator dtype stays the same under jax.lax.scan
    # It is important that the dtype is not promoted in the accumulator
    # (optax passes accumulator_dtype=jnp.float32; here it is always at least
    # float32.)
    ms_opt = so.accumulate_stats(
        optax.chain(so.snr_mask(), optax.sgd(1e-4)), 2)
    opt_init, opt_update = ms_opt
    params = {'a': jnp.zeros([], dtype=jnp.bfloat16)}

    # We use bfloat16 to test if gradients of bfloat16 promote the states
    # to bfloat16 or similar.
    def train_step(state, _):
      grad = _two_examples({'a': jnp.ones([], dtype=jnp.bfloat16)})
      updates, opt_state = opt_update(grad, state, params)
      return opt_state, updates

    opt_state = opt_init(params)
    # This map should succeed without raising dtype errors in lax.scan
    # if dtype is stable.
    final_state, _ = jax.lax.scan(train_step, opt_state, jnp.arange(4))
    # Also ensure actual dtype of accumulator is float32
    self.assertEqual(final_state.acc_stats.mean['a'].dtype, jnp.float32)
    self.assertEqual(final_state.acc_stats.sum_sq_dev['a'].dtype, jnp.float32)

  def test_multi_steps_zero_nans(self):
    # Test that accumulate_stats is compatible with zero_nans
    # https://github.com/google-deepmind/optax/issues/828
    # (snr_mask first: a per-example transformation must be.)
    ms_opt = so.accumulate_stats(
        optax.chain(so.snr_mask(), optax.zero_nans(), optax.sgd(1e-4)),
        every_k_schedule=2,
    )
    opt_init, opt_update = ms_opt
    params = {'a': jnp.zeros([])}
    opt_state = opt_init(params)
    grad = _two_examples({'a': jnp.zeros([])})
    opt_update(grad, opt_state, params)

  @parameterized.parameters(True, False)
  def test_multi_steps_computes_mean(self, with_mask):
    # optax: use_grad_mean=True (the only behaviour here; no summing).
    k_steps = 4
    inner = optax.scale(1.0)
    if with_mask:
      inner = optax.chain(so.snr_mask(), inner)
    ms_opt = so.accumulate_stats(inner, k_steps)
    opt_init, opt_update = ms_opt
    params = {'a': jnp.zeros([])}
    opt_state = opt_init(params)
    grads = [_two_examples({'a': jnp.ones([]) * i}) for i in [1, 2, 3, 4]]
    self.assertFalse(opt_state.has_updated)

    # First 3 steps don't update.
    for grad in grads[:-1]:
      _, opt_state = opt_update(grad, opt_state, params)
      self.assertFalse(opt_state.has_updated)

    # Actual update.
    new_params, opt_state = opt_update(grads[-1], opt_state, params)
    self.assertTrue(opt_state.has_updated)
    np.testing.assert_array_equal(new_params['a'], 2.5)

  def test_multi_steps_skip_not_finite(self):
    k_steps = 2
    ms_opt = so.accumulate_stats(
        optax.chain(so.snr_mask(), optax.sgd(1.0)),
        k_steps,
        should_skip_update_fn=optax.skip_not_finite,
    )
    opt_init, opt_update = ms_opt
    opt_init = jax.jit(opt_init)
    opt_update = jax.jit(opt_update)
    params = {'a': jnp.zeros([])}
    opt_state = opt_init(params)

    with self.subTest('test_good_updates'):
      updates, opt_state = opt_update(_two_examples({'a': jnp.ones([])}),
                                      opt_state, params)
      self.assertEqual(int(opt_state.mini_step), 1)
      params = optax.apply_updates(params, updates)
      updates, opt_state = opt_update(_two_examples({'a': jnp.ones([])}),
                                      opt_state, params)
      self.assertEqual(int(opt_state.mini_step), 0)
      params = optax.apply_updates(params, updates)
      np.testing.assert_array_equal(params['a'], jnp.negative(jnp.ones([])))

    with self.subTest('test_inf_updates'):
      updates, opt_state = opt_update(
          _two_examples({'a': jnp.array(float('inf'))}), opt_state, params)
      self.assertEqual(int(opt_state.mini_step), 0)  # No increase in mini_step
      params = optax.apply_updates(params, updates)
      np.testing.assert_array_equal(params['a'], jnp.negative(jnp.ones([])))

    with self.subTest('test_nan_updates'):
      updates, opt_state = opt_update(
          _two_examples({'a': jnp.full([], float('nan'))}), opt_state, params)
      self.assertEqual(int(opt_state.mini_step), 0)  # No increase in mini_step
      params = optax.apply_updates(params, updates)
      np.testing.assert_array_equal(params['a'], jnp.negative(jnp.ones([])))

    with self.subTest('test_final_good_updates'):
      updates, opt_state = opt_update(_two_examples({'a': jnp.ones([])}),
                                      opt_state, params)
      self.assertEqual(int(opt_state.mini_step), 1)
      params = optax.apply_updates(params, updates)
      updates, opt_state = opt_update(_two_examples({'a': jnp.ones([])}),
                                      opt_state, params)
      self.assertEqual(int(opt_state.mini_step), 0)
      params = optax.apply_updates(params, updates)
      np.testing.assert_array_equal(
          params['a'], jnp.negative(jnp.full([], 2.0))
      )

  @parameterized.parameters(OPTIMIZERS_TO_TEST)
  def test_multi_steps_mixed_precision(self, opt_name, opt_kwargs):
    batch_size = 32
    x_size = 7
    k_steps = 4
    data = jnp.ones([batch_size, x_size])
    loss = Loss()

    def loss_apply(params, data):
      return loss.apply({'params': params}, data)

    # Compare optimizer dtypes with and without accumulate_stats
    def create_optimizer(k_steps):
      base_opt = getattr(so, opt_name)(**opt_kwargs)
      ms_opt = so.accumulate_stats(base_opt, k_steps)
      return base_opt, ms_opt

    opt, ms_opt = create_optimizer(k_steps)
    ms_opt_init, ms_opt_update = ms_opt

    # General train step
    def train_step(data, opt_state, params, opt_update_fn, upd_dtype):
      grad = _per_example_grads(loss_apply)(params, data)
      grad = jax.tree.map(
          lambda x: x.astype(upd_dtype), grad
      )  # mimic varying dtype
      updates, opt_state = opt_update_fn(grad, opt_state, params)
      return updates, opt_state

    # Utility for dtype comparison
    def compare_dtypes(tree1, tree2):
      return jax.tree.all(
          jax.tree.map(lambda x, y: x.dtype == y.dtype, tree1, tree2)
      )

    # Iterate over parameter and update dtypes
    dtypes = [jnp.float32, jnp.float16, jnp.bfloat16]
    for upd_dtype in dtypes:
      for param_dtype in dtypes:
        data = data.astype(param_dtype)
        with self.subTest(
            f'upd_dtype={upd_dtype.__name__}-param_dtype={param_dtype.__name__}'
        ):
          # Initialize parameters with current combination of dtypes
          params = loss.init(
              {'params': jax.random.key(0)}, data, param_dtype=param_dtype
          )['params']
          opt_state = opt.init(params)
          ms_opt_state = ms_opt_init(params)

          for _ in range(k_steps + 1):
            updates, opt_state = train_step(
                data, opt_state, params, opt.update, upd_dtype
            )
            ms_updates, ms_opt_state = train_step(
                data, ms_opt_state, params, ms_opt_update, upd_dtype
            )
            get_dtypes = lambda tree: jax.tree.map(lambda x: x.dtype, tree)
            self.assertTrue(
                compare_dtypes(updates, ms_updates),
                'Underlying optimizer and accumulate_stats updates dtype must'
                f' match. Got ({get_dtypes(updates)}) vs'
                f' ({get_dtypes(ms_updates)}).'
            )
            new_params = optax.apply_updates(params, ms_updates)
            self.assertTrue(
                compare_dtypes(params, new_params),
                'Updates parameters dtypes must match.'
                f' Got ({get_dtypes(params)}) vs ({get_dtypes(new_params)}).'
            )
            params = new_params


if __name__ == '__main__':
  absltest.main()
