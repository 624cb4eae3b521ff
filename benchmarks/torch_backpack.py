# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""PyTorch reference: the SNR hard mask in BackPACK and torch.func, vs Adam.

What is measured. On CPU, one MLP ``Linear(784, 512)-ReLU-Linear(512, 512)-
ReLU-Linear(512, 10)`` with mean cross-entropy on a fixed random batch
(inputs N(0, 1), random integer labels). Each variant's full training step
(``zero_grad``, forward, backward, mask, ``optimizer.step``) is timed with
``time.perf_counter``; variant by variant, ``warmup`` untimed steps are
followed by ``steps`` timed ones, and the median seconds per step is
reported, together with its ratio to plain Adam. (Variants are not
interleaved: the vmap step's ~0.7 GB of per-example gradients, freed each
step, would make the step after it pay the allocator's page faults.)

  torch_adam                   plain ``torch.optim.Adam(lr=1e-3)``.
  backpack_variance_mask_adam  BackPACK ``Variance`` in the same backward
                               pass, the hard mask q = 1[mu^2 > nu] applied to
                               ``p.grad``, then Adam.
  torch_func_vmap_mask_adam    per-example gradients materialised by
                               ``torch.func.vmap(torch.func.grad(...))``,
                               two-pass mean and variance, same mask, Adam.

Why. The number that matters is the overhead ratio, "SNR step / plain Adam
step", compared with the JAX ratio of ``benchmarks/step_time.py`` on the
same MLP. BackPACK is the established peer that returns a per-coordinate
gradient variance from one backward pass without materialising per-example
gradients (for ``Linear`` it contracts squared activations with squared
output gradients); the ``torch.func`` vmap path is the naive per-example
route, shown for context. Absolute times across frameworks are not
comparable; ratios on one machine are.

Conventions (those of ``snr_optax``): for per-example gradients g_1..g_b of
one coordinate (gradients of the per-example losses, so mean_i g_i equals the
gradient of the mean loss),

  mu     = (1/b) sum_i g_i
  sigma2 = (1/b) sum_i (g_i - mu)^2     (biased, within batch)
  nu     = sigma2 / (b - 1)
  q      = 1[mu^2 > nu]

``check_backpack_convention`` verifies BackPACK's mu and nu (after the
rescaling derived in ``_backpack_nu``) against a plain loop over examples,
and ``run`` refuses to time anything if they disagree.

The module imports without torch or BackPACK; ``available()`` says whether
both are importable.

  python benchmarks/torch_backpack.py --steps 20 [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings

__all__ = ['available', 'check_backpack_convention', 'run', 'main']

# Tolerance of ``run``'s guard on the BackPACK convention (float64 check).
_CONVENTION_TOL = 1e-6

# BackPACK's full backward hooks warn when the input needs no gradient.
_HOOK_WARNING = 'Full backward hook is firing'

VARIANTS = ('torch_adam', 'backpack_variance_mask_adam',
            'torch_func_vmap_mask_adam')


def available() -> bool:
  """Whether both ``torch`` and BackPACK (``backpack``) can be imported."""
  try:
    import torch  # pylint: disable=g-import-not-at-top,unused-import
    import backpack  # pylint: disable=g-import-not-at-top,unused-import
    from backpack.extensions import Variance  # pylint: disable=g-import-not-at-top,unused-import
  except Exception:  # pylint: disable=broad-except
    return False
  return True


def _versions() -> tuple[str, str]:
  import importlib.metadata  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  try:
    bp_version = importlib.metadata.version('backpack-for-pytorch')
  except importlib.metadata.PackageNotFoundError:
    import backpack  # pylint: disable=g-import-not-at-top
    bp_version = getattr(backpack, '__version__', 'unknown')
  return torch.__version__, bp_version


def _mlp(sizes, dtype=None):
  from torch import nn  # pylint: disable=g-import-not-at-top
  layers = []
  for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:])):
    if i:
      layers.append(nn.ReLU())
    layers.append(nn.Linear(m, n, dtype=dtype))
  return nn.Sequential(*layers)


