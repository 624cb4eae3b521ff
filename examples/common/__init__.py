# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""What every example shares: the command line (cli), config schemas,
progress bar, Ctrl-C handling, metrics log, plots, checkpoints, baselines."""
