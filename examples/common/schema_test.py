# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of config schemas: fields, validation, nearest names, help text."""

from absl.testing import absltest
from absl.testing import parameterized
import ml_collections

from examples.common import schema

FIELDS = {
    'optimizer': schema.choice('adam', 'sgd', help='the optimizer'),
    'learning_rate': schema.real(above=0, help='step size'),
    'momentum': schema.real(at_least=0, below=1),
    'batch_size': schema.integer(at_least=2),
    'p': schema.integer(at_least=3, where=(lambda p: p % 2 == 1, 'odd')),
    'stop': schema.boolean(),
    'mask.mode': schema.choice('hard', 'soft'),
}


def make_config():
  config = ml_collections.ConfigDict({
      'optimizer': 'adam', 'learning_rate': 1e-3, 'momentum': 0.9,
      'batch_size': 8, 'p': 5, 'stop': False, 'mask': {'mode': 'hard'}})
  return config


class FieldTest(parameterized.TestCase):

  @parameterized.parameters(
      (schema.real(above=0), 1e-3, True),
      (schema.seed(), 0, True),
      (schema.seed(), 2**32 - 1, True),
      (schema.seed(), 2**32, False),             # a JAX key: seed 0 again
      (schema.seed(), -1, False),
      (schema.seed(), 1.0, False),
      (schema.real(above=0), 2, True),          # an int is a number
      (schema.real(above=0), 0.0, False),
      (schema.real(above=0), float('nan'), False),
      (schema.real(above=0), float('inf'), False),
      (schema.real(above=0), True, False),      # a bool is not a number
      (schema.real(above=0), '1', False),
      (schema.real(at_least=0, below=1), 0.0, True),
      (schema.real(at_least=0, below=1), 1.0, False),
      (schema.integer(at_least=2), 2, True),
      (schema.integer(at_least=2), 2.0, False),
      (schema.integer(at_least=2), True, False),
      (schema.integer(at_least=2), 1, False),
      (schema.boolean(), False, True),
      (schema.boolean(), 0, False),
      (schema.choice('a', 'b'), 'a', True),
      (schema.choice('a', 'b'), 'c', False),
      (schema.choice(1, 2), True, False),       # True == 1, but not a choice
      (schema.integer(where=(lambda v: v % 2, 'odd')), 4, False),
      (schema.text(), 'skimage:camera', True),
      (schema.text(), 1, False),
  )
  def test_accepts(self, field, value, expected):
    self.assertEqual(field.accepts(value), expected)

  @parameterized.parameters(
      (schema.real(above=0), 'a number > 0'),
      (schema.real(at_least=0, at_most=1), 'a number in [0, 1]'),
      (schema.real(above=0, below=1), 'a number in (0, 1)'),
      (schema.real(below=1), 'a number < 1'),
      (schema.integer(at_least=3, where=(bool, 'a prime')),
       'an integer >= 3, a prime'),
      (schema.choice('a', 'b'), "one of 'a', 'b'"),
      (schema.boolean(), 'True or False'),
      (schema.text(), 'a string'),
  )
  def test_describe(self, field, expected):
    self.assertEqual(field.describe(), expected)

  def test_loop_fields_are_what_the_loop_takes(self):
    fields = schema.loop_fields(eval_help='steps between evaluations on X')
    self.assertEqual(list(fields),
                     ['num_steps', 'eval_every', 'checkpoint_every'])
    self.assertEqual(fields['eval_every'].help,
                     'steps between evaluations on X')
    for field in fields.values():
      self.assertTrue(field.accepts(1))
      self.assertFalse(field.accepts(0))

  def test_real_refuses_two_lower_bounds(self):
    with self.assertRaises(ValueError):
      schema.real(above=0, at_least=0)


class ValidateTest(parameterized.TestCase):

  def test_valid_config_passes(self):
    schema.validate(make_config(), FIELDS)

  @parameterized.parameters(
      ('optimizer', 'adamw',
       "config.optimizer must be one of 'adam', 'sgd'; got 'adamw'"),
      ('learning_rate', -1.0,
       'config.learning_rate must be a number > 0; got -1.0'),
      ('batch_size', 1, 'config.batch_size must be an integer >= 2; got 1'),
      ('p', 4, 'config.p must be an integer >= 3, odd; got 4'),
  )
  def test_bad_value(self, name, value, message):
    config = make_config()
    config[name] = value
    with self.assertRaises(schema.ConfigError) as e:
      schema.validate(config, FIELDS)
    self.assertEqual(str(e.exception), message)

  def test_nested_value(self):
    config = make_config()
    config.mask.mode = 'bogus'
    with self.assertRaisesRegex(
        schema.ConfigError,
        r"^config.mask.mode must be one of 'hard', 'soft'; got 'bogus'$"):
      schema.validate(config, FIELDS)

  @parameterized.parameters(
      ('lerning_rate', 'learning_rate'),
      ('batchsize', 'batch_size'),
  )
  def test_unknown_field_names_the_nearest(self, name, nearest):
    config = make_config()
    config[name] = 1
    with self.assertRaisesRegex(schema.ConfigError,
                                f"no field '{name}'; did you mean "
                                f"'{nearest}'"):
      schema.validate(config, FIELDS)

  def test_unknown_nested_field(self):
    config = make_config()
    config.mask.mdoe = 'soft'
    with self.assertRaisesRegex(schema.ConfigError,
                                "no field 'mask.mdoe'; did you mean "
                                "'mask.mode'"):
      schema.validate(config, FIELDS)

  def test_missing_field(self):
    config = make_config()
    del config['momentum']
    with self.assertRaisesRegex(schema.ConfigError,
                                "has no field 'momentum'"):
      schema.validate(config, FIELDS)

  def test_checks_run_in_order_after_the_fields(self):
    def first(config):
      if config.batch_size > 4:
        raise ValueError('batch_size too\nlarge')

    def second(config):
      raise ValueError('never reached')

    with self.assertRaises(schema.ConfigError) as e:
      schema.validate(make_config(), FIELDS, (first, second))
    self.assertEqual(str(e.exception), 'batch_size too large')   # one line
    config = make_config()
    config.batch_size = 0
    # A bad field is reported before any check runs.
    with self.assertRaisesRegex(schema.ConfigError, 'batch_size must be'):
      schema.validate(config, FIELDS, (second,))

  def test_config_error_is_a_value_error(self):
    self.assertTrue(issubclass(schema.ConfigError, ValueError))


class HelpersTest(absltest.TestCase):

  def test_flatten(self):
    self.assertEqual(schema.flatten(make_config())['mask.mode'], 'hard')
    self.assertLen(schema.flatten(make_config()), 7)

  def test_nearest(self):
    self.assertEqual(schema.nearest('optimiser', FIELDS), 'optimizer')
    self.assertEqual(schema.nearest('mask.mdoe', FIELDS), 'mask.mode')
    self.assertIsNone(schema.nearest('zzzzzz', FIELDS))

  def test_describe_lists_every_field_with_its_default(self):
    text = schema.describe(FIELDS, make_config(), '--config.')
    lines = text.splitlines()
    self.assertLen(lines, len(FIELDS))
    self.assertIn('--config.learning_rate=0.001: step size; a number > 0',
                  lines)
    self.assertIn("--config.mask.mode=hard: one of 'hard', 'soft'", lines)


if __name__ == '__main__':
  absltest.main()