def _batch(batch_size, d_in, n_classes, seed, dtype=None):
  import torch  # pylint: disable=g-import-not-at-top
  gen = torch.Generator().manual_seed(seed + 1)
  x = torch.randn(batch_size, d_in, generator=gen, dtype=dtype)
  y = torch.randint(0, n_classes, (batch_size,), generator=gen)
  return x, y


def _backpack_nu(variance, b: int):
  """Our nu from BackPACK's ``Variance`` of a *mean* loss over b examples.

  Derivation. For the mean loss L = (1/b) sum_i f_i, BackPACK's individual
  gradients are those of the summands, h_i = g_i / b, where g_i = grad f_i.
  Its ``Variance`` (``variance_base.VarianceBaseModule._variance_from``) is
  the biased one-pass variance of the h_i,

    V = sgs / N - (grad / N)^2,   sgs = sum_i h_i^2,  grad = sum_i h_i,  N = b
      = (1/b) sum_i h_i^2 - ((1/b) sum_i h_i)^2
      = (1/b^2) [ (1/b) sum_i g_i^2 - mu^2 ]  = sigma2 / b^2,

  with mu = (1/b) sum_i g_i = grad (= ``p.grad``). Hence sigma2 = b^2 V and
  nu = sigma2 / (b - 1) = V b^2 / (b - 1). (The one-pass form can come out
  slightly negative by cancellation; it is clamped at 0.)
  """
  return variance.clamp_min(0) * (b * b / (b - 1))


def _two_pass_mu_nu(per_example):
  """mu and nu = M2 / (b (b - 1)) over the leading (example) axis."""
  b = per_example.shape[0]
  mu = per_example.mean(0)
  m2 = (per_example - mu).square_().sum(0)
  return mu, m2 / (b * (b - 1))


def _vmap_per_example_grads(model, loss_fn, x, y):
  """Per-example gradients {name: (b, *shape)} via torch.func.vmap(grad)."""
  from torch import func  # pylint: disable=g-import-not-at-top
  params = {k: v.detach() for k, v in model.named_parameters()}

  def loss_one(p, xi, yi):
    out = func.functional_call(model, p, (xi.unsqueeze(0),))
    return loss_fn(out, yi.unsqueeze(0))

  return func.vmap(func.grad(loss_one), in_dims=(None, 0, 0))(params, x, y)


def check_backpack_convention(seed: int = 0) -> dict[str, float]:
  """Checks BackPACK's and the vmap path's mu, nu against a per-example loop.

  On a 5-7-3 MLP in float64 with batch 6, the reference computes each
  per-example gradient with ``torch.autograd.grad`` on that example's loss
  alone, then mu and nu = sigma2 / (b - 1) by two passes.

  Returns:
    ``{'backpack_mu': e, 'backpack_nu': e, 'vmap_mu': e, 'vmap_nu': e}``,
    each e the largest, over parameters, of max|est - ref| / max|ref|.
  """
  import torch  # pylint: disable=g-import-not-at-top
  from backpack import backpack, extend  # pylint: disable=g-import-not-at-top
  from backpack.extensions import Variance  # pylint: disable=g-import-not-at-top

  sizes, b, dtype = (5, 7, 3), 6, torch.float64
  torch.manual_seed(seed)
  model = _mlp(sizes, dtype=dtype)
  x, y = _batch(b, sizes[0], sizes[-1], seed, dtype=dtype)
  loss_fn = torch.nn.CrossEntropyLoss()
  names = [n for n, _ in model.named_parameters()]

  # Reference: one autograd.grad per example, on that example's loss.
  per_ex = {n: [] for n in names}
  for i in range(b):
    loss_i = loss_fn(model(x[i:i + 1]), y[i:i + 1])
    grads = torch.autograd.grad(loss_i, list(model.parameters()))
    for n, g in zip(names, grads):
      per_ex[n].append(g)
  ref = {n: _two_pass_mu_nu(torch.stack(per_ex[n])) for n in names}

  # torch.func vmap path (before extend, on the same weights).
  vg = _vmap_per_example_grads(model, loss_fn, x, y)
  vmap = {n: _two_pass_mu_nu(vg[n]) for n in names}

  # BackPACK.
  bp_model, bp_loss = extend(model), extend(torch.nn.CrossEntropyLoss())
  bp_model.zero_grad(set_to_none=True)
  loss = bp_loss(bp_model(x), y)
  with warnings.catch_warnings():
    warnings.filterwarnings('ignore', message=_HOOK_WARNING)
    with backpack(Variance()):
      loss.backward()
  bp = {n: (p.grad.detach().clone(), _backpack_nu(p.variance, b))
        for n, p in bp_model.named_parameters()}

  def rel(est, r):
    return float((est - r).abs().max() / r.abs().max().clamp_min(1e-300))

  out = {}
  for label, got in (('backpack', bp), ('vmap', vmap)):
    for k, what in enumerate(('mu', 'nu')):
      out[f'{label}_{what}'] = max(rel(got[n][k], ref[n][k]) for n in names)
  return out


