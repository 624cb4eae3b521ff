# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Classification under label noise: does the SNR rule memorise less?"""
