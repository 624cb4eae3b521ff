# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of the plots: the target line is named in the legend."""

import os
from unittest import mock

from absl.testing import absltest
from matplotlib import figure

from examples.common import plots

ROWS = [{'step': s, 'train_accuracy': a, 'val_accuracy': a / 2,
         'mask_fraction': 0.5} for s, a in ((10, 0.2), (20, 0.9))]


def legend_texts(draw):
  """The legend entries of the figures ``draw()`` saves."""
  saved = []
  original = figure.Figure.savefig

  def savefig(fig, *args, **kwargs):
    saved.append([t.get_text() for ax in fig.axes if ax.get_legend()
                  for t in ax.get_legend().get_texts()])
    return original(fig, *args, **kwargs)

  with mock.patch.object(figure.Figure, 'savefig', savefig):
    draw()
  return saved[0]


class PlotsTest(absltest.TestCase):

  def test_training_curves_name_the_target(self):
    path = os.path.join(self.create_tempdir().full_path, 'curves.png')
    texts = legend_texts(lambda: plots.training_curves(ROWS, path,
                                                       target=0.95))
    self.assertEqual(texts, ['train accuracy', 'val accuracy',
                             'target (95%)'])
    self.assertTrue(os.path.exists(path))

  def test_compare_curves_name_the_target(self):
    path = os.path.join(self.create_tempdir().full_path, 'val.png')
    texts = legend_texts(lambda: plots.compare_curves(
        {'adamw': [ROWS], 'snr_adam': [ROWS]}, path, target=0.9))
    self.assertEqual(texts, ['adamw', 'snr_adam', 'target (90%)'])


if __name__ == '__main__':
  absltest.main()