def _make_steps(sizes, batch_size, seed):
  """The three training-step closures, each with its own model and Adam."""
  import copy  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from backpack import backpack, extend  # pylint: disable=g-import-not-at-top
  from backpack.extensions import Variance  # pylint: disable=g-import-not-at-top

  torch.manual_seed(seed)
  base = _mlp(sizes)
  x, y = _batch(batch_size, sizes[0], sizes[-1], seed)
  b = batch_size

  # Plain Adam.
  m_plain = copy.deepcopy(base)
  loss_plain = torch.nn.CrossEntropyLoss()
  opt_plain = torch.optim.Adam(m_plain.parameters(), lr=1e-3)

  def torch_adam():
    opt_plain.zero_grad(set_to_none=True)
    loss = loss_plain(m_plain(x), y)
    loss.backward()
    opt_plain.step()

  # BackPACK Variance + hard mask + Adam.
  m_bp = extend(copy.deepcopy(base))
  loss_bp = extend(torch.nn.CrossEntropyLoss())
  opt_bp = torch.optim.Adam(m_bp.parameters(), lr=1e-3)
  variance_ext = Variance()
  factor = b * b / (b - 1)  # nu = V b^2 / (b - 1), see _backpack_nu.

  def backpack_variance_mask_adam():
    opt_bp.zero_grad(set_to_none=True)
    loss = loss_bp(m_bp(x), y)
    with backpack(variance_ext):
      loss.backward()
    with torch.no_grad():
      for p in m_bp.parameters():
        nu = p.variance.clamp_min(0).mul_(factor)
        q = p.grad.square() > nu  # mu = p.grad
        p.grad.mul_(q)
    opt_bp.step()

  # torch.func vmap per-example gradients + two-pass stats + mask + Adam.
  m_vmap = copy.deepcopy(base)
  loss_vmap = torch.nn.CrossEntropyLoss()
  opt_vmap = torch.optim.Adam(m_vmap.parameters(), lr=1e-3)
  vmap_params = dict(m_vmap.named_parameters())

  def torch_func_vmap_mask_adam():
    opt_vmap.zero_grad(set_to_none=True)
    per_ex = _vmap_per_example_grads(m_vmap, loss_vmap, x, y)
    with torch.no_grad():
      for n, g in per_ex.items():
        mu, nu = _two_pass_mu_nu(g)
        vmap_params[n].grad = mu.mul_(mu.square() > nu)
    opt_vmap.step()

  return {'torch_adam': torch_adam,
          'backpack_variance_mask_adam': backpack_variance_mask_adam,
          'torch_func_vmap_mask_adam': torch_func_vmap_mask_adam}


