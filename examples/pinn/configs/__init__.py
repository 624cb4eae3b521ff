# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Configurations of the PINN example, each setting written once.

``default.py`` is Adam on the convection problem at beta = 5. Every other
file holds the changes it makes to it: one file per compared optimizer
(``OVERRIDES`` and a ``LABEL`` for tables) and one per other task
(``TASK``: ``tiny.py``, ``beta30.py``). ``main.py
--config=examples/pinn/configs/<file>.py`` runs any of them.
"""

from examples.common import schema
from examples.pinn.configs import default


def build(*overrides):
  """``default.get_config()`` changed by ``overrides`` (``schema.override``)."""
  return schema.override(default.get_config(), *overrides)
