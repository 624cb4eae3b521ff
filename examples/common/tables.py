# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Results tables: one environment per table, a noise floor, README blocks.

* ``one_environment`` refuses to put runs from different code or machines
  into one table (``provenance.json`` of each run).
* ``noise_floor`` measures how far the metric moves when nothing but the
  floating-point summation order changes (the same runs and seeds re-run
  with more host devices or on a data-parallel mesh), so that a ratio
  between two optimizers can be read against it.
* ``replace_block`` puts a generated table into a README between markers;
  ``read_block`` reads it back (a test checks the README holds what the
  code generates).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import math
import os
import re
import statistics
from typing import Any

from examples.common import provenance


class MixedRunsError(ValueError):
  """Runs of one table come from different code or environments."""


def one_environment(runs: Mapping[str, list[dict[str, Any]] | None],
                    allow_mixed: bool = False) -> dict[str, Any] | None:
  """The one environment of ``runs`` (name -> provenance segments).

  Args:
    runs: each run's ``provenance.read`` (None: recorded nothing).
    allow_mixed: return the first run's first segment even if they differ.

  Returns:
    A segment of the first run (its environment is every run's), or None
    if no run recorded one and ``allow_mixed``.

  Raises:
    MixedRunsError: a run recorded nothing, was resumed in another
      environment, or differs from the first run; the message names the
      runs and what differs.
  """
  first_name, first = None, None
  for name, segments in runs.items():
    if not segments:
      if allow_mixed:
        continue
      raise MixedRunsError(f'{name} recorded no provenance.json (run before '
                           'runs recorded their environment); re-run it')
    for segment in segments:
      if first is None:
        first_name, first = name, segment
        continue
      diff = provenance.differences(first, segment)
      if diff and not allow_mixed:
        where = (f'{name} (resumed from step {segment["from_step"]})'
                 if segment is not segments[0] else name)
        raise MixedRunsError(
            f'{where} and {first_name} ran in different environments '
            f'({"; ".join(diff)})')
  return first


def noise_floor(cells: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
  """Summarises paired measurements of one metric under perturbations.

  Args:
    cells: ``{'run', 'seed', 'perturbation', 'reference', 'perturbed'}``:
      the metric (e.g. steps to a target; None: never reached) of the same
      run and seed in the reference environment and in a perturbed one.

  Returns:
    ``{'cells', 'pairs', 'censored', 'factor', 'median_factor'}``: for
    every pair both reached, the factor max(r, 1/r) of r = perturbed /
    reference; ``factor`` is the largest (a ratio between two runs inside
    [1/factor, factor] is within what summation order alone does),
    ``median_factor`` the median; ``censored`` counts pairs where only one
    of the two reached the target (the metric itself is then unstable).
  """
  factors, censored = [], 0
  out = []
  for cell in cells:
    a, b = cell['reference'], cell['perturbed']
    factor = None
    if a is not None and b is not None:
      factor = max(b / a, a / b)
      factors.append(factor)
    elif (a is None) != (b is None):
      censored += 1
    out.append({**cell, 'factor': factor})
  return {'cells': out, 'pairs': len(factors), 'censored': censored,
          'factor': max(factors) if factors else None,
          'median_factor': statistics.median(factors) if factors else None}


def speedup(base: float | None, value: float | None) -> float | None:
  """``base / value``, the "x baseline" of a table; None for 0 or None.

  The baseline's steps to an event over a run's: how many times fewer steps
  the run took (None where either never got there).
  """
  return None if not base or not value else base / value


def within(ratio: float | None, factor: float | None) -> bool:
  """Whether ``ratio`` is inside the noise floor [1/factor, factor]."""
  if ratio is None or factor is None:
    return False
  return 1 / factor <= ratio <= factor


def ratio_text(ratio: float | None, factor: float | None) -> str:
  """``1.14``; ``(1.04)`` when inside the noise floor; ``-`` for none."""
  if ratio is None or (isinstance(ratio, float) and math.isnan(ratio)):
    return '-'
  text = f'{ratio:.2f}'
  return f'({text})' if within(ratio, factor) else text


def _markers(name: str) -> tuple[str, str]:
  return (f'<!-- generated: {name} (do not edit; see the command below it) '
          '-->', f'<!-- end generated: {name} -->')


def read_block(path: str, name: str) -> str | None:
  """The text between the markers of block ``name`` in ``path``, if any."""
  with open(path) as f:
    text = f.read()
  begin, end = _markers(name)
  match = re.search(re.escape(begin) + r'\n(.*?)' + re.escape(end), text,
                    re.S)
  return None if match is None else match.group(1)


def check_block(path: str, name: str) -> None:
  """Raises ValueError unless ``path`` has the block ``name``.

  The message says which two marker lines to add where the table belongs.
  """
  if read_block(path, name) is None:
    begin, end = _markers(name)
    raise ValueError(f'{path} has no block {name!r}; add the lines '
                     f'{begin!r} and {end!r} where it belongs')


def replace_block(path: str, name: str, body: str) -> None:
  """Replaces the text between the markers of block ``name`` in ``path``.

  Raises:
    ValueError: ``path`` has no such block (``check_block``).
  """
  check_block(path, name)
  with open(path) as f:
    text = f.read()
  begin, end = _markers(name)
  pattern = re.escape(begin) + r'\n.*?' + re.escape(end)
  body = body if body.endswith('\n') else body + '\n'
  text = re.sub(pattern, lambda _: f'{begin}\n{body}{end}', text,
                flags=re.S)
  with open(path + '.tmp', 'w') as f:
    f.write(text)
  os.replace(path + '.tmp', path)