def run(batch_size: int = 256,
        sizes: tuple[int, ...] = (784, 512, 512, 10),
        steps: int = 30,
        warmup: int = 5,
        threads: int | None = None,
        seed: int = 0) -> dict:
  """Times the three PyTorch steps on CPU; see the module docstring.

  Args:
    batch_size: b, at least 2.
    sizes: layer widths of the MLP, input first, classes last.
    steps: timed steps per variant (median reported), at least 1.
    warmup: untimed steps per variant before timing.
    threads: if given, ``torch.set_num_threads(threads)`` for the run (the
      previous setting is restored afterwards); else left as is.
    seed: seed of the weights and the batch.

  Returns:
    ``{'torch_version', 'backpack_version', 'threads', 'batch_size', 'sizes',
    'steps', 'warmup', 'convention_check', 'seconds_per_step': {name: s},
    'ratio_to_plain': {name: s / s_torch_adam}}``, names as in ``VARIANTS``.

  Raises:
    RuntimeError: if BackPACK's mu or nu, rescaled to our convention,
      disagree with the per-example loop by more than 1e-6 (relative).
  """
  if batch_size < 2:
    raise ValueError(f'batch_size must be >= 2, got {batch_size}')
  if steps < 1:
    raise ValueError(f'steps must be >= 1, got {steps}')

  with warnings.catch_warnings():
    warnings.filterwarnings('ignore', message=_HOOK_WARNING)
    return _run(batch_size, sizes, steps, warmup, threads, seed)


def _run(batch_size, sizes, steps, warmup, threads, seed):
  import torch  # pylint: disable=g-import-not-at-top
  check = check_backpack_convention(seed)
  worst = max(check.values())
  if not worst <= _CONVENTION_TOL:
    raise RuntimeError(
        'BackPACK Variance convention check failed (max relative error '
        f'{worst:.3g} > {_CONVENTION_TOL}): {check}')

  previous_threads = torch.get_num_threads()
  if threads is not None:
    torch.set_num_threads(threads)
  try:
    n_threads = torch.get_num_threads()
    fns = _make_steps(tuple(sizes), batch_size, seed)
    # One variant at a time, not interleaved: the vmap step allocates and
    # frees ~0.7 GB of per-example gradients; interleaving makes the next
    # variant pay the allocator's page faults (10x on plain Adam, measured).
    times = {}
    for name, fn in fns.items():
      for _ in range(warmup):
        fn()
      times[name] = []
      for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times[name].append(time.perf_counter() - t0)
  finally:
    if threads is not None:
      torch.set_num_threads(previous_threads)

  medians = {name: statistics.median(ts) for name, ts in times.items()}
  plain = medians['torch_adam']
  torch_version, backpack_version = _versions()
  return {
      'torch_version': torch_version,
      'backpack_version': backpack_version,
      'threads': n_threads,
      'batch_size': batch_size,
      'sizes': list(sizes),
      'steps': steps,
      'warmup': warmup,
      'convention_check': check,
      'seconds_per_step': medians,
      'ratio_to_plain': {name: m / plain for name, m in medians.items()},
  }


def main(argv=None) -> dict | None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch_size', type=int, default=256)
  parser.add_argument('--steps', type=int, default=30)
  parser.add_argument('--warmup', type=int, default=5)
  parser.add_argument('--threads', type=int, default=None)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--json', default=None, help='write the result here')
  args = parser.parse_args(argv)

  if not available():
    print('torch and/or backpack-for-pytorch are not installed; nothing run.')
    return None
  result = run(batch_size=args.batch_size, steps=args.steps,
               warmup=args.warmup, threads=args.threads, seed=args.seed)

  print(f'torch {result["torch_version"]}, BackPACK '
        f'{result["backpack_version"]}, {result["threads"]} threads, '
        f'batch {result["batch_size"]}, MLP {result["sizes"]}, '
        f'median of {result["steps"]} steps')
  print('convention check (max rel. err. vs per-example loop): ' + ', '.join(
      f'{k} {v:.1e}' for k, v in result['convention_check'].items()))
  print(f'{"variant":30s} {"ms/step":>10s} {"x plain":>8s}')
  for name, s in result['seconds_per_step'].items():
    print(f'{name:30s} {s * 1e3:10.2f} {result["ratio_to_plain"][name]:8.2f}')
  if args.json:
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, 'w') as f:
      json.dump(result, f, indent=2)
  return result


if __name__ == '__main__':
  main()
