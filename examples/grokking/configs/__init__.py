# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Configurations of the grokking example: a default and one per optimizer."""
