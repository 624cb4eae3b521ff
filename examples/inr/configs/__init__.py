# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Configurations of the INR example, each setting written once.

``default.py`` is Adam fitting a SIREN to the noisy cameraman at 128 x 128.
Every other file holds the changes it makes to it: one file per compared
optimizer (``OVERRIDES`` and a ``LABEL`` for tables) and one per other task
(``TASK``: ``tiny.py``). ``compare.SUITES`` builds its runs from these, and
``main.py --config=examples/inr/configs/<file>.py`` runs any of them.
"""

from collections.abc import Mapping
from typing import Any

import ml_collections

from examples.inr.configs import default


def build(*overrides: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """``default.get_config()`` with ``overrides`` applied in order.

  Args:
    *overrides: flat dicts, ``{'learning_rate': 3e-4, 'snr.mode': 'snr'}``
      (a dotted name sets a field of a group).

  Returns:
    A new config.

  Raises:
    KeyError: an override names a field the default config lacks.
  """
  config = default.get_config()
  for changes in overrides:
    config.update_from_flattened_dict(dict(changes))
  return config
