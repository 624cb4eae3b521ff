# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""What every example shares: the command line (cli), config schemas and the
config.snr group (schema, snr_config), the training loop (loop), progress
bar, Ctrl-C handling, metrics log, plots, checkpoints, baselines, suites of
runs and their tables (suites, tables, provenance), and the tests every
example passes (testing)."""
