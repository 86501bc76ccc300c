"""Decoding every accepted input kind into one form: an RGB ``uint8`` array (H, W, 3).

Conventions (the same as ModelScope's ``LoadImage``, which the scores are checked against):

- a path or URL is decoded with Pillow, its EXIF orientation applied, converted to RGB
  (alpha dropped, palette and greyscale expanded, 16-bit reduced by Pillow);
- a ``PIL.Image`` is converted to RGB as it is (no EXIF rotation: it was already opened);
- a numpy array is **BGR** (OpenCV's order): (H, W) and (H, W, 1) are grey, (H, W, 3) is
  BGR, (H, W, 4) is BGRA whose alpha is dropped after resizing (it is carried as a
  fourth channel until then: ModelScope resizes four channels, and OpenCV's
  four-channel bicubic rounds a few pixels differently from its three-channel one). ``uint8`` is taken as is, ``uint16`` is
  mapped to 8 bits by ``round(v / 257)``, floats must lie in [0, 1] and are mapped by
  ``round(v * 255)``.
"""
from __future__ import annotations

import io
import os
import urllib.error
import urllib.request
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import UnreadableImageError, UnsupportedArrayError

ImageInput = Union[str, os.PathLike, Image.Image, np.ndarray]

URL_SCHEMES = ('http://', 'https://')
URL_TIMEOUT_S = 30.0
UINT16_TO_UINT8 = 257.0


def load_rgb(image: ImageInput) -> np.ndarray:
    """Decode ``image`` (see the module docstring) to an RGB uint8 array (H, W, 3),
    or (H, W, 4) RGB plus the alpha of a BGRA array, which the caller drops."""
    if isinstance(image, (str, os.PathLike)):
        return _decode(os.fspath(image))
    if isinstance(image, Image.Image):
        return np.asarray(image.convert('RGB'))
    if isinstance(image, np.ndarray):
        return _bgr_array_to_rgb(image)
    raise TypeError('expected a path, URL, PIL.Image or numpy array, '
                    f'got {type(image).__name__}')


def describe(image: ImageInput) -> str:
    """A short name for ``image`` to put in error messages and reports."""
    if isinstance(image, (str, os.PathLike)):
        return repr(os.fspath(image))
    if isinstance(image, np.ndarray):
        return f'<array {image.shape} {image.dtype}>'
    if isinstance(image, Image.Image):
        return f'<PIL.Image {image.mode} {image.size[0]}x{image.size[1]}>'
    return f'<{type(image).__name__}>'


def _read_source(source: str):
    """An open binary file object for a local path or an http(s) URL."""
    if source.startswith(URL_SCHEMES):
        try:
            with urllib.request.urlopen(source, timeout=URL_TIMEOUT_S) as response:
                return io.BytesIO(response.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise UnreadableImageError(f'{source!r}: cannot fetch URL ({exc})') from exc
    if not os.path.exists(source):
        raise UnreadableImageError(f'{source!r}: no such file')
    if os.path.isdir(source):
        raise UnreadableImageError(f'{source!r}: is a directory, not an image')
    if os.path.getsize(source) == 0:
        raise UnreadableImageError(f'{source!r}: empty file')
    try:
        return open(source, 'rb')
    except OSError as exc:
        raise UnreadableImageError(f'{source!r}: cannot open ({exc})') from exc


def _decode(source: str) -> np.ndarray:
    with _read_source(source) as stream:
        try:
            with Image.open(stream) as opened:
                oriented = ImageOps.exif_transpose(opened)
                return np.asarray(oriented.convert('RGB'))
        except Image.DecompressionBombError as exc:
            raise UnreadableImageError(
                f'{source!r}: refused, too many pixels ({exc})') from exc
        except UnidentifiedImageError as exc:
            raise UnreadableImageError(
                f'{source!r}: not a recognised image format') from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            # Pillow reports truncated or corrupt data with these types.
            raise UnreadableImageError(f'{source!r}: corrupt image ({exc})') from exc


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return np.rint(array / UINT16_TO_UINT8).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise UnsupportedArrayError(
                f'{describe(array)}: contains NaN or infinite values')
        low, high = float(array.min(initial=0.0)), float(array.max(initial=0.0))
        if low < 0.0 or high > 1.0:
            raise UnsupportedArrayError(
                f'{describe(array)}: float images must lie in [0, 1], '
                f'got values in [{low}, {high}]')
        return np.rint(array * 255.0).astype(np.uint8)
    raise UnsupportedArrayError(
        f'{describe(array)}: dtype must be uint8, uint16 or float in [0, 1]')


def _bgr_array_to_rgb(array: np.ndarray) -> np.ndarray:
    if array.size == 0:
        raise UnsupportedArrayError(f'{describe(array)}: empty array')
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        grey = _to_uint8(array)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if array.ndim == 3 and array.shape[2] == 3:
        return np.ascontiguousarray(_to_uint8(array[:, :, ::-1]))
    if array.ndim == 3 and array.shape[2] == 4:
        return np.ascontiguousarray(_to_uint8(array[:, :, [2, 1, 0, 3]]))
    raise UnsupportedArrayError(
        f'{describe(array)}: expected shape (H, W), (H, W, 1), (H, W, 3) BGR '
        'or (H, W, 4) BGRA')
