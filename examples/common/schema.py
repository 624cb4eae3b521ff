# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Config schemas: every field of a run's config checked before it starts.

An example declares what its config may hold, field by field::

  FIELDS = {
      'optimizer': schema.choice('adamw', 'snr_adam', help='the optimizer'),
      'learning_rate': schema.real(above=0, help='peak learning rate'),
      'batch_size': schema.integer(at_least=2, help='examples per step'),
      'snr.mode': schema.choice('hard', 'soft', 'snr', help='the mask'),
  }

and ``validate(config, FIELDS, checks)`` refuses, with a one-line
``ConfigError``, a field the schema does not know (naming the nearest one), a
field the config lacks, a value of the wrong type or out of range, and
whatever the example's cross-field ``checks`` refuse. ``describe`` turns the
same schema into the ``--help`` text, so the two cannot drift apart.

Only the standard library and ml_collections are imported here, so that a
program validates its input and answers ``--help`` before it loads JAX.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
import dataclasses
import difflib
import math
from typing import Any

import ml_collections


class ConfigError(ValueError):
  """A config that its schema refuses; the message is one line."""


@dataclasses.dataclass(frozen=True)
class Field:
  """What one config field may hold. Build it with the functions below."""
  kinds: tuple[type, ...]
  kind_text: str
  help: str = ''
  choices: tuple[Any, ...] = ()
  # Bounds: (value, inclusive).
  low: tuple[float, bool] | None = None
  high: tuple[float, bool] | None = None
  # A further predicate on the value and the words for what it accepts.
  where: tuple[Callable[[Any], bool], str] | None = None

  def describe(self) -> str:
    """What the field accepts, e.g. "one of 'a', 'b'" or "a number > 0"."""
    if self.choices:
      return 'one of ' + ', '.join(repr(c) for c in self.choices)
    text = self.kind_text
    if self.low and self.high:
      text += (f' in {"[" if self.low[1] else "("}{self.low[0]:g}, '
               f'{self.high[0]:g}{"]" if self.high[1] else ")"}')
    elif self.low:
      text += f' {">=" if self.low[1] else ">"} {self.low[0]:g}'
    elif self.high:
      text += f' {"<=" if self.high[1] else "<"} {self.high[0]:g}'
    if self.where:
      text += f', {self.where[1]}'
    return text

  def accepts(self, value: Any) -> bool:
    if self.choices:
      # bool is an int: True must not pass for 1, nor 1 for True.
      return any(type(value) is type(c) and value == c for c in self.choices)
    if isinstance(value, bool) and bool not in self.kinds:
      return False
    if not isinstance(value, self.kinds):
      return False
    if isinstance(value, float) and not math.isfinite(value):
      return False
    if self.low and not (value >= self.low[0] if self.low[1]
                         else value > self.low[0]):
      return False
    if self.high and not (value <= self.high[0] if self.high[1]
                          else value < self.high[0]):
      return False
    return self.where is None or bool(self.where[0](value))


def choice(*values: Any, help: str = '') -> Field:  # pylint: disable=redefined-builtin
  """One of ``values`` (strings, numbers or booleans), compared exactly."""
  return Field(kinds=(object,), kind_text='', help=help,
               choices=tuple(values))


def integer(*, at_least: int | None = None, at_most: int | None = None,
            where: tuple[Callable[[int], bool], str] | None = None,
            help: str = '') -> Field:  # pylint: disable=redefined-builtin
  """An int (not a bool, not a float) within the inclusive bounds given."""
  return Field(kinds=(int,), kind_text='an integer', help=help,
               low=None if at_least is None else (at_least, True),
               high=None if at_most is None else (at_most, True),
               where=where)


def real(*, above: float | None = None, at_least: float | None = None,
         below: float | None = None, at_most: float | None = None,
         help: str = '') -> Field:  # pylint: disable=redefined-builtin
  """A finite number (an int passes: ``--config.lr=1`` means 1.0)."""
  if above is not None and at_least is not None:
    raise ValueError('give one of above and at_least')
  if below is not None and at_most is not None:
    raise ValueError('give one of below and at_most')
  low = ((above, False) if above is not None else
         (at_least, True) if at_least is not None else None)
  high = ((below, False) if below is not None else
          (at_most, True) if at_most is not None else None)
  return Field(kinds=(int, float), kind_text='a number', help=help, low=low,
               high=high)


def seed(*, help: str = '') -> Field:  # pylint: disable=redefined-builtin
  """A seed: an integer in [0, 2**32). A JAX key keeps 32 bits of it, so
  2**32 would silently be seed 0 again (and 2**64 overflows)."""
  return integer(at_least=0, where=(lambda s: s < 2**32, 'below 2**32'),
                 help=help)


