# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Training curves as PNG files (matplotlib, no display needed).

A run's figure is ``curves_with_mask``: the example's own curves against the
step (``training_curves`` draws accuracies) and, for an optimizer that
masks, the mask fraction beside them. ``compare_curves`` overlays the runs
and seeds of a suite.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
import math
from typing import Any

import matplotlib

matplotlib.use('Agg')
from matplotlib import ticker  # pylint: disable=g-import-not-at-top,wrong-import-position
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position

Rows = Sequence[Mapping[str, Any]]


def column(rows: Rows, key: str) -> tuple[list[Any], list[Any]]:
  """``(steps, values)`` of ``key`` in the rows that logged it."""
  pairs = [(r['step'], r[key]) for r in rows if r.get(key) is not None]
  return [p[0] for p in pairs], [p[1] for p in pairs]


class DecadesFormatter(ticker.LogFormatterSciNotation):
  """Labels a log axis's minor ticks only while it shows under two decades.

  Over a few decades matplotlib labels minor ticks too, which crowd a small
  panel; but a short run (3 evaluations at steps 25, 50, 75) shows no decade
  at all, and a bare ``NullFormatter`` then left its step axis without a
  single label. Set as the minor formatter; the major one labels the
  decades.
  """

  def __init__(self):
    super().__init__(labelOnlyBase=False)

  def __call__(self, x, pos=None):
    low, high = sorted(self.axis.get_view_interval())
    if low > 0 and (math.floor(math.log10(high))
                    - math.ceil(math.log10(low))) >= 1:
      return ''   # two decades or more in view: they are labelled
    return super().__call__(x, pos)


def log_steps(ax, *, decades_only: bool = False) -> None:
  """A log step axis; ``decades_only``: minor ticks labelled only while
  fewer than two decades are in view (``DecadesFormatter``).

  Over less than a few decades matplotlib labels minor ticks too, which
  crowd a small panel.
  """
  ax.set_xscale('log')
  _some_steps(ax)
  if decades_only:
    ax.xaxis.set_minor_formatter(DecadesFormatter())
  ax.set_xlabel('step')


def _some_steps(ax) -> None:
  """Gives a log step axis limits when nothing finite was drawn on it.

  A run whose every metric is NaN (diverged at its first evaluation) draws
  no point; a horizontal reference line then leaves matplotlib a log axis
  with no positive limits, and saving the figure raised a ValueError deep in
  matplotlib, killing the run.
  """
  low = ax.dataLim.minposx
  if not (math.isfinite(low) and low > 0):
    ax.set_xlim(1, 10)


def curves_with_mask(rows: Rows, path: str, draw: Callable[[Any], None], *,
                     title: str = '',
                     step_axis: Callable[[Any], None] = log_steps) -> None:
  """``draw(ax)``'s curves and, if the rows log one, the mask fraction.

  Args:
    rows: the run's metrics; the mask panel is drawn when some row has a
      ``mask_fraction`` (the optimizer masks).
    path: the PNG file.
    draw: draws the example's curves on the left panel, its step axis
      included (``log_steps``).
    title: the figure's title.
    step_axis: sets the mask panel's step axis (as ``draw`` sets its own).
  """
  has_mask = any(r.get('mask_fraction') is not None for r in rows)
  fig, axes = plt.subplots(1, 2 if has_mask else 1,
                           figsize=(11 if has_mask else 6, 4), squeeze=False)
  draw(axes[0, 0])
  if has_mask:
    ax = axes[0, 1]
    ax.plot(*column(rows, 'mask_fraction'), color='tab:green')
    step_axis(ax)
    ax.set_ylabel('mask fraction (mean q)')
    ax.set_ylim(0, 1.02)
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def training_curves(rows: Rows, path: str, title: str = '',
                    target: float | None = None) -> None:
  """Train/held-out accuracy and the mask fraction against the step."""

  def draw(ax):
    for key, style in (('train_accuracy', '--'), ('val_accuracy', '-')):
      ax.plot(*column(rows, key), style, label=key.replace('_', ' '))
    if target is not None:
      ax.axhline(target, color='grey', lw=0.8, ls=':',
                 label=f'target ({target:.0%})')
    log_steps(ax)
    ax.set_ylabel('accuracy')
    ax.set_ylim(0, 1.02)
    ax.legend()

  curves_with_mask(rows, path, draw, title=title)


def compare_curves(runs: Mapping[str, Sequence[Rows]],
                   path: str, key: str = 'val_accuracy', title: str = '',
                   target: float | None = None,
                   max_overlaid: int = 6) -> None:
  """One colour per method, one thin line per seed.

  Up to ``max_overlaid`` methods share one axis; more get one small panel
  each, with the first method (the baseline) in grey behind every panel.
  """
  names = list(runs)
  colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
  if len(names) <= max_overlaid:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    panels = [(ax, names)]
  else:
    cols = 4
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.3 * rows),
                             sharex=True, sharey=True, squeeze=False)
    for ax in axes.flat[len(names):]:
      ax.set_visible(False)
    # A shared step axis is labelled on the bottom row only: a panel above
    # a hidden one (the last row not full) keeps its own step labels.
    for ax in axes.flat[max(0, len(names) - cols):len(names)]:
      ax.tick_params(axis='x', which='both', labelbottom=True)
    panels = list(zip(axes.flat, [[n] for n in names]))
    for ax, (name,) in panels:
      if name != names[0]:
        for rows_ in runs[names[0]]:
          ax.plot(*column(rows_, key), color='0.75', lw=1.0)
      ax.set_title(name, fontsize=9)
  for ax, panel_names in panels:
    for name in panel_names:
      colour = (colours[names.index(name) % len(colours)]
                if len(panels) == 1 else 'tab:blue')
      for j, rows_ in enumerate(runs[name]):
        ax.plot(*column(rows_, key), color=colour, lw=1.2, alpha=0.8,
                label=name if j == 0 else None)
    if target is not None:
      ax.axhline(target, color='grey', lw=0.8, ls=':',
                 label=f'target ({target:.0%})')
    ax.set_xscale('log')
    _some_steps(ax)
  if len(panels) == 1:
    ax = panels[0][0]
    ax.set_xlabel('step')
    ax.set_ylabel(key.replace('_', ' '))
    ax.set_title(title)
    ax.legend(fontsize=8)
  else:
    # No legend on small panels: the title says what the lines are.
    dotted = '' if target is None else f'; dotted: target {target:.0%}'
    fig.suptitle(f'{title} ({names[0]} in grey behind each panel{dotted})')
    fig.supxlabel('step')
    fig.supylabel(key.replace('_', ' '))
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
