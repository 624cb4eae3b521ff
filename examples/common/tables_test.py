# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of results tables: one environment, noise floor, README blocks."""

import os

from absl.testing import absltest
from absl.testing import parameterized

from examples.common import provenance
from examples.common import tables


def make_segment(from_step=0, **changes):
  """A provenance segment as ``provenance.record`` writes one."""
  segment = {
      'from_step': from_step,
      'git_commit': '0123456789abcdef0123456789abcdef01234567',
      'git_dirty': False,
      'code_hash': 'c' * 64,
      'jax': '0.10.2', 'jaxlib': '0.10.2', 'flax': '0.12.0',
      'optax': '0.2.8', 'numpy': '2.4.6', 'orbax-checkpoint': '0.12.8',
      'python': '3.12.3',
      'backend': 'cpu',
      'device_kind': 'cpu',
      'device_count': 8,
      'process_count': 1,
      'xla_flags': ' --xla_force_host_platform_device_count=8',
      'cpu': 'Some CPU',
      'host': 'machine-a',
      'argv': 'main.py',
      'started': '2026-01-01T00:00:00+00:00',
  }
  segment.update(changes)
  return segment


class OneEnvironmentTest(absltest.TestCase):

  def test_the_fixture_has_every_environment_key(self):
    self.assertContainsSubset(provenance.ENVIRONMENT_KEYS, make_segment())

  def test_same_environment_returns_the_first_runs_first_segment(self):
    first = make_segment()
    runs = {
        'adamw seed 0': [first, make_segment(from_step=500)],
        # Not environment keys: another commit, host, date, command line.
        'snr seed 0': [make_segment(git_commit='f' * 40, git_dirty=True,
                                    host='machine-b', argv='other',
                                    started='2026-02-02T00:00:00+00:00')],
    }
    self.assertIs(tables.one_environment(runs), first)

  def test_a_run_in_another_environment_is_named_with_the_key(self):
    runs = {'adamw seed 0': [make_segment()],
            'snr seed 0': [make_segment()],
            'snr seed 1': [make_segment(xla_flags='')]}
    with self.assertRaises(tables.MixedRunsError) as e:
      tables.one_environment(runs)
    message = str(e.exception)
    self.assertIn('snr seed 1 and adamw seed 0 ran in different '
                  'environments', message)
    self.assertIn("xla_flags: ' --xla_force_host_platform_device_count=8' "
                  "vs ''", message)
    self.assertNotIn('code_hash', message)   # only what differs
    self.assertNotIn('resumed', message)
    self.assertIsInstance(e.exception, ValueError)

  def test_every_differing_key_is_named(self):
    runs = {'a': [make_segment()],
            'b': [make_segment(jax='0.10.3', device_count=4)]}
    with self.assertRaises(tables.MixedRunsError) as e:
      tables.one_environment(runs)
    self.assertIn("jax: '0.10.2' vs '0.10.3'", str(e.exception))
    self.assertIn('device_count: 8 vs 4', str(e.exception))

  def test_a_run_without_provenance_is_refused(self):
    for missing in (None, []):
      runs = {'adamw seed 0': [make_segment()], 'snr seed 0': missing}
      with self.assertRaises(tables.MixedRunsError) as e:
        tables.one_environment(runs)
      self.assertIn('snr seed 0 recorded no provenance.json', str(e.exception))

  def test_a_run_resumed_in_another_environment_is_refused(self):
    runs = {'adamw seed 0': [make_segment()],
            'snr seed 0': [make_segment(),
                           make_segment(from_step=700, cpu='Other CPU')]}
    with self.assertRaises(tables.MixedRunsError) as e:
      tables.one_environment(runs)
    message = str(e.exception)
    self.assertIn('snr seed 0 (resumed from step 700) and adamw seed 0',
                  message)
    self.assertIn("cpu: 'Some CPU' vs 'Other CPU'", message)

  def test_the_first_run_resumed_elsewhere_is_refused(self):
    runs = {'adamw seed 0': [make_segment(),
                             make_segment(from_step=300, numpy='2.5.0')]}
    with self.assertRaises(tables.MixedRunsError) as e:
      tables.one_environment(runs)
    self.assertIn('adamw seed 0 (resumed from step 300)', str(e.exception))

  def test_allow_mixed_returns_the_first_segment(self):
    first = make_segment()
    runs = {'missing': None,
            'a': [first],
            'b': [make_segment(xla_flags='')],
            'c': [make_segment(), make_segment(from_step=9, cpu='x')]}
    self.assertIs(tables.one_environment(runs, allow_mixed=True), first)
    self.assertIsNone(tables.one_environment({'a': None, 'b': []},
                                             allow_mixed=True))