def boolean(*, help: str = '') -> Field:  # pylint: disable=redefined-builtin
  return Field(kinds=(bool,), kind_text='True or False', help=help)


def text(*, help: str = '') -> Field:  # pylint: disable=redefined-builtin
  """A string (a path, a name), any value."""
  return Field(kinds=(str,), kind_text='a string', help=help)


def loop_fields(*, eval_help: str = 'steps between evaluations',
                checkpoint_help: str = 'steps between checkpoints'
                ) -> dict[str, Field]:
  """``num_steps``, ``eval_every`` and ``checkpoint_every``: ``loop.Loop``'s.

  Args:
    eval_help: the help of ``eval_every`` (say what an evaluation covers).
    checkpoint_help: the help of ``checkpoint_every`` (say what else a save
      writes).
  """
  return {
      'num_steps': integer(at_least=1, help='training steps'),
      'eval_every': integer(at_least=1, help=eval_help),
      'checkpoint_every': integer(at_least=1, help=checkpoint_help),
  }


def flatten(config: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
  """The leaves of a nested config as ``{'a.b': value}``."""
  leaves = {}
  for key, value in config.items():
    if isinstance(value, (Mapping, ml_collections.ConfigDict,
                          ml_collections.FrozenConfigDict)):
      leaves.update(flatten(value, f'{prefix}{key}.'))
    else:
      leaves[f'{prefix}{key}'] = value
  return leaves


def nearest(name: str, names: Iterable[str]) -> str | None:
  """The known name closest to a misspelt one, if any is close."""
  names = list(names)
  close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
  if not close:
    # A misspelt last part of a dotted name ('snr.mdoe'): compare the parts.
    tail = name.rsplit('.', 1)[-1]
    by_tail = {n.rsplit('.', 1)[-1]: n for n in names}
    close = [by_tail[t] for t in difflib.get_close_matches(
        tail, list(by_tail), n=1, cutoff=0.6)]
  return close[0] if close else None


def unknown_field_message(name: str, fields: Iterable[str]) -> str:
  guess = nearest(name, fields)
  return (f'the config has no field {name!r}'
          + (f'; did you mean {guess!r}?' if guess else '')
          + ' (--help lists the fields)')


Check = Callable[[Any], None]


def validate(config: Mapping[str, Any], fields: Mapping[str, Field],
             checks: Iterable[Check] = ()) -> None:
  """Refuses, with one ``ConfigError``, the first thing wrong with ``config``.

  Args:
    config: an ml_collections ``ConfigDict`` (or any nested mapping).
    fields: dotted field name -> ``Field``; the config must have exactly
      these leaves.
    checks: functions of the whole config that raise ``ValueError`` with a
      one-line message when fields do not go together; they run once every
      field is valid on its own, in order.

  Raises:
    ConfigError: one line naming the field, what it accepts and what it got.
  """
  leaves = flatten(config)
  for name in leaves:
    if name not in fields:
      raise ConfigError(unknown_field_message(name, fields))
  for name, field in fields.items():
    if name not in leaves:
      raise ConfigError(f'the config has no field {name!r} '
                        f'({field.describe()}); is the config file older '
                        'than the example? Start from configs/default.py')
    value = leaves[name]
    if not field.accepts(value):
      raise ConfigError(f'config.{name} must be {field.describe()}; '
                        f'got {value!r}')
  for check in checks:
    try:
      check(config)
    except ConfigError:
      raise
    except ValueError as e:
      raise ConfigError(' '.join(str(e).split())) from None


def describe(fields: Mapping[str, Field], defaults: Mapping[str, Any],
             prefix: str = '') -> str:
  """One line per field: ``<prefix><name>=<default>: meaning; valid values``.

  With ``prefix='--config.'`` each line reads as the flag that sets it.
  """
  leaves = flatten(defaults)
  lines = []
  for name, field in fields.items():
    default = leaves.get(name, '(none)')
    meaning = f'{field.help}; ' if field.help else ''
    lines.append(f'{prefix}{name}={default}: {meaning}{field.describe()}')
  return '\n'.join(lines)


def override(config: ml_collections.ConfigDict,
             *overrides: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """``config`` with ``overrides`` applied in order, in place; returned.

  An example's ``configs.build`` is ``override(default.get_config(), ...)``:
  every setting (an optimizer's ``OVERRIDES``, a task's ``TASK``, a suite's
  changes) is a flat dict of the fields it changes, written once.

  Args:
    config: the config to change.
    *overrides: flat dicts, ``{'learning_rate': 3e-4, 'snr.mode': 'snr'}``
      (a dotted name sets a field of a group).

  Raises:
    KeyError: an override names a field the config lacks.
  """
  for changes in overrides:
    config.update_from_flattened_dict(dict(changes))
  return config
