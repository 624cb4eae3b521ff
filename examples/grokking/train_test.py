# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Fast tests of the grokking example: data, model, optimizers, resume."""

import json
import os
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized
from flax import nnx
import jax
import numpy as np

from examples.common import interrupt
from examples.common import schema
from examples.grokking import compare
from examples.grokking import config_schema
from examples.grokking import data
from examples.grokking import train
from examples.grokking.configs import default
from examples.grokking.configs import tiny

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


class DataTest(parameterized.TestCase):

  @parameterized.parameters(*data.OPERATIONS)
  def test_every_pair_once_and_correct(self, operation):
    p = 13
    x, y = data.table(operation, p)
    expected = p * (p - 1) if operation == 'division' else p * p
    self.assertEqual(len(y), expected)
    pairs = {(int(a), int(b)) for a, b in x[:, [0, 2]]}
    self.assertLen(pairs, expected)
    np.testing.assert_array_equal(x[:, 1], p)
    np.testing.assert_array_equal(x[:, 3], p + 1)
    a, b = x[:, 0].astype(int), x[:, 2].astype(int)
    check = {'division': (b * y) % p == a,
             'multiplication': (a * b) % p == y,
             'addition': (a + b) % p == y,
             'subtraction': (a - b) % p == y}[operation]
    self.assertTrue(np.all(check))
    self.assertTrue(np.all((0 <= y) & (y < p)))

  def test_split_sizes_and_disjointness(self):
    split = data.make_split('division', 97, 0.25, seed=3)
    self.assertEqual(len(split.train_y), 2328)     # round(0.25 * 9312)
    self.assertEqual(len(split.val_y), 9312 - 2328)
    train_pairs = {tuple(r) for r in split.train_x[:, [0, 2]]}
    val_pairs = {tuple(r) for r in split.val_x[:, [0, 2]]}
    self.assertEmpty(train_pairs & val_pairs)
    again = data.make_split('division', 97, 0.25, seed=3)
    np.testing.assert_array_equal(split.train_x, again.train_x)

  @parameterized.parameters(0.0, 1.0, -0.5, 1.5)
  def test_bad_train_fraction(self, fraction):
    with self.assertRaisesRegex(ValueError, r'train_fraction must lie in'):
      data.make_split('addition', 11, fraction, 0)

  def test_bad_modulus(self):
    with self.assertRaisesRegex(ValueError, 'prime'):
      data.table('addition', 12)

  def test_batches_are_a_pure_function_of_the_step(self):
    first = train.batch_indices(0, 7, 100, 16)
    np.testing.assert_array_equal(first, train.batch_indices(0, 7, 100, 16))
    epoch = np.concatenate([train.batch_indices(0, s, 100, 16)
                            for s in range(6)])
    self.assertLen(set(epoch.tolist()), 96)   # each example at most once


class ModelTest(absltest.TestCase):

  def test_shapes_and_parameter_count(self):
    config = tiny.get_config()
    split = data.make_split('addition', 11, 0.5, 0)
    model = train.create_model(config, split)
    logits = model(split.train_x[:5])
    self.assertEqual(logits.shape, (5, 11))
    paper = train.create_model(default.get_config(),
                               data.make_split('division', 97, 0.25, 0))
    n = sum(p.size for p in jax.tree.leaves(nnx.state(paper, nnx.Param)))
    self.assertEqual(n, 422_497)   # about Grokfast's 422.8k


