# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of the noisy-labels data: datasets, TFDS (mocked), label noise.

NumPy only (no model, no compilation): seconds.
"""

import collections
import os

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow_datasets as tfds

from examples.noisy_labels import data


class LabelNoiseTest(parameterized.TestCase):

  LABELS = np.arange(2000) % 10    # 200 of each class

  @parameterized.parameters(0.0, 0.2, 0.4, 0.6, 0.95)
  def test_symmetric_changes_exactly_the_chosen_labels(self, fraction):
    noisy, chosen = data.corrupt_labels(self.LABELS, 10, fraction, seed=3)
    # round(f n), counted by hand: 0, 400, 800, 1,200 and 1,900 of 2,000.
    self.assertLen(chosen, {0.0: 0, 0.2: 400, 0.4: 800, 0.6: 1200,
                            0.95: 1900}[fraction])
    self.assertEqual(noisy.dtype, np.int32)
    self.assertEqual(chosen.dtype, np.int64)
    self.assertLen(np.unique(chosen), len(chosen))
    np.testing.assert_array_equal(chosen, np.sort(chosen))
    # The chosen labels all changed (never to the true one), no other did.
    np.testing.assert_array_equal(np.flatnonzero(noisy != self.LABELS),
                                  chosen)
    self.assertTrue(np.all((noisy >= 0) & (noisy < 10)))
    # The true labels are not touched.
    np.testing.assert_array_equal(self.LABELS, np.arange(2000) % 10)

  def test_exact_count_rounds_the_product(self):
    # 1,347 digits at 40%: 538.8 -> 539; at 20%: 269.4 -> 269.
    for fraction, expected in ((0.4, 539), (0.2, 269), (0.6, 808)):
      _, chosen = data.corrupt_labels(np.arange(1347) % 10, 10, fraction, 0)
      self.assertLen(chosen, expected)

  def test_symmetric_noise_is_uniform_over_the_other_classes(self):
    labels = np.arange(90_000) % 10
    noisy, chosen = data.corrupt_labels(labels, 10, 0.5, seed=0)
    pairs = collections.Counter(zip(labels[chosen].tolist(),
                                    noisy[chosen].tolist()))
    # 45,000 flips over 90 (true, noisy) pairs: 500 each; a count's standard
    # deviation is about sqrt(500) = 22, so every one within 5 of those.
    self.assertLen(pairs, 90)
    self.assertTrue(all(a != b for a, b in pairs))
    for count in pairs.values():
      self.assertAlmostEqual(count, 500, delta=5 * 22.4)
    # The corrupted examples are spread over the classes too.
    per_class = np.bincount(labels[chosen], minlength=10)
    self.assertLess(np.abs(per_class - 4500).max(), 5 * 64)

  def test_seeded(self):
    a = data.corrupt_labels(self.LABELS, 10, 0.4, seed=1)
    b = data.corrupt_labels(self.LABELS, 10, 0.4, seed=1)
    c = data.corrupt_labels(self.LABELS, 10, 0.4, seed=2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    self.assertFalse(np.array_equal(a[1], c[1]))

  def test_noise_is_independent_of_the_batch_order(self):
    # loop.batch_indices draws epochs from default_rng([seed, epoch]); the
    # noise must not be one of those permutations (same seed and "epoch").
    _, chosen = data.corrupt_labels(np.zeros(100, int), 2, 0.5, seed=1)
    for epoch in range(4):
      order = np.random.default_rng([1, epoch]).permutation(100)
      self.assertFalse(np.array_equal(np.sort(order[:50]), chosen))

  def test_asymmetric_flips_classes_by_the_map(self):
    flips = data.flip_map('digits', 'asymmetric', 10)
    self.assertEqual(flips, {2: 7, 3: 8, 5: 6, 6: 5, 7: 1})
    noisy, chosen = data.corrupt_labels(self.LABELS, 10, 0.3, 0, flips)
    np.testing.assert_array_equal(np.flatnonzero(noisy != self.LABELS),
                                  chosen)
    for true, new in zip(self.LABELS[chosen], noisy[chosen]):
      self.assertEqual(flips[int(true)], new)
    # Patrini et al.'s noise level is per class: 30% of each of the five
    # classes of the map (60 of its 200), none of the others; 300 in all,
    # not 30% of every label (600, which flipped 60% of those classes and
    # made the flipped label their majority).
    np.testing.assert_array_equal(
        np.bincount(self.LABELS[chosen], minlength=10),
        [0, 0, 60, 60, 0, 60, 60, 60, 0, 0])
    # The true label stays each class's most common one.
    for c in range(10):
      counts = np.bincount(noisy[self.LABELS == c], minlength=10)
      self.assertEqual(np.argmax(counts), c)

  def test_asymmetric_per_class_counts_round_each_class(self):
    # Classes of 13 and 7 examples at 0.25: round(3.25) = 3, round(1.75) = 2.
    labels = np.array([2] * 13 + [5] * 7 + [0] * 4)
    noisy, chosen = data.corrupt_labels(labels, 10, 0.25, 1, {2: 7, 5: 6})
    np.testing.assert_array_equal(np.bincount(labels[chosen], minlength=10),
                                  [0, 0, 3, 0, 0, 2, 0, 0, 0, 0])
    np.testing.assert_array_equal(noisy[chosen], np.where(
        labels[chosen] == 2, 7, 6))
    again = data.corrupt_labels(labels, 10, 0.25, 1, {2: 7, 5: 6})
    np.testing.assert_array_equal(again[1], chosen)

  @parameterized.parameters(0.5, 0.6, 0.95)
  def test_class_flips_of_half_a_class_or_more_are_refused(self, fraction):
    for flips in (data.flip_map('digits', 'asymmetric', 10),
                  data.flip_map('digits', 'cyclic', 10)):
      with self.assertRaisesRegex(
          ValueError, rf'noise fraction {fraction} of class flips '
          r'\(asymmetric, cyclic\) is the share of each class .* give '
          r'a fraction below 0.5, or noise_type symmetric') as e:
        data.corrupt_labels(self.LABELS, 10, fraction, 0, flips)
      self.assertNotIn('\n', str(e.exception))
    # Symmetric noise spreads the same share over nine classes: allowed.
    data.corrupt_labels(self.LABELS, 10, 0.6, 0)

  def test_flip_to_a_class_out_of_range(self):
    with self.assertRaisesRegex(ValueError, r'outside \[0, 10\)'):
      data.corrupt_labels(self.LABELS, 10, 0.2, 0, {2: 10})

  def test_cyclic(self):
    flips = data.flip_map('mnist', 'cyclic', 10)
    noisy, chosen = data.corrupt_labels(self.LABELS, 10, 0.4, 0, flips)
    # 40% of each class (80 of 200) to the next one.
    self.assertLen(chosen, 800)
    np.testing.assert_array_equal(np.bincount(self.LABELS[chosen]),
                                  [80] * 10)
    np.testing.assert_array_equal(noisy[chosen],
                                  (self.LABELS[chosen] + 1) % 10)
    self.assertIsNone(data.flip_map('mnist', 'symmetric', 10))

  @parameterized.parameters(1.0, -0.1, 1.5)
  def test_fraction_outside_zero_one(self, fraction):
    with self.assertRaisesRegex(ValueError, r'the noise fraction must be in '
                                r'\[0, 1\); got'):
      data.corrupt_labels(self.LABELS, 10, fraction, 0)

  def test_validation_split(self):
    train, val = data.validation_split(1347, 0.1, seed=0)
    self.assertLen(val, 135)
    self.assertLen(train, 1347 - 135)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])),
                                  np.arange(1347))
    again, _ = data.validation_split(1347, 0.1, seed=0)
    np.testing.assert_array_equal(train, again)
    other, _ = data.validation_split(1347, 0.1, seed=1)
    self.assertFalse(np.array_equal(train, other))

  def test_task_of_the_early_stopping_baseline(self):
    dataset = data.make_synthetic()
    task = data.make_task(dataset, noise_type='symmetric',
                          noise_fraction=0.4, seed=0,
                          validation_fraction=0.1)
    self.assertEqual(task.corrupted.sum(), round(0.4 * 512))
    np.testing.assert_array_equal(
        task.corrupted, task.noisy_labels != dataset.train_labels)
    np.testing.assert_array_equal(task.corrupted_indices,
                                  np.flatnonzero(task.corrupted))
    self.assertLen(task.validation, 51)
    self.assertEmpty(np.intersect1d(task.train, task.validation))
    every = data.make_task(dataset, noise_type='symmetric',
                           noise_fraction=0.4, seed=0)
    # The same noisy labels, whether or not a validation split is carved.
    np.testing.assert_array_equal(every.noisy_labels, task.noisy_labels)
    np.testing.assert_array_equal(every.train, np.arange(512))
    self.assertEmpty(every.validation)


class DatasetTest(parameterized.TestCase):

  def test_digits(self):
    digits = data.load('digits')
    self.assertEqual(digits.train_images.shape, (1347, 8, 8, 1))
    self.assertEqual(digits.test_images.shape, (450, 8, 8, 1))
    self.assertEqual(digits.train_images.dtype, np.float32)
    self.assertEqual(digits.train_labels.dtype, np.int32)
    self.assertEqual(digits.num_classes, 10)
    for images in (digits.train_images, digits.test_images):
      self.assertEqual((images.min(), images.max()), (0.0, 1.0))
    # Stratified: each class is split 3:1 (within one image).
    from sklearn import datasets  # pylint: disable=g-import-not-at-top
    total = np.bincount(datasets.load_digits().target, minlength=10)
    test = np.bincount(digits.test_labels, minlength=10)
    np.testing.assert_array_equal(
        np.bincount(digits.train_labels, minlength=10) + test, total)
    self.assertLessEqual(np.abs(test - total / 4).max(), 1)
    # The same split on every call (and read-only: it is shared).
    self.assertIs(data.load('digits').train_images, digits.train_images)
    self.assertFalse(digits.train_images.flags.writeable)
    self.assertEqual(data.load('digits', train_examples=100)
                     .train_labels.shape, (100,))

  def test_synthetic(self):
    synthetic = data.load('synthetic')
    self.assertEqual(synthetic.train_images.shape, (512, 8, 8, 1))
    self.assertEqual(synthetic.test_images.shape, (128, 8, 8, 1))
    # Classes in turn: 128 = 8 x 13 + 2 x 12.
    np.testing.assert_array_equal(np.bincount(synthetic.test_labels),
                                  [13] * 8 + [12] * 2)
    self.assertTrue(0 <= synthetic.train_images.min()
                    and synthetic.train_images.max() <= 1)

  def test_unknown_dataset(self):
    with self.assertRaisesRegex(ValueError, "unknown dataset 'imagenet'; one "
                                "of 'digits', 'synthetic', 'mnist'"):
      data.load('imagenet')


class TFDSTest(parameterized.TestCase):
  """The TFDS path with tfds.testing.mock_data: no download, no files."""

  def setUp(self):
    super().setUp()
    # The loaded datasets are cached per process; a mock's must not stay.
    data.load_tfds.cache_clear()
    self.addCleanup(data.load_tfds.cache_clear)

  @parameterized.parameters(('mnist', (28, 28, 1)),
                            ('fashion_mnist', (28, 28, 1)),
                            ('cifar10', (32, 32, 3)))
  def test_mocked_dataset_shapes_and_dtypes(self, name, shape):
    with tfds.testing.mock_data(num_examples=12,
                                policy=tfds.testing.MockPolicy.USE_CODE):
      dataset = data.load(name, train_examples=10)
      data.check_prepared(name)
    self.assertEqual(dataset.name, name)
    self.assertEqual(dataset.image_shape, shape)
    self.assertEqual(dataset.train_images.shape, (10, *shape))
    self.assertEqual(dataset.test_images.shape, (12, *shape))
    self.assertEqual(dataset.train_images.dtype, np.float32)
    self.assertEqual(dataset.train_labels.dtype, np.int32)
    self.assertEqual(dataset.num_classes, 10)
    self.assertTrue(0 <= dataset.train_images.min()
                    and dataset.train_images.max() <= 1)
    self.assertTrue(np.all((dataset.train_labels >= 0)
                           & (dataset.train_labels < 10)))

  def test_mocked_pixels_are_the_source_over_255(self):
    with tfds.testing.mock_data(num_examples=5,
                                policy=tfds.testing.MockPolicy.USE_CODE):
      source = data.tfds_source('mnist', 'train')
      dataset = data.load('mnist')
      for i in range(5):
        example = source[i]
        np.testing.assert_allclose(dataset.train_images[i],
                                   example['image'] / 255, rtol=1e-6)
        self.assertEqual(dataset.train_labels[i], example['label'])

  def test_not_prepared_is_one_line_with_the_way_to_prepare_it(self):
    data_dir = self.create_tempdir().full_path
    with self.assertRaises(ValueError) as e:
      data.load('mnist', data_dir)
    message = str(e.exception)
    self.assertNotIn('\n', message)
    self.assertStartsWith(message, "the TFDS dataset 'mnist' is not prepared "
                          f'in {data_dir} ')
    self.assertIn('tfds build mnist --file_format=array_record', message)
    self.assertIn('--config.data_dir', message)
    # Nothing was downloaded or created there.
    self.assertEmpty(os.listdir(data_dir))


if __name__ == '__main__':
  absltest.main()
