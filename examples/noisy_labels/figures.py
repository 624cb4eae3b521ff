# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The noisy-labels example's PNG files: a run's curves, a suite's curves.

``examples/common/plots.py`` draws the figure of a run (its curves beside
the mask fraction); these are the accuracies this example reads
(matplotlib, no display needed). The step axis is linear: memorisation is
a slow climb over many epochs, not a change of scale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position

from examples.common import plots  # pylint: disable=g-import-not-at-top,wrong-import-position

Rows = Sequence[Mapping[str, Any]]

# (key, style, label) of a run's curves.
CURVES = (
    ('test_accuracy', '-', 'clean test accuracy'),
    ('clean_train_accuracy', '--', 'train, clean part'),
    ('memorisation', ':', 'train, corrupted part vs noisy labels '
     '(memorisation)'),
    ('corrupted_true_accuracy', '-.', 'train, corrupted part vs true labels'),
    ('validation_accuracy', '-', 'noisy validation split'),
)


def _colours(labels: Sequence[str], order: Sequence[str]) -> dict[str, str]:
  """A colour per label, by its place in ``order`` (the rest after it), so
  that one run has one colour in every figure of a suite."""
  cycle = plt.rcParams['axes.prop_cycle'].by_key()['color']
  ranked = list(order) + [label for label in labels if label not in order]
  return {label: cycle[ranked.index(label) % len(cycle)] for label in labels}


def linear_steps(ax) -> None:
  ax.set_xlabel('step')
  ax.set_xlim(left=0)


def run_curves(rows: Rows, path: str, title: str = '') -> None:
  """A run's accuracies against the step, and its mask fraction."""

  def draw(ax):
    for key, style, label in CURVES:
      steps, values = plots.column(rows, key)
      if values:
        ax.plot(steps, values, style, label=label)
    linear_steps(ax)
    ax.set_ylabel('accuracy')
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)

  plots.curves_with_mask(rows, path, draw, title=title,
                         step_axis=linear_steps)


def compare_curves(groups: Mapping[str, Mapping[str, Sequence[Rows]]],
                   path: str, key: str, ylabel: str, title: str = '',
                   order: Sequence[str] = ()) -> None:
  """One panel per group (a noise level), one colour per run, a line a seed.

  Args:
    groups: panel title -> run label -> each seed's rows.
    path: the PNG file.
    key: the metric drawn.
    ylabel: its axis label.
    title: the figure's title.
    order: run labels in the order of their colours.
  """
  colours = _colours(list(dict.fromkeys(
      label for runs in groups.values() for label in runs)), order)
  # At least 8 inches: the legend below names up to 8 runs in two rows.
  fig, axes = plt.subplots(1, len(groups),
                           figsize=(max(8.0, 4.2 * len(groups) + 0.5), 4.6),
                           sharey=True, squeeze=False)
  for ax, (panel, runs) in zip(axes[0], groups.items()):
    for label, seeds in runs.items():
      colour = colours[label]
      for j, rows in enumerate(seeds):
        ax.plot(*plots.column(rows, key), color=colour, lw=1.1, alpha=0.8,
                label=label if j == 0 else None)
    linear_steps(ax)
    ax.set_title(panel, fontsize=10)
    ax.set_ylim(0, 1.02)
  axes[0, 0].set_ylabel(ylabel)
  handles, names = [], []
  for ax in axes[0]:
    for handle, name in zip(*ax.get_legend_handles_labels()):
      if name not in names:
        handles.append(handle)
        names.append(name)
  fig.legend(handles, names, loc='lower center', ncol=min(4, len(names)),
             fontsize=8, frameon=False)
  fig.suptitle(title)
  fig.tight_layout(rect=(0, 0.06 * (1 + (len(names) - 1) // 4), 1, 1))
  fig.savefig(path, dpi=100)
  plt.close(fig)


def by_noise_level(
    panels: Mapping[str, Mapping[str, Sequence[tuple[float, float | None]]]],
    path: str, title: str = '', order: Sequence[str] = ()) -> None:
  """Metrics against the noise fraction: a panel each, a colour per run.

  Args:
    panels: the metric's axis label -> run label -> ``(noise_fraction,
      value)`` of every seed (None values are skipped); a dot per seed, a
      line through the means.
    path: the PNG file.
    title: the figure's title.
    order: run labels in the order of their colours.
  """
  colours = _colours(list(dict.fromkeys(
      label for runs in panels.values() for label in runs)), order)
  levels = sorted({x for runs in panels.values() for pairs in runs.values()
                   for x, _ in pairs})
  fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5),
                           squeeze=False)
  for ax, (ylabel, runs) in zip(axes[0], panels.items()):
    for label, pairs in runs.items():
      pairs = [(x, y) for x, y in pairs if y is not None]
      if not pairs:
        continue
      colour = colours[label]
      ax.scatter(*zip(*pairs), color=colour, s=12, alpha=0.5)
      at = sorted({x for x, _ in pairs})
      means = [sum(y for x, y in pairs if x == level)
               / sum(1 for x, _ in pairs if x == level) for level in at]
      ax.plot(at, means, '-o', color=colour, ms=3, label=label)
    ax.set_xticks(levels)
    ax.set_xlim(min(levels) - 0.05, max(levels) + 0.05)
    ax.set_xlabel('label noise (fraction of training labels corrupted)')
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.02)
  axes[0, 0].legend(fontsize=7)
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
