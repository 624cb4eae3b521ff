# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Fast tests of the INR example: data, models, optimizers, resume, binary.

The tests every example passes (resume, Ctrl-C, refusals, --help, the
published README blocks) are examples/common/testing.py's, mixed in below.
"""

import json
import math
import os
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
from flax import nnx
import jax
import numpy as np
import snr_optax as so

from examples.common import schema
from examples.common import testing
from examples.inr import compare
from examples.inr import config_schema
from examples.inr import configs
from examples.inr import data
from examples.inr import models
from examples.inr import train
from examples.inr.configs import default
from examples.inr.configs import tiny


def save_png(path, array):
  from skimage import io  # pylint: disable=g-import-not-at-top
  io.imsave(path, array, check_contrast=False)
  return path


class DataTest(parameterized.TestCase):

  def test_psnr_against_a_hand_computation(self):
    # Errors 0.1 and 0.2: MSE (0.01 + 0.04) / 2 = 0.025, 10 log10(40) dB.
    self.assertAlmostEqual(data.psnr(np.array([0.5, 0.5]),
                                     np.array([0.4, 0.7])),
                           10 * math.log10(40), places=10)
    self.assertAlmostEqual(10 * math.log10(40), 16.0206, places=4)
    # An error of 0.1 everywhere is 20 dB; an image of all 0 against all 1
    # is 0 dB (the data range is 1).
    self.assertAlmostEqual(data.psnr(np.full((4, 4, 3), 0.1),
                                     np.zeros((4, 4, 3))), 20.0, places=10)
    self.assertEqual(data.psnr(np.zeros(5), np.ones(5)), 0.0)
    self.assertEqual(data.psnr(np.ones(3), np.ones(3)), math.inf)

  def test_coordinates_are_pixel_centres_in_the_square(self):
    coords = data.coordinates(4)
    self.assertEqual(coords.shape, (16, 2))
    self.assertEqual(coords.dtype, np.float32)
    np.testing.assert_allclose(np.unique(coords), [-0.75, -0.25, 0.25, 0.75])
    # Row-major: pixel (row 0, column 1) is the second example.
    np.testing.assert_allclose(coords[1], [-0.75, -0.25])
    np.testing.assert_allclose(coords[4], [-0.25, -0.75])
    big = data.coordinates(128)
    self.assertEqual(big.shape, (128 * 128, 2))
    self.assertTrue(np.all((big > -1) & (big < 1)))
    self.assertLen(np.unique(big, axis=0), 128 * 128)
    # Symmetric about 0, one pixel width (2 / side) apart.
    np.testing.assert_allclose(big.min(), -1 + 1 / 128, rtol=1e-6)
    np.testing.assert_allclose(big.max(), 1 - 1 / 128, rtol=1e-6)

  def test_noise_is_seeded_with_the_stated_sigma(self):
    clean = np.full((256, 256, 1), 0.5, np.float32)
    a = data.add_noise(clean, 0.1, seed=3)
    np.testing.assert_array_equal(a, data.add_noise(clean, 0.1, seed=3))
    self.assertFalse(np.array_equal(a, data.add_noise(clean, 0.1, seed=4)))
    noise = a - clean
    # 65,536 draws: the sample std is within 1% of sigma (its standard
    # error is sigma / sqrt(2n), about 0.3%), the mean within 5 errors.
    self.assertAlmostEqual(noise.std(), 0.1, delta=1e-3)
    self.assertAlmostEqual(noise.mean(), 0.0, delta=5 * 0.1 / 256)
    # Not clipped: values leave [0, 1] where clean is near its ends.
    edge = data.add_noise(np.zeros((64, 64, 1), np.float32), 0.1, seed=0)
    self.assertLess(edge.min(), 0.0)

  def test_the_task_of_a_seed(self):
    image = data.make_image('skimage:camera', 64, 0.1, 0.1, seed=0)
    self.assertEqual(image.clean.shape, (64, 64, 1))
    self.assertEqual(image.coords.shape, (64 * 64, 2))
    self.assertEqual(image.holdout.sum(), round(0.1 * 64 * 64))
    self.assertTrue(0 <= image.clean.min() and image.clean.max() <= 1)
    self.assertAlmostEqual(float(np.std(image.noisy - image.clean)), 0.1,
                           delta=0.005)
    again = data.make_image('skimage:camera', 64, 0.1, 0.1, seed=0)
    np.testing.assert_array_equal(image.noisy, again.noisy)
    np.testing.assert_array_equal(image.holdout, again.holdout)
    other = data.make_image('skimage:camera', 64, 0.1, 0.1, seed=1)
    np.testing.assert_array_equal(image.clean, other.clean)
    self.assertFalse(np.array_equal(image.holdout, other.holdout))
    # The noisy image's PSNR is that of its noise: -10 log10(sigma^2).
    self.assertAlmostEqual(data.psnr(image.noisy, image.clean), 20.0,
                           delta=0.2)

  def test_grey_rgb_and_alpha_files(self):
    directory = self.create_tempdir().full_path
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    rgba = rng.integers(0, 256, (40, 40, 4), dtype=np.uint8)
    read = data.read(save_png(os.path.join(directory, 'g.png'), grey))
    self.assertEqual((read.shape, read.dtype), ((40, 50, 1), np.float32))
    np.testing.assert_allclose(read[..., 0], grey / 255, atol=1e-6)
    read = data.read(save_png(os.path.join(directory, 'c.png'), rgba))
    self.assertEqual(read.shape, (40, 40, 3))          # alpha dropped
    np.testing.assert_allclose(read, rgba[..., :3] / 255, atol=1e-6)
    # The centre square of a wide image, resized.
    square = data.resize(data.read(os.path.join(directory, 'g.png')), 40)
    np.testing.assert_allclose(square[..., 0], grey[:, 5:45] / 255,
                               atol=1e-6)
    self.assertEqual(data.resize(read, 16).shape, (16, 16, 3))
    self.assertEqual(data.read('skimage:astronaut').shape, (512, 512, 3))

  def test_batch_order_is_a_stream_of_its_own(self):
    # Epoch k of the batch order was default_rng([seed, k]): epoch 1 the
    # noise's stream, epoch 2 the held-out pixels' (epoch 2 of a run on
    # every pixel began with exactly the held-out set).
    pixels, batch = 256, 64
    for seed in (0, 1):
      held = np.flatnonzero(data.holdout_mask(pixels, 0.1, seed))
      streams = [np.random.default_rng([seed, k]).permutation(pixels)
                 for k in (data.NOISE_STREAM, data.HOLDOUT_STREAM)]
      for epoch in range(4):
        order = np.concatenate([
            train.batch_indices(seed, 4 * epoch + s, pixels, batch)
            for s in range(4)])
        np.testing.assert_array_equal(np.sort(order), np.arange(pixels))
        self.assertNotEqual(set(order[:len(held)]), set(held))
        for other in streams:
          self.assertFalse(np.array_equal(order, other))

  def test_resize_is_anti_aliased(self):
    # A one-pixel checkerboard averages to grey, not to an aliased pattern.
    board = (np.indices((64, 64)).sum(0) % 2).astype(np.float32)[..., None]
    small = data.resize(board, 16)
    self.assertLess(np.abs(small - 0.5).max(), 0.1)

  def test_unreadable_images(self):
    directory = self.create_tempdir().full_path
    junk = self.create_tempfile('junk.png', content='not an image').full_path
    fifo = os.path.join(directory, 'pipe.png')
    os.mkfifo(fifo)     # exists, but reading it would block
    for spec, message in (
        (fifo, f'cannot read {fifo} as an image: not a regular file'),
        (os.path.join(directory, 'nope.png'), 'no such file'),
        (directory, 'is a directory'),
        # imageio's message, in unbalanced backticks, was passed on.
        (junk, f'^cannot read {junk} as an image: not in a format imageio '
         r'reads \(PNG, JPEG, TIFF, BMP, \.\.\.\)$'),
        ('skimage:nope', "skimage.data has no image 'nope'"),
        # Not "cannot read  as an image: no such file".
        ('', r'^is empty; give skimage:<name> \(e.g. skimage:camera\) or '
         'the path of an image file$')):
      with self.subTest(spec):
        with self.assertRaisesRegex(ValueError, message) as e:
          data.read(spec)
        self.assertNotIn('\n', str(e.exception))
        self.assertNotIn('`', str(e.exception))

  def test_images_without_a_0_1_scale_are_refused(self):
    # A NaN in a float image would make every PSNR NaN; skimage maps int16
    # to [-1, 1] (negative intensities) and an int32 image of small values
    # to a black one. Each is refused in one line, naming what it holds.
    directory = self.create_tempdir().full_path
    nan = np.full((20, 20), 0.5, np.float32)
    nan[3, 3] = np.nan
    for name, array, message in (
        ('nan.tif', nan, 'a float image must be finite, this one holds 1 '
         'NaN or infinite values'),
        ('i16.tif', np.arange(-200, 200, dtype=np.int16).reshape(20, 20),
         r'an image of int16 values \(-200 to 199\) has no \[0, 1\] scale'),
        ('i32.tif', np.arange(400, dtype=np.int32).reshape(20, 20),
         r'an image of int32 values \(0 to 399\) has no \[0, 1\] scale')):
      with self.subTest(name):
        path = save_png(os.path.join(directory, name), array)
        with self.assertRaisesRegex(ValueError, message) as e:
          data.read(path)
        self.assertNotIn('\n', str(e.exception))
    # 16-bit unsigned files keep their scale: 0 to 65535.
    deep = (np.arange(400, dtype=np.uint16) * 163).reshape(20, 20)
    read = data.read(save_png(os.path.join(directory, 'u16.png'), deep))
    np.testing.assert_allclose(read[..., 0], deep / 65535, atol=1e-6)

  def test_image_smaller_than_the_side(self):
    with self.assertRaisesRegex(ValueError, r'the image is 512 x 512 pixels, '
                                r'smaller than config.side=600'):
      data.resize(data.read('skimage:camera'), 600)


class ModelTest(parameterized.TestCase):

  def test_siren_initialisation_bounds(self):
    config = default.get_config()     # 3 hidden layers of 256, omega_0 30
    model = models.create(config, 1)
    first = model.layers[0].linear
    # First layer: U(-1/in, 1/in) with in = 2 coordinates.
    kernel = np.asarray(first.kernel[...])
    self.assertEqual(kernel.shape, (2, 256))
    self.assertLessEqual(np.abs(kernel).max(), 1 / 2)
    self.assertGreater(np.abs(kernel).max(), 0.95 / 2)   # spans the range
    # Later layers and the read-out: U(-sqrt(6/in)/30, sqrt(6/in)/30).
    bound = math.sqrt(6 / 256) / 30
    for layer in [l.linear for l in model.layers[1:]] + [model.output]:
      kernel = np.asarray(layer.kernel[...])
      self.assertLessEqual(np.abs(kernel).max(), bound)
      self.assertGreater(np.abs(kernel).max(), 0.99 * bound)
      # Uniform: variance bound^2 / 3, within 5 standard errors (the
      # relative standard error of a uniform's sample variance is
      # sqrt(0.8 / n)).
      self.assertAlmostEqual(kernel.var() / (bound ** 2 / 3), 1,
                             delta=5 * math.sqrt(0.8 / kernel.size))
      self.assertLessEqual(np.abs(np.asarray(layer.bias[...])).max(),
                           1 / math.sqrt(256))
    self.assertLessEqual(np.abs(np.asarray(first.bias[...])).max(),
                         1 / math.sqrt(2))
    self.assertEqual(models.siren_weight_bound(2, 30, first=True), 0.5)

  def test_siren_layer_is_a_sine_of_omega_times_the_linear_map(self):
    model = models.create(tiny.get_config(), 1)
    layer = model.layers[0]
    x = data.coordinates(4)
    expected = np.sin(30 * (x @ np.asarray(layer.linear.kernel[...])
                            + np.asarray(layer.linear.bias[...])))
    np.testing.assert_allclose(layer(x), expected, atol=1e-5)

  @parameterized.product(model=config_schema.MODELS, channels=(1, 3))
  def test_shapes_and_trained_parameters(self, model, channels):
    config = tiny.get_config()
    config.model = model
    net = models.create(config, channels)
    self.assertEqual(net(data.coordinates(4)).shape, (16, channels))
    params = nnx.state(net, nnx.Param)
    width = config.hidden_width
    expected = (2 * width + width) + (width * channels + channels)
    if model == 'fourier_relu':
      # The Fourier basis is fixed, not a parameter.
      expected = (2 * config.fourier.features * width + width
                  + width * channels + channels)
      self.assertEqual(np.asarray(net.basis[...]).shape,
                       (2, config.fourier.features))
    self.assertEqual(sum(p.size for p in jax.tree.leaves(params)), expected)

  def test_fast_statistics_take_every_layer(self):
    # SIREN's layers are plain dense layers on [pixels, features]: the
    # fast path's best case, with no per-example fallback.
    for name in config_schema.MODELS:
      config = tiny.get_config()
      config.model = name
      graphdef, params, rest = nnx.split(models.create(config, 1),
                                         nnx.Param, ...)
      batch = (data.coordinates(4), np.zeros((16, 1), np.float32))
      plan = so.stats_plan(train.make_loss(graphdef, rest), params, batch)
      self.assertTrue(all(v.startswith('dense (') for v in plan.values()),
                      plan)


class TrainTest(testing.TrainTests, parameterized.TestCase):
  """Training and its PSNRs; testing.TrainTests: resume, Ctrl-C, refusals."""

  PACKAGE = 'examples.inr'
  RESUMED_METRICS = ('fit_psnr', 'clean_psnr', 'holdout_psnr',
                     'mask_fraction')
  RESUMED_FILES = ('reconstruction_latest.npy',
                   'reconstruction_best_clean.npy')
  ANOTHER_CONFIG = ('noise_sigma', 0.2, 'config.noise_sigma: 0.1 there, 0.2 '
                    'here')
  BAD_CONFIG = ({'image': '/nonexistent/image.png'},
                'config.image: cannot read /nonexistent/image.png as an image')

  @parameterized.named_parameters(
      *[(name, {'optimizer': name}) for name in config_schema.OPTIMIZERS],
      ('snr_adam_after', {'optimizer': 'snr_adam',
                          'snr.placement': 'after'}),
      ('snr_adam_full_image', {'optimizer': 'snr_adam', 'batch_size': 0}),
      ('fourier_relu', {'optimizer': 'snr_adam', 'model': 'fourier_relu'}),
      ('rgb', {'optimizer': 'adam', 'image': 'skimage:astronaut'}))
  def test_every_optimizer_trains(self, overrides):
    config = configs.build(tiny.TASK, overrides)
    workdir = self.create_tempdir().full_path
    result = train.train_and_evaluate(config, workdir)
    self.assertEqual(result['final_step'], 20)
    rows = testing.read_metrics(workdir)
    self.assertEqual([r['step'] for r in rows], [5, 10, 15, 20])
    for key in ('fit_psnr', 'clean_psnr', 'holdout_psnr'):
      self.assertTrue(all(np.isfinite(r[key]) for r in rows), key)
    # The loss decreases: the fit PSNR rises.
    self.assertGreater(rows[-1]['fit_psnr'], rows[0]['fit_psnr'])
    has_mask = config.optimizer in ('snr_adam', 'streaming_snr_adamw')
    self.assertEqual(rows[-1]['mask_fraction'] is not None, has_mask)
    files = os.listdir(workdir)
    for name in ('images.png', 'psnr.png', 'reconstruction_latest.npy',
                 'reconstruction_best_clean.npy', 'result.json',
                 'provenance.json'):
      self.assertIn(name, files)
    holds_out = config.optimizer == 'adam_early_stop'
    self.assertEqual('reconstruction_early_stop.npy' in files, holds_out)
    latest = np.load(os.path.join(workdir, 'reconstruction_latest.npy'))
    self.assertEqual(latest.shape, (16, 16, 3 if 'image' in overrides
                                    else 1))
    self.assertEqual(result['best_clean_psnr'],
                     max(r['clean_psnr'] for r in rows))
    self.assertEqual(result['early_stop_step'] is not None, holds_out)

  def test_early_stopping_trains_on_the_rest_and_picks_by_held_out_psnr(self):
    config = configs.build(tiny.TASK, {'optimizer': 'adam_early_stop',
                                       'batch_size': 0})
    image = data.make_image(config.image, 16, 0.1, 0.1, 0)
    pixels = train.training_pixels(config, image)
    self.assertLen(pixels, 256 - 26)            # 10% of 256 held out
    self.assertFalse(np.any(image.holdout[pixels]))
    config.optimizer = 'snr_adam'               # the others: every pixel
    np.testing.assert_array_equal(train.training_pixels(config, image),
                                  np.arange(256))
    config.optimizer = 'adam_early_stop'
    # The PSNRs of a reconstruction: the clean image itself is exact on the
    # clean PSNR, and as far from the noisy targets as the noise, on the
    # pixels it trains on and on the held-out ones.
    run = train.setup(config)
    np.testing.assert_array_equal(run.train_pixels, pixels)
    clean, noisy = image.clean_targets, image.noisy_targets
    self.assertEqual(train.psnrs(run, clean), {
        'fit_psnr': data.psnr(clean[pixels], noisy[pixels]),
        'clean_psnr': math.inf,
        'holdout_psnr': data.psnr(clean[image.holdout],
                                  noisy[image.holdout])})
    workdir = self.create_tempdir().full_path
    result = train.train_and_evaluate(config, workdir)
    rows = testing.read_metrics(workdir)
    pick = max(rows, key=lambda r: r['holdout_psnr'])
    self.assertEqual(result['early_stop_step'], pick['step'])
    self.assertEqual(result['early_stop_clean_psnr'], pick['clean_psnr'])
    self.assertFalse(result['trains_on_holdout'])
    # The saved pick is the reconstruction of that step.
    picked = np.load(os.path.join(workdir, 'reconstruction_early_stop.npy'))
    self.assertEqual(data.psnr(picked, image.clean),
                     result['early_stop_clean_psnr'])

  def test_population_estimate_is_logged_with_its_measured_losses(self):
    # Adam takes only the mean; with the estimate on it is wrapped in the
    # tracker and its update is unchanged: the same run without it, but for
    # the mean's rounding (the statistics' sum against jax.grad's).
    config = configs.build(tiny.TASK, {'snr.population_risk': True})
    workdir = self.create_tempdir().full_path
    train.train_and_evaluate(config, workdir)
    rows = testing.read_metrics(workdir)
    config.snr.population_risk = False
    plain = self.create_tempdir().full_path
    train.train_and_evaluate(config, plain)
    for row, other in zip(rows, testing.read_metrics(plain)):
      np.testing.assert_allclose(row['clean_psnr'], other['clean_psnr'],
                                 rtol=1e-5)
      self.assertNotIn('estimated_population_change', other)
      # the losses in the PSNRs' units: MSE = 10^(-PSNR / 10)
      self.assertAlmostEqual(row['train_loss'],
                             10 ** (-row['fit_psnr'] / 10), places=6)
      self.assertAlmostEqual(row['population_loss'],
                             10 ** (-row['clean_psnr'] / 10) + 0.1 ** 2,
                             places=6)
      self.assertLess(row['diagonal_error'], 1e-3)
      self.assertGreater(row['estimated_population_change'],
                         row['estimated_train_change'])
    self.assertEqual(rows[-1]['batch_fraction'],
                     config.batch_size / 256 if config.batch_size else 1.0)

  def test_a_diverging_run_finishes_and_reports_nan(self):
    # A learning rate far too large is a valid config whose run diverges:
    # it must end with its (NaN) metrics and files, not a matplotlib error.
    config = configs.build(tiny.TASK, {
        'model': 'fourier_relu', 'learning_rate': 1e30, 'batch_size': 0,
        'num_steps': 2, 'eval_every': 2})
    workdir = self.create_tempdir().full_path
    result = train.train_and_evaluate(config, workdir)
    self.assertTrue(math.isnan(result['final_clean_psnr']))
    for name in ('images.png', 'psnr.png', 'result.json'):
      self.assertTrue(os.path.exists(os.path.join(workdir, name)), name)

  def test_resume_on_an_image_changed_in_place_is_refused(self):
    # The same path (so the same config) with other pixels: resuming would
    # fit another image against PSNRs logged on the first.
    directory = self.create_tempdir().full_path
    path = os.path.join(directory, 'photo.png')
    rng = np.random.default_rng(0)
    save_png(path, rng.integers(0, 256, (16, 16), dtype=np.uint8))
    config = configs.build(tiny.TASK, {'image': path, 'num_steps': 2,
                                       'eval_every': 2})
    workdir = os.path.join(directory, 'run')
    train.train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, train.IMAGE_FILE)) as f:
      self.assertEqual(json.load(f), {'image': path,
                                      'sha256': data.fingerprint(path)})
    os.remove(path)
    save_png(path, rng.integers(0, 256, (16, 16), dtype=np.uint8))
    config.num_steps = 4
    before = {name: os.path.getmtime(os.path.join(workdir, name))
              for name in os.listdir(workdir)}
    with self.assertRaisesRegex(schema.ConfigError, rf'config.image: {path} '
                                r'is not the image the run in .* started on '
                                r'\(its pixels changed'):
      train.train_and_evaluate(config, workdir)
    self.assertEqual(before, {name: os.path.getmtime(os.path.join(
        workdir, name)) for name in os.listdir(workdir)})

  def test_a_reconstruction_is_written_whole_or_not_at_all(self):
    # Killed in the middle of np.save, the file kept half an array, which
    # the resumed run's save() failed to load.
    config = tiny.get_config()
    image = data.make_image(config.image, 16, 0.1, 0.1, 0)
    workdir = self.create_tempdir().full_path
    kept = train.Reconstructions(workdir, config, image, lambda: [])
    first = np.zeros((256, 1), np.float32)
    kept._write('latest', first)   # pylint: disable=protected-access

    def torn(file, array):
      file.write(b'\x93NUMPY')
      raise KeyboardInterrupt

    with mock.patch.object(np, 'save', torn):
      with self.assertRaises(KeyboardInterrupt):
        kept._write('latest', first + 1)   # pylint: disable=protected-access
    np.testing.assert_array_equal(np.load(kept.path('latest')),
                                  first.reshape(16, 16, 1))

  def test_summary_of_hand_made_rows(self):
    rows = [{'step': s, 'clean_psnr': c, 'fit_psnr': f, 'holdout_psnr': h,
             'train_seconds': s / 10}
            for s, c, f, h in ((25, 24.0, 18.0, 18.5), (50, 26.5, 19.0, 19.4),
                               (75, 26.5, 20.0, 19.2), (100, 25.0, 22.0, 18.0))]
    config = configs.build(tiny.TASK, {'optimizer': 'adam_early_stop',
                                       'target_clean_psnr': 26.0})
    result = train.summarize(config, rows, 100, 20.0)
    self.assertEqual((result['best_clean_psnr'], result['best_clean_step']),
                     (26.5, 50))          # the earlier of two equal bests
    self.assertEqual((result['final_clean_psnr'], result['final_fit_psnr']),
                     (25.0, 22.0))
    self.assertEqual((result['early_stop_step'],
                      result['early_stop_clean_psnr']), (50, 26.5))
    self.assertEqual((result['steps_to_target'], result['seconds_to_target']),
                     (50, 5.0))
    config.optimizer = 'snr_adam'
    result = train.summarize(config, rows, 100, 20.0)
    self.assertIsNone(result['early_stop_step'])



class SchemaTest(testing.SchemaTests, parameterized.TestCase):
  """Bad fields; testing.SchemaTests: config files, optimizers."""

  PACKAGE = 'examples.inr'
  CONFIG_FILES = ('default', 'tiny', 'adam', 'adam_early_stop', 'snr_adam',
                  'streaming')

  @parameterized.parameters(
      ('noise_sigma', 0.0, 'config.noise_sigma must be a number > 0; got 0.0'),
      ('noise_sigma', -0.1, 'config.noise_sigma must be a number > 0'),
      ('noise_sigma', 1e39, r'config.noise_sigma must be at most 10 \(ten '
       r"times the image's \[0, 1\] range\); got 1e\+39"),
      ('optimizer', 'sgd', "config.optimizer must be one of 'adam', "
       "'adam_early_stop', 'snr_adam', 'streaming_snr_adamw'; got 'sgd'"),
      ('batch_size', 1, r'config.batch_size must be an integer >= 0, 0 or '
       r'>= 2; got 1'),
      ('batch_size', 257, 'config.batch_size 257 exceeds the 256 training '
       'pixels'),
      ('holdout_fraction', 1.0, r'config.holdout_fraction must be a number '
       r'in \(0, 1\)'),
      ('side', 1024, 'config.image: the image is 512 x 512 pixels, smaller '
       'than config.side=1024'),
      ('image', 'skimage:nope', "config.image: skimage.data has no image "
       "'nope'"),
      ('model', 'mlp', "config.model must be one of 'siren', 'fourier_relu'"),
      # Adam's bias correction divides by 1 - beta^t: 1 made Adam's run NaN
      # and snr_optax's optimizers fail with a traceback.
      ('b1', 1.0, r'config.b1 must be a number in \[0, 1\); got 1.0'),
      ('b2', 1.0, r'config.b2 must be a number in \[0, 1\); got 1.0'),
      ('snr.rho', 1.0, r'config.snr.rho must be a number in \[0, 1\); got '
       r'1.0'))
  def test_bad_config(self, key, value, message):
    config = tiny.get_config()
    config.update_from_flattened_dict({key: value})
    with self.assertRaisesRegex(schema.ConfigError, message):
      config_schema.validate(config)

  def test_batch_must_fit_the_training_pixels_of_early_stopping(self):
    config = configs.build(tiny.TASK, {'optimizer': 'adam_early_stop',
                                       'batch_size': 240})
    with self.assertRaisesRegex(schema.ConfigError, 'config.batch_size 240 '
                                'exceeds the 230 training pixels'):
      config_schema.validate(config)


class MainTest(testing.MainTests, parameterized.TestCase):
  """The binary: bad input ends in one line, nothing written; --help."""

  PACKAGE = 'examples.inr'

  @parameterized.named_parameters(
      ('zero_sigma', ['--config.noise_sigma=0'],
       'error: config.noise_sigma must be a number > 0; got 0.0'),
      ('negative_sigma', ['--config.noise_sigma=-0.1'],
       'error: config.noise_sigma must be a number > 0; got -0.1'),
      ('unknown_optimizer', ['--config.optimizer=sgd'],
       "error: config.optimizer must be one of 'adam', 'adam_early_stop', "
       "'snr_adam', 'streaming_snr_adamw'; got 'sgd'"),
      ('missing_image', ['--config.image=/nonexistent/cat.png'],
       'error: config.image: cannot read /nonexistent/cat.png as an image: '
       'no such file'),
      ('image_too_small', ['--config.side=1000'],
       'error: config.image: the image is 512 x 512 pixels, smaller than '
       'config.side=1000; give a smaller side or a larger image'),
      ('misspelt_field', ['--config.noise_sigm=0.2'],
       "error: --config.noise_sigm: the config has no field 'noise_sigm'; "
       "did you mean 'noise_sigma'? (--help lists the fields)"),
  )
  def test_bad_input_is_one_line_and_writes_nothing(self, args, message):
    self.assert_refused(args, message, whole=True)

  def test_a_file_that_is_not_an_image(self):
    path = self.create_tempfile('notes.png', content='hello').full_path
    self.assert_refused([f'--config.image={path}'], f'error: config.image: '
                        f'cannot read {path} as an image: ')


class CompareTest(testing.CompareTests, parameterized.TestCase):
  """The tiny suite end to end; testing.CompareTests: README blocks."""

  PACKAGE = 'examples.inr'
  # Every suite but tiny (for tests, never published) has its block.
  BLOCKS = tuple(suite for suite in compare.SUITES if suite != 'tiny')

  def test_tiny_suite_writes_results_and_publishes(self):
    # compare.run_suite(<a copy>, 'tiny', [0]), trained once per process.
    workdir = self.tiny_runs()
    summary = compare.tabulate(workdir, 'tiny', [0])
    with open(os.path.join(workdir, 'results.json')) as f:
      on_disk = json.load(f)
    self.assertEqual(on_disk, json.loads(json.dumps(summary)))
    names = list(compare.SUITES['tiny'].runs)
    self.assertEqual(list(on_disk['results']), names)
    for name, row in on_disk['results'].items():
      self.assertEqual(row['seeds'], [0])
      self.assertEqual(row['budget'], 20)
      self.assertEqual(row['label'], compare.SUITES['tiny'].runs[name].label)
      seed = row['per_seed'][0]
      with open(os.path.join(workdir, name, 'seed_0', 'result.json')) as f:
        result = json.load(f)
      self.assertEqual(seed['best_clean_psnr'], result['best_clean_psnr'])
      self.assertEqual(seed['final_clean_psnr'], result['final_clean_psnr'])
      # Steps to the baseline's best clean PSNR, read from the curve.
      adam_best = on_disk['results']['adam']['per_seed'][0]
      curve = testing.read_metrics(os.path.join(workdir, name, 'seed_0'))
      self.assertEqual(seed['steps_to_baseline_best'], next(
          (r['step'] for r in curve
           if r['clean_psnr'] >= adam_best['best_clean_psnr']), None))
    adam = on_disk['results']['adam']
    self.assertEqual(adam['same_seed_ratios'], [1.0])
    self.assertEqual(adam['final_gain_db'], 0.0)
    self.assertIsNone(adam['mean_mask'])
    self.assertIsNotNone(on_disk['results']['snr_adam']['mean_mask'])
    early = on_disk['results']['adam_early_stop']['per_seed'][0]
    self.assertIsNotNone(early['early_stop_clean_psnr'])
    table = open(os.path.join(workdir, 'results.md')).read()
    self.assertIn('| Adam (`adam`) |', table)
    self.assertIn(f'jax {jax.__version__}', table)
    self.assertIn("The commands that made it (from the runs' provenance.json)",
                  table)
    for name in ('psnr.png', 'images.png'):
      self.assertTrue(os.path.exists(os.path.join(workdir, name)))
    # Finished runs are skipped: a second call trains nothing.
    path = os.path.join(workdir, 'adam', 'seed_0', 'result.json')
    mtime = os.path.getmtime(path)
    compare.run_suite(workdir, 'tiny', [0])
    self.assertEqual(mtime, os.path.getmtime(path))
    # --publish: the files, and the README's two blocks.
    self.assert_publishes(workdir, summary, ['images.png', 'psnr.png',
                                             'results.json', 'results.md'])
    # The program: only the table, and where it wrote.
    out = self.compare('--suite=tiny', '--seeds=0', '--table_only',
                       f'--workdir={workdir}', cpu_only=False)
    self.assertEqual(out.returncode, 0, out.stderr)
    self.assertIn(f'wrote {os.path.join(workdir, "results.md")}', out.stdout)

  def test_a_partial_table_says_which_seeds_each_run_has(self):
    # --table_only during a sweep: Adam (the baseline) has not finished and
    # no run has seed 1. The caption's "seeds 0,1" must not pass for every
    # row's, nor must a row's per-seed lists.
    workdir = self.tiny_runs()
    os.remove(os.path.join(workdir, 'adam', 'seed_0', 'result.json'))
    table = compare.render(compare.tabulate(workdir, 'tiny', [0, 1]))
    self.assertIn(
        '**Not every run has finished every seed** (seeds 0, 1): `adam` '
        'none; `adam_early_stop` seed 0 only; `snr_adam` seed 0 only; '
        '`streaming` seed 0 only. Their per-seed lists are of the seeds they '
        'have and their means over those; "final clean - adam", "steps to '
        'adam\'s best clean" and "x adam" compare the seeds both runs have.',
        table)
    self.assertIn('(`snr_adam`) (seed 0) | ', table)
    # A table of the seeds every run has says nothing of the kind.
    complete = compare.render(compare.tabulate(self.tiny_runs(), 'tiny',
                                               [0]))
    self.assertNotIn('Not every run', complete)
    self.assertIn('(`snr_adam`) | ', complete)

  def test_first_step_at(self):
    rows = [{'step': step, 'clean_psnr': psnr} for step, psnr in
            ((25, 20.0), (50, 26.0), (75, 26.5), (100, 25.0))]
    self.assertEqual(compare.first_step_at(rows, 26.0), 50)
    self.assertEqual(compare.first_step_at(rows, 26.2), 75)
    self.assertIsNone(compare.first_step_at(rows, 27.0))
    self.assertIsNone(compare.first_step_at(rows, None))


if __name__ == '__main__':
  absltest.main()
