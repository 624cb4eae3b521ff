# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of the plots: the target line is named, the mask panel drawn."""

import math
import os
from unittest import mock

from absl.testing import absltest
from matplotlib import figure
from matplotlib import pyplot
from matplotlib import ticker

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

  def test_mask_panel_only_for_an_optimizer_that_masks(self):
    path = os.path.join(self.create_tempdir().full_path, 'run.png')
    drawn = []
    for rows in (ROWS, [{**r, 'mask_fraction': None} for r in ROWS]):
      with mock.patch.object(figure.Figure, 'savefig',
                             lambda fig, *a, **k: drawn.append(fig.axes)):
        plots.curves_with_mask(rows, path, lambda ax: ax.plot([1], [1]))
    masked, unmasked = drawn
    self.assertLen(masked, 2)
    self.assertEqual(masked[1].get_ylabel(), 'mask fraction (mean q)')
    self.assertEqual(list(masked[1].lines[0].get_xdata()), [10, 20])
    self.assertLen(unmasked, 1)

  def test_curves_of_nan_rows_are_drawn(self):
    # A run that diverged at its first evaluation logs only NaN; with a
    # reference line on a log step axis, saving raised a ValueError
    # ("Data cannot be log-scaled") and ended the run.
    directory = self.create_tempdir().full_path
    nan = [{**r, 'train_accuracy': math.nan, 'val_accuracy': math.nan}
           for r in ROWS]
    plots.training_curves(nan, os.path.join(directory, 'a.png'), target=0.9)
    plots.compare_curves({'a': [nan]}, os.path.join(directory, 'b.png'),
                         target=0.9)
    self.assertTrue(os.path.exists(os.path.join(directory, 'b.png')))
    # Drawn data keep their own limits.
    _, ax = pyplot.subplots()
    ax.plot([10, 20], [1, 2])
    plots.log_steps(ax)
    self.assertLess(ax.get_xlim()[0], 10)
    self.assertGreater(ax.get_xlim()[0], 1)
    pyplot.close('all')

  def test_log_steps_can_leave_minor_ticks_unlabelled(self):
    _, ax = pyplot.subplots()
    plots.log_steps(ax, decades_only=True)
    self.assertEqual(ax.get_xscale(), 'log')
    self.assertIsInstance(ax.xaxis.get_minor_formatter(),
                          ticker.NullFormatter)
    _, ax = pyplot.subplots()
    plots.log_steps(ax)
    self.assertNotIsInstance(ax.xaxis.get_minor_formatter(),
                             ticker.NullFormatter)
    pyplot.close('all')


if __name__ == '__main__':
  absltest.main()
