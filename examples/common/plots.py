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
    ax.axhline(target, color='grey', lw=0.8, ls=':')
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
                   target: float | None = None) -> None:
  """One colour per method, one thin line per seed."""
  fig, ax = plt.subplots(figsize=(7, 4.5))
  colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
  for k, (name, seeds) in enumerate(runs.items()):
    colour = colours[k % len(colours)]
    for j, rows in enumerate(seeds):
      ax.plot(*_column(rows, key), color=colour, lw=1.2, alpha=0.8,
              label=name if j == 0 else None)
  if target is not None:
    ax.axhline(target, color='grey', lw=0.8, ls=':')
  ax.set_xscale('log')
  ax.set_xlabel('step')
  ax.set_ylabel(key.replace('_', ' '))
  ax.set_title(title)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
