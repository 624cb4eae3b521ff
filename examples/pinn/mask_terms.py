# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Which loss term closes SNR-Adam's mask: the noise of each term, measured.

The mask of ``snr_adam`` on the PINN's combined statistics passes a
coordinate where :math:`\mu^2 > \alpha \nu`, with
:math:`\mu = \sum_t w_t \mu_t` and :math:`\nu = \sum_t w_t^2 \nu_t` over the
residual, initial-condition and boundary terms
(``snr_optax.combine_stats``). This program replays runs of the example
(each run directory's ``config.json``: the same points, noise, initial
network and batches) with their own optimizer, and every ``--every`` steps,
on that step's batch before its update, splits :math:`\nu` by term:

* ``passes``: the fraction of coordinates the mask passes (checked against
  the optimizer's own ``mask_fraction`` after the update: the replay is
  the run);
* ``passes_without[t]``: the fraction it would pass without term t's
  noise, :math:`\mu^2 > \alpha (\nu - w_t^2 \nu_t)`;
* ``closes_alone[t]``: the fraction where term t's noise alone closes it,
  :math:`\alpha w_t^2 \nu_t \ge \mu^2`;
* ``noise_share[t]``: the median over coordinates of
  :math:`w_t^2 \nu_t / \nu`.

Usage (one run per directory; seconds to minutes each)::

  python -m examples.pinn.mask_terms \
      --runs=runs/pinn_memorise/snr_adam/seed_0,runs/pinn_memorise/snr_adam/seed_1 \
      --out=runs/pinn_mask_terms.json
  python -m examples.pinn.mask_terms --report_from=runs/pinn_mask_terms.json \
      --readme=examples/pinn/README.md

