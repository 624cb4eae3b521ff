# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""pytest settings shared by the test modules.

Eight host CPU devices must be requested before JAX starts its backend, so
it is done here, in the root conftest, before any module imports JAX. (Under
Bazel each test module runs alone and sets what it needs itself.)
"""

import os

if '--xla_force_host_platform_device_count' not in os.environ.get('XLA_FLAGS',
                                                                 ''):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                             ' --xla_force_host_platform_device_count=8')

# Compiling is most of the suite's time (many small programs, each run a few
# times), and LLVM's optimisation of the CPU code is half of a compile: the
# default run compiles at --xla_backend_optimization_level=0, which halves
# it. Every comparison in the suite is within one run (a reference computed
# under the same flags), so none depends on it; the last bits of a result do
# (fused and unfused transcendentals round differently), which is why a
# published table's re-run (examples/grokking/reproduce_slow_test.py) sets
# its own XLA_FLAGS. SNR_OPTAX_SLOW=1 compiles as users do, optimised.
if (os.environ.get('SNR_OPTAX_SLOW') != '1' and
    '--xla_backend_optimization_level' not in os.environ.get('XLA_FLAGS', '')):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                             ' --xla_backend_optimization_level=0')

# Flag-defining entry points are programs, not modules to doctest.
collect_ignore_glob = ['examples/*/main.py']
# Slow tests run only on request: SNR_OPTAX_SLOW=1 python -m pytest
if os.environ.get('SNR_OPTAX_SLOW') != '1':
  collect_ignore_glob.append('*_slow_test.py')

# absltest helpers such as create_tempdir read flags, which pytest does not
# parse (absltest.main does, under Bazel).
from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position

flags.FLAGS.mark_as_parsed()
