# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Default: Adam (lr 1e-4) fits a SIREN to the noisy cameraman, 128 x 128."""

import ml_collections

from examples.common import snr_config


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  # The task: every pixel one example, coordinates in [-1, 1]^2, targets the
  # image plus N(0, noise_sigma^2) (seeded, not clipped).
  config.image = 'skimage:camera'   # skimage:<name> or a path (grey or RGB)
  config.side = 128
  config.noise_sigma = 0.1
  config.holdout_fraction = 0.1     # adam_early_stop's validation pixels
  config.seed = 0
  # The model: SIREN (Sitzmann et al. 2020), 3 hidden layers of 256.
  config.model = 'siren'            # siren | fourier_relu
  config.hidden_layers = 3
  config.hidden_width = 256
  config.siren = ml_collections.ConfigDict()
  config.siren.first_omega_0 = 30.0
  config.siren.hidden_omega_0 = 30.0
  # Fourier features (Tancik et al. 2020; their scale 10 on [0, 1]
  # coordinates is 5 on our [-1, 1]).
  config.fourier = ml_collections.ConfigDict()
  config.fourier.features = 256
  config.fourier.scale = 5.0
  # The optimizer: adam | adam_early_stop | snr_adam | streaming_snr_adamw.
  config.optimizer = 'adam'
  config.learning_rate = 1e-4       # SIREN's
  config.b1 = 0.9
  config.b2 = 0.999
  config.weight_decay = 0.0
  config.batch_size = 0             # 0: the full image every step
  # SNR mask (snr_adam, streaming_snr_adamw).
  config.snr = snr_config.defaults(microbatch_size=256)
  # The loop.
  config.num_steps = 2000
  config.eval_every = 25
  config.checkpoint_every = 500
  config.target_clean_psnr = 26.0
  return config
