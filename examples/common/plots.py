# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Training curves as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position


def _column(rows, key):
  pairs = [(r['step'], r[key]) for r in rows if r.get(key) is not None]
  return [p[0] for p in pairs], [p[1] for p in pairs]


def training_curves(rows: Sequence[Mapping[str, Any]], path: str,
                    title: str = '', target: float | None = None) -> None:
  """Train/held-out accuracy and the mask fraction against the step."""
  has_mask = any(r.get('mask_fraction') is not None for r in rows)
  fig, axes = plt.subplots(1, 2 if has_mask else 1,
                           figsize=(11 if has_mask else 6, 4), squeeze=False)
  ax = axes[0, 0]
  for key, style in (('train_accuracy', '--'), ('val_accuracy', '-')):
    ax.plot(*_column(rows, key), style, label=key.replace('_', ' '))
  if target is not None:
    ax.axhline(target, color='grey', lw=0.8, ls=':',
               label=f'target ({target:.0%})')
  ax.set_xscale('log')
  ax.set_xlabel('step')
  ax.set_ylabel('accuracy')
  ax.set_ylim(0, 1.02)
  ax.legend()
  if has_mask:
    ax = axes[0, 1]
    ax.plot(*_column(rows, 'mask_fraction'), color='tab:green')
    ax.set_xscale('log')
    ax.set_xlabel('step')
    ax.set_ylabel('mask fraction (mean q)')
    ax.set_ylim(0, 1.02)
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def compare_curves(runs: Mapping[str, Sequence[Sequence[Mapping[str, Any]]]],
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
    panels = list(zip(axes.flat, [[n] for n in names]))
    for ax, (name,) in panels:
      if name != names[0]:
        for rows_ in runs[names[0]]:
          ax.plot(*_column(rows_, key), color='0.75', lw=1.0)
      ax.set_title(name, fontsize=9)
  for ax, panel_names in panels:
    for name in panel_names:
      colour = (colours[names.index(name) % len(colours)]
                if len(panels) == 1 else 'tab:blue')
      for j, rows_ in enumerate(runs[name]):
        ax.plot(*_column(rows_, key), color=colour, lw=1.2, alpha=0.8,
                label=name if j == 0 else None)
    if target is not None:
      ax.axhline(target, color='grey', lw=0.8, ls=':',
                 label=f'target ({target:.0%})')
    ax.set_xscale('log')
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
