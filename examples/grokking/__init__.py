# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Grokking modular arithmetic: AdamW, Grokfast and SNR-Adam side by side."""
