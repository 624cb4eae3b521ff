# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The PINN example's PNG files: solution heatmaps and error curves.

``examples/common/plots.py`` draws the mask panel beside a run's curves;
these are the example's own (matplotlib, no display needed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from examples.common import plots  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.pinn import problem  # pylint: disable=g-import-not-at-top,wrong-import-position


def _heatmap(ax, task: problem.Task, values: np.ndarray, title: str, *,
             cmap: str = 'RdBu_r', limits=(-1.0, 1.0)) -> None:
  extent = (0.0, problem.T_MAX, 0.0, problem.X_MAX)
  image = ax.imshow(np.asarray(values, np.float32).T, origin='lower',
                    aspect='auto', extent=extent, cmap=cmap,
                    vmin=limits[0], vmax=limits[1], interpolation='nearest')
  ax.set_xlabel('t')
  ax.set_ylabel('x')
  ax.set_title(title, fontsize=9)
  plt.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
  del task


def solution(task: problem.Task, prediction: np.ndarray, path: str,
             title: str = '') -> None:
  """Exact u, the prediction and |error| on the grid ([nt, nx] each)."""
  error = np.abs(np.asarray(prediction, np.float64) - task.grid_exact)
  rel = problem.relative_l2(prediction, task.grid_exact)
  fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
  _heatmap(axes[0], task, task.grid_exact, 'exact sin(x - beta t)')
  _heatmap(axes[1], task, prediction, 'predicted')
  _heatmap(axes[2], task, error, f'|error| (relative L2 {rel:.3f})',
           cmap='magma', limits=(0.0, max(float(error.max()), 1e-6)))
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def error_curves(rows: Sequence[Mapping[str, Any]], path: str,
                 title: str = '', sigma: float | None = None) -> None:
  """Relative L2 error and the initial-data errors against the step."""
  def draw(ax):
    ax.plot(*plots.column(rows, 'rel_l2'), '-', label='relative L2 (grid)')
    ax.plot(*plots.column(rows, 'ic_error_clean'), '--',
            label='u(x, 0) vs clean sin(x)')
    ax.plot(*plots.column(rows, 'ic_error_noisy'), ':',
            label='u(x, 0) vs noisy observations')
    if sigma:
      ax.axhline(sigma, color='grey', lw=0.8, ls='-.',
                 label=f'noise RMS ({sigma:.3f})')
    plots.log_steps(ax, decades_only=True)
    ax.set_yscale('log')
    ax.set_ylabel('error')
    ax.legend(fontsize=8)

  plots.curves_with_mask(rows, path, draw, title=title)


def compare_errors(runs: Mapping[str, Sequence[Sequence[Mapping[str, Any]]]],
                   path: str, title: str = '',
                   target: float | None = None,
                   panel_of: Mapping[str, str] | None = None,
                   colour_of: Mapping[str, str] | None = None) -> None:
  """The relative L2 error of every run against the step, one line per seed.

  One colour per run (within its panel); the grey line is the target error.
  ``panel_of``: run name -> panel title, one panel per title side by side
  with a shared y axis (None: one panel). ``colour_of``: run name -> a key
  (e.g. its learning rate); runs with the same key share a colour across
  panels (None: the runs' order within each panel).
  """
  colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
  keys = list(dict.fromkeys((colour_of or {}).get(name, name)
                            for name in runs))
  panels = list(dict.fromkeys((panel_of or {}).get(name, '') for name in runs))
  fig, axes = plt.subplots(1, len(panels), figsize=(
      8 if len(panels) == 1 else 4 * len(panels), 4.8), sharey=True,
                           squeeze=False)
  for p, panel in enumerate(panels):
    ax = axes[0, p]
    names = [n for n in runs if (panel_of or {}).get(n, '') == panel]
    for i, name in enumerate(names):
      if colour_of is not None:
        i = keys.index(colour_of.get(name, name))
      for j, rows in enumerate(runs[name]):
        ax.plot(*plots.column(rows, 'rel_l2'),
                color=colours[i % len(colours)], lw=1.2, alpha=0.8,
                label=name if j == 0 else None)
    if target is not None:
      ax.axhline(target, color='grey', lw=0.8, ls=':',
                 label=f'target ({target:g})')
    plots.log_steps(ax, decades_only=True)
    ax.set_yscale('log')
    if p == 0:
      ax.set_ylabel('relative L2 error')
    ax.legend(fontsize=7, ncol=1 if panel else 2)
    if panel:
      ax.set_title(panel, fontsize=9)
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def compare_solutions(task: problem.Task,
                      predictions: Mapping[str, np.ndarray],
                      path: str) -> None:
  """Exact u, then each run's prediction (top) and |error| (bottom)."""
  columns = 1 + len(predictions)
  fig, axes = plt.subplots(2, columns, figsize=(3.2 * columns, 5.6),
                           squeeze=False)
  _heatmap(axes[0, 0], task, task.grid_exact, 'exact')
  axes[1, 0].set_axis_off()
  errors = {name: np.abs(np.asarray(p, np.float64) - task.grid_exact)
            for name, p in predictions.items()}
  top = max([float(e.max()) for e in errors.values()] + [1e-6])
  for k, (name, prediction) in enumerate(predictions.items(), start=1):
    rel = problem.relative_l2(prediction, task.grid_exact)
    _heatmap(axes[0, k], task, prediction, name)
    _heatmap(axes[1, k], task, errors[name], f'|error|, rel L2 {rel:.3f}',
             cmap='magma', limits=(0.0, top))
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)
