# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Image classification data with corrupted training labels.

Datasets (``load``), every one as float32 images [n, height, width,
channels] in [0, 1] and int32 labels, in memory:

* ``digits`` (the default): scikit-learn's handwritten digits
  (``sklearn.datasets.load_digits``: 1,797 8 x 8 grey images of 0-9 that
  ship with the package, so it runs offline), split once into 1,347
  training and 450 test images, stratified by class, with a fixed seed.
* ``mnist``, ``fashion_mnist``, ``cifar10``: TensorFlow Datasets through
  ``tfds`` data sources (ArrayRecord files read at random, no TensorFlow
  needed), their own train and test splits. The dataset must have been
  prepared (``tfds build mnist --file_format=array_record`` on a machine
  with internet); an unprepared one is refused in one line that says so.
* ``synthetic``: 10 seeded Gaussian clusters of 8 x 8 images around random
  prototypes, for tests.

Label noise (``corrupt_labels``), applied to the training labels only:

* ``symmetric``: exactly ``round(fraction * n)`` examples, chosen uniformly
  without replacement, each get a label drawn uniformly from the *other*
  classes (never their own).
* ``asymmetric``: the class-pair flips of Patrini et al. (2017) for the
  dataset (``PAIR_FLIPS``: for digits and MNIST 2 -> 7, 3 -> 8, 5 <-> 6,
  7 -> 1), as their code makes them (``noisify_mnist_asymmetric``: the
  noise level is the probability that an example *of a class in the map*
  flips): exactly ``round(fraction * n_c)`` of the ``n_c`` examples of each
  class ``c`` in the map, chosen uniformly, take its image; the other
  classes keep their labels. The fraction must be below 0.5 (``ValueError``
  otherwise): at 0.5 a flipped class carries its image's label as often as
  its own, and above it the noise is the majority (5 <-> 6 swaps the two
  classes).
