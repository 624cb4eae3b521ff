# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Examples of snr_optax: each a Flax example (main.py, train.py, configs/)."""