prints a table (each quantity's mean over the replayed evaluations) and
writes every row to ``--out``; ``--readme`` puts the table in the README's
block ``mask_terms``.
"""

from __future__ import annotations

from collections.abc import Sequence
import json
import os
import platform
import shlex
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top,wrong-import-position
import ml_collections  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

import snr_optax as so  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.common import cli  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.common import logbook  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.common import loop  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.common import schema  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.common import snr_config  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.common import tables  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.pinn import config_schema  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.pinn import configs  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples.pinn import train  # pylint: disable=g-import-not-at-top,wrong-import-position

TERMS = config_schema.TERMS


def make_split(config: ml_collections.ConfigDict, losses):
  """``(params, batches) -> dict``: the mask and its noise, term by term."""
  w = train.weights(config)
  alpha = config.snr.alpha
  kwargs = snr_config.stats_kwargs(config.snr)

  def flat(tree):
    return jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(tree)])

  @jax.jit
  def split(params, batches):
    per_term = {t: so.value_and_grad_stats(losses[t], **kwargs)(
        params, batches[t])[1] for t in TERMS}
    combined = so.combine_stats(per_term, w)
    mu = flat(combined.mean)
    nu = flat(combined.loo_noise)
    q = flat(so.compute_mask(combined.mean, combined.loo_noise,
                             **snr_config.mask_kwargs(config.snr)))
    noise = {t: w[t] ** 2 * flat(per_term[t].loo_noise) for t in TERMS}
    total = sum(noise.values())     # nu, by the definition above
    return {
        'passes': jnp.mean(q),
        'passes_hard': jnp.mean(mu ** 2 > alpha * nu),
        'nu_error': jnp.max(jnp.abs(total - nu)) / jnp.maximum(
            jnp.max(nu), jnp.finfo(nu.dtype).tiny),
        'passes_without': {t: jnp.mean(mu ** 2 > alpha * (nu - noise[t]))
                           for t in TERMS},
        'closes_alone': {t: jnp.mean(alpha * noise[t] >= mu ** 2)
                         for t in TERMS},
        'noise_share': {t: jnp.median(jnp.where(nu > 0, noise[t] / jnp.where(
            nu > 0, nu, 1), 0)) for t in TERMS},
    }
  return split


def replay(config: ml_collections.ConfigDict, every: int,
           num_steps: int | None = None) -> list[dict[str, Any]]:
  """Trains the run of ``config`` again, splitting the noise every ``every``.

  Returns one row per split, made from the batch of the ``every``-th step
  (and of the last): ``step``, the number of steps taken once its update is
  (as ``metrics.jsonl`` counts them), the quantities of :func:`make_split`
  as floats, and ``mask_fraction``, the optimizer's own after the update.
  """
  run = train.setup(config)
  step_fn = train.make_train_step(config, run.losses, run.optimizer)
  split = make_split(config, run.losses)
  params, opt_state = run.state['params'], run.state['opt_state']
  rows = []
  last = config.num_steps if num_steps is None else num_steps
  if config.lbfgs_after:
    last = min(last, config.lbfgs_after)
  for step in range(last):
    batches = run.batch(step)
    row = None
    if (step + 1) % every == 0 or step == last - 1:
      row = jax.tree.map(float, jax.device_get(split(params, batches)))
    params, opt_state, _ = step_fn(params, opt_state, batches)
    if row is not None:
      rows.append({'step': step + 1, **row,
                   'mask_fraction': loop.mask_fraction(opt_state)})
  return rows


def summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
  """Each quantity's mean over the rows (the evaluations of a run)."""
  out = {}
  for key in ('passes', 'mask_fraction'):
    out[key] = float(np.mean([r[key] for r in rows]))
  for key in ('passes_without', 'closes_alone', 'noise_share'):
    out[key] = {t: float(np.mean([r[key][t] for r in rows])) for t in TERMS}
  # The split's mask against the optimizer's, and the replay against the
  # run as it was logged (where it logged that step).
  out['split_error'] = float(max(abs(r['passes'] - r['mask_fraction'])
                                 for r in rows))
  logged = [abs(r['mask_fraction'] - r['logged_mask_fraction'])
            for r in rows if r.get('logged_mask_fraction') is not None]
  out['replay_error'] = float(max(logged)) if logged else None
  out['replayed_steps'] = rows[-1]['step']
  return out


def table(runs: dict[str, dict[str, Any]]) -> str:
  """A markdown table of the summaries, one line per run."""
  head = (['run', 'mask passes', 'optimizer\'s mask_fraction']
          + [f'passes without {t} noise' for t in TERMS]
          + [f'{t} noise alone closes' for t in TERMS]
          + [f'median share of nu: {t}' for t in TERMS])
  lines = ['| ' + ' | '.join(head) + ' |',
           '|---|' + '---:|' * (len(head) - 1)]
  for name, s in runs.items():
    cells = [name, f'{s["passes"]:.3f}', f'{s["mask_fraction"]:.3f}']
    cells += [f'{s["passes_without"][t]:.3f}' for t in TERMS]
    cells += [f'{s["closes_alone"][t]:.3f}' for t in TERMS]
    cells += [f'{s["noise_share"][t]:.3f}' for t in TERMS]
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def load_config(run_dir: str) -> ml_collections.ConfigDict:
  path = os.path.join(run_dir, 'config.json')
  if not os.path.isfile(path):
    raise cli.UsageError(f'--runs: {run_dir} has no config.json (not a run '
                         'directory of the PINN example)')
  try:
    with open(path) as f:
      made = schema.flatten(json.load(f))
  except (OSError, ValueError, AttributeError) as e:
    raise cli.UsageError(f'--runs: cannot read {path}: {e}') from None
  # A run made before a field existed ran as its default does (lbfgs_after
  # 0, population_risk off): the default config, changed by the run's. A
  # field this example does not have: another example's run.
  config = configs.build()
  known = schema.flatten(config.to_dict())
  foreign = sorted(k for k in made if k not in known)
  if foreign:
    raise cli.UsageError(
        f'--runs: {path} has fields the PINN example does not '
        f'({", ".join(foreign[:3])}): not a run of examples/pinn')
  try:
    config = schema.override(config, made)
    config_schema.validate(config)
  except (KeyError, ValueError, TypeError) as e:
    raise cli.UsageError(f'--runs: {path}: {cli.one_line(e)}') from None
  if config.optimizer not in config_schema.PER_EXAMPLE:
    raise cli.UsageError(
        f'--runs: {run_dir} trained {config.optimizer!r}, which takes no '
        f'per-example statistics; give runs of '
        f'{", ".join(config_schema.PER_EXAMPLE)}')
  # The split compares mu^2 with alpha times parts of nu, coordinate by
  # coordinate: the hard mask's rule. A soft or snr mask, or a tensor-wise
  # reduction, would make its columns disagree with the mask's own.
  if config.snr.mode != 'hard' or config.snr.reduction != 'element':
    raise cli.UsageError(
        f'--runs: {run_dir} ran snr.mode={config.snr.mode!r}, '
        f'snr.reduction={config.snr.reduction!r}; the split is of the hard, '
        "element-wise mask (snr.mode='hard', snr.reduction='element')")
  return config


def logged_masks(run_dir: str) -> dict[int, float]:
  """The run's own ``mask_fraction`` by step, from its ``metrics.jsonl``.

  The torn last line of a killed run is left out, as the loop leaves it
  out on resume (``logbook.rows_of_a_run``); a log that is not JSON lines
  is refused in one line.
  """
  path = os.path.join(run_dir, 'metrics.jsonl')
  if not os.path.isfile(path):
    return {}
  try:
    rows = logbook.rows_of_a_run(path)
  except ValueError as e:
    raise cli.UsageError(f'--runs: cannot read {path}: {e}') from None
  return {r['step']: r['mask_fraction'] for r in rows
          if r.get('mask_fraction') is not None}


def run(runs: Sequence[str] = (), every: int = 50, num_steps: int = 0,
        out: str = '', report_from: str = '', readme: str = '') -> str:
  """The program, given its flags' values: returns what it prints.

  Raises:
    cli.UsageError: bad input, in one line, before anything is replayed.
  """
  if report_from:
    if not os.path.isfile(report_from):
      raise cli.UsageError(f'--report_from: no file {report_from}')
    with open(report_from) as f:
      report = json.load(f)
  else:
    report = measure(runs, every, num_steps, out)
  text = table({name: r['summary'] for name, r in report['runs'].items()})
  lines = [text]
  for name, r in report['runs'].items():
    lines.append(f'{name}: {r["summary"]["replayed_steps"]} steps replayed; '
                 'mask of the split - optimizer\'s: '
                 f'{r["summary"]["split_error"]:.2g}; replay - the run as '
                 f'logged: {r["summary"]["replay_error"]}')
  if out and not report_from:
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
      json.dump(report, f, indent=1)
  if readme:
    try:
      tables.replace_block(readme, 'mask_terms', (
          f'{text}\n\nMeasured {report["date"]} ({report["machine"]}), '
          'each quantity the mean over the replayed evaluations. Made '
          f'by:\n\n    {report["command"]}'))
    except (OSError, ValueError) as e:
      raise cli.UsageError(f'--readme={readme}: {e}') from None
  return '\n'.join(lines)


def measure(runs: Sequence[str], every: int, num_steps: int,
            out: str) -> dict[str, Any]:
  """Replays ``runs``: ``{'command', 'date', 'machine', 'runs'}``."""
  if not runs:
    raise cli.UsageError('--runs: give at least one run directory')
  if every < 1 or num_steps < 0:
    raise cli.UsageError(f'--every must be >= 1 and --num_steps >= 0; got '
                         f'{every} and {num_steps}')
  # Every run is read before any is replayed: a bad one fails at once.
  configs_of = {run_dir: load_config(run_dir) for run_dir in runs}
  logged_of = {run_dir: logged_masks(run_dir) for run_dir in runs}
  command = ['python', '-m', 'examples.pinn.mask_terms',
             f'--runs={",".join(runs)}', f'--every={every}']
  command += [f'--num_steps={num_steps}'] if num_steps else []
  command += [f'--out={out}'] if out else []
  report = {'command': shlex.join(command),
            'date': time.strftime('%Y-%m-%d'),
            'machine': f'{platform.processor() or platform.machine()}, '
                       f'{os.cpu_count()} cores, jax {jax.__version__}',
            'runs': {}}
  for run_dir, config in configs_of.items():
    rows = replay(config, every, num_steps or None)
    logged = logged_of[run_dir]
    for row in rows:
      row['logged_mask_fraction'] = logged.get(row['step'])
    report['runs'][run_dir] = {'rows': rows, 'summary': summary(rows)}
    print(f'{run_dir}: mask passes '
          f'{report["runs"][run_dir]["summary"]["passes"]:.3f}',
          file=sys.stderr, flush=True)
  return report


def define_flags() -> None:
  """The program's flags (defined when run, not on import: another module
  of a test process may have a flag of the same name)."""
  flags.DEFINE_list('runs', [], 'Run directories of the PINN example (each '
                    'with its config.json) to replay.')
  flags.DEFINE_integer('every', 50, 'Split the noise every this many steps.')
  flags.DEFINE_integer('num_steps', 0, 'Replay only this many steps (0: the '
                       'run\'s num_steps).')
  flags.DEFINE_string('out', '', 'Write every row and summary here (JSON).')
  flags.DEFINE_string('report_from', '', 'Replay nothing: print (and with '
                      '--readme publish) the table of this earlier --out.')
  flags.DEFINE_string('readme', '', 'Put the table, the date and the command '
                      'that replayed the runs in this README (block '
                      '"mask_terms").')


def main(argv):
  del argv
  f = flags.FLAGS
  print(run(f.runs, f.every, f.num_steps, f.out, f.report_from, f.readme))


if __name__ == '__main__':
  define_flags()
  cli.run(main)
