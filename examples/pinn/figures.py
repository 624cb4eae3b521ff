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
