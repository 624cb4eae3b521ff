# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""Fast tests of the grokking example: data, model, optimizers, resume.

The tests every example passes (resume, Ctrl-C, refusals, --help, the
published README blocks) are examples/common/testing.py's, mixed in below.
"""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
from flax import nnx
import jax
import numpy as np

from examples.common import cli
from examples.common import interrupt
from examples.common import schema
from examples.common import suites
from examples.common import testing
from examples.grokking import compare
from examples.grokking import config_schema
from examples.grokking import data
from examples.grokking import train
from examples.grokking.configs import default
from examples.grokking.configs import tiny

REPO = testing.REPO
TINY = 'examples/grokking/configs/tiny.py'


class DataTest(parameterized.TestCase):

  @parameterized.parameters(*data.OPERATIONS)
  def test_every_pair_once_and_correct(self, operation):
    p = 13
    x, y = data.table(operation, p)
    expected = p * (p - 1) if operation == 'division' else p * p
    self.assertEqual(len(y), expected)
    pairs = {(int(a), int(b)) for a, b in x[:, [0, 2]]}
    self.assertLen(pairs, expected)
    np.testing.assert_array_equal(x[:, 1], p)
    np.testing.assert_array_equal(x[:, 3], p + 1)
    a, b = x[:, 0].astype(int), x[:, 2].astype(int)
    check = {'division': (b * y) % p == a,
             'multiplication': (a * b) % p == y,
             'addition': (a + b) % p == y,
             'subtraction': (a - b) % p == y}[operation]
    self.assertTrue(np.all(check))
    self.assertTrue(np.all((0 <= y) & (y < p)))

  def test_split_sizes_and_disjointness(self):
    split = data.make_split('division', 97, 0.25, seed=3)
    self.assertEqual(len(split.train_y), 2328)     # round(0.25 * 9312)
    self.assertEqual(len(split.val_y), 9312 - 2328)
    train_pairs = {tuple(r) for r in split.train_x[:, [0, 2]]}
    val_pairs = {tuple(r) for r in split.val_x[:, [0, 2]]}
    self.assertEmpty(train_pairs & val_pairs)
    again = data.make_split('division', 97, 0.25, seed=3)
    np.testing.assert_array_equal(split.train_x, again.train_x)

  @parameterized.parameters(0.0, 1.0, -0.5, 1.5)
  def test_bad_train_fraction(self, fraction):
    with self.assertRaisesRegex(ValueError, r'train_fraction must lie in'):
      data.make_split('addition', 11, fraction, 0)

  def test_bad_modulus(self):
    with self.assertRaisesRegex(ValueError, 'prime'):
      data.table('addition', 12)


class ModelTest(absltest.TestCase):

  def test_shapes_and_parameter_count(self):
    config = tiny.get_config()
    split = data.make_split('addition', 11, 0.5, 0)
    model = train.create_model(config, split)
    logits = model(split.train_x[:5])
    self.assertEqual(logits.shape, (5, 11))
    # Counted on the shapes alone: initialising the paper's model runs (and
    # compiles) every initialiser for nothing the count needs.
    paper = nnx.eval_shape(lambda: train.create_model(
        default.get_config(), data.make_split('division', 97, 0.25, 0)))
    n = sum(p.size for p in jax.tree.leaves(nnx.state(paper, nnx.Param)))
    self.assertEqual(n, 422_497)   # about Grokfast's 422.8k


class TrainTest(testing.TrainTests, parameterized.TestCase):
  """Every optimizer trains; testing.TrainTests: resume, Ctrl-C, refusals."""

  PACKAGE = 'examples.grokking'
  RESUMED_METRICS = ('train_loss', 'val_loss', 'val_accuracy',
                     'mask_fraction')
  ANOTHER_CONFIG = ('width', 32, 'config.width: 16 there, 32 here')
  BAD_CONFIG = ({'snr.mode': 'bogus'}, 'config.snr.mode must be one of')

  # SNR-Adam "after" differs from "before" here only in the placement it
  # passes to snr_optax, which the library's tests and the INR example's
  # snr_adam_after case train; the default run leaves it out. (The Grokfast
  # composition builds another optimizer for each placement: both run.)
  @parameterized.parameters(
      *[(name, 'before') for name in config_schema.OPTIMIZERS],
      *[(name, 'after') for name in config_schema.PER_EXAMPLE
        if testing.SLOW or name != 'snr_adam'])
  def test_every_optimizer_trains(self, optimizer, placement):
    config = tiny.get_config()
    config.optimizer = optimizer
    config.snr.placement = placement
    config.num_steps = 10
    workdir = self.create_tempdir().full_path
    result = train.train_and_evaluate(config, workdir)
    self.assertEqual(result['final_step'], 10)
    rows = [json.loads(l) for l in open(os.path.join(workdir,
                                                      'metrics.jsonl'))]
    self.assertEqual([r['step'] for r in rows], [5, 10])
    self.assertTrue(all(np.isfinite(r['val_loss']) for r in rows))
    has_mask = optimizer not in ('adamw', 'grokfast')
    self.assertEqual(rows[-1]['mask_fraction'] is not None, has_mask)
    self.assertTrue(os.path.exists(os.path.join(workdir, 'curves.png')))

  def test_interrupted_log_is_truncated_to_the_checkpoint(self):
    config = tiny.get_config()
    workdir = self.create_tempdir().full_path
    config.num_steps = 10
    train.train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, 'metrics.jsonl'), 'a') as f:
      f.write(json.dumps({'step': 15, 'val_accuracy': 0.0}) + '\n')
    config.num_steps = 20
    train.train_and_evaluate(config, workdir)
    steps = [r['step'] for r in testing.read_metrics(workdir)]
    self.assertEqual(steps, [5, 10, 15, 20])

  def test_interrupt_at_the_start_saves_nothing(self):
    config = tiny.get_config()
    workdir = self.create_tempdir().full_path

    def interrupting(*args):
      raise KeyboardInterrupt

    with mock.patch.object(train, 'batch_indices', interrupting):
      with self.assertRaises(interrupt.TrainingInterrupted) as e:
        train.train_and_evaluate(config, workdir)
    self.assertEqual((e.exception.step, e.exception.checkpoint_dir),
                     (0, None))
    self.assertEmpty(os.listdir(os.path.join(workdir, 'checkpoints')))

  def test_sharded_run_equals_single_device(self):
    # Under pytest this is a mesh of 8 host CPU devices (conftest.py). The
    # single-device run is the resume tests' reference: its first 10 steps
    # are a 10-step run (batches and schedule depend on the step alone, as
    # test_resume_is_exact checks), and it is trained once per process.
    config = tiny.get_config()
    config.optimizer = self.SNR_OPTIMIZER
    config.num_steps = 10
    config.mesh_data, config.mesh_fsdp = -1, 1
    workdir = self.create_tempdir().full_path
    sharded = train.train_and_evaluate(config, workdir)
    single = {r['step']: r for r in testing.read_metrics(self._reference())}
    self.assertEqual(sharded['final_step'], 10)
    for row in testing.read_metrics(workdir):
      self.assertAlmostEqual(single[row['step']]['val_accuracy'],
                             row['val_accuracy'], places=5)
    self.assertAlmostEqual(single[10]['val_accuracy'],
                           sharded['final_val_accuracy'], places=5)

  def test_population_estimate_under_a_mesh(self):
    # Every optimizer can log the estimate, on a data-parallel mesh too;
    # the held-out pairs' loss is the measured population loss.
    config = tiny.get_config()
    config.num_steps = 5
    config.snr.population_risk = True
    config.mesh_data, config.mesh_fsdp = -1, 1
    workdir = self.create_tempdir().full_path
    train.train_and_evaluate(config, workdir)
    rows = testing.read_metrics(workdir)
    for row in rows:
      self.assertEqual(row['population_loss'], row['val_loss'])
      self.assertLess(row['diagonal_error'], 1e-3)
      self.assertGreater(row['estimated_population_change'],
                         row['estimated_train_change'])
    self.assertGreater(rows[-1]['batch_fraction'], 0)

  def test_stop_at_target(self):
    config = tiny.get_config()
    config.target_val_accuracy = 0.0    # reached at the first evaluation
    config.stop_at_target = True
    config.steps_after_target = 3       # stops at the evaluation at 10
    workdir = self.create_tempdir().full_path
    result = train.train_and_evaluate(config, workdir)
    self.assertEqual(result['steps_to_target'], 5)
    self.assertEqual(result['final_step'], 10)
    # The same command again: the run stays stopped, the result the same.
    self.assertEqual(train.train_and_evaluate(config, workdir), result)
    self.assertEqual([r['step'] for r in testing.read_metrics(workdir)],
                     [5, 10])

  def test_mesh_that_does_not_fit_writes_nothing(self):
    config = tiny.get_config()
    config.mesh_data = jax.device_count() + 1
    workdir = os.path.join(self.create_tempdir().full_path, 'run')
    with self.assertRaisesRegex(schema.ConfigError, 'does not fit the'):
      train.train_and_evaluate(config, workdir)
    self.assertFalse(os.path.exists(workdir))


class SchemaTest(testing.SchemaTests, parameterized.TestCase):
  """Bad fields; testing.SchemaTests: config files, optimizers."""

  PACKAGE = 'examples.grokking'
  CONFIG_FILES = ('default', 'tiny', 'snr_adam')

  @parameterized.parameters(
      ('optimizer', 'sgd', "config.optimizer must be one of 'adamw'"),
      ('train_fraction', 1.0, r'config.train_fraction must be a number in '
       r'\(0, 1\); got 1.0'),
      ('batch_size', 1, 'config.batch_size must be an integer >= 2; got 1'),
      ('batch_size', 61, 'config.batch_size 61 exceeds the 60 training'),
      ('learning_rate', -1e-3, 'config.learning_rate must be a number > 0'),
      ('heads', 3, 'config.width 16 is not divisible by config.heads 3'),
      ('p', 12, 'config.p must be an integer >= 3, a prime; got 12'),
      # Not an overflow in the middle of the set-up, nor seed 0 again.
      ('seed', 2**32, r'config.seed must be an integer >= 0, below 2\*\*32; '
       'got 4294967296'))
  def test_bad_config(self, key, value, message):
    config = tiny.get_config()
    config[key] = value
    with self.assertRaisesRegex(ValueError, message):
      config_schema.validate(config)



class MainTest(testing.MainTests, parameterized.TestCase):
  """The binary: bad input ends in one line, nothing written; --help."""

  PACKAGE = 'examples.grokking'

  @parameterized.named_parameters(
      ('missing_config_file', ['--config=examples/grokking/configs/nope.py'],
       "error: --config: cannot read the config file ([Errno 2] No such file "
       "or directory: 'examples/grokking/configs/nope.py'); for example "
       '--config=examples/grokking/configs/default.py'),
      ('missing_config_file_with_override',
       ['--config=nope.py', '--config.seed=1'],
       'error: --config: cannot read the config file'),
      ('unknown_mode', ['--config.snr.mode=bogus'],
       "error: config.snr.mode must be one of 'hard', 'soft', 'snr'; "
       "got 'bogus'"),
      ('unknown_optimizer', ['--config.optimizer=sgd'],
       "error: config.optimizer must be one of 'adamw', 'snr_adam', "
       "'streaming_snr_adamw', 'grokfast', 'snr_adam_grokfast'; got 'sgd'"),
      ('unknown_placement', ['--config.snr.placement=middle'],
       "error: config.snr.placement must be one of 'before', 'after'; "
       "got 'middle'"),
      ('misspelt_field', ['--config.lerning_rate=0.1'],
       "error: --config.lerning_rate: the config has no field "
       "'lerning_rate'; did you mean 'learning_rate'? (--help lists the "
       'fields)'),
      ('misspelt_nested_field', ['--config.snr.mdoe=soft'],
       "error: --config.snr.mdoe: the config has no field 'snr.mdoe'; did "
       "you mean 'snr.mode'?"),
      ('misspelt_group', ['--config.snrr.mode=soft'],
       "error: --config.snrr.mode: the config has no field 'snrr.mode'; did "
       "you mean 'snr.mode'?"),
      ('negative_learning_rate', ['--config.learning_rate=-0.1'],
       'error: config.learning_rate must be a number > 0; got -0.1'),
      ('not_a_number', ['--config.learning_rate=abc'],
       "error: flag --config.learning_rate=abc: could not convert string to "
       "float: 'abc'; config.learning_rate must be a number > 0"),
      ('batch_of_one', ['--config.batch_size=1'],
       'error: config.batch_size must be an integer >= 2; got 1'),
      ('batch_larger_than_the_split', ['--config.batch_size=1000'],
       'error: config.batch_size 1000 exceeds the 60 training equations'),
      ('not_a_prime', ['--config.p=12'],
       'error: config.p must be an integer >= 3, a prime; got 12'),
      ('unknown_flag', ['--lerning_rate=0.1'],
       "error: Unknown command line flag 'lerning_rate'"),
      ('positional_argument', ['extra'],
       "error: unexpected argument 'extra'"),
      # Found by train.py, which imports JAX; still before any write.
      ('mesh_larger_than_the_devices', ['--config.mesh_data=3'],
       'error: config.mesh_data=3 x config.mesh_fsdp=1 does not fit the'),
  )
  def test_bad_input_is_one_line_and_writes_nothing(self, args, message):
    self.assert_refused(args, message)

  @parameterized.parameters(
      ('--config.lerning_rate=0.1', "error: --config.lerning_rate: the config "
       "has no field 'lerning_rate'; did you mean 'learning_rate'?"),
      ('--config.snrr.mode=soft', "error: --config.snrr.mode: the config has "
       "no field 'snrr.mode'; did you mean 'snr.mode'?"),
      ('--config.learning_rate=abc', 'error: flag --config.learning_rate=abc'),
      ('--config.snr.mode=bogus', 'error: config.snr.mode must be one of'))
  def test_bad_override_of_the_default_config(self, arg, message):
    # Without --config, ml_collections reads the default config file, and
    # applies the overrides, as the flag is defined (not as flags are
    # parsed).
    workdir = os.path.join(self.create_tempdir().full_path, 'run')
    out = self.main(f'--workdir={workdir}', arg)
    self.assertEqual(out.returncode, cli.EXIT_USAGE, out.stderr)
    self.assertLen(out.stderr.strip().splitlines(), 1, out.stderr)
    self.assertStartsWith(out.stderr, message)
    self.assertFalse(os.path.exists(workdir))

  def test_missing_workdir(self):
    out = self.main(f'--config={TINY}')
    self.assertEqual(out.returncode, cli.EXIT_USAGE)
    self.assertEqual(out.stderr.strip(),
                     "error: --workdir is required: the directory for this "
                     "run's metrics and checkpoints (see --help)")

  def test_workdir_is_a_file(self):
    path = self.create_tempfile(content='keep').full_path
    out = self.main(f'--workdir={path}', f'--config={TINY}')
    self.assertEqual(out.returncode, cli.EXIT_USAGE)
    self.assertEqual(out.stderr.strip(),
                     f'error: --workdir={path} is a file, not a directory; '
                     'give a directory (created if missing; a run in it is '
                     'resumed)')
    with open(path) as f:
      self.assertEqual(f.read(), 'keep')

  def test_config_file_that_fails_to_load(self):
    path = self.create_tempfile('broken.py', content='def get_config(:\n'
                                ).full_path
    workdir = os.path.join(self.create_tempdir().full_path, 'run')
    out = self.main(f'--workdir={workdir}', f'--config={path}')
    self.assertEqual(out.returncode, cli.EXIT_USAGE)
    self.assertLen(out.stderr.strip().splitlines(), 1, out.stderr)
    self.assertStartsWith(out.stderr, 'error: --config: the config file '
                          f'failed to load: {path}:1: SyntaxError')
    self.assertFalse(os.path.exists(workdir))

  def test_config_file_that_lacks_a_field(self):
    path = self.create_tempfile('old.py', content=(
        'from examples.grokking.configs import tiny\n'
        'def get_config():\n'
        '  config = tiny.get_config()\n'
        '  del config.snr.microbatch_size\n'
        '  return config\n')).full_path
    out = self.main('--workdir=/nonexistent/run', f'--config={path}')
    self.assertEqual(out.returncode, cli.EXIT_USAGE)
    self.assertStartsWith(out.stderr, "error: the config has no field "
                          "'snr.microbatch_size'")

  def test_ctrl_c_saves_and_prints_the_command_that_resumes(self):
    workdir = os.path.join(self.create_tempdir().full_path, 'run')
    args = [f'--workdir={workdir}', f'--config={TINY}',
            '--config.num_steps=1000000', '--config.eval_every=10',
            '--config.checkpoint_every=1000000']
    proc = subprocess.Popen(testing.module_command(f'{self.PACKAGE}.main',
                                                   *args),
                            cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, 'JAX_PLATFORMS': 'cpu'})
    try:
      for line in proc.stderr:      # training has begun at the first eval
        if '| train acc' in line:
          break
      proc.send_signal(signal.SIGINT)
      _, stderr = proc.communicate(timeout=120)
    finally:
      proc.kill()
    self.assertEqual(proc.returncode, cli.EXIT_INTERRUPTED, stderr)
    last = stderr.strip().splitlines()[-1]
    self.assertNotIn('Traceback', stderr)
    match = re.fullmatch(r'interrupted at step (\d+), saved a checkpoint in '
                         r'(\S+); resume with: (.+)', last)
    self.assertIsNotNone(match, last)
    step, directory, command = match.groups()
    self.assertEqual(directory, os.path.join(workdir, 'checkpoints'))
    self.assertEqual(os.listdir(directory), [step])
    argv = shlex.split(command)
    self.assertIn(argv[0], ('python', sys.executable))
    self.assertEqual(argv[1:], ['-m', 'examples.grokking.main', *args])
    # That command resumes from the checkpoint (here with a nearer end).
    out = self.main(*argv[3:], f'--config.num_steps={int(step) + 3}')
    self.assertEqual(out.returncode, 0, out.stderr)
    self.assertIn(f'from step {step}', out.stderr)
    with open(os.path.join(workdir, 'result.json')) as f:
      self.assertEqual(json.load(f)['final_step'], int(step) + 3)


class CompareTest(testing.CompareTests, parameterized.TestCase):
  """The tiny suite end to end; testing.CompareTests: README blocks."""

  PACKAGE = 'examples.grokking'
  # Target 0: every run reaches it at its first evaluation (step 5).
  TINY_OVERRIDES = {'target_val_accuracy': 0.0}

  def test_tiny_suite_writes_results(self):
    workdir = self.create_tempdir().full_path
    compare.run_suite(workdir, 'tiny', [0, 1])
    summary = compare.tabulate(workdir, 'tiny', [0, 1])
    with open(os.path.join(workdir, 'results.json')) as f:
      on_disk = json.load(f)
    self.assertEqual(on_disk, json.loads(json.dumps(summary)))
    self.assertEqual(set(on_disk['results']), {'adamw', 'snr_adam'})
    for name, row in on_disk['results'].items():
      self.assertEqual(row['seeds'], [0, 1])
      self.assertLen(row['per_seed'], 2)
      self.assertEqual(row['budget'], 20)
      self.assertEqual(row['label'], compare.SUITES['tiny'].runs[name].label)
      for seed in row['per_seed']:
        with open(os.path.join(workdir, name, f'seed_{seed["seed"]}',
                               'result.json')) as f:
          result = json.load(f)
        self.assertEqual(seed['steps_to_target'], result['steps_to_target'])
        self.assertEqual(seed['final_step'], result['final_step'])
    # The mean mask is the mean of the logged mask fractions.
    logged = [r['mask_fraction'] for seed in (0, 1)
              for r in testing.read_metrics(
                  os.path.join(workdir, 'snr_adam', f'seed_{seed}'))]
    self.assertAlmostEqual(on_disk['results']['snr_adam']['mean_mask'],
                           sum(logged) / len(logged))
    self.assertIsNone(on_disk['results']['adamw']['mean_mask'])
    self.assertEqual(on_disk['target_val_accuracy'], 0.95)
    # Every run recorded where it ran; the table names it.
    self.assertEqual(on_disk['environment']['device_count'],
                     jax.device_count())
    table = open(os.path.join(workdir, 'results.md')).read()
    self.assertIn('(`adamw`) | 0/2 |', table)
    self.assertIn(f'jax {jax.__version__}', table)
    # The command that made the runs, as recorded (here: this test's
    # process), behind the XLA flags it ran with.
    xla_flags = os.environ.get('XLA_FLAGS', '').strip()
    self.assertEqual(on_disk['environment']['xla_flags'].strip(), xla_flags)
    self.assertIn("from the runs' provenance.json):\n\n    "
                  + (f'XLA_FLAGS={shlex.quote(xla_flags)} ' if xla_flags
                     else ''), table)
    self.assertTrue(os.path.exists(os.path.join(workdir,
                                                'val_accuracy.png')))
    # Finished runs are skipped: a second call trains nothing.
    mtime = os.path.getmtime(os.path.join(workdir, 'adamw', 'seed_0',
                                          'result.json'))
    compare.run_suite(workdir, 'tiny', [0, 1])
    self.assertEqual(mtime, os.path.getmtime(os.path.join(
        workdir, 'adamw', 'seed_0', 'result.json')))

  def _tiny_runs(self, overrides=None):
    # The runs are trained once per process; each test edits its own copy.
    return self.tiny_runs({**self.TINY_OVERRIDES, **(overrides or {})})

  def _edit_provenance(self, run, **changes):
    path = os.path.join(run, 'provenance.json')
    with open(path) as f:
      record = json.load(f)
    record['segments'][-1].update(changes)
    with open(path, 'w') as f:
      json.dump(record, f)

  def test_runs_from_two_environments_are_not_tabulated_together(self):
    workdir = self._tiny_runs()
    self._edit_provenance(os.path.join(workdir, 'snr_adam', 'seed_0'),
                          xla_flags='--xla_cpu_something', jaxlib='0.0.1')
    with self.assertRaisesRegex(
        compare.tables.MixedRunsError,
        r'snr_adam seed 0 and adamw seed 0 ran in different environments '
        r"\(jaxlib: '.*' vs '0.0.1'; xla_flags: '.*' vs "
        r"'--xla_cpu_something'\)"):
      compare.tabulate(workdir, 'tiny', [0])
    summary = compare.tabulate(workdir, 'tiny', [0], allow_mixed=True)
    self.assertEqual(summary['results']['snr_adam']['per_seed'][0]
                     ['steps_to_target'], 5)
    # The program says it in one line, and how to go on anyway.
    out = self.compare('--suite=tiny', '--seeds=0', '--table_only',
                       f'--workdir={workdir}', cpu_only=False)
    self.assertEqual(out.returncode, cli.EXIT_USAGE, out.stderr)
    self.assertEqual(len(out.stderr.strip().splitlines()), 1, out.stderr)
    self.assertIn('(--allow_mixed tabulates them anyway)', out.stderr)

  def test_a_run_resumed_elsewhere_is_mixed(self):
    workdir = self._tiny_runs()
    path = os.path.join(workdir, 'adamw', 'seed_0', 'provenance.json')
    with open(path) as f:
      record = json.load(f)
    record['segments'].append({**record['segments'][0], 'from_step': 10,
                               'device_count': 99})
    with open(path, 'w') as f:
      json.dump(record, f)
    with self.assertRaisesRegex(compare.tables.MixedRunsError,
                                'resumed from step 10'):
      compare.tabulate(workdir, 'tiny', [0])

  def test_a_run_without_provenance_is_refused(self):
    workdir = self._tiny_runs()
    os.remove(os.path.join(workdir, 'adamw', 'seed_0', 'provenance.json'))
    with self.assertRaisesRegex(compare.tables.MixedRunsError,
                                'adamw seed 0 recorded no provenance'):
      compare.tabulate(workdir, 'tiny', [0])

  def test_noise_floor_pairs_the_same_runs_and_names_the_perturbation(self):
    reference = self._tiny_runs()
    perturbed = self._tiny_runs({'mesh_data': -1})
    summary = compare.tabulate(reference, 'tiny', [0],
                               noise_workdirs=[perturbed])
    floor = summary['noise_floor']
    self.assertEqual(floor['pairs'], 2)
    self.assertEqual(floor['factor'], 1.0)
    self.assertEqual(floor['perturbations'], ['mesh_data=-1'])
    self.assertEqual({(c['run'], c['reference'], c['perturbed'])
                      for c in floor['cells']},
                     {('adamw', 5, 5), ('snr_adam', 5, 5)})
    text = compare.render(summary)
    self.assertIn('re-run with `mesh_data=-1`', text)
    # Ratios inside the floor are marked.
    self.assertIn('| (1.00) |', text)
    # Other code is not a noise floor.
    self._edit_provenance(os.path.join(perturbed, 'adamw', 'seed_0'),
                          code_hash='0' * 64)
    self._edit_provenance(os.path.join(perturbed, 'snr_adam', 'seed_0'),
                          code_hash='0' * 64)
    with self.assertRaisesRegex(compare.tables.MixedRunsError,
                                'ran other code'):
      compare.tabulate(reference, 'tiny', [0], noise_workdirs=[perturbed])

  def test_publish_copies_and_rewrites_the_readme_blocks(self):
    workdir = self._tiny_runs()
    self.assert_publishes(workdir, compare.tabulate(workdir, 'tiny', [0]),
                          ['results.json', 'results.md', 'val_accuracy.png'])

  @parameterized.parameters(
      ([100, 200, 300], 200),
      ([300, None, 100], 300),     # the run that never got there is slowest
      ([100, None], None),         # half the seeds: median is past the budget
      ([None, 100, None], None),
      ([None], None),
      ([], None),
      ([100, 200, 300, None], 250),
  )
  def test_censored_median(self, values, expected):
    self.assertEqual(suites.censored_median(values), expected)

  def test_first_step_at(self):
    rows = [{'step': step, 'val_accuracy': accuracy} for step, accuracy in
            ((5, 0.2), (10, 0.6), (15, 0.4), (20, 0.95))]
    self.assertEqual(compare.first_step_at(rows, 0.5), 10)
    self.assertEqual(compare.first_step_at(rows, 0.95), 20)
    self.assertIsNone(compare.first_step_at(rows, 0.99))

  def test_table_follows_the_target(self):
    self.assertIn('| seeds at 90% | steps to 90% (per seed) |',
                  compare.markdown_table({'target_val_accuracy': 0.9,
                                          'baseline': 'adamw',
                                          'results': {}}))

  def test_table_states_the_target_the_runs_ran_with(self):
    # _tiny_runs overrides the target: the table says 0%, not the suite's
    # 95%, and runs with two targets make no table.
    workdir = self._tiny_runs()
    summary = compare.tabulate(workdir, 'tiny', [0])
    self.assertEqual(summary['target_val_accuracy'], 0.0)
    self.assertIn('| seeds at 0% |', compare.render(summary))
    path = os.path.join(workdir, 'snr_adam', 'seed_0', 'config.json')
    with open(path) as f:
      config = json.load(f)
    with open(path, 'w') as f:
      json.dump({**config, 'target_val_accuracy': 0.5}, f)
    with self.assertRaisesRegex(compare.tables.MixedRunsError,
                                'different target_val_accuracy'):
      compare.tabulate(workdir, 'tiny', [0])

  def test_program_refuses_bad_input_before_writing(self):
    workdir = self._tiny_runs()
    empty = self.create_tempdir().full_path
    no_block = self.create_tempdir().full_path
    with open(os.path.join(no_block, 'README.md'), 'w') as f:
      f.write('# an example without the blocks\n')
    new = os.path.join(self.create_tempdir().full_path, 'new')
    paper = os.path.join(REPO, 'examples', 'grokking', 'results', 'paper')
    for args, message in (
        (['--seeds=0,0'], 'error: --seeds=0,0: seed 0 is given twice'),
        (['--seeds=0,4294967296'],
         'error: config.seed must be an integer >= 0, below 2**32'),
        (['--override=seed=3'],
         'error: --override=seed=...: give the seeds with --seeds'),
        (['--override=optimizer=sgd'],
         "error: --override=optimizer=...: run 'adamw' of suite 'tiny' is "
         "optimizer='adamw'"),
        (['--override=stop_at_target=yes'],
         "error: --override=stop_at_target=yes: stop_at_target takes true or "
         "false, got 'yes'"),
        ([f'--noise_floor={workdir}'],
         f'error: --noise_floor={workdir} is --workdir itself'),
        ([f'--noise_floor={empty}'],
         f"error: --noise_floor: {empty} holds no finished run of suite "
         "'tiny' at seeds 0"),
        ([f'--publish={os.path.join(empty, "results", "tiny")}'],
         f'error: --publish={os.path.join(empty, "results", "tiny")}: there '
         f'is no {os.path.join(empty, "README.md")}'),
        ([f'--publish={os.path.join(no_block, "results", "tiny")}'],
         f"error: --publish: {os.path.join(no_block, 'README.md')} has no "
         "block 'compare:tiny'; add the lines"),
        ([f'--publish={paper}'], f"error: --publish={paper}: publish suite "
         "'tiny' to examples/<name>/results/tiny"),
        # Another suite's runs are neither skipped as finished nor
        # tabulated under this suite's task.
        (['--suite=quick'],
         f'error: {os.path.join(workdir, "adamw", "seed_0")} holds a run'
         " made with another config than run 'adamw' of suite 'quick' "
         '(config.p: 11 there, 23 in the suite)'),
        ([f'--workdir={new}'], f'error: --table_only: {new} holds no '
         "finished run of suite 'tiny' at seeds 0")):
      with self.subTest(args=args):
        out = self.compare('--suite=tiny', '--seeds=0', '--table_only',
                           f'--workdir={workdir}', *args)
        self.assertEqual(out.returncode, cli.EXIT_USAGE, out.stderr)
        self.assertEqual(len(out.stderr.strip().splitlines()), 1, out.stderr)
        self.assertStartsWith(out.stderr, message)
        self.assertFalse(os.path.exists(os.path.join(workdir, 'results.md')))
        self.assertFalse(os.path.exists(new))
        self.assertEqual(os.listdir(empty), [])

  def test_program_says_where_it_wrote(self):
    workdir = self._tiny_runs()
    out = self.compare('--suite=tiny', '--seeds=0', '--table_only',
                       f'--workdir={workdir}', cpu_only=False)
    self.assertEqual(out.returncode, 0, out.stderr)
    self.assertIn(f'wrote {os.path.join(workdir, "results.md")}, '
                  f'{os.path.join(workdir, "results.json")}', out.stdout)

  def test_program_bad_flags_in_one_line(self):
    for args, message in (
        (['--seeds=a'], 'error: --seeds=a: give integers'),
        (['--only=nope', '--suite=tiny'], "error: --only: no run 'nope'"),
        ([], 'error: --workdir is required')):
      with self.subTest(args=args):
        out = self.compare(
            *args, *([] if not args else
                     [f'--workdir={self.create_tempdir().full_path}']),
            cpu_only=False)
        self.assertEqual(out.returncode, cli.EXIT_USAGE, out.stderr)
        self.assertEqual(len(out.stderr.strip().splitlines()), 1, out.stderr)
        self.assertStartsWith(out.stderr, message)


if __name__ == '__main__':
  absltest.main()
