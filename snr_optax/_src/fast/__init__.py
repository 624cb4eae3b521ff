# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""The fast exact per-example statistics (the only place that knows Flax)."""
