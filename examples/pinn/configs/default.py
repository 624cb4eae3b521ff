# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Default: Adam trains a tanh PINN for u_t + 5 u_x = 0, noisy initial data."""

import ml_collections

from examples.common import snr_config


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  # The task: x in [0, 2 pi) periodic, t in [0, 1], u(x, 0) = sin(x) observed
  # at n_initial points with N(0, noise_sigma^2) noise (seeded).
  config.beta = 5.0
  config.noise_sigma = 0.1
  config.n_collocation = 4096
  config.n_initial = 128
  config.n_boundary = 256
  config.collocation_batch = 256    # 0: all every step
  config.initial_batch = 0          # all 128 noisy observations every step
  config.boundary_batch = 64
  config.weights = ml_collections.ConfigDict()
  config.weights.residual = 1.0
  config.weights.initial = 1.0
  config.weights.boundary = 1.0
  config.seed = 0
  # The model: 4 tanh layers of 50 (Krishnapriyan et al. 2021).
  config.hidden_layers = 4
  config.hidden_width = 50
  # The optimizer: adam | adamw | snr_adam | streaming_snr_adamw.
  config.optimizer = 'adam'
  config.learning_rate = 1e-3
  config.schedule = 'cosine'        # the same for every optimizer
  config.decay_steps = 5000         # cosine: to final_lr_fraction * lr
  config.final_lr_fraction = 0.1
  config.b1 = 0.9
  config.b2 = 0.999
  config.weight_decay = 0.0
  # Optional L-BFGS fine-tuning (full batch) from this step on; 0: none.
  config.lbfgs_after = 0
  # SNR mask (snr_adam, streaming_snr_adamw).
  config.snr = snr_config.defaults(microbatch_size=128)
  # Evaluation on a 256 x 101 grid of [0, 2 pi) x [0, 1].
  config.grid_nx = 256
  config.grid_nt = 101
  # The loop.
  config.num_steps = 5000
  config.eval_every = 50
  config.checkpoint_every = 1000
  config.target_rel_l2 = 0.40
  return config
