# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The ``config.snr`` group every example shares: defaults, schema, arguments.

An example that trains with ``snr_adam`` or ``streaming_snr_adamw`` has the
same settings of the SNR mask and of the per-example statistics. They are
written here once, so that an example's pieces cannot drift apart::

  # configs/default.py
  config.snr = snr_config.defaults(microbatch_size=64)
  # config_schema.py
  FIELDS = {..., **snr_config.fields(), ...}
  # train.py
  so.snr_adam(lr, ..., **snr_config.mask_kwargs(config.snr))
  so.value_and_grad_stats(loss_fn, **snr_config.stats_kwargs(config.snr))

Only ml_collections and ``schema`` are imported here (no JAX): config files
and ``--help`` read this module before JAX loads.
"""

from __future__ import annotations

from typing import Any

import ml_collections

from examples.common import schema

# snr_optax's own choices: its functions refuse anything else, and
# snr_config_test checks that these are exactly what it accepts.
MODES = ('hard', 'soft', 'snr')
REDUCTIONS = ('element', 'tensor')
PLACEMENTS = ('before', 'after')
METHODS = ('auto', 'fast', 'vmap', 'microbatch')


def defaults(*, microbatch_size: int) -> ml_collections.ConfigDict:
  """The default ``config.snr``: a hard mask at alpha 1, before Adam.

  Args:
    microbatch_size: examples per chunk of ``method='microbatch'`` (what
      fits in memory depends on the example's model).
  """
  snr = ml_collections.ConfigDict()
  snr.mode = 'hard'
  snr.alpha = 1.0
  snr.softness = 1.0
  snr.reduction = 'element'
  snr.placement = 'before'
  snr.method = 'auto'        # statistics: auto | fast | vmap | microbatch
  snr.microbatch_size = microbatch_size   # microbatch only
  snr.rho = 0.99             # streaming only
  snr.warmup_steps = 10      # streaming only: q = 1 while s fills
  # Log so.track_population_risk's estimates (every optimizer then forms
  # per-example statistics; examples/common/population.py).
  snr.population_risk = False
  return snr


def fields(*, placement_help: str = 'mask the gradient before Adam, or after'
           ) -> dict[str, schema.Field]:
  """The schema of ``config.snr`` (``schema.validate``), in ``--help`` order.

  Args:
    placement_help: the help of ``snr.placement`` (say which optimizers
      read it, where others ignore it).
  """
  return {
      'snr.mode': schema.choice(*MODES, help='the mask'),
      'snr.alpha': schema.real(at_least=0,
                               help='threshold: signal^2 > alpha noise'),
      'snr.softness': schema.real(at_least=0,
                                  help="the snr mask's softness"),
      'snr.reduction': schema.choice(
          *REDUCTIONS, help='one mask per element or per tensor'),
      'snr.placement': schema.choice(*PLACEMENTS, help=placement_help),
      'snr.method': schema.choice(
          *METHODS, help='how per-example statistics are formed'),
      'snr.microbatch_size': schema.integer(
          at_least=1, help='examples per chunk for method microbatch'),
      'snr.rho': schema.real(at_least=0, below=1,
                             help='streaming only: decay of the noise EMA'),
      'snr.warmup_steps': schema.integer(
          at_least=0, help='streaming only: steps with the mask at 1'),
      'snr.population_risk': schema.boolean(
          help='log the leave-one-out population-loss estimate (every '
               'optimizer then forms per-example statistics)'),
  }


def mask_kwargs(snr: ml_collections.ConfigDict) -> dict[str, Any]:
  """The mask's arguments of ``snr_mask``, ``snr_adam`` and the others."""
  return dict(mode=snr.mode, alpha=snr.alpha, softness=snr.softness,
              reduction=snr.reduction)


def stats_kwargs(snr: ml_collections.ConfigDict) -> dict[str, Any]:
  """``method`` and ``microbatch_size`` of ``value_and_grad_stats``.

  The chunk size goes only with ``method='microbatch'``, the one method the
  config gives it for: ``'auto'`` and ``'fast'`` would chunk with it too.
  """
  return dict(method=snr.method,
              microbatch_size=(snr.microbatch_size
                               if snr.method == 'microbatch' else None))
