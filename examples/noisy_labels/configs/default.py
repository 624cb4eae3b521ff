# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Default: Adam trains an MLP on the digits with 40% symmetric label noise."""

import ml_collections

from examples.common import snr_config


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  # The task: scikit-learn's 8 x 8 digits (1,347 training, 450 test images),
  # 40% of the training labels replaced by a random other class (seeded).
  config.dataset = 'digits'         # digits | synthetic | mnist | ...
  config.data_dir = ''              # TFDS datasets: '' is TFDS's default
  config.train_examples = 0         # 0: the whole training split
  config.noise_type = 'symmetric'   # symmetric | asymmetric | cyclic
  config.noise_fraction = 0.4
  config.validation_fraction = 0.1  # adam_early_stop's validation split
  config.seed = 0
  # The model: an MLP 64-256-256-10 (cnn: two conv blocks before the head).
  config.model = 'mlp'              # mlp | cnn
  config.hidden_layers = 2
  config.hidden_width = 256
  config.cnn = ml_collections.ConfigDict()
  config.cnn.channels = 16
  # The optimizer: adam | adam_early_stop | snr_adam | streaming_snr_adamw.
  config.optimizer = 'adam'
  config.learning_rate = 1e-3
  config.b1 = 0.9
  config.b2 = 0.999
  config.weight_decay = 0.0
  config.batch_size = 64
  # SNR mask (snr_adam, streaming_snr_adamw).
  config.snr = snr_config.defaults(microbatch_size=64)
  # The loop: 21 steps are one epoch of the 1,347 digits at batch 64; 200
  # epochs, by which Adam has fitted every corrupted label.
  config.num_steps = 4200
  config.eval_every = 21
  config.checkpoint_every = 840
  return config
