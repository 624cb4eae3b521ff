# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of the shared training step on a toy least-squares problem."""

from absl.testing import absltest
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

import snr_optax as so
from examples.common import steps

PARAMS = {'w': jnp.array([0.5, -1.0]), 'b': jnp.array(0.1)}
BATCH = (jnp.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0], [-1.0, 1.0]]),
         jnp.array([1.0, 0.0, 2.0, -1.0]))


def loss_fn(params, batch):
  x, y = batch
  return jnp.mean(jnp.square(x @ params['w'] + params['b'] - y))


def loss_and_aux(params, batch):
  return loss_fn(params, batch), jnp.float32(7.0)


def config(optimizer):
  return ml_collections.ConfigDict({
      'optimizer': optimizer,
      'snr': {'method': 'vmap', 'microbatch_size': 0}})


def snr_config(optimizer, **snr):
  return ml_collections.ConfigDict({
      'optimizer': optimizer, 'b1': 0.8, 'b2': 0.99, 'weight_decay': 0.1,
      'snr': {'mode': 'snr', 'alpha': 2.0, 'softness': 0.5,
              'reduction': 'element', 'placement': 'after', 'rho': 0.9,
              'warmup_steps': 1, **snr}})


class SNROptimizerTest(absltest.TestCase):

  def test_each_is_the_library_optimizer_with_the_configs_settings(self):
    stats = so.value_and_grad_stats(loss_fn)(PARAMS, BATCH)[1]
    mask = dict(mode='snr', alpha=2.0, softness=0.5, reduction='element')
    cases = (
        ('snr_adam', so.snr_adam(1e-2, 0.8, 0.99, placement='after',
                                 weight_decay=0.1, **mask)),
        ('streaming_snr_adamw', so.streaming_snr_adamw(
            1e-2, 0.8, 0.99, rho=0.9, weight_decay=0.1, warmup_steps=1,
            **mask)))
    for name, want in cases:
      got = steps.snr_optimizer(snr_config(name), 1e-2)
      inputs = stats if name == 'snr_adam' else stats.mean
      g_state, w_state = got.init(PARAMS), want.init(PARAMS)
      for _ in range(3):   # past the streaming warm-up
        g, g_state = got.update(inputs, g_state, PARAMS)
        w, w_state = want.update(inputs, w_state, PARAMS)
        for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(w)):
          np.testing.assert_array_equal(a, b)

  def test_another_optimizer_is_refused(self):
    with self.assertRaisesRegex(ValueError, "'adam' is not an SNR"):
      steps.snr_optimizer(snr_config('adam'), 1e-2)


class TrainStepTest(absltest.TestCase):

  def assert_trees_equal(self, a, b):
    jax.tree.map(np.testing.assert_array_equal, a, b)

  def test_a_plain_optimizer_takes_the_mean_gradient(self):
    optimizer = optax.adam(1e-2)
    state = optimizer.init(PARAMS)
    step = steps.make_train_step(config('adam'), loss_fn, optimizer,
                                 per_example=('snr_adam',))
    params, opt_state, loss = step(PARAMS, state, BATCH)
    expected_loss, grads = jax.value_and_grad(loss_fn)(PARAMS, BATCH)
    updates, expected_state = optimizer.update(grads, state, PARAMS)
    self.assert_trees_equal(params, optax.apply_updates(PARAMS, updates))
    self.assert_trees_equal(opt_state, expected_state)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-6)

  def test_a_per_example_optimizer_takes_statistics(self):
    optimizer = so.snr_adam(1e-2, mode='hard')
    state = optimizer.init(PARAMS)
    step = steps.make_train_step(config('snr_adam'), loss_fn, optimizer,
                                 per_example=('snr_adam',))
    params, opt_state, _ = step(PARAMS, state, BATCH)
    _, stats = so.value_and_grad_stats(loss_fn, method='vmap')(PARAMS, BATCH)
    updates, expected_state = optimizer.update(stats, state, PARAMS)
    self.assert_trees_equal(params, optax.apply_updates(PARAMS, updates))
    self.assert_trees_equal(opt_state, expected_state)

  def test_aux_is_returned_and_shardings_applied(self):
    for optimizer_name, optimizer in (('adam', optax.adam(1e-2)),
                                      ('snr_adam', so.snr_adam(1e-2))):
      with self.subTest(optimizer_name):
        state = optimizer.init(PARAMS)
        replicated = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        shardings = (jax.tree.map(lambda _: replicated, PARAMS),
                     jax.tree.map(lambda _: replicated, state))
        for out_shardings in (None, shardings):
          step = steps.make_train_step(
              config(optimizer_name), loss_and_aux, optimizer,
              per_example=('snr_adam',), has_aux=True,
              out_shardings=out_shardings)
          out = step(PARAMS, state, BATCH)
          self.assertLen(out, 4)
          self.assertEqual(float(out[3]), 7.0)

  def test_step_maker_compiles_once_and_steps(self):
    optimizer = optax.sgd(0.1)
    state = {'params': PARAMS, 'opt_state': optimizer.init(PARAMS)}
    step = steps.make_train_step(config('sgd'), loss_fn, optimizer,
                                 per_example=())
    asked = []

    def batch(number):
      asked.append(number)
      return BATCH

    train_step = steps.step_maker(step, state, batch)()
    self.assertEqual(asked, [0])   # compiled on the first batch
    after = train_step(train_step(state, 0), 1)
    self.assertEqual(asked, [0, 0, 1])
    params, opt_state, _ = step(state['params'], state['opt_state'], BATCH)
    params, opt_state, _ = step(params, opt_state, BATCH)
    self.assert_trees_equal(after, {'params': params,
                                    'opt_state': opt_state})


if __name__ == '__main__':
  absltest.main()