class NoiseFloorTest(absltest.TestCase):

  def test_against_a_hand_computation(self):
    cells = [
        {'run': 'a', 'seed': 0, 'perturbation': 'p', 'reference': 100,
         'perturbed': 125},                           # 1.25
        {'run': 'a', 'seed': 1, 'perturbation': 'p', 'reference': 200,
         'perturbed': 100},                           # 1/2 -> 2.0
        {'run': 'b', 'seed': 0, 'perturbation': 'p', 'reference': 400,
         'perturbed': 400},                           # 1.0
        {'run': 'b', 'seed': 1, 'perturbation': 'p', 'reference': None,
         'perturbed': 300},                           # censored
        {'run': 'c', 'seed': 0, 'perturbation': 'p', 'reference': 300,
         'perturbed': None},                          # censored
        {'run': 'c', 'seed': 1, 'perturbation': 'p', 'reference': None,
         'perturbed': None},                          # ignored
        {'run': 'd', 'seed': 0, 'perturbation': 'q', 'reference': 80,
         'perturbed': 100},                           # 1.25
    ]
    floor = tables.noise_floor(cells)
    self.assertEqual(floor['pairs'], 4)
    self.assertEqual(floor['censored'], 2)
    self.assertAlmostEqual(floor['factor'], 2.0)
    # Median of 1.0, 1.25, 1.25, 2.0.
    self.assertAlmostEqual(floor['median_factor'], 1.25)
    factors = [c['factor'] for c in floor['cells']]
    self.assertLen(factors, 7)
    for got, want in zip(factors, [1.25, 2.0, 1.0, None, None, None, 1.25]):
      if want is None:
        self.assertIsNone(got)
      else:
        self.assertAlmostEqual(got, want)
    # The cells keep what they held.
    self.assertEqual({k: v for k, v in floor['cells'][1].items()
                      if k != 'factor'}, cells[1])

  def test_even_and_odd_medians(self):
    def floor_of(pairs):
      return tables.noise_floor([{'reference': a, 'perturbed': b}
                                 for a, b in pairs])
    odd = floor_of([(10, 11), (10, 13), (10, 20)])
    self.assertAlmostEqual(odd['median_factor'], 1.3)
    self.assertAlmostEqual(odd['factor'], 2.0)
    even = floor_of([(10, 11), (10, 13)])
    self.assertAlmostEqual(even['median_factor'], 1.2)

  def test_nothing_reached(self):
    floor = tables.noise_floor([{'reference': None, 'perturbed': None},
                                {'reference': None, 'perturbed': 5}])
    self.assertEqual((floor['pairs'], floor['censored'], floor['factor'],
                      floor['median_factor']), (0, 1, None, None))
    empty = tables.noise_floor([])
    self.assertEqual((empty['cells'], empty['pairs'], empty['censored'],
                      empty['factor']), ([], 0, 0, None))


class RatioTextTest(parameterized.TestCase):

  @parameterized.parameters(
      (1.0, 1.25, True),
      (1.25, 1.25, True),        # the boundaries belong to the floor
      (0.8, 1.25, True),
      (1.26, 1.25, False),
      (0.79, 1.25, False),
      (1.0, 1.0, True),
      (1.01, 1.0, False),
      (1.0, None, False),        # no floor measured
      (None, 1.25, False),
  )
  def test_within(self, ratio, factor, expected):
    self.assertIs(tables.within(ratio, factor), expected)

  @parameterized.parameters(
      (1.0, 1.25, '(1.00)'),
      (1.25, 1.25, '(1.25)'),
      (0.8, 1.25, '(0.80)'),
      (1.14, 1.1, '1.14'),
      (0.5, 1.1, '0.50'),
      (1.044, 1.1, '(1.04)'),
      (1.0, None, '1.00'),       # no floor: no parentheses
      (None, 1.25, '-'),
      (None, None, '-'),
      (float('nan'), 1.25, '-'),
  )
  def test_ratio_text(self, ratio, factor, expected):
    self.assertEqual(tables.ratio_text(ratio, factor), expected)

  @parameterized.parameters(
      (300, 200, 1.5),
      (None, 200, None),         # the baseline never got there
      (300, None, None),         # the run never got there
      (0, 200, None),
      (300, 0, None),
  )
  def test_speedup(self, base, value, expected):
    self.assertEqual(tables.speedup(base, value), expected)


