# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The validation-free population-loss estimate in the examples.

With ``config.snr.population_risk`` a run wraps its optimizer in
``so.track_population_risk``, computes per-example statistics whatever the
optimizer (for the estimate only; Adam's update still reads only the mean),
and logs at every evaluation the accumulated estimates of its state::

  estimated_train_change       sum over steps of  sum_k u_k mu_k
  estimated_population_change  sum over steps of  the leave-one-out estimate

Each example adds to its rows the two measured losses they are compared with:
``train_loss`` (the loss trained on, on the whole training set) and
``population_loss`` (the same loss on data the run never trained on: a
held-out set, or its exact expectation where the noise model is known).
``assess`` then says how well the estimate tracks the measured loss, with no
held-out data used to make it:

* the estimated generalisation gap is ``population - train`` accumulated
  (each batch's self-influence on its own examples), times b / n; the
  estimated population-loss curve is the measured training loss plus it
  (``curves`` says why);
* per-interval: the Pearson correlation of the estimated and the measured
  population-loss changes between evaluations;
* checkpoint choice: the evaluation with the least estimated population loss
  against the one with the least measured held-out loss.
"""

from __future__ import annotations

from collections.abc import Sequence
import math
from typing import Any

import numpy as np

Row = dict[str, Any]

FIELDS = ('estimated_train_change', 'estimated_population_change',
          'diagonal_error')


def wrap(optimizer, snr):
  """``so.track_population_risk(optimizer)`` if the config asks for it."""
  if not snr.population_risk:
    return optimizer
  import snr_optax as so   # pylint: disable=g-import-not-at-top
  return so.track_population_risk(optimizer)


def row_fields(opt_state: Any, example: str) -> Row:
  """The tracker's accumulated estimates, for a metrics row ({} without).

  ``example`` (the example's name) goes with them, for the report.
  """
  import snr_optax as so   # pylint: disable=g-import-not-at-top
  if not isinstance(opt_state, so.TrackPopulationRiskState):
    return {}
  return {'example': example,
          'estimated_train_change': float(opt_state.train_change),
          'estimated_population_change': float(opt_state.population_change),
          'diagonal_error': float(opt_state.diagonal_error)}


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
  if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
    return None
  return float(np.corrcoef(a, b)[0, 1])


def curves(rows: Sequence[Row], batch_fraction: float
           ) -> dict[str, np.ndarray]:
  """Steps, measured losses and the estimate's curves of a run's rows.

  Args:
    rows: the run's metrics rows (with ``train_loss``, ``population_loss``
      and the tracker's fields; rows without the latter are skipped).
    batch_fraction: b / n, the share of the training set in one batch.

  Returns:
    ``estimated_gap``: the tracker's accumulated population - train
    estimates, the self-influence of every batch on its own examples;
    ``estimated_population_loss``: the measured training loss plus
    ``batch_fraction`` times that gap (each step lowers the loss of b of
    the n training examples by their self-influence more than that of data
    it has not seen; the other n - b respond to it as unseen data would);
    ``predicted_population_loss``: the fresh-batch form, the training loss
    at the first evaluation plus the accumulated per-step population
    estimates (nothing measured after the start; it assumes every batch is
    new data, which epochs break).
  """
  rows = [r for r in rows if r.get('estimated_population_change') is not None
          and r.get('population_loss') is not None]
  get = lambda key: np.array([r[key] for r in rows], np.float64)
  if not rows:
    return {'step': np.zeros(0)}
  train, population = get('train_loss'), get('population_loss')
  predicted = get('estimated_population_change')
  gap = predicted - get('estimated_train_change')
  estimated = train + batch_fraction * gap
  return {
      'step': get('step'), 'train_loss': train,
      'population_loss': population,
      'estimated_population_loss': estimated,
      'predicted_population_loss': estimated[0] + predicted - predicted[0],
      'estimated_gap': batch_fraction * gap,
      'measured_gap': population - train,
  }


def assess(rows: Sequence[Row], batch_fraction: float) -> dict[str, Any]:
  """How the estimate tracks the measured population loss of a run.

  Returns (floats, None where undefined), for ``curves``' estimate:
    ``pearson_changes``: correlation over evaluation intervals of the
      estimated and the measured population-loss changes;
    ``pearson_changes_late``: the same over the second half of the
      intervals (after the large early changes);
    ``pearson_train_only``: the same for the measured training loss alone
      (what the estimate is to beat: no gap at all);
    ``pearson_fresh``: the same for the fresh-batch prediction;
    ``gap_ratio``: estimated / measured gap at the last evaluation;
    ``curve_error``: mean |estimated - measured population loss| over the
      evaluations, relative to the measured range;
    ``estimate_pick_step``/``holdout_pick_step``: the evaluations of least
      estimated and least measured population loss, with the measured loss
      at each, and ``pick_excess``: how much higher the estimate's pick is
      (relative; 0.01 = 1%).
  """
  c = curves(rows, batch_fraction)
  if len(c['step']) < 2:
    return {}
  measured = c['population_loss']
  d_measured = np.diff(measured)
  d_est = np.diff(c['estimated_population_loss'])
  half = len(d_est) // 2
  span = float(np.max(measured) - np.min(measured))
  estimated = c['estimated_population_loss']
  if not np.all(np.isfinite(estimated)):
    # A step the tracker could not estimate (NaN): no curve to read.
    return {'evaluations': len(c['step']), 'not_finite_from_step': int(
        c['step'][np.argmin(np.isfinite(estimated))])}
  est_pick = int(np.argmin(estimated))
  best = int(np.argmin(measured))
  last_gap = float(c['measured_gap'][-1])
  return {
      'evaluations': len(c['step']),
      'pearson_changes': _pearson(d_est, d_measured),
      'pearson_changes_late': _pearson(d_est[half:], d_measured[half:]),
      'pearson_train_only': _pearson(np.diff(c['train_loss']), d_measured),
      'pearson_fresh': _pearson(np.diff(c['predicted_population_loss']),
                                d_measured),
      'gap_ratio': (float(c['estimated_gap'][-1]) / last_gap
                    if last_gap else None),
      'curve_error': (float(np.mean(np.abs(c['estimated_population_loss']
                                           - measured))) / span
                      if span > 0 else None),
      'estimate_pick_step': int(c['step'][est_pick]),
      'estimate_pick_loss': float(measured[est_pick]),
      'holdout_pick_step': int(c['step'][best]),
      'holdout_pick_loss': float(measured[best]),
      'pick_excess': float(measured[est_pick] / measured[best] - 1),
      'max_diagonal_error': max((r.get('diagonal_error') or 0.0)
                                for r in rows),
  }


def plot(ax_loss, ax_gap, rows: Sequence[Row], batch_fraction: float,
         label: str = '') -> None:
  """Measured and estimated population loss, and the two gaps."""
  c = curves(rows, batch_fraction)
  if not len(c['step']):
    return
  step = c['step']
  line, = ax_loss.plot(step, c['population_loss'], label=f'{label} measured')
  ax_loss.plot(step, c['estimated_population_loss'], '--',
               color=line.get_color(), label=f'{label} train + estimated gap')
  ax_loss.plot(step, c['train_loss'], ':', color=line.get_color(),
               label=f'{label} train')
  ax_gap.plot(step, c['measured_gap'], color=line.get_color(),
              label=f'{label} measured gap')
  ax_gap.plot(step, c['estimated_gap'], '--', color=line.get_color(),
              label=f'{label} estimated gap')
  for ax, what in ((ax_loss, 'loss'), (ax_gap, 'population - train loss')):
    ax.set_xlabel('step')
    ax.set_ylabel(what)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def fmt(value: float | None, spec: str = '.2f') -> str:
  """A number for a table, '-' for None or NaN."""
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return '-'
  return format(value, spec)
