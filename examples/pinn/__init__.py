# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""A physics-informed network for the convection equation, noisy initial data."""