BEGIN = '<!-- generated: t (do not edit; see the command below it) -->'
END = '<!-- end generated: t -->'


class BlockTest(absltest.TestCase):

  def make_readme(self, text):
    path = os.path.join(self.create_tempdir().full_path, 'README.md')
    with open(path, 'w', encoding='utf-8') as f:
      f.write(text)
    return path

  def read_bytes(self, path):
    with open(path, 'rb') as f:
      return f.read()

  def test_round_trip_keeps_the_rest_byte_identical(self):
    before = '# Title\n\nSome prose \u2248 1.2\u00d7.\n\n'
    after = '\nThe command:\n\n    python compare.py\n\n<!-- other -->\n'
    path = self.make_readme(f'{before}{BEGIN}\nold table\nold\n{END}{after}')
    self.assertEqual(tables.read_block(path, 't'), 'old table\nold\n')
    body = '| a | b |\n|---|---|\n| 1 | (1.04) |\n'
    tables.replace_block(path, 't', body)
    self.assertEqual(tables.read_block(path, 't'), body)
    self.assertEqual(self.read_bytes(path),
                     f'{before}{BEGIN}\n{body}{END}{after}'.encode())
    # Twice: the same bytes; no temporary file left behind.
    tables.replace_block(path, 't', body)
    self.assertEqual(self.read_bytes(path),
                     f'{before}{BEGIN}\n{body}{END}{after}'.encode())
    self.assertEqual(os.listdir(os.path.dirname(path)), ['README.md'])

  def test_a_body_without_a_final_newline_gets_one(self):
    path = self.make_readme(f'{BEGIN}\n{END}\n')
    self.assertEqual(tables.read_block(path, 't'), '')
    tables.replace_block(path, 't', 'x')
    self.assertEqual(self.read_bytes(path), f'{BEGIN}\nx\n{END}\n'.encode())

  def test_other_blocks_are_left_alone(self):
    other_begin = BEGIN.replace(': t ', ': u ')
    other_end = END.replace(': t ', ': u ')
    text = f'{other_begin}\nu body\n{other_end}\n{BEGIN}\nt body\n{END}\n'
    path = self.make_readme(text)
    tables.replace_block(path, 't', 'new\n')
    self.assertEqual(tables.read_block(path, 'u'), 'u body\n')
    self.assertEqual(tables.read_block(path, 't'), 'new\n')

  def test_a_missing_block_names_the_markers(self):
    path = self.make_readme('# Title\n')
    self.assertIsNone(tables.read_block(path, 't'))
    with self.assertRaises(ValueError) as e:
      tables.replace_block(path, 't', 'x\n')
    self.assertIn(repr(BEGIN), str(e.exception))
    self.assertIn(repr(END), str(e.exception))
    self.assertIn("no block 't'", str(e.exception))
    self.assertEqual(self.read_bytes(path), b'# Title\n')
    # check_block says the same without writing (compare --publish checks
    # the README before it trains or copies anything).
    with self.assertRaises(ValueError) as checked:
      tables.check_block(path, 't')
    self.assertEqual(str(checked.exception), str(e.exception))
    tables.check_block(self.make_readme(f'{BEGIN}\n{END}\n'), 't')
    # Only the begin marker: still no block.
    path = self.make_readme(f'{BEGIN}\nx\n')
    with self.assertRaises(ValueError):
      tables.replace_block(path, 't', 'y\n')


if __name__ == '__main__':
  absltest.main()
