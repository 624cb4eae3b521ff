# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of the plots: the target line is named, the mask panel drawn."""

import functools
import math
import os
import re
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


def saved_figures(draw):
  """The figures ``draw()`` saves, drawn (their ticks laid out)."""
  saved = []
  original = figure.Figure.savefig

  def savefig(fig, *args, **kwargs):
    fig.canvas.draw()
    saved.append(fig)
    return original(fig, *args, **kwargs)

  with mock.patch.object(figure.Figure, 'savefig', savefig):
    draw()
  return saved


def step_labels(ax):
  """The step axis's tick labels ``ax`` shows (in view, not blank)."""
  ax.figure.canvas.draw()
  low, high = sorted(ax.get_xlim())
  shown = []
  for tick in (*ax.xaxis.get_major_ticks(), *ax.xaxis.get_minor_ticks()):
    text = tick.label1
    if (text.get_visible() and text.get_text()
        and low <= tick.get_loc() <= high):
      shown.append(text.get_text())
  # '$\\mathdefault{10^{2}}$' -> '100'; '$\\mathdefault{3\\times10^{1}}$' -> '30'.
  return sorted((_number(t) for t in shown), key=float)


def _number(text: str) -> str:
  match = re.fullmatch(r'\$\\mathdefault\{(?:(\d+)\\times)?10\^\{(-?\d+)\}\}\$',
                       text)
  if not match:
    return text
  value = int(match.group(1) or 1) * 10.0 ** int(match.group(2))
  return f'{value:g}'


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
    # Over two decades or more only the decades are labelled.
    _, ax = pyplot.subplots()
    ax.plot([25, 50, 2000], [1, 2, 3])
    plots.log_steps(ax, decades_only=True)
    self.assertEqual(ax.get_xscale(), 'log')
    self.assertIsInstance(ax.xaxis.get_minor_formatter(),
                          plots.DecadesFormatter)
    self.assertEqual(step_labels(ax), ['100', '1000'])
    _, ax = pyplot.subplots()
    plots.log_steps(ax)
    self.assertNotIsInstance(ax.xaxis.get_minor_formatter(),
                             ticker.NullFormatter)
    pyplot.close('all')

  def test_short_runs_have_labelled_step_axes(self):
    # 3 evaluations within a decade: a log step axis that labels only its
    # decades had no label at all; a shared axis of panels above a hidden
    # one (the last row of the grid not full) had none either.
    directory = self.create_tempdir().full_path
    for steps in ((5, 10, 15), (25, 50, 75), (200, 400, 600)):
      rows = [{**ROWS[0], 'step': s} for s in steps]
      for name, draw in (
          ('training_curves', lambda: plots.training_curves(
              rows, os.path.join(directory, 'a.png'), target=0.9)),
          ('decades_only', lambda: plots.curves_with_mask(
              rows, os.path.join(directory, 'b.png'),
              lambda ax: (ax.plot(*plots.column(rows, 'val_accuracy')),
                          plots.log_steps(ax, decades_only=True)),
              step_axis=functools.partial(plots.log_steps,
                                          decades_only=True))),
          ('compare_curves', lambda: plots.compare_curves(
              {'a': [rows], 'b': [rows]}, os.path.join(directory, 'c.png'))),
          ('compare_curves, 9 panels', lambda: plots.compare_curves(
              {str(i): [rows] for i in range(9)},
              os.path.join(directory, 'd.png')))):
        with self.subTest(steps=steps, plot=name):
          figures = saved_figures(draw)
          self.assertLen(figures, 1)
          fig = figures[0]
          shown = [ax for ax in fig.axes if ax.get_visible()]
          self.assertNotEmpty(shown)
          for ax in shown:
            self.assertTrue(ax.get_xlabel() == 'step' or (
                fig._supxlabel and fig._supxlabel.get_text() == 'step'))  # pylint: disable=protected-access
          # Every column of panels shows its step labels at its foot.
          columns = {}
          for ax in shown:
            box = ax.get_position()
            columns.setdefault(round(box.x0, 3), []).append((box.y0, ax))
          for column in columns.values():
            lowest = min(column, key=lambda c: c[0])[1]
            self.assertGreaterEqual(len(step_labels(lowest)), 2,
                                    step_labels(lowest))


if __name__ == '__main__':
  absltest.main()
