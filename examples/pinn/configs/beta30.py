# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The hard case of Krishnapriyan et al.: beta = 30 (a plain PINN fails)."""

from examples.pinn import configs

TASK = {'beta': 30.0}


def get_config():
  return configs.build(TASK)
