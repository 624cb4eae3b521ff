# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Implicit neural representations: does the SNR rule stop memorisation?"""
