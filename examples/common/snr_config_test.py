# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of the shared ``config.snr`` group: snr_optax is the authority."""

from absl.testing import absltest
import ml_collections
import snr_optax as so

from examples.common import schema
from examples.common import snr_config


def loss(params, batch):
  del params, batch
  return 0.0


class SnrConfigTest(absltest.TestCase):

  def test_choices_are_what_snr_optax_accepts(self):
    # The schema lists the library's choices for --help; the library is
    # the authority. Every listed value is accepted, and nothing else (the
    # library's refusal lists exactly these).
    for mode in snr_config.MODES:
      so.snr_mask(mode=mode)
    for reduction in snr_config.REDUCTIONS:
      so.snr_mask(reduction=reduction)
    for placement in snr_config.PLACEMENTS:
      so.snr_adam(1e-3, placement=placement)
    for method in snr_config.METHODS:
      so.value_and_grad_stats(loss, method=method, microbatch_size=2)
    with self.assertRaisesRegex(ValueError, "'hard', 'soft', 'snr'"):
      so.snr_mask(mode='bogus')
    with self.assertRaisesRegex(ValueError, "'element', 'tensor'"):
      so.snr_mask(reduction='bogus')
    with self.assertRaisesRegex(ValueError, "'before', 'after'"):
      so.snr_adam(1e-3, placement='bogus')
    with self.assertRaisesRegex(ValueError,
                                "'auto', 'fast', 'vmap', 'microbatch'"):
      so.value_and_grad_stats(loss, method='bogus')

  def test_ranges_are_what_snr_optax_accepts(self):
    # rho = 1 (like Adam's b1 or b2 = 1) passed the schema and then failed
    # in snr_optax with a traceback: the schema refuses what the library
    # refuses, in one line.
    fields = snr_config.fields()
    self.assertEqual(fields['snr.rho'].describe(), 'a number in [0, 1)')
    for rho in (0.0, 0.5, 0.999):
      self.assertTrue(fields['snr.rho'].accepts(rho))
      so.streaming_snr_adamw(1e-3, rho=rho)
    self.assertFalse(fields['snr.rho'].accepts(1.0))
    with self.assertRaisesRegex(ValueError, r'rho must lie in \[0.0, 1.0\)'):
      so.streaming_snr_adamw(1e-3, rho=1.0)

  def test_defaults_fill_the_schema(self):
    config = ml_collections.ConfigDict(
        {'snr': snr_config.defaults(microbatch_size=8)})
    schema.validate(config, snr_config.fields())
    self.assertEqual(config.snr.microbatch_size, 8)

  def test_arguments_are_what_snr_optax_takes(self):
    snr = snr_config.defaults(microbatch_size=8)
    so.snr_mask(**snr_config.mask_kwargs(snr))
    so.snr_adam(1e-3, **snr_config.mask_kwargs(snr))
    self.assertEqual(snr_config.mask_kwargs(snr),
                     {'mode': 'hard', 'alpha': 1.0, 'softness': 1.0,
                      'reduction': 'element'})
    # The chunk size only goes with the method that the config gives it for.
    self.assertEqual(snr_config.stats_kwargs(snr),
                     {'method': 'auto', 'microbatch_size': None})
    snr.method = 'microbatch'
    self.assertEqual(snr_config.stats_kwargs(snr),
                     {'method': 'microbatch', 'microbatch_size': 8})
    so.value_and_grad_stats(loss, **snr_config.stats_kwargs(snr))


if __name__ == '__main__':
  absltest.main()