* ``cyclic``: c -> c + 1 (mod classes), the same way in every class
  (Patrini et al.'s CIFAR-100 flips to the next class): asymmetric noise
  where every class flips; the same limit.

Only numpy is imported at the top: the config checks call this module
before JAX is loaded, and scikit-learn and tfds are imported when used.
"""

from __future__ import annotations

from collections.abc import Mapping
import contextlib
import dataclasses
import functools
import logging
import os

import numpy as np

DATASETS = ('digits', 'synthetic', 'mnist', 'fashion_mnist', 'cifar10')
TFDS_DATASETS = ('mnist', 'fashion_mnist', 'cifar10')
NOISE_TYPES = ('symmetric', 'asymmetric', 'cyclic')

# The digits split: a quarter of the 1,797 images for testing, stratified by
# class, always the same (a run's seed draws its noise, not its test set).
DIGITS_TEST_FRACTION = 0.25
DIGITS_SPLIT_SEED = 0
# The synthetic task: fixed, like a dataset on disk.
SYNTHETIC_SHAPE = (8, 8, 1)
SYNTHETIC_TRAIN, SYNTHETIC_TEST = 512, 128
SYNTHETIC_SIGMA = 0.25
SYNTHETIC_SEED = 0

# Class-pair flips of the asymmetric noise, from Patrini et al. (2017),
# "Making deep neural networks robust to label noise: a loss correction
# approach": MNIST's (the digits and the synthetic task take it too: 10
# classes) and CIFAR-10's (truck -> automobile, bird -> airplane, deer ->
# horse, cat <-> dog). Fashion-MNIST's pairs look alike in the same way
# (T-shirt -> shirt, pullover -> coat, sandal -> sneaker).
_MNIST_FLIPS = {2: 7, 3: 8, 5: 6, 6: 5, 7: 1}
PAIR_FLIPS: Mapping[str, Mapping[int, int]] = {
    'digits': _MNIST_FLIPS,
    'synthetic': _MNIST_FLIPS,
    'mnist': _MNIST_FLIPS,
    'fashion_mnist': {0: 6, 2: 4, 5: 7},
    'cifar10': {9: 1, 2: 0, 4: 7, 3: 5, 5: 3},
}

# Independent random streams of one run seed: np.random.default_rng([seed,
# _TAG, stream]). The middle word keeps them apart from the batch order's
# default_rng([seed, epoch]) (loop.batch_indices): [seed, 1] and [seed, 1, 0]
# would be the same stream.
_TAG = 0x6E6F6973
NOISE_STREAM = 1
VALIDATION_STREAM = 2


def rng(seed: int, stream: int) -> np.random.Generator:
  """The generator of one of a run's random streams (``NOISE_STREAM``...)."""
  return np.random.default_rng([seed, _TAG, stream])


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A classification dataset with its true labels.

  Attributes:
    name: one of ``DATASETS``.
    train_images: [n_train, height, width, channels] float32 in [0, 1].
    train_labels: [n_train] int32 in [0, num_classes).
    test_images: [n_test, height, width, channels] float32 in [0, 1].
    test_labels: [n_test] int32.
    num_classes: the number of classes.
  """
  name: str
  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  num_classes: int

  @property
  def image_shape(self) -> tuple[int, int, int]:
    return tuple(self.train_images.shape[1:])


def _first_line(error: BaseException) -> str:
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  return lines[0] if lines else type(error).__name__


def _frozen(array: np.ndarray) -> np.ndarray:
  """Read-only: the cached arrays are shared by every run of a process."""
  array.flags.writeable = False
  return array


@functools.cache
def load_digits() -> Dataset:
  """scikit-learn's digits, split 1,347 / 450 (stratified, fixed seed)."""
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  from sklearn import model_selection  # pylint: disable=g-import-not-at-top
  digits = datasets.load_digits()
  # Pixel values are counts 0..16 (4 x 4 blocks of a 32 x 32 bitmap).
  images = (digits.images / 16.0).astype(np.float32)[..., None]
  labels = digits.target.astype(np.int32)
  train, test = model_selection.train_test_split(
      np.arange(len(labels)), test_size=DIGITS_TEST_FRACTION,
      stratify=labels, random_state=DIGITS_SPLIT_SEED)
  train, test = np.sort(train), np.sort(test)
  return Dataset('digits', _frozen(images[train]), _frozen(labels[train]),
                 _frozen(images[test]), _frozen(labels[test]), 10)


@functools.cache
def make_synthetic() -> Dataset:
  """10 Gaussian clusters of 8 x 8 images (fixed seed), clipped to [0, 1]."""
  gen = np.random.default_rng(SYNTHETIC_SEED)
  prototypes = gen.uniform(0.0, 1.0, (10, *SYNTHETIC_SHAPE))

  def sample(n):
    labels = np.arange(n, dtype=np.int32) % 10
    gen.shuffle(labels)
    images = prototypes[labels] + gen.normal(0.0, SYNTHETIC_SIGMA,
                                             (n, *SYNTHETIC_SHAPE))
    return np.clip(images, 0.0, 1.0).astype(np.float32), labels

  train_images, train_labels = sample(SYNTHETIC_TRAIN)
  test_images, test_labels = sample(SYNTHETIC_TEST)
  return Dataset('synthetic', _frozen(train_images), _frozen(train_labels),
                 _frozen(test_images), _frozen(test_labels), 10)


@contextlib.contextmanager
def _quiet_tfds():
  """TFDS logs a warning per unprepared variant folder; our error says it."""
  logger = logging.getLogger('absl')
  level = logger.level
  logger.setLevel(logging.ERROR)
  try:
    yield
  finally:
    logger.setLevel(level)


def prepare_hint(name: str, where: str) -> str:
  """How to prepare a TFDS dataset for this example and bring it here."""
  return (f'on a machine with internet run `tfds build {name} '
          '--file_format=array_record` (pip install tensorflow '
          'tensorflow-datasets: building needs TensorFlow, reading here does '
          'not), '
          f'then copy the {name} folder of its data directory '
          f'(~/tensorflow_datasets) into {where}, or point --config.data_dir '
          'at the copy')


def tfds_source(name: str, split: str, data_dir: str = ''):
  """A TFDS random-access data source (ArrayRecord), never downloading.

  Args:
    name: a TFDS dataset name, e.g. ``'mnist'``.
    split: ``'train'`` or ``'test'``.
    data_dir: TFDS's data directory; '' for its default (``$TFDS_DATA_DIR``
      or ``~/tensorflow_datasets``).

  Returns:
    A sequence of examples, each a dict of numpy arrays (``image`` uint8
    [h, w, c], ``label`` int64 []).

  Raises:
    ValueError: one line: tfds is not installed, the dataset is not
      prepared in ``data_dir`` (and how to prepare it), or it was prepared
      in a format without random access (TFRecord).
  """
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ValueError(f'dataset {name!r} is read with tensorflow-datasets, '
                     'which is not installed: pip install "snr-optax'
                     '[examples]"') from None
  with _quiet_tfds():
    try:
      builder = tfds.builder(name, data_dir=data_dir or None)
    except Exception as e:  # pylint: disable=broad-except
      raise ValueError(f'tfds has no dataset {name!r}: '
                       f'{_first_line(e)}') from None
    try:
      # The builder, not tfds.data_source: that one downloads and prepares
      # a missing dataset, which an offline machine cannot.
      return builder.as_data_source(split=split)
    except Exception as e:  # pylint: disable=broad-except
      # Checked after trying, not before: tfds.testing.mock_data serves
      # data sources of builders that are not prepared.
      if not builder.is_prepared():
        where = data_dir or os.path.dirname(os.path.dirname(
            builder.data_dir))   # TFDS's default: <dir>/<name>/<version>
        raise ValueError(
            f'the TFDS dataset {name!r} is not prepared in {where} (nothing '
            f'in {builder.data_dir}): ' + prepare_hint(name, where)
        ) from None
      raise ValueError(
          f'the TFDS dataset {name!r} in {builder.data_dir} cannot be read '
          f'at random ({_first_line(e)}); rebuild it with `tfds build {name} '
          '--file_format=array_record`') from None


def check_prepared(name: str, data_dir: str = '') -> None:
  """Opens both splits of a TFDS dataset (cheap: reads no example).

  Raises:
    ValueError: as ``tfds_source``.
  """
  for split in ('train', 'test'):
    tfds_source(name, split, data_dir)


def _read_split(source, limit: int) -> tuple[np.ndarray, np.ndarray]:
  """The first ``limit`` examples (0: all) as float32 images, int32 labels."""
  n = len(source) if limit == 0 else min(limit, len(source))
  images = np.empty((n, *np.shape(source[0]['image'])), np.float32)
  labels = np.empty(n, np.int32)
  for i in range(n):
    example = source[i]
    images[i] = np.asarray(example['image'], np.float32) / 255.0
    labels[i] = example['label']
  return images, labels


@functools.lru_cache(maxsize=2)
def load_tfds(name: str, data_dir: str = '',
              train_examples: int = 0) -> Dataset:
  """A TFDS dataset's train and test splits, in memory.

  Args:
    name: one of ``TFDS_DATASETS``.
    data_dir: TFDS's data directory ('' for its default).
    train_examples: keep the first this many training examples (TFDS's
      order, the same in every run); 0 keeps them all.

  Raises:
    ValueError: as ``tfds_source``.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  train = tfds_source(name, 'train', data_dir)
  test = tfds_source(name, 'test', data_dir)
  with _quiet_tfds():
    num_classes = tfds.builder(name, data_dir=data_dir or None).info.features[
        'label'].num_classes
  train_images, train_labels = _read_split(train, train_examples)
  test_images, test_labels = _read_split(test, 0)
  return Dataset(name, _frozen(train_images), _frozen(train_labels),
                 _frozen(test_images), _frozen(test_labels), num_classes)


def load(name: str, data_dir: str = '', train_examples: int = 0) -> Dataset:
  """The dataset ``name`` (one of ``DATASETS``), cached per process.

  Args:
    name: the dataset.
    data_dir: TFDS's data directory (TFDS datasets only; '' for default).
    train_examples: the first this many training examples (0: all).

  Raises:
    ValueError: one line: an unknown dataset, or a TFDS dataset that
      cannot be read (``tfds_source``).
  """
  if name == 'digits':
    dataset = load_digits()
  elif name == 'synthetic':
    dataset = make_synthetic()
  elif name in TFDS_DATASETS:
    return load_tfds(name, data_dir, train_examples)
  else:
    raise ValueError(f'unknown dataset {name!r}; one of '
                     + ', '.join(repr(d) for d in DATASETS))
  if train_examples:
    dataset = dataclasses.replace(
        dataset, train_images=dataset.train_images[:train_examples],
        train_labels=dataset.train_labels[:train_examples])
  return dataset


def num_corrupted(n: int, fraction: float) -> int:
  """How many of ``n`` labels a noise ``fraction`` corrupts: round(f n).

  >>> num_corrupted(1347, 0.4)   # 538.8
  539
  """
  return int(round(fraction * n))


def flip_map(dataset: str, noise_type: str,
             num_classes: int) -> dict[int, int] | None:
  """class -> noisy class of an asymmetric noise; None for symmetric."""
  if noise_type == 'symmetric':
    return None
  if noise_type == 'cyclic':
    return {c: (c + 1) % num_classes for c in range(num_classes)}
  return dict(PAIR_FLIPS[dataset])


# The largest noise fraction of the class flips (asymmetric, cyclic): at 0.5
# a flipped class is labelled with its image as often as with itself.
MAX_FLIP_FRACTION = 0.5


def check_flip_fraction(fraction: float) -> None:
  """Refuses (``ValueError``, one line) a class-flip fraction >= 0.5."""
  if fraction >= MAX_FLIP_FRACTION:
    raise ValueError(
        f'noise fraction {fraction} of class flips (asymmetric, cyclic) is '
        'the share of each class in the map that flips (Patrini et al.); at '
        f'{MAX_FLIP_FRACTION} or more a class carries the flipped label at '
        'least as often as its own (5 <-> 6 swaps the two): give a fraction '
        f'below {MAX_FLIP_FRACTION}, or noise_type symmetric')


def corrupt_labels(labels: np.ndarray, num_classes: int, fraction: float,
                   seed: int, flips: Mapping[int, int] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
  """Corrupts a seeded, exact share of the labels.

  Args:
    labels: [n] integer true labels in [0, num_classes).
    num_classes: the number of classes (at least 2).
    fraction: in [0, 1); with ``flips``, in [0, 0.5).
    seed: the run's seed (its ``NOISE_STREAM``).
    flips: None for symmetric noise: exactly ``round(fraction * n)``
      examples, chosen uniformly, each get a uniformly random other class.
      Or class -> noisy class (``flip_map``): exactly ``round(fraction *
      n_c)`` of the ``n_c`` examples of each class ``c`` in it, chosen
      uniformly, get ``flips[c]`` (Patrini et al.'s per-class flip
      probability, with exact counts); the other classes are untouched.

  Returns:
    ``(noisy_labels, corrupted)``: [n] int32 labels, and the sorted int64
    indices whose label changed.

  Raises:
    ValueError: a fraction outside [0, 1) (with ``flips``: [0, 0.5)), fewer
      than two classes, or a flip of a class to itself or out of range.

  >>> labels = np.arange(10) % 5
  >>> noisy, chosen = corrupt_labels(labels, 5, 0.4, seed=0)
  >>> len(chosen), bool(np.all(noisy[chosen] != labels[chosen]))
  (4, True)
  >>> noisy, chosen = corrupt_labels(labels, 5, 0.4, 0, flips={2: 3})
  >>> labels[chosen].tolist(), noisy[chosen].tolist()
  ([2], [3])
  """
  labels = np.asarray(labels)
  n = len(labels)
  if not 0 <= fraction < 1:
    raise ValueError(f'the noise fraction must be in [0, 1); got {fraction}')
  if num_classes < 2:
    raise ValueError(f'label noise needs at least 2 classes; got '
                     f'{num_classes}')
  gen = rng(seed, NOISE_STREAM)
  noisy = labels.astype(np.int32)
  if flips is None:
    k = num_corrupted(n, fraction)
    chosen = gen.choice(n, size=k, replace=False)
    # An offset in 1..C-1 (mod C) is uniform over the other classes.
    offsets = gen.integers(1, num_classes, size=k)
    noisy[chosen] = (labels[chosen] + offsets) % num_classes
  else:
    if any(a == b for a, b in flips.items()):
      raise ValueError(f'a class flip maps a class to itself: {dict(flips)}')
    if not all(0 <= c < num_classes for pair in flips.items() for c in pair):
      raise ValueError(f'a class flip names a class outside [0, '
                       f'{num_classes}): {dict(flips)}')
    check_flip_fraction(fraction)
    parts = [np.zeros(0, np.int64)]
    for source in sorted(flips):
      members = np.flatnonzero(labels == source)
      part = gen.choice(members, size=num_corrupted(len(members), fraction),
                        replace=False)
      noisy[part] = flips[source]
      parts.append(part)
    chosen = np.concatenate(parts)
  return noisy, np.sort(chosen).astype(np.int64)


def num_validation(n: int, fraction: float) -> int:
  """Examples the early-stopping baseline holds out: round(f n), >= 1."""
  return max(1, int(round(fraction * n)))


def validation_split(n: int, fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
  """``(train, validation)``: sorted indices, a seeded random split of n."""
  order = rng(seed, VALIDATION_STREAM).permutation(n)
  held = num_validation(n, fraction)
  return np.sort(order[held:]), np.sort(order[:held])


@dataclasses.dataclass(frozen=True)
class Task:
  """One run's training data: the dataset with its labels corrupted.

  Attributes:
    dataset: the clean dataset.
    noisy_labels: [n_train] int32, what the runs train on.
    corrupted: [n_train] bool, where ``noisy_labels`` differs from the true.
    train: int64 indices of the examples the run trains on (every one, or
      all but ``validation`` for the early-stopping baseline).
    validation: int64 indices held out with their noisy labels (empty but
      for the early-stopping baseline).
  """
  dataset: Dataset
  noisy_labels: np.ndarray
  corrupted: np.ndarray
  train: np.ndarray
  validation: np.ndarray

  @property
  def corrupted_indices(self) -> np.ndarray:
    return np.flatnonzero(self.corrupted)


def make_task(dataset: Dataset, *, noise_type: str, noise_fraction: float,
              seed: int, validation_fraction: float | None = None) -> Task:
  """The noisy labels of a run and the examples it trains on.

  Args:
    dataset: the clean dataset.
    noise_type: one of ``NOISE_TYPES``.
    noise_fraction: in [0, 1).
    seed: the run's seed: the corrupted examples, their labels and the
      validation split.
    validation_fraction: hold out this share of the (noisy) training set
      for early stopping; None trains on every example.

  Raises:
    ValueError: as ``corrupt_labels``.
  """
  noisy, chosen = corrupt_labels(
      dataset.train_labels, dataset.num_classes, noise_fraction, seed,
      flip_map(dataset.name, noise_type, dataset.num_classes))
  corrupted = np.zeros(len(noisy), bool)
  corrupted[chosen] = True
  n = len(noisy)
  if validation_fraction is None:
    train, validation = np.arange(n), np.zeros(0, np.int64)
  else:
    train, validation = validation_split(n, validation_fraction, seed)
  return Task(dataset, _frozen(noisy), _frozen(corrupted), train, validation)
