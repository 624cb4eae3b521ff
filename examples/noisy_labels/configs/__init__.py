# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Configurations of the noisy-labels example, each setting written once.

``default.py`` is Adam training an MLP on the handwritten digits with 40% of
the training labels flipped to another class. Every other file holds the
changes it makes to it: one file per compared optimizer (``OVERRIDES`` and a
``LABEL`` for tables) and one per other task (``TASK``: ``tiny.py``).
``compare.SUITES`` builds its runs from these, and
``main.py --config=examples/noisy_labels/configs/<file>.py`` runs any of
them.
"""

from examples.common import schema
from examples.noisy_labels.configs import default


def build(*overrides):
  """``default.get_config()`` changed by ``overrides`` (``schema.override``)."""
  return schema.override(default.get_config(), *overrides)
