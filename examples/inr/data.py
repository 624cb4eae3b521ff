# Copyright 2026 The snr_optax Authors.
# SPDX-License-Identifier: Apache-2.0
"""An image as a regression task: pixel coordinates -> noisy intensities.

Every pixel is one example: its input is the coordinate of its centre in
[-1, 1]^2, its target the image's intensity there plus seeded Gaussian
noise. The image is ``skimage.data.camera()`` by default (it ships with
scikit-image, so nothing is downloaded), any other ``skimage.data`` image
(``skimage:astronaut``) or a file read with ``skimage.io.imread`` (PNG, JPEG,
TIFF, ...: whatever imageio reads), grey or RGB.

Only numpy and scikit-image are imported: the config checks read the image
with these functions before JAX is loaded.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import warnings

import numpy as np

# The default image: the cameraman, 512 x 512 grey.
DEFAULT_IMAGE = 'skimage:camera'
SKIMAGE_PREFIX = 'skimage:'
# Independent random streams of one seed (np.random.default_rng([seed, k])).
NOISE_STREAM = 1
HOLDOUT_STREAM = 2
# The batch order's epochs: default_rng([seed, BATCH_STREAM, epoch])
# (loop.batch_indices' stream). Without the middle word epoch 1 drew from
# the noise's stream and epoch 2 from the held-out pixels' (a run on every
# pixel began epoch 2 with exactly the held-out pixels).
BATCH_STREAM = 0x696E72   # 'inr'


@dataclasses.dataclass(frozen=True)
class Image:
  """One image task: the clean and noisy image, coordinates, the held-out set.

  Attributes:
    clean: [side, side, channels] float32 in [0, 1].
    noisy: the same plus Gaussian noise of the stated sigma, not clipped
      (clipping would bias the noise and lower its variance near 0 and 1).
    coords: [side * side, 2] float32: (row, column) of each pixel's centre,
      in (-1, 1), row-major like ``clean.reshape(-1, channels)``.
    holdout: [side * side] bool: the held-out pixels.
  """
  clean: np.ndarray
  noisy: np.ndarray
  coords: np.ndarray
  holdout: np.ndarray

  @property
  def side(self) -> int:
    return self.clean.shape[0]

  @property
  def channels(self) -> int:
    return self.clean.shape[2]

  @property
  def clean_targets(self) -> np.ndarray:
    """[pixels, channels], in the order of ``coords``."""
    return self.clean.reshape(-1, self.channels)

  @property
  def noisy_targets(self) -> np.ndarray:
    return self.noisy.reshape(-1, self.channels)


def _first_line(error: BaseException) -> str:
  """An error's first line, without backticks (one clean line of ours).

  imageio quotes in unbalanced backticks ("to open `x.png`` with iomode
  `r`").
  """
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  return (lines[0] if lines else type(error).__name__).replace('`', '')


# Integer images whose [0, 1] scale is unambiguous: 0 to the dtype's maximum
# (PNG, JPEG and most TIFFs hold these). A signed or wider integer image
# (an int16 or int32 TIFF) has no such scale: skimage would map int16 to
# [-1, 1] (negative intensities, clipped or not depending on the resize) and
# an int32 image of 16-bit values to about 1e-5 (black), silently.
_INTEGER_DTYPES = (np.dtype(bool), np.dtype(np.uint8), np.dtype(np.uint16))


def _as_float(image: np.ndarray) -> np.ndarray:
  """float32 in [0, 1] of a boolean, 8- or 16-bit unsigned or float image.

  Raises:
    ValueError: another dtype, or a float image with values outside
      [0, 1] or not finite (NaN or infinity).
  """
  from skimage import util  # pylint: disable=g-import-not-at-top
  if image.dtype.kind == 'f':
    image = image.astype(np.float32)
    finite = np.isfinite(image)
    if not finite.all():
      raise ValueError(f'a float image must be finite, this one holds '
                       f'{int((~finite).sum())} NaN or infinite values')
    if image.size and (image.min() < 0 or image.max() > 1):
      raise ValueError(f'a float image must lie in [0, 1], this one spans '
                       f'[{image.min():g}, {image.max():g}]')
    return image
  if image.dtype not in _INTEGER_DTYPES:
    span = (f' ({image.min()} to {image.max()})'
            if image.size and image.dtype.kind in 'iu' else '')
    raise ValueError(f'an image of {image.dtype} values{span} has no [0, 1] '
                     'scale; give an 8- or 16-bit unsigned integer image or '
                     'a float image in [0, 1]')
  return util.img_as_float32(image)


def _channels(image: np.ndarray) -> np.ndarray:
  """[h, w, 1] (grey) or [h, w, 3] (RGB); alpha is dropped."""
  if image.ndim == 2:
    return image[..., None]
  if image.ndim == 3 and image.shape[2] in (1, 3):
    return image
  if image.ndim == 3 and image.shape[2] in (2, 4):   # grey/RGB + alpha
    return image[..., :image.shape[2] - 1]
  raise ValueError(f'an image of shape {image.shape} is neither grey (h, w) '
                   'nor RGB(A) (h, w, 3 or 4)')


def read(spec: str) -> np.ndarray:
  """The image ``spec`` names, float32 [h, w, 1 or 3] in [0, 1].

  Args:
    spec: ``skimage:<name>`` (a function of ``skimage.data`` that ships
      with scikit-image, e.g. ``camera``, ``astronaut``) or a file path.

  Raises:
    ValueError: one line: no such skimage image, a path that cannot be read
      as an image, or an array that is not a grey or RGB image.
  """
  return _read(spec, *_stamp(spec)).copy()


def _stamp(spec: str):
  """The file's modification time and size: a cache key that sees edits."""
  if spec.startswith(SKIMAGE_PREFIX):
    return 0.0, 0
  try:
    stat = os.stat(spec)
  except OSError:
    return 0.0, -1
  return stat.st_mtime, stat.st_size


@functools.lru_cache(maxsize=8)
def _read(spec: str, mtime: float, size: int) -> np.ndarray:
  del mtime, size   # cache key only
  if spec.startswith(SKIMAGE_PREFIX):
    from skimage import data as skdata  # pylint: disable=g-import-not-at-top
    name = spec[len(SKIMAGE_PREFIX):]
    loader = getattr(skdata, name, None)
    if name.startswith('_') or not callable(loader):
      raise ValueError(f'skimage.data has no image {name!r} (e.g. '
                       'skimage:camera, skimage:astronaut)')
    try:
      image = np.asarray(loader())
    except Exception as e:  # pylint: disable=broad-except
      raise ValueError(f'skimage.data.{name}() failed: '
                       f'{_first_line(e)}') from None
  else:
    if not spec:
      raise ValueError('is empty; give skimage:<name> (e.g. skimage:camera) '
                       'or the path of an image file')
    if not os.path.isfile(spec):
      reason = ('is a directory' if os.path.isdir(spec) else
                'not a regular file' if os.path.exists(spec) else
                'no such file')
      raise ValueError(f'cannot read {spec} as an image: {reason}')
    from skimage import io  # pylint: disable=g-import-not-at-top
    try:
      with warnings.catch_warnings():
        # imageio tries its plugins in turn; some warn of their own
        # deprecation on the way, which says nothing about this file.
        warnings.simplefilter('ignore', DeprecationWarning)
        image = np.asarray(io.imread(spec))
    except Exception as e:  # pylint: disable=broad-except
      reason = _first_line(e)
      if reason.startswith('Could not find a backend'):
        # imageio's words for a file none of its plugins recognises.
        reason = ('not in a format imageio reads (PNG, JPEG, TIFF, BMP, '
                  '...)')
      raise ValueError(f'cannot read {spec} as an image: {reason}') from None
  try:
    return _as_float(_channels(image))
  except ValueError as e:
    raise ValueError(f'{spec}: {e}') from None


def fingerprint(spec: str) -> str:
  """SHA-256 (hex) of the pixels ``read(spec)`` gives, and of their shape.

  A run records it, so that resuming it on an image file changed in place
  (the same path, other pixels) is refused rather than silently fitting
  another image.
  """
  image = read(spec)
  digest = hashlib.sha256(repr(image.shape).encode())
  digest.update(np.ascontiguousarray(image, np.float32).tobytes())
  return digest.hexdigest()


def resize(image: np.ndarray, side: int) -> np.ndarray:
  """The centre square of ``image``, resized to side x side (anti-aliased).

  Raises:
    ValueError: the image's shorter side is below ``side`` (the example
      never upsamples: it would fit an interpolation, not an image).
  """
  h, w = image.shape[:2]
  if min(h, w) < side:
    raise ValueError(f'the image is {h} x {w} pixels, smaller than '
                     f'config.side={side}; give a smaller side or a larger '
                     'image')
  top, left = (h - min(h, w)) // 2, (w - min(h, w)) // 2
  square = image[top:top + min(h, w), left:left + min(h, w)]
  if square.shape[0] == side:
    return square.astype(np.float32)
  from skimage import transform  # pylint: disable=g-import-not-at-top
  out = transform.resize(square, (side, side), order=1, anti_aliasing=True,
                         mode='reflect')
  # Linear interpolation of a smoothed image stays in [0, 1] up to rounding.
  return np.clip(out, 0.0, 1.0).astype(np.float32)


def coordinates(side: int) -> np.ndarray:
  """[side * side, 2] float32: pixel centres (2k + 1) / side - 1, row-major."""
  centres = (2 * np.arange(side, dtype=np.float64) + 1) / side - 1
  rows, cols = np.meshgrid(centres, centres, indexing='ij')
  return np.stack([rows.ravel(), cols.ravel()], axis=1).astype(np.float32)


def num_holdout(pixels: int, fraction: float) -> int:
  """How many pixels are held out: round(fraction * pixels), at least 1."""
  return max(1, int(round(fraction * pixels)))


def holdout_mask(pixels: int, fraction: float, seed: int) -> np.ndarray:
  """A seeded random set of ``num_holdout`` pixels, as a boolean mask."""
  order = np.random.default_rng([seed, HOLDOUT_STREAM]).permutation(pixels)
  mask = np.zeros(pixels, bool)
  mask[order[:num_holdout(pixels, fraction)]] = True
  return mask


def add_noise(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
  """``clean`` plus N(0, sigma^2) per value, seeded, not clipped."""
  noise = np.random.default_rng([seed, NOISE_STREAM]).normal(
      0.0, sigma, clean.shape)
  return (clean + noise).astype(np.float32)


def make_image(spec: str, side: int, noise_sigma: float,
               holdout_fraction: float, seed: int) -> Image:
  """The task of one run: the image, its noise and held-out pixels.

  Raises:
    ValueError: as ``read`` and ``resize``.
  """
  clean = resize(read(spec), side)
  return Image(clean=clean, noisy=add_noise(clean, noise_sigma, seed),
               coords=coordinates(side),
               holdout=holdout_mask(side * side, holdout_fraction, seed))


def psnr(prediction: np.ndarray, target: np.ndarray) -> float:
  """Peak signal-to-noise ratio in dB for data range 1: 10 log10(1 / MSE).

  Computed in float64; +inf for an exact match.
  """
  mse = np.mean(np.square(np.asarray(prediction, np.float64)
                          - np.asarray(target, np.float64)))
  return float('inf') if mse == 0 else float(-10 * np.log10(mse))