class TrainTest(parameterized.TestCase):

  @parameterized.parameters(
      *[(name, 'before') for name in train.OPTIMIZERS],
      *[(name, 'after') for name in train.PER_EXAMPLE])
  def test_every_optimizer_trains(self, optimizer, placement):
    config = tiny.get_config()
    config.optimizer = optimizer
    config.snr.placement = placement
    config.num_steps = 10
    workdir = self.create_tempdir().full_path
    result = train.train_and_evaluate(config, workdir)
    self.assertEqual(result['final_step'], 10)
    rows = [json.loads(l) for l in open(os.path.join(workdir,
                                                      'metrics.jsonl'))]
    self.assertEqual([r['step'] for r in rows], [5, 10])
    self.assertTrue(all(np.isfinite(r['val_loss']) for r in rows))
    has_mask = optimizer not in ('adamw', 'grokfast')
    self.assertEqual(rows[-1]['mask_fraction'] is not None, has_mask)
    self.assertTrue(os.path.exists(os.path.join(workdir, 'curves.png')))

  def test_resume_is_exact(self):
    config = tiny.get_config()
    config.optimizer = 'snr_adam'
    whole = self.create_tempdir().full_path
    train.train_and_evaluate(config, whole)
    parts = self.create_tempdir().full_path
    config.num_steps = 10
    train.train_and_evaluate(config, parts)
    config.num_steps = 20
    train.train_and_evaluate(config, parts)     # resumes from step 10
    read = lambda d: [json.loads(l) for l in open(os.path.join(
        d, 'metrics.jsonl'))]
    a, b = read(whole), read(parts)
    self.assertEqual([r['step'] for r in a], [r['step'] for r in b])
    for ra, rb in zip(a, b):
      for key in ('train_loss', 'val_loss', 'val_accuracy', 'mask_fraction'):
        self.assertEqual(ra[key], rb[key], key)

  def test_interrupted_log_is_truncated_to_the_checkpoint(self):
    config = tiny.get_config()
    workdir = self.create_tempdir().full_path
    config.num_steps = 10
    train.train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, 'metrics.jsonl'), 'a') as f:
      f.write(json.dumps({'step': 15, 'val_accuracy': 0.0}) + '\n')
    config.num_steps = 20
    train.train_and_evaluate(config, workdir)
    steps = [json.loads(l)['step'] for l in open(os.path.join(
        workdir, 'metrics.jsonl'))]
    self.assertEqual(steps, [5, 10, 15, 20])

  def test_sharded_run_equals_single_device(self):
    # Under pytest this is a mesh of 8 host CPU devices (conftest.py).
    config = tiny.get_config()
    config.optimizer = 'snr_adam'
    config.num_steps = 10
    single = train.train_and_evaluate(config,
                                      self.create_tempdir().full_path)
    config.mesh_data, config.mesh_fsdp = -1, 1
    sharded = train.train_and_evaluate(config,
                                       self.create_tempdir().full_path)
    self.assertAlmostEqual(single['final_val_accuracy'],
                           sharded['final_val_accuracy'], places=5)

  def test_stop_at_target(self):
    config = tiny.get_config()
    config.target_val_accuracy = 0.0    # reached at the first evaluation
    config.stop_at_target = True
    result = train.train_and_evaluate(config,
                                      self.create_tempdir().full_path)
    self.assertEqual(result['steps_to_target'], 5)
    self.assertEqual(result['final_step'], 5)

  def test_bad_config_writes_nothing(self):
    config = tiny.get_config()
    config.snr.mode = 'bogus'
    workdir = os.path.join(self.create_tempdir().full_path, 'run')
    with self.assertRaisesRegex(ValueError, 'config.snr.mode must be one of'):
      train.train_and_evaluate(config, workdir)
    self.assertFalse(os.path.exists(workdir))

  def test_mesh_that_does_not_fit_writes_nothing(self):
    config = tiny.get_config()
    config.mesh_data = jax.device_count() + 1
    workdir = os.path.join(self.create_tempdir().full_path, 'run')
    with self.assertRaisesRegex(schema.ConfigError, 'does not fit the'):
      train.train_and_evaluate(config, workdir)
    self.assertFalse(os.path.exists(workdir))


class CompareTest(parameterized.TestCase):

  def test_tiny_suite_writes_results(self):
    workdir = self.create_tempdir().full_path
    compare.run_suite(workdir, 'tiny', [0, 1])
    summary = compare.tabulate(workdir, 'tiny', [0, 1])
    with open(os.path.join(workdir, 'results.json')) as f:
      on_disk = json.load(f)
    self.assertEqual(on_disk, json.loads(json.dumps(summary)))
    self.assertEqual(set(on_disk['results']), {'adamw', 'snr_adam'})
    for row in on_disk['results'].values():
      self.assertEqual(row['seeds'], [0, 1])
      self.assertLen(row['steps_to_target'], 2)
      self.assertEqual(row['budget'], 20)
      self.assertEqual(set(row['milestones']), {'0.5', '0.9'})
      for milestone in row['milestones'].values():
        self.assertLen(milestone['steps'], 2)
    table = open(os.path.join(workdir, 'results.md')).read()
    self.assertIn('| adamw |', table)
    self.assertTrue(os.path.exists(os.path.join(workdir,
                                                'val_accuracy.png')))
    # Finished runs are skipped: a second call trains nothing.
    mtime = os.path.getmtime(os.path.join(workdir, 'adamw', 'seed_0',
                                          'result.json'))
    compare.run_suite(workdir, 'tiny', [0, 1])
    self.assertEqual(mtime, os.path.getmtime(os.path.join(
        workdir, 'adamw', 'seed_0', 'result.json')))

  @parameterized.parameters(
      ([100, 200, 300], 200),
      ([300, None, 100], 300),     # the run that never got there is slowest
      ([100, None], None),         # half the seeds: median is past the budget
      ([None, 100, None], None),
      ([None], None),
      ([], None),
      ([100, 200, 300, None], 250),
  )
  def test_censored_median(self, values, expected):
    self.assertEqual(compare.censored_median(values), expected)

  def test_first_step_at(self):
    rows = [{'step': step, 'val_accuracy': accuracy} for step, accuracy in
            ((5, 0.2), (10, 0.6), (15, 0.4), (20, 0.95))]
    self.assertEqual(compare.first_step_at(rows, 0.5), 10)
    self.assertEqual(compare.first_step_at(rows, 0.95), 20)
    self.assertIsNone(compare.first_step_at(rows, 0.99))

  def test_every_suite_is_a_valid_config(self):
    for suite, spec in compare.SUITES.items():
      for name in spec['runs']:
        with self.subTest(suite=suite, run=name):
          config_schema.validate(compare.make_config(suite, name, seed=0))


if __name__ == '__main__':
  absltest.main()
