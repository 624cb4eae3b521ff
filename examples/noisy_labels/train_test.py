# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Fast tests of the noisy-labels example: metrics, models, training, binary.

The tests every example passes (resume, Ctrl-C, refusals, --help) are
examples/common/testing.py's, mixed in below; data and label noise are
data_test.py's, the suites compare_test.py's.
"""

import json
import math
import os

from absl.testing import absltest
from absl.testing import parameterized
from flax import nnx
import jax
import numpy as np
import snr_optax as so
import tensorflow_datasets as tfds

from examples.common import schema
from examples.common import testing
from examples.noisy_labels import config_schema
from examples.noisy_labels import configs
from examples.noisy_labels import data
from examples.noisy_labels import models
from examples.noisy_labels import train
from examples.noisy_labels.configs import adamw
from examples.noisy_labels.configs import snr_adam_snr_after
from examples.noisy_labels.configs import streaming
from examples.noisy_labels.configs import tiny

METRICS = ('test_accuracy', 'test_loss', 'train_accuracy',
           'clean_train_accuracy', 'memorisation', 'corrupted_true_accuracy',
           'validation_accuracy')


def hand_task() -> data.Task:
  """Six training examples, three test ones; 1 and 4 corrupted, 5 held out."""
  images = np.zeros((6, 2, 2, 1), np.float32)
  dataset = data.Dataset('synthetic', images, np.array([0, 1, 2, 0, 1, 2]),
                         images[:3], np.array([2, 1, 0]), 3)
  noisy = np.array([0, 2, 2, 0, 0, 2])
  return data.Task(dataset, noisy, noisy != dataset.train_labels,
                   train=np.arange(5), validation=np.array([5]))


def one_hot_logits(predicted, classes=3):
  return np.eye(classes, dtype=np.float32)[predicted] * 5.0


class MetricsTest(parameterized.TestCase):

  def test_accuracies_against_a_loop(self):
    task = hand_task()
    rng = np.random.default_rng(0)
    train_logits = rng.normal(size=(6, 3)).astype(np.float32)
    test_logits = rng.normal(size=(3, 3)).astype(np.float32)
    got = train.accuracies(task, train_logits, test_logits)
    predicted = [int(np.argmax(row)) for row in train_logits]
    true, noisy = task.dataset.train_labels, task.noisy_labels

    def share(indices, labels):
      hits = [predicted[i] == labels[i] for i in indices]
      return sum(hits) / len(hits)

    test_predicted = [int(np.argmax(row)) for row in test_logits]
    self.assertEqual(got['test_accuracy'], sum(
        p == t for p, t in zip(test_predicted, task.dataset.test_labels)) / 3)
    self.assertEqual(got['train_accuracy'], share(range(5), noisy))
    self.assertEqual(got['clean_train_accuracy'], share([0, 2, 3], true))
    self.assertEqual(got['memorisation'], share([1, 4], noisy))
    self.assertEqual(got['corrupted_true_accuracy'], share([1, 4], true))
    self.assertEqual(got['validation_accuracy'], share([5], noisy))
    self.assertAlmostEqual(got['test_loss'], np.mean([
        math.log(sum(math.exp(v) for v in row)) - row[label]
        for row, label in zip(test_logits.astype(float),
                              task.dataset.test_labels)]), places=6)

  def test_memorisation_and_true_label_accuracy_of_chosen_predictions(self):
    task = hand_task()
    # Predict the noisy label everywhere: every corrupted label memorised,
    # none of their true labels right, the clean part all right.
    got = train.accuracies(task, one_hot_logits(task.noisy_labels),
                           one_hot_logits(task.dataset.test_labels))
    self.assertEqual((got['memorisation'], got['corrupted_true_accuracy'],
                      got['clean_train_accuracy'], got['test_accuracy'],
                      got['train_accuracy']), (1.0, 0.0, 1.0, 1.0, 1.0))
    # Predict the true label: the opposite on the corrupted part.
    got = train.accuracies(task, one_hot_logits(task.dataset.train_labels),
                           one_hot_logits([0, 0, 0]))
    self.assertEqual((got['memorisation'], got['corrupted_true_accuracy'],
                      got['train_accuracy'], got['test_accuracy']),
                     (0.0, 1.0, 3 / 5, 1 / 3))

  def test_no_corrupted_label_is_none_not_zero(self):
    task = hand_task()
    clean = data.Task(task.dataset, task.dataset.train_labels,
                      np.zeros(6, bool), np.arange(6), np.zeros(0, int))
    got = train.accuracies(clean, one_hot_logits(clean.noisy_labels),
                           one_hot_logits([2, 1, 0]))
    self.assertIsNone(got['memorisation'])
    self.assertIsNone(got['corrupted_true_accuracy'])
    self.assertIsNone(got['validation_accuracy'])
    self.assertEqual(got['clean_train_accuracy'], 1.0)

  def test_a_diverged_model_has_no_accuracy(self):
    # NaN logits (a diverged model): argmax called every such row class 0,
    # so accuracies and memorisation read as a poor but working model's
    # (memorisation 10% looked like resisting the noise). Now NaN.
    task = hand_task()
    train_logits = one_hot_logits([0, 2, 2, 0, 0, 2])
    train_logits[1] = np.nan            # a corrupted, trained example
    test_logits = np.full((3, 3), np.nan, np.float32)
    got = train.accuracies(task, train_logits, test_logits)
    for key in ('test_accuracy', 'test_loss', 'train_accuracy',
                'memorisation', 'corrupted_true_accuracy'):
      self.assertTrue(math.isnan(got[key]), key)
    # Sets without the NaN row keep their accuracy: 0 and 3 are clean.
    self.assertEqual(got['clean_train_accuracy'], 1.0)
    self.assertEqual(got['validation_accuracy'], 1.0)
    np.testing.assert_array_equal(
        train.predictions(np.array([[0.0, np.inf], [np.nan, 1.0]])), [1, -1])
    # The best evaluation and the early-stopping pick skip NaN rows.
    rows = [{'step': 5, 'test_accuracy': 0.3},
            {'step': 10, 'test_accuracy': float('nan')},
            {'step': 15, 'test_accuracy': 0.2}]
    self.assertEqual(train.best(rows, 'test_accuracy')['step'], 5)
    self.assertIsNone(train.best(rows[1:2], 'test_accuracy'))

  def test_a_diverging_run_ends_with_nan_accuracies(self):
    config = configs.build(tiny.TASK, {'learning_rate': 1e30})
    result = train.train_and_evaluate(config,
                                      self.create_tempdir().full_path)
    self.assertEqual(result['final_step'], 20)
    for key in ('final_test_accuracy', 'final_memorisation',
                'final_train_accuracy'):
      self.assertTrue(math.isnan(result[key]), key)
    self.assertIsNone(result['best_test_accuracy'])

  def test_cross_entropy(self):
    # Equal logits: log C; logits (0, log 3) with label 1: -log(3/4).
    self.assertAlmostEqual(train.cross_entropy(np.zeros((4, 10)),
                                               np.arange(4)), math.log(10))
    self.assertAlmostEqual(train.cross_entropy(
        np.array([[0.0, math.log(3)]]), np.array([1])), -math.log(0.75))
    # Large logits do not overflow.
    self.assertAlmostEqual(train.cross_entropy(np.array([[1000.0, 0.0]]),
                                               np.array([0])), 0.0)

  def test_padded_chunks(self):
    self.assertEqual(train.padded_chunks(5, 2), [(0, 2), (2, 4), (4, 5)])
    self.assertEqual(train.padded_chunks(4, 4), [(0, 4)])
    self.assertEqual(train.padded_chunks(0, 4), [])

  def test_summary_of_hand_made_rows(self):
    rows = [{'step': s, 'test_accuracy': t, 'validation_accuracy': v,
             'memorisation': m, 'train_seconds': s / 10}
            for s, t, v, m in ((5, 0.80, 0.6, 0.1), (10, 0.90, 0.7, 0.2),
                               (15, 0.90, 0.7, 0.5), (20, 0.70, 0.5, 0.9))]
    config = configs.build(tiny.TASK, {'optimizer': 'adam_early_stop'})
    task = hand_task()
    result = train.summarize(config, rows, 20, task)
    self.assertEqual((result['best_test_accuracy'], result['best_test_step']),
                     (0.90, 10))          # the earlier of two equal bests
    self.assertEqual((result['final_test_accuracy'],
                      result['final_memorisation'], result['final_step']),
                     (0.70, 0.9, 20))
    self.assertEqual((result['early_stop_step'],
                      result['early_stop_test_accuracy'],
                      result['early_stop_memorisation']), (10, 0.90, 0.2))
    self.assertEqual((result['num_train'], result['num_corrupted'],
                      result['num_validation']), (5, 2, 1))
    self.assertAlmostEqual(result['seconds_per_step'], 0.1)
    config.optimizer = 'snr_adam'
    self.assertIsNone(train.summarize(config, rows, 20, task)
                      ['early_stop_step'])


class ModelTest(parameterized.TestCase):

  def test_shapes_and_parameter_counts(self):
    def logits_shape(model, images_shape):
      # Traced, not run: shapes only.
      graphdef, state = nnx.split(model)
      return jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state,
                            jax.ShapeDtypeStruct(images_shape,
                                                 np.float32)).shape

    config = configs.build(tiny.TASK)      # 1 hidden layer of 16
    mlp = models.create(config, (8, 8, 1), 10)
    self.assertEqual(logits_shape(mlp, (3, 8, 8, 1)), (3, 10))
    count = lambda m: sum(p.size for p in jax.tree.leaves(
        nnx.state(m, nnx.Param)))
    self.assertEqual(count(mlp), (64 * 16 + 16) + (16 * 10 + 10))
    config.model = 'cnn'                    # 4 then 8 channels
    cnn = models.create(config, (28, 28, 1), 10)
    self.assertEqual(logits_shape(cnn, (2, 28, 28, 1)), (2, 10))
    self.assertEqual(count(cnn), (9 * 1 * 4 + 4) + (9 * 4 * 8 + 8)
                     + (7 * 7 * 8 * 16 + 16) + (16 * 10 + 10))
    self.assertEqual(models.pooled_side(8), 2)
    config.hidden_layers = 0                # a linear read-out
    self.assertEqual(count(models.create(config, (32, 32, 3), 10)),
                     (9 * 3 * 4 + 4) + (9 * 4 * 8 + 8) + (8 * 8 * 8 * 10
                                                            + 10))

  def test_fast_statistics_take_every_layer(self):
    # Dense layers take the fast path's extra product, convolutions their
    # per-example gradients (exact; snr_optax's tests check both against a
    # loop over examples): no layer falls back or is refused.
    dataset = data.make_synthetic()
    batch = (dataset.train_images[:4], dataset.train_labels[:4])
    for name, kinds in (('mlp', {'dense'}), ('cnn', {'dense',
                                                     'materialize'})):
      config = configs.build(tiny.TASK, {'model': name})
      graphdef, params, rest = nnx.split(
          models.create(config, (8, 8, 1), 10), nnx.Param, ...)
      loss_fn = train.make_loss(graphdef, rest)
      plan = so.stats_plan(loss_fn, params, batch)
      self.assertEqual({v.split(' ')[0] for v in plan.values()}, kinds,
                       plan)


class TrainTest(testing.TrainTests, parameterized.TestCase):
  """Training and its metrics; testing.TrainTests: resume, Ctrl-C, refusals."""

  PACKAGE = 'examples.noisy_labels'
  RESUMED_METRICS = METRICS[:-1] + ('mask_fraction',)
  RESUMED_FILES = ('corrupted_indices.npy', 'noisy_labels.npy')
  ANOTHER_CONFIG = ('noise_fraction', 0.2, 'config.noise_fraction: 0.4 '
                    'there, 0.2 here')
  BAD_CONFIG = ({'noise_fraction': 1.0}, r'config.noise_fraction must be a '
                r'number in \[0, 1\)')

  # One run per piece of wiring the reference run (SNR-Adam, hard, before,
  # MLP, synthetic data) does not pass through: weight decay, the mask after
  # Adam (with the snr mask: snr_config's arguments), the streaming rule,
  # the CNN, the TFDS path.
  @parameterized.named_parameters(
      ('adamw', adamw.OVERRIDES),
      ('snr_adam_snr_after', snr_adam_snr_after.OVERRIDES),
      ('streaming', streaming.OVERRIDES),
      ('cnn_snr_adam', {'optimizer': 'snr_adam', 'model': 'cnn'}),
      ('mnist_mocked', {'dataset': 'mnist', 'train_examples': 48}))
  def test_every_optimizer_trains(self, overrides):
    config = configs.build(tiny.TASK, overrides)
    workdir = self.create_tempdir().full_path
    mocked = config.dataset == 'mnist'
    if mocked:
      # TFDS's mock: random 28 x 28 images and labels, no files.
      self.enter_context(tfds.testing.mock_data(
          num_examples=64, policy=tfds.testing.MockPolicy.USE_CODE))
      data.load_tfds.cache_clear()
      self.addCleanup(data.load_tfds.cache_clear)
    result = train.train_and_evaluate(config, workdir)
    self.assertEqual(result['final_step'], 20)
    rows = testing.read_metrics(workdir)
    self.assertEqual([r['step'] for r in rows], [5, 10, 15, 20])
    for row in rows:
      for key in METRICS[:-1]:
        self.assertTrue(np.isfinite(row[key]), key)
        if key != 'test_loss':
          self.assertBetween(row[key], 0.0, 1.0)
      self.assertIsNone(row['validation_accuracy'])
    has_mask = config.optimizer in ('snr_adam', 'streaming_snr_adamw')
    self.assertEqual(rows[-1]['mask_fraction'] is not None, has_mask)
    self.assertEqual(result['best_test_accuracy'],
                     max(r['test_accuracy'] for r in rows))
    n = 48 if mocked else 512
    self.assertEqual((result['num_train'], result['num_corrupted']),
                     (n, round(0.4 * n)))
    # The model moved between evaluations (every update masked away would
    # leave the same logits). That it learns is compare_test's (no noise)
    # and the README's probes.
    self.assertLen({r['test_loss'] for r in rows}, 4)
    for name in ('curves.png', 'result.json', 'provenance.json',
                 'corrupted_indices.npy', 'noisy_labels.npy'):
      self.assertIn(name, os.listdir(workdir))

  def test_population_estimate_is_logged_with_its_measured_losses(self):
    config = configs.build(tiny.TASK, {'optimizer': 'streaming_snr_adamw',
                                       'snr.population_risk': True})
    workdir = self.create_tempdir().full_path
    train.train_and_evaluate(config, workdir)
    rows = testing.read_metrics(workdir)
    self.assertEqual(rows[-1]['batch_fraction'], config.batch_size / 512)
    for row in rows:
      self.assertLess(row['diagonal_error'], 1e-3)
      self.assertGreater(row['estimated_population_change'],
                         row['estimated_train_change'])
      self.assertTrue(np.isfinite(row['train_loss']))
    # The population loss with the label noise, by a loop over test
    # examples and labels: (1 - f) CE(y) + f / (C - 1) sum_{j != y} CE(j)
    # (here on hand-made logits; at f = 0 it is the clean cross-entropy).
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(7, 4))
    labels = rng.integers(0, 4, size=7)
    want = 0.0
    for z, y in zip(logits, labels):
      ce = [math.log(np.exp(z).sum()) - z[j] for j in range(4)]
      want += 0.7 * ce[y] + 0.3 / 3 * (sum(ce) - ce[y])
    self.assertAlmostEqual(train.noisy_label_loss(logits, labels, 0.3),
                           want / 7, places=10)
    self.assertAlmostEqual(train.noisy_label_loss(logits, labels, 0.0),
                           train.cross_entropy(logits, labels), places=10)

  def test_population_estimate_of_the_streaming_snr_mask_stays_finite(self):
    # The snr mask's derivatives overflowed float32 where the first moment
    # is a tiny fraction of the noise: the estimate turned NaN between steps
    # 42 and 63 of this run (the digits, the published streaming config).
    config = configs.build({'optimizer': 'streaming_snr_adamw',
                            'snr.mode': 'snr', 'snr.population_risk': True,
                            'num_steps': 63, 'eval_every': 21})
    workdir = self.create_tempdir().full_path
    train.train_and_evaluate(config, workdir)
    for row in testing.read_metrics(workdir):
      self.assertTrue(np.isfinite(row['estimated_population_change']), row)

  def test_saved_label_noise_is_the_task_of_the_seed(self):
    workdir = testing.reference_run(self.PACKAGE, self.SNR_OPTIMIZER)
    config = configs.build(tiny.TASK)
    task = data.make_task(data.load('synthetic'), noise_type='symmetric',
                          noise_fraction=config.noise_fraction, seed=0)
    np.testing.assert_array_equal(
        np.load(os.path.join(workdir, 'corrupted_indices.npy')),
        task.corrupted_indices)
    np.testing.assert_array_equal(
        np.load(os.path.join(workdir, 'noisy_labels.npy')),
        task.noisy_labels)
    self.assertNotIn('validation_indices.npy', os.listdir(workdir))

  def _started_run(self, **overrides):
    config = configs.build(tiny.TASK, {'num_steps': 10, **overrides})
    workdir = self.create_tempdir().full_path
    train.train_and_evaluate(config, workdir)
    config.num_steps = 20
    return config, workdir

  def test_resume_on_other_label_noise_is_refused(self):
    # The noise drawn now is not the one the checkpoint trained on (the code
    # that draws it changed, as asymmetric noise did in f0b34dc): refused
    # before anything is written, not trained on silently.
    config, workdir = self._started_run()
    path = os.path.join(workdir, 'noisy_labels.npy')
    labels = np.load(path)
    labels[:3] = (labels[:3] + 1) % 10
    np.save(path, labels)
    before = sorted(os.listdir(workdir))
    with self.assertRaisesRegex(
        schema.ConfigError, r'holds a run whose training labels as the run '
        r'saw them \(.*noisy_labels.npy\) are not the ones this config '
        r'gives now \(3 of 512 differ\).*give a new --workdir') as e:
      train.train_and_evaluate(config, workdir)
    self.assertNotIn('\n', str(e.exception))
    self.assertEqual(sorted(os.listdir(workdir)), before)
    np.testing.assert_array_equal(np.load(path), labels)

  def test_resume_on_other_data_is_refused(self):
    config, workdir = self._started_run()
    path = os.path.join(workdir, 'dataset.json')
    with open(path) as f:
      record = json.load(f)
    self.assertEqual(record['sha256'],
                     train.dataset_sha256(data.load('synthetic')))
    record['sha256'] = '0' * 64    # as if data_dir now held another copy
    with open(path, 'w') as f:
      json.dump(record, f)
    with self.assertRaisesRegex(
        schema.ConfigError, 'holds a run started on other synthetic data'):
      train.train_and_evaluate(config, workdir)

  def test_resume_with_the_same_task_and_early_stopping_split(self):
    config, workdir = self._started_run(optimizer='adam_early_stop')
    # A record cut short (killed inside np.save before this change) is not
    # compared; it is written again, whole.
    with open(os.path.join(workdir, 'noisy_labels.npy'), 'wb') as f:
      f.write(b'\x93NUMPY')
    result = train.train_and_evaluate(config, workdir)
    self.assertEqual(result['final_step'], 20)
    self.assertLen(np.load(os.path.join(workdir, 'noisy_labels.npy')), 512)
    self.assertFalse([n for n in os.listdir(workdir) if n.endswith('.tmp')])
    path = os.path.join(workdir, 'validation_indices.npy')
    held = np.load(path)
    np.save(path, held[::-1])
    config.num_steps = 25
    with self.assertRaisesRegex(schema.ConfigError, r'early-stopping split '
                                r'\(.*\) are not the ones this config gives '
                                r'now \(\d+ of 51 differ\)'):
      train.train_and_evaluate(config, workdir)

  def test_batches_shapes_dtypes_and_epochs(self):
    config = configs.build(tiny.TASK, {'optimizer': 'adam_early_stop'})
    task = train.make_task(config)
    run = train.setup(config, task)
    images, labels = run.batch(0)
    self.assertEqual((images.shape, images.dtype), ((16, 8, 8, 1),
                                                    np.float32))
    self.assertEqual((labels.shape, labels.dtype), ((16,), np.int32))
    # One epoch (461 // 16 = 28 steps) sees 448 different training
    # examples with their noisy labels, never a validation one.
    self.assertLen(task.train, 461)
    seen = np.concatenate([task.train[train.batch_indices(0, step, 461, 16)]
                           for step in range(28)])
    self.assertLen(np.unique(seen), 448)
    self.assertEmpty(np.intersect1d(seen, task.validation))
    images, labels = run.batch(27)
    np.testing.assert_array_equal(labels, task.noisy_labels[seen[-16:]])
    np.testing.assert_array_equal(images,
                                  task.dataset.train_images[seen[-16:]])
    # A pure function of the step (resuming sees the same batches).
    np.testing.assert_array_equal(run.batch(27)[1], labels)
    # Evaluation in padded chunks equals the model on the whole set.
    params = run.state['params']
    for images in (task.dataset.train_images, task.dataset.test_images):
      whole = models.create(config, (8, 8, 1), 10)(images)
      np.testing.assert_allclose(run.logits(params, images), whole,
                                 rtol=1e-5, atol=1e-5)

  def test_early_stopping_holds_out_and_picks_by_validation_accuracy(self):
    config = configs.build(tiny.TASK, {'optimizer': 'adam_early_stop'})
    workdir = self.create_tempdir().full_path
    result = train.train_and_evaluate(config, workdir)
    rows = testing.read_metrics(workdir)
    pick = max(rows, key=lambda r: (r['validation_accuracy'], -r['step']))
    self.assertEqual(result['early_stop_step'], pick['step'])
    self.assertEqual(result['early_stop_test_accuracy'],
                     pick['test_accuracy'])
    self.assertEqual((result['num_train'], result['num_validation']),
                     (461, 51))
    held = np.load(os.path.join(workdir, 'validation_indices.npy'))
    np.testing.assert_array_equal(held, train.make_task(config).validation)
    # The corrupted labels are counted on the examples it trains on.
    corrupted = np.load(os.path.join(workdir, 'corrupted_indices.npy'))
    self.assertEqual(result['num_corrupted'],
                     len(np.setdiff1d(corrupted, held)))


class SchemaTest(testing.SchemaTests, parameterized.TestCase):
  """Bad fields; testing.SchemaTests: config files, optimizers."""

  PACKAGE = 'examples.noisy_labels'
  CONFIG_FILES = ('default', 'tiny', 'adam', 'adamw', 'adam_early_stop',
                  'snr_adam', 'snr_adam_after', 'snr_adam_snr',
                  'snr_adam_snr_after', 'streaming')

  @parameterized.parameters(
      ('noise_fraction', 1.0, r'config.noise_fraction must be a number in '
       r'\[0, 1\); got 1.0'),
      ('noise_fraction', -0.1, r'config.noise_fraction must be a number in '
       r'\[0, 1\)'),
      ('dataset', 'imagenet', "config.dataset must be one of 'digits', "
       "'synthetic', 'mnist', 'fashion_mnist', 'cifar10'; got 'imagenet'"),
      ('optimizer', 'sgd', "config.optimizer must be one of 'adam', "
       "'adam_early_stop', 'snr_adam', 'streaming_snr_adamw'; got 'sgd'"),
      ('batch_size', 1, 'config.batch_size must be an integer >= 2; got 1'),
      ('batch_size', 600, r'config.batch_size 600 exceeds the 512 examples '
       r'adam trains on \(synthetic\)'),
      ('train_examples', 1000, 'config.train_examples 1000 exceeds the 512 '
       'training examples of synthetic'),
      ('noise_type', 'uniform', "config.noise_type must be one of "
       "'symmetric', 'asymmetric', 'cyclic'"),
      ('model', 'resnet', "config.model must be one of 'mlp', 'cnn'"))
  def test_bad_config(self, key, value, message):
    config = tiny.get_config()
    config[key] = value
    with self.assertRaisesRegex(schema.ConfigError, message):
      config_schema.validate(config)

  @parameterized.parameters('asymmetric', 'cyclic')
  def test_class_flips_of_half_a_class_or_more(self, noise_type):
    config = configs.build(tiny.TASK, {'noise_type': noise_type,
                                       'noise_fraction': 0.5})
    with self.assertRaisesRegex(
        schema.ConfigError, r'config.noise_fraction: noise fraction 0.5 of '
        r'class flips \(asymmetric, cyclic\) is the share of each class in '
        'the map that flips'):
      config_schema.validate(config)
    config.noise_fraction = 0.45
    config_schema.validate(config)
    # A TFDS dataset is refused alike, before its files are opened.
    config = configs.build(tiny.TASK, {
        'dataset': 'mnist', 'noise_type': noise_type, 'noise_fraction': 0.6,
        'data_dir': self.create_tempdir().full_path})
    with self.assertRaisesRegex(schema.ConfigError, 'noise fraction 0.6 of '
                                'class flips'):
      config_schema.validate(config)

  def test_unprepared_tfds_dataset(self):
    data_dir = self.create_tempdir().full_path
    config = configs.build(tiny.TASK, {'dataset': 'fashion_mnist',
                                       'data_dir': data_dir})
    with self.assertRaisesRegex(
        schema.ConfigError, "the TFDS dataset 'fashion_mnist' is not "
        f'prepared in {data_dir} .*tfds build fashion_mnist '
        '--file_format=array_record'):
      config_schema.validate(config)


class MainTest(testing.MainTests, parameterized.TestCase):
  """The binary: bad input ends in one line, nothing written; --help."""

  PACKAGE = 'examples.noisy_labels'

  @parameterized.named_parameters(
      ('unknown_dataset', ['--config.dataset=imagenet'],
       "error: config.dataset must be one of 'digits', 'synthetic', "
       "'mnist', 'fashion_mnist', 'cifar10'; got 'imagenet'"),
      ('noise_fraction_one', ['--config.noise_fraction=1'],
       'error: config.noise_fraction must be a number in [0, 1); got 1.0'),
      ('flips_of_half_a_class', ['--config.noise_type=asymmetric',
                                 '--config.noise_fraction=0.6'],
       'error: config.noise_fraction: noise fraction 0.6 of class flips '
       '(asymmetric, cyclic) is the share of each class in the map that '
       'flips (Patrini et al.); at 0.5 or more a class carries the flipped '
       'label at least as often as its own (5 <-> 6 swaps the two): give a '
       'fraction below 0.5, or noise_type symmetric'),
  )
  def test_bad_input_is_one_line_and_writes_nothing(self, args, message):
    self.assert_refused(args, message, whole=True)

  def test_dataset_not_prepared(self):
    data_dir = self.create_tempdir().full_path
    self.assert_refused(
        ['--config.dataset=mnist', f'--config.data_dir={data_dir}'],
        f"error: the TFDS dataset 'mnist' is not prepared in {data_dir} ")
    self.assertEmpty(os.listdir(data_dir))


if __name__ == '__main__':
  absltest.main()
