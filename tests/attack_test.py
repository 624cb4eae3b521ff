# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Adversarial inputs for the statistics engine: exact, or a clear ValueError.

Each test asserts the *contract* (README, "The contract: exact or refused"):
every method returns the statistics of the exact loop over one-example
batches (``model_zoo.loop_reference``), or raises a ``ValueError`` saying
what is wrong. Tests of inputs the engine got wrong when this file was
written (silently wrong statistics, a deep JAX error, a refusal of what the
contract says must work) fail until the engine is fixed; the rest pin down
inputs that already work (unusual layer options, time-major layouts, masks,
keys in the batch, bad input).
"""

import subprocess
import sys
import textwrap

from absl.testing import absltest
from absl.testing import parameterized
from flax import linen as nn
from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import snr_optax as so
from tests import model_zoo as zoo


def _xent_vec(logits, y):
  return optax.softmax_cross_entropy_with_integer_labels(logits, y)


def _mse(out, target):
  return jnp.mean(jnp.sum((out - target) ** 2,
                          axis=tuple(range(1, out.ndim))))


class AttackCase(parameterized.TestCase):

  def check(self, case, methods=('auto', 'fast', 'vmap'), *, refusable=(),
            jit=True, ref=None, **tolerances):
    """Each method is exact; those in ``refusable`` may raise ValueError."""
    loss, params, batch, args = case
    if ref is None:
      ref = zoo.loop_reference(loss, params, batch, *args)
    failures = []
    for method in methods:
      kwargs = {'microbatch_size': 2} if method == 'microbatch' else {}
      fn = so.value_and_grad_stats(loss, method=method, **kwargs)
      if jit:
        fn = jax.jit(fn)
      try:
        _, stats = fn(params, batch, *args)
      except ValueError as e:
        if method not in refusable:
          failures.append(f'{method}: refused: {str(e)[:300]}')
        continue
      except Exception as e:  # pylint: disable=broad-except
        failures.append(f'{method}: crashed with {type(e).__name__} (not a '
                        f'ValueError naming the problem): {str(e)[:300]}')
        continue
      failures += [f'{method}: {e}' for e in zoo.compare_stats(
          stats, ref, **tolerances)]
    if failures:
      self.fail('Not exact:\n' + '\n'.join(failures))
    return ref


def _linear(n_in, n_out, seed=0, **kwargs):
  return nnx.split(nnx.Linear(n_in, n_out, rngs=nnx.Rngs(seed), **kwargs),
                   nnx.Param)


# ---------------------------------------------------------------------------
# Findings: each fails until the engine is fixed.
# ---------------------------------------------------------------------------


class BatchSizeDependenceTest(AttackCase):
  """The per-example function must be the one at batch size 1.

  The mean check compares only the scales of the sums over the examples at
  batch sizes b and b + 1; anything else in the program that depends on b
  (a literal b, a batch-independent array whose value depends on b) changes
  the per-example losses without being seen, and "fast" forms per-example
  gradients from the batch call.
  """

  def test_output_scaled_by_batch_size(self):
    graphdef, params = _linear(4, 3)

    def loss(params, batch):
      x, y = batch
      out = nnx.merge(graphdef, params)(x) / jnp.sqrt(jnp.float32(x.shape[0]))
      return _xent_vec(out, y).mean()

    self.check((loss, params, (zoo.normal(1, (5, 4)), zoo.labels(2, 5, 3)),
                ()), refusable=('auto', 'fast'))

  def test_mean_times_batch_size_array_is_a_sum(self):
    # mean(l) * sum(ones(b)) == sum(l): a sum over the batch. The factor is
    # an array, not a literal, so the mean check does not see it.
    graphdef, params = _linear(4, 3)

    def loss(params, batch):
      x, y = batch
      return _xent_vec(nnx.merge(graphdef, params)(x), y).mean() * jnp.sum(
          jnp.ones(x.shape[0]))

    # A sum over the batch is refused by every method (README: the contract).
    batch = (zoo.normal(3, (5, 4)), zoo.labels(4, 5, 3))
    for method in ('auto', 'vmap'):
      with self.assertRaisesRegex(ValueError, 'sums over the examples'):
        so.value_and_grad_stats(loss, method=method)(params, batch)


class ConstLinedUpWithExamplesTest(AttackCase):
  """A batch-independent value that differs from example to example."""

  def test_cumsum_along_the_example_axis(self):
    # w = [[1], [2], ..., [b]]: cumsum is taken to keep a constant-along-
    # the-examples value constant, so w passes as "the same for every
    # example" and the fast path weights example i by i + 1.
    graphdef, params = _linear(4, 3)

    def loss(params, batch):
      x, y = batch
      w = jnp.cumsum(jnp.ones((x.shape[0], 1)), axis=0)
      return _xent_vec(nnx.merge(graphdef, params)(x) * w, y).mean()

    self.check((loss, params, (zoo.normal(5, (5, 4)), zoo.labels(6, 5, 3)),
                ()), refusable=('auto', 'fast'))

  def test_sort_with_a_payload_that_differs_per_example(self):
    # The sort rule does not check its batch-independent operands.
    graphdef, params = _linear(5, 3)

    def loss(params, batch):
      x, _ = batch
      h = nnx.merge(graphdef, params)(x)
      c = jnp.arange(x.shape[0] * 3, dtype=jnp.float32).reshape(-1, 3)
      _, cs = jax.lax.sort((jax.lax.stop_gradient(h), c), dimension=1,
                           num_keys=1)
      return jnp.mean(h * cs)

    self.check((loss, params, (zoo.normal(7, (4, 5)), zoo.normal(8, (4, 3))),
                ()), refusable=('auto', 'fast'))


@nnx.vmap(in_axes=0, out_axes=0)
def _nnx_ensemble(key):
  return nnx.Linear(3, 2, use_bias=False, rngs=nnx.Rngs(key))


class ParametersUnderVmapTest(AttackCase):
  """Ensembles: a layer called under a vmap of its parameters."""

  def test_nnx_vmap_ensemble_bias_free(self):
    # Three members, in_features 3: the layer's per-example VJP is run with
    # the stacked [3, 3, 2] kernel as if it were one [3, 2] kernel; the
    # shapes line up, and the statistics are silently wrong.
    graphdef, params = nnx.split(
        _nnx_ensemble(jax.random.split(jax.random.key(1), 3)), nnx.Param)

    def loss(params, batch):
      x, y = batch
      out = nnx.vmap(lambda m, x: m(x), in_axes=(0, None), out_axes=1)(
          nnx.merge(graphdef, params), x)
      return jnp.mean((jnp.tanh(out).mean(1) - y) ** 2)

    self.check((loss, params, (zoo.normal(9, (4, 3)), zoo.normal(10, (4, 2))),
                ()), refusable=('fast',))

  def test_linen_vmap_ensemble(self):
    # The same in Linen: a ScopeParamShapeError from deep inside Flax.
    class Ensemble(nn.Module):

      @nn.compact
      def __call__(self, x):
        dense = nn.vmap(nn.Dense, variable_axes={'params': 0},
                        split_rngs={'params': True}, in_axes=None,
                        out_axes=1, axis_size=3)(3)
        return jnp.tanh(dense(x)).mean(1)

    batch = (zoo.normal(11, (4, 3)), zoo.normal(12, (4, 3)))
    self.check(zoo.linen_case(Ensemble(), batch, loss=_mse),
               refusable=('fast',))


class BatchNormWithKeyTest(AttackCase):

  def test_vmap_is_not_refused(self):
    # "BatchNorm refused only by fast": without a key argument vmap and
    # microbatch evaluate it on one-example batches; with a dropout key they
    # raise the fast path's refusal ("... or method='vmap'").
    class Net(nn.Module):

      @nn.compact
      def __call__(self, x):
        x = nn.BatchNorm(use_running_average=False)(nn.Dense(4)(x))
        x = nn.Dropout(0.5, deterministic=False)(x)
        return nn.Dense(3)(x)

    model = Net()
    x, y = zoo.normal(13, (4, 3)), zoo.labels(14, 4, 3)
    variables = model.init({'params': jax.random.key(0),
                            'dropout': jax.random.key(1)}, x)

    def loss(params, batch, key):
      out, _ = model.apply({'params': params,
                            'batch_stats': variables['batch_stats']},
                           batch[0], rngs={'dropout': key},
                           mutable=['batch_stats'])
      return zoo.xent(out, batch[1])

    self.check((loss, variables['params'], (x, y), (jax.random.key(5),)),
               methods=('vmap', 'microbatch'))


class FalseRefusalTest(AttackCase):

  def test_masked_token_mean_with_a_constant_mask(self):
    # sum(l * m) / sum(m) with a mask that does not depend on the batch
    # (ignore the first position of every sequence) is a mean of the
    # per-example losses sum_t l_t m_t / sum_t m_t; every method refuses it
    # as "a sum over the examples ... use jnp.mean".
    graphdef, params = _linear(4, 3)

    def loss(params, batch):
      x, y = batch
      l = _xent_vec(nnx.merge(graphdef, params)(x), y)
      m = jnp.broadcast_to(jnp.array([0.0, 1.0, 1.0]), l.shape)
      return jnp.sum(l * m) / jnp.sum(m)

    batch = (zoo.normal(15, (5, 3, 4)), zoo.tokens(16, (5, 3), 3))
    self.check((loss, params, batch, ()), methods=('vmap',))


class Float16Test(AttackCase):

  def test_small_output_gradients_eager(self):
    # float16 parameters and activations, per-example output gradients
    # ~1e-5: the fast path takes them from the batch call, where they are
    # 1/b of that (float16 subnormals), and multiplies by b: ~40% off
    # outside jit (under jit XLA:CPU computes in float32; GPUs do not).
    b = 64
    rng = np.random.default_rng(17)
    graphdef, params = _linear(4, 2, param_dtype=jnp.float16)
    batch = (jnp.asarray(rng.normal(size=(b, 4)), jnp.float16),
             jnp.asarray(1e-5 * rng.normal(size=(b, 2)), jnp.float16))

    def loss(params, batch):
      x, c = batch
      return jnp.mean(jnp.sum(nnx.merge(graphdef, params)(x) * c, axis=-1))

    ref = zoo.loop_reference(loss, params, batch)
    self.check((loss, params, batch, ()), methods=('vmap',), ref=ref,
               delta=1e-3, rtol=1e-2)   # the premise: the exact method
    self.check((loss, params, batch, ()), methods=('auto',), jit=False,
               ref=ref, delta=1e-3, rtol=1e-2)


class Float64Test(absltest.TestCase):

  def test_merge_and_microbatch_keep_float64(self):
    # merge_stats forms its weights n_b / n and n_a n_b / n in float32, so
    # float64 statistics merged from chunks (microbatch, fast with a
    # microbatch size) are only float32-accurate (~1e-8 relative).
    script = textwrap.dedent('''
        import jax
        jax.config.update('jax_enable_x64', True)
        import jax.numpy as jnp, numpy as np
        import snr_optax as so
        a = so.GradStats(jnp.array([1.0]), jnp.array([0.0]), jnp.asarray(2))
        c = so.GradStats(jnp.array([1.1]), jnp.array([0.0]), jnp.asarray(3))
        m = so.merge_stats(a, c)
        errs = [abs(float(m.mean[0]) - 1.06) / 1.06,
                abs(float(m.sum_sq_dev[0]) - 0.012) / 0.012]
        w = jnp.asarray(np.random.default_rng(0).normal(size=3))
        x = jnp.asarray(np.random.default_rng(1).normal(size=(5, 3)))
        loss = lambda w, b: jnp.mean(jnp.tanh(b @ w) ** 2)
        g = np.stack([np.asarray(jax.grad(loss)(w, x[i:i + 1]))
                      for i in range(5)])
        _, s = so.value_and_grad_stats(loss, method='microbatch',
                                       microbatch_size=2)(w, x)
        errs.append(float(np.max(np.abs(s.mean - g.mean(0))
                                 / np.abs(g.mean(0)))))
        errs.append(float(np.max(np.abs(
            s.sum_sq_dev - ((g - g.mean(0)) ** 2).sum(0))
            / ((g - g.mean(0)) ** 2).sum(0))))
        print(max(errs))
        ''')
    out = subprocess.run([sys.executable, '-c', script], capture_output=True,
                         text=True, check=True, timeout=120)
    self.assertLess(float(out.stdout.split()[-1]), 1e-12)


class ComplexParametersTest(absltest.TestCase):

  def test_sum_sq_dev_is_real_or_refused(self):
    # Complex parameters are handled as optax does (|g|^2) or refused
    # clearly: M2 is sum_i |g_i - mu|^2, real, never the unconjugated
    # sum_i (g_i - mu)^2, which is complex.
    w = jnp.asarray([1 + 1j, 2 - 1j, 0.5j], jnp.complex64)
    x = zoo.normal(18, (4, 3))

    def loss(w, batch):
      return jnp.mean(jnp.abs(batch @ w) ** 2)

    g = np.stack([np.asarray(jax.grad(loss)(w, x[i:i + 1]))
                  for i in range(4)])
    want = (np.abs(g - g.mean(0)) ** 2).sum(0)
    for method in ('auto', 'vmap'):
      with self.subTest(method):
        try:
          _, stats = so.value_and_grad_stats(loss, method=method)(w, x)
        except ValueError:
          continue
        np.testing.assert_allclose(np.asarray(stats.sum_sq_dev), want,
                                   rtol=1e-4)


class HasAuxMismatchTest(absltest.TestCase):

  def test_has_aux_with_a_scalar_loss_raises(self):
    # vmap raises (JAX's message); fast/auto return the bare loss where
    # (loss, aux) was promised.
    graphdef, params = _linear(3, 3)

    def loss(params, batch):
      return zoo.xent(nnx.merge(graphdef, params)(batch[0]), batch[1])

    batch = (zoo.normal(19, (4, 3)), zoo.labels(20, 4, 3))
    for method in ('auto', 'vmap'):
      with self.subTest(method):
        with self.assertRaises((ValueError, TypeError)):
          so.value_and_grad_stats(loss, has_aux=True, method=method)(
              params, batch)


# ---------------------------------------------------------------------------
# Inputs that work: unusual layers, layouts, masks, keys, bad input.
# ---------------------------------------------------------------------------


class PassingTest(AttackCase):

  def test_time_major_linear(self):
    # The examples on axis 1 of the layer's input: dense-pairs over time.
    graphdef, params = _linear(4, 3)

    def loss(params, batch):
      x, y = batch
      return zoo.xent(nnx.merge(graphdef, params)(jnp.swapaxes(x, 0, 1)),
                      y.T)

    case = (loss, params, (zoo.normal(21, (5, 3, 4)),
                           zoo.tokens(22, (5, 3), 3)), ())
    self.check(case)
    plan = so.stats_plan(*case[:3])
    self.assertTrue(all(d.startswith('dense-pairs') for d in plan.values()),
                    plan)

  def test_linen_dense_general_two_axes_and_conv_options(self):
    class Net(nn.Module):

      @nn.compact
      def __call__(self, x):
        x = nn.Conv(6, (3, 3), strides=(2, 1), padding='CIRCULAR',
                    kernel_dilation=(1, 2), feature_group_count=2)(x)
        x = jax.nn.relu(x)
        return nn.DenseGeneral(3, axis=(1, 2))(x.mean(2))

    batch = (zoo.normal(23, (3, 6, 6, 4)), zoo.labels(24, 3, 3))
    self.check(zoo.linen_case(Net(), batch))

  def test_attention_with_padding_mask_and_masked_mean(self):
    class Att(nnx.Module):

      def __init__(self, rngs):
        self.emb = nnx.Embed(7, 6, rngs=rngs)
        self.att = nnx.MultiHeadAttention(2, 6, decode=False, rngs=rngs)
        self.head = nnx.Linear(6, 7, rngs=rngs)

    graphdef, params = nnx.split(Att(nnx.Rngs(0)), nnx.Param)

    def loss(params, batch):
      toks, lens, tgt = batch
      m = nnx.merge(graphdef, params)
      valid = jnp.arange(toks.shape[1])[None, :] < lens[:, None]
      h = m.emb(toks)
      h = h + m.att(h, mask=nnx.make_attention_mask(valid, valid))
      l = _xent_vec(m.head(h), tgt)
      return jnp.mean(jnp.sum(l * valid, 1) / jnp.sum(valid, 1))

    batch = (zoo.tokens(25, (4, 5), 7), jnp.array([5, 2, 3, 1]),
             zoo.tokens(26, (4, 5), 7))
    self.check((loss, params, batch, ()))

  def test_dict_batch_with_bool_and_int_leaves(self):
    graphdef, params = _linear(4, 3)

    def loss(params, batch):
      h = nnx.merge(graphdef, params)(batch['in']['x'])
      h = jnp.where(batch['in']['keep'][:, None], h, 0.0)
      y, w = batch['out']
      return jnp.mean(_xent_vec(h, y) * w)

    batch = {'in': {'x': zoo.normal(27, (5, 4)),
                    'keep': jnp.array([True, False, True, True, False])},
             'out': (zoo.labels(28, 5, 3), jnp.arange(5, dtype=jnp.int32))}
    self.check((loss, params, batch, ()))

  @parameterized.named_parameters(('typed', True), ('raw', False))
  def test_one_key_per_example_in_the_batch(self, typed):
    graphdef, params = _linear(3, 3)

    def loss(params, batch):
      x, y, keys = batch
      keep = jax.vmap(lambda k: jax.random.bernoulli(k, 0.5, (3,)))(keys)
      h = jnp.where(keep, nnx.merge(graphdef, params)(x) / 0.5, 0.0)
      return zoo.xent(h, y)

    keys = (jax.random.split(jax.random.key(3), 4) if typed
            else jax.random.split(jax.random.PRNGKey(3), 4))
    batch = (zoo.normal(29, (4, 3)), zoo.labels(30, 4, 3), keys)
    self.check((loss, params, batch, ()), methods=('auto', 'vmap'))

  def test_batch_statistics_refused_by_fast_exact_by_vmap(self):
    graphdef, params = _linear(3, 3)

    def loss(params, batch):
      l = _xent_vec(nnx.merge(graphdef, params)(batch[0]), batch[1])
      return jax.nn.logsumexp(l) - jnp.log(l.shape[0])

    batch = (zoo.normal(31, (4, 3)), zoo.labels(32, 4, 3))
    for method in ('auto', 'fast'):
      with self.assertRaisesRegex(ValueError, 'mixes examples'):
        so.value_and_grad_stats(loss, method=method)(params, batch)
    self.check((loss, params, batch, ()), methods=('vmap',))


class BadInputTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    graphdef, self.params = _linear(3, 3)
    self.loss = lambda p, batch: zoo.xent(nnx.merge(graphdef, p)(batch[0]),
                                          batch[1])

  def test_one_example(self):
    for method in ('auto', 'fast', 'vmap'):
      with self.assertRaisesRegex(ValueError, 'batch size 1'):
        so.value_and_grad_stats(self.loss, method=method)(
            self.params, (zoo.normal(33, (1, 3)), zoo.labels(34, 1, 3)))

  def test_mismatched_leaves(self):
    with self.assertRaisesRegex(ValueError, r'\(4, 3\).*\(5,\)'):
      so.value_and_grad_stats(self.loss)(
          self.params, (zoo.normal(35, (4, 3)), zoo.labels(36, 5, 3)))

  def test_unknown_method(self):
    with self.assertRaisesRegex(ValueError, "'vmap'"):
      so.value_and_grad_stats(self.loss, method='Fast')


if __name__ == '__main__':
  absltest.main()
