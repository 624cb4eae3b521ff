# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of check_same_run: a work directory resumes only its own run."""

import os

from absl.testing import absltest
import ml_collections

from examples.common import checkpoint
from examples.common import schema


def make_config(**overrides):
  config = ml_collections.ConfigDict({'lr': 1e-3, 'steps': 10,
                                      'model': {'width': 16}})
  config.update(overrides)
  return config


class CheckSameRunTest(absltest.TestCase):

  def make_run(self, config, with_checkpoint=True):
    workdir = self.create_tempdir().full_path
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      f.write(config.to_json())
    if with_checkpoint:
      os.makedirs(os.path.join(workdir, 'checkpoints', '10'))
    return workdir

  def test_same_config_and_allowed_changes_pass(self):
    workdir = self.make_run(make_config())
    checkpoint.check_same_run(workdir, make_config())
    checkpoint.check_same_run(workdir, make_config(steps=20),
                              may_change=['steps'])

  def test_another_config_is_refused_in_one_line(self):
    workdir = self.make_run(make_config())
    config = make_config(lr=0.1)
    config.model.width = 32
    with self.assertRaises(schema.ConfigError) as e:
      checkpoint.check_same_run(workdir, config)
    self.assertEqual(
        str(e.exception),
        f'{workdir} holds a run started with another config (config.lr: '
        '0.001 there, 0.1 here and 1 more); resume it with the config it '
        f'was started with ({workdir}/config.json) or give a new --workdir')

  def test_new_fields_and_runs_without_checkpoints_pass(self):
    # A field added to the example since the run started is not compared.
    workdir = self.make_run(make_config())
    checkpoint.check_same_run(workdir, make_config(new_field=1))
    # Without a checkpoint there is nothing to resume.
    workdir = self.make_run(make_config(), with_checkpoint=False)
    checkpoint.check_same_run(workdir, make_config(lr=0.1))
    checkpoint.check_same_run(self.create_tempdir().full_path, make_config())


if __name__ == '__main__':
  absltest.main()
