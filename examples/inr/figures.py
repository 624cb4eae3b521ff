# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The INR example's PNG files: images side by side and PSNR curves.

``examples/common/plots.py`` draws the figure of a run (its curves beside
the mask fraction) and accuracy curves; these are the image example's own
(matplotlib, no display needed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import functools
from typing import Any

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from examples.common import plots  # pylint: disable=g-import-not-at-top,wrong-import-position

# Labelled at its decades only (minor ticks too while fewer than two are in
# view: a short run): PSNR panels are small.
_log_steps = functools.partial(plots.log_steps, decades_only=True)


def show(ax, image: np.ndarray, title: str = '') -> None:
  """One [h, w, 1 or 3] image in [0, 1] (clipped for display) on ``ax``."""
  image = np.clip(np.asarray(image, np.float32), 0.0, 1.0)
  if image.shape[-1] == 1:
    ax.imshow(image[..., 0], cmap='gray', vmin=0, vmax=1,
              interpolation='nearest')
  else:
    ax.imshow(image, interpolation='nearest')
  ax.set_title(title, fontsize=8)
  ax.set_axis_off()


def images(panels: Sequence[tuple[str, np.ndarray]], path: str,
           title: str = '') -> None:
  """Images side by side, each with its title (values clipped to [0, 1])."""
  fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.9),
                           squeeze=False)
  for ax, (name, image) in zip(axes[0], panels):
    show(ax, image, name)
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def psnr_curves(rows: Sequence[Mapping[str, Any]], path: str,
                title: str = '', noisy_psnr: float | None = None,
                holds_out: bool = False) -> None:
  """Fit and clean PSNR against the step; the mask fraction.

  Memorisation shows as the fit PSNR rising past the noisy image's while
  the clean PSNR falls. ``holds_out``: also the PSNR on the held-out noisy
  pixels (a run that trains on them has it in its fit PSNR).
  """
  curves = [('fit_psnr', '--', 'fit (noisy training pixels)'),
            ('clean_psnr', '-', 'clean image')]
  if holds_out:
    curves.append(('holdout_psnr', ':', 'held-out noisy pixels'))

  def draw(ax):
    for key, style, label in curves:
      ax.plot(*plots.column(rows, key), style, label=label)
    if noisy_psnr is not None:
      ax.axhline(noisy_psnr, color='grey', lw=0.8, ls='-.',
                 label=f'noisy image ({noisy_psnr:.1f} dB)')
    _log_steps(ax)
    ax.set_ylabel('PSNR (dB)')
    ax.legend(fontsize=8)

  plots.curves_with_mask(rows, path, draw, title=title, step_axis=_log_steps)


def compare_psnr(runs: Mapping[str, Sequence[Sequence[Mapping[str, Any]]]],
                 path: str, title: str = '',
                 noisy_psnr: float | None = None) -> None:
  """Clean PSNR (left) and fit PSNR (right) of every run, one line per seed.

  One colour per run; the grey line is the noisy image's PSNR.
  """
  colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
  fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharex=True)
  for ax, key, label in ((axes[0], 'clean_psnr', 'clean PSNR (dB)'),
                         (axes[1], 'fit_psnr', 'fit PSNR (dB)')):
    for i, (name, seeds) in enumerate(runs.items()):
      for j, rows in enumerate(seeds):
        ax.plot(*plots.column(rows, key), color=colours[i % len(colours)],
                lw=1.2, alpha=0.8, label=name if j == 0 else None)
    if noisy_psnr is not None:
      ax.axhline(noisy_psnr, color='grey', lw=0.8, ls='-.',
                 label=f'noisy image ({noisy_psnr:.1f} dB)')
    _log_steps(ax)
    ax.set_ylabel(label)
  axes[0].legend(fontsize=8)
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
