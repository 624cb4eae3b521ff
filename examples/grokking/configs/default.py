# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Default: AdamW as in Power et al. (2022) on division mod 97, 25% train."""

import ml_collections

from examples.common import snr_config


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  # The task: a op b = c (mod p), every pair once, a random split per seed.
  config.operation = 'division'
  config.p = 97
  config.train_fraction = 0.25
  config.seed = 0
  # Power et al.: decoder-only transformer, 2 layers, width 128, 4 heads.
  config.width = 128
  config.depth = 2
  config.heads = 4
  config.mlp_ratio = 4
  # The optimizer: adamw | snr_adam | streaming_snr_adamw | grokfast |
  # snr_adam_grokfast.
  config.optimizer = 'adamw'
  config.learning_rate = 1e-3
  config.warmup_steps = 10      # linear warm-up of the learning rate
  config.b1 = 0.9
  config.b2 = 0.98
  config.weight_decay = 1.0
  config.batch_size = 512
  # SNR mask (snr_adam, streaming_snr_adamw, snr_adam_grokfast).
  config.snr = snr_config.defaults(microbatch_size=64)
  # Grokfast's EMA filter (grokfast, snr_adam_grokfast).
  config.grokfast = ml_collections.ConfigDict()
  config.grokfast.alpha = 0.98
  config.grokfast.lamb = 2.0
  # Devices: 0 trains on the default device; otherwise a mesh of
  # mesh_data x mesh_fsdp devices (-1: all the rest), the batch split over
  # 'data' and the parameters (and optimizer state) over 'fsdp'.
  config.mesh_data = 0
  config.mesh_fsdp = 1
  # The loop.
  config.num_steps = 20_000
  config.eval_every = 100
  config.checkpoint_every = 1000
  config.target_val_accuracy = 0.95
  config.stop_at_target = False   # stop once held-out accuracy >= target
  config.steps_after_target = 0   # ... after this many more steps
  return config
