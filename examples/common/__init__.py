# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""What every example shares: metrics log, plots, checkpoints, baselines."""
