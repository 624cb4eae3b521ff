# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""snr_optax: population-risk training as optax gradient transformations.

Per parameter, update only where the batch signal beats its leave-one-out
noise, mu^2 > sigma^2 / (b - 1) (Litman and Guo, 2026, arXiv:2605.01172).
"""

from snr_optax._src.accumulation import accumulate_stats
from snr_optax._src.accumulation import AccumulateStatsState
from snr_optax._src.alias import snr_adam
from snr_optax._src.alias import streaming_snr_adamw
from snr_optax._src.check import check_stats
from snr_optax._src.conditionality import apply_if_finite
from snr_optax._src.conditionality import ApplyIfFiniteState
from snr_optax._src.fast.engine import stats_plan
from snr_optax._src.masks import compute_mask
from snr_optax._src.multi_term import multi_term_value_and_grad_stats
from snr_optax._src.per_example import per_example_grads
from snr_optax._src.per_example import value_and_grad_stats
from snr_optax._src.population import population_risk_delta
from snr_optax._src.population import PopulationRiskDelta
from snr_optax._src.population import track_population_risk
from snr_optax._src.population import TrackPopulationRiskState
from snr_optax._src.stats import combine_stats
from snr_optax._src.stats import GradStats
from snr_optax._src.stats import merge_stats
from snr_optax._src.stats import stats_from_per_example
from snr_optax._src.transforms import gated
from snr_optax._src.transforms import GatedState
from snr_optax._src.transforms import scale_by_streaming_snr
from snr_optax._src.transforms import ScaleByStreamingSNRState
from snr_optax._src.transforms import snr_mask
from snr_optax._src.transforms import SNRMaskState

from snr_optax import sharding

__version__ = '0.1.0'

__all__ = (
    'AccumulateStatsState',
    'ApplyIfFiniteState',
    'GatedState',
    'GradStats',
    'PopulationRiskDelta',
    'SNRMaskState',
    'ScaleByStreamingSNRState',
    'TrackPopulationRiskState',
    'accumulate_stats',
    'apply_if_finite',
    'check_stats',
    'combine_stats',
    'compute_mask',
    'gated',
    'merge_stats',
    'multi_term_value_and_grad_stats',
    'per_example_grads',
    'population_risk_delta',
    'scale_by_streaming_snr',
    'sharding',
    'snr_adam',
    'snr_mask',
    'stats_from_per_example',
    'stats_plan',
    'streaming_snr_adamw',
    'track_population_risk',
    'value_and_grad_stats',
)
