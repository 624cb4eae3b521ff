# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Configurations of the grokking example, each setting written once.

``default.py`` is AdamW in the paper's setting. Every other file holds the
changes it makes to it: one file per compared optimizer (``OVERRIDES`` and a
``LABEL`` for tables) and one per smaller task (``TASK``: ``quick.py``,
``tiny.py``). ``compare.SUITES`` builds its runs from these, and
``main.py --config=examples/grokking/configs/<file>.py`` runs any of them.
"""

from examples.common import schema
from examples.grokking.configs import default


def build(*overrides):
  """``default.get_config()`` changed by ``overrides`` (``schema.override``)."""
  return schema.override(default.get_config(), *overrides)
