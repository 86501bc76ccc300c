"""Decoding every accepted input kind into one form, :class:`Pixels`: a ``uint8`` array
(H, W, 3) whose channel order is stated, kept as the source gives it (OpenCV and numpy
arrays BGR, Pillow RGB) so that no copy is spent reordering; the crop puts the
channels in the network's order in the same pass (:mod:`.crop`).

Conventions (the same as ModelScope's ``LoadImage``, which the scores are checked against):

- a path or URL is decoded with Pillow, its EXIF orientation applied, converted to RGB
  (alpha dropped, palette and greyscale expanded, 16-bit reduced by Pillow). Local
  files that OpenCV decodes to the same pixels (complete 8-bit JPEG and PNG files in
  RGB, RGBA or grey, without EXIF; Pillow reads the header first) are decoded by OpenCV
  instead, in BGR: about twice as fast for JPEG, and straight into one pixel buffer,
  which keeps a 48 MP photo's peak memory near its 144 MB of pixels (Pillow makes
  three copies). ``tests/test_decoding.py`` checks that the pixels are the same;
- a ``PIL.Image`` is converted to RGB as it is (no EXIF rotation: it was already opened);
- a numpy array is **BGR** (OpenCV's order) and stays so: (H, W) and (H, W, 1) are grey,
  (H, W, 3) is BGR, (H, W, 4) is BGRA whose alpha is dropped after resizing (it is carried as a
  fourth channel until then: ModelScope resizes four channels, and OpenCV's
  four-channel bicubic rounds a few pixels differently from its three-channel one).
  ``uint8`` is taken as is, ``uint16`` is mapped to 8 bits by ``round(v / 257)``,
  floats must lie in [0, 1] and are mapped by ``round(v * 255)``.

Training code that degrades photos works in RGB (Pillow's JPEG encoder takes RGB):
:meth:`Pixels.rgb` gives that order.
"""
from __future__ import annotations

import http.client
import io
import os
import threading
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from typing import Tuple, Union

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import UnreadableImageError, UnsupportedArrayError



@dataclass(frozen=True)
class EncodedImage:
    """An image file's bytes held in memory (a Parquet cell, a WebDataset member),
    decoded as the file would be; ``name`` names it in errors and results."""
    name: str
    data: bytes


ImageInput = Union[str, os.PathLike, Image.Image, np.ndarray, EncodedImage]

URL_SCHEMES = ('http://', 'https://')
# A URL's whole download (connection, answer, body) must end within this many seconds,
# and its body must not exceed this many bytes; the environment variables override them.
URL_TIMEOUT_S = 30.0
URL_MAX_BYTES = 200 * 2**20
URL_TIMEOUT_ENV = 'MODELSCOPE_IQA_URL_TIMEOUT'
URL_MAX_BYTES_ENV = 'MODELSCOPE_IQA_URL_MAX_BYTES'
URL_CHUNK = 1 << 16
UINT16_TO_UINT8 = 257.0
EXIF_ORIENTATION = 0x0112
# (format, raw mode of the file) that OpenCV's IMREAD_COLOR decodes to Pillow's pixels.
OPENCV_SAME_PIXELS = frozenset({('JPEG', 'RGB'), ('JPEG', 'L'), ('PNG', 'RGB'),
                                ('PNG', 'RGBA'), ('PNG', 'L')})
PNG_SIGNATURE_SIZE = 8
# How complete files end. OpenCV decodes a truncated file to grey rows without an error,
# so a file that does not end so is left to Pillow, which refuses it.
FILE_ENDINGS = {'JPEG': b'\xff\xd9', 'PNG': b'IEND\xae\x42\x60\x82'}


@dataclass(frozen=True)
class Pixels:
    """Decoded pixels: ``array`` is uint8 (H, W, 3), or (H, W, 4) whose fourth channel is
    the alpha of a BGRA array (resized with the others, dropped after the crop);
    ``order`` names the first three channels, ``'RGB'`` or ``'BGR'``."""
    array: np.ndarray
    order: str

    def rgb(self) -> np.ndarray:
        """The three colour channels in RGB order, (H, W, 3) uint8, contiguous."""
        colour = self.array[:, :, :3] if self.order == 'RGB' else self.array[:, :, 2::-1]
        return np.ascontiguousarray(colour)


def decode(image: ImageInput) -> Pixels:
    """Decode ``image`` (see the module docstring)."""
    if isinstance(image, (str, os.PathLike)):
        return _decode(os.fspath(image))
    if isinstance(image, EncodedImage):
        return _decode_encoded(image)
    if isinstance(image, Image.Image):
        return Pixels(np.asarray(image.convert('RGB')), 'RGB')
    if isinstance(image, np.ndarray):
        return Pixels(_bgr_array_pixels(image), 'BGR')
    raise TypeError('expected a path, URL, EncodedImage, PIL.Image or numpy array, '
                    f'got {type(image).__name__}')


def describe(image: ImageInput) -> str:
    """A short name for ``image`` to put in error messages and reports."""
    if isinstance(image, (str, os.PathLike)):
        return repr(os.fspath(image))
    if isinstance(image, EncodedImage):
        return repr(image.name)
    if isinstance(image, np.ndarray):
        return f'<array {image.shape} {image.dtype}>'
    if isinstance(image, Image.Image):
        return f'<PIL.Image {image.mode} {image.size[0]}x{image.size[1]}>'
    return f'<{type(image).__name__}>'


def url_limits() -> Tuple[float, int]:
    """(timeout in seconds, largest body in bytes) for URL inputs: ``URL_TIMEOUT_S`` and
    ``URL_MAX_BYTES`` unless ``$MODELSCOPE_IQA_URL_TIMEOUT`` or
    ``$MODELSCOPE_IQA_URL_MAX_BYTES`` say otherwise."""
    try:
        timeout = float(os.environ.get(URL_TIMEOUT_ENV, URL_TIMEOUT_S))
        max_bytes = int(os.environ.get(URL_MAX_BYTES_ENV, URL_MAX_BYTES))
    except ValueError as exc:
        raise ValueError(f'{URL_TIMEOUT_ENV} must be a number of seconds and '
                         f'{URL_MAX_BYTES_ENV} a number of bytes ({exc})') from exc
    if not (timeout > 0 and max_bytes > 0):
        raise ValueError(f'{URL_TIMEOUT_ENV} and {URL_MAX_BYTES_ENV} must be positive')
    return timeout, max_bytes


def _deadline_error(url: str, timeout: float) -> UnreadableImageError:
    """The error for a server that gave no complete answer in time, whichever clock saw
    it first: the deadline in :func:`_fetch_url` or the socket's own timeout."""
    return UnreadableImageError(f'{url!r}: no complete answer within {timeout:g} s '
                                f'(the limit; {URL_TIMEOUT_ENV} sets it)')


def _download(url: str, max_bytes: int, outcome: dict, cancelled: threading.Event,
              timeout: float) -> None:
    """Fetch ``url`` into ``outcome['data']`` (or ``outcome['error']``), reading in
    chunks so that a body over ``max_bytes`` or a cancelled download stops early."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            declared = response.headers.get('Content-Length')
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise UnreadableImageError(
                    f'{url!r}: refused, the server announces {int(declared)} bytes, more '
                    f'than the limit of {max_bytes} ({URL_MAX_BYTES_ENV})')
            data = bytearray()
            while not cancelled.is_set():
                chunk = response.read1(URL_CHUNK)
                if not chunk:
                    outcome['data'] = bytes(data)
                    return
                data += chunk
                if len(data) > max_bytes:
                    raise UnreadableImageError(
                        f'{url!r}: refused after {len(data)} bytes, more than the limit '
                        f'of {max_bytes} ({URL_MAX_BYTES_ENV})')
    except UnreadableImageError as exc:
        outcome['error'] = exc
    except TimeoutError:
        outcome['error'] = _deadline_error(url, timeout)
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        if isinstance(getattr(exc, 'reason', None), TimeoutError):  # connect timed out
            outcome['error'] = _deadline_error(url, timeout)
        else:
            outcome['error'] = UnreadableImageError(f'{url!r}: cannot fetch URL ({exc})')


def _fetch_url(url: str) -> io.BytesIO:
    """The body of ``url``, within the limits of :func:`url_limits`. The download runs
    in a thread that is given up at the deadline, however the server stalls: no answer,
    headers or body trickling a byte at a time, a body that never ends."""
    timeout, max_bytes = url_limits()
    outcome: dict = {}
    cancelled = threading.Event()
    worker = threading.Thread(target=_download, daemon=True, name='modelscope-iqa-url',
                              args=(url, max_bytes, outcome, cancelled, timeout))
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        cancelled.set()  # it stops at its next chunk, or when its socket times out
        raise _deadline_error(url, timeout)
    if 'error' in outcome:
        raise outcome['error']
    return io.BytesIO(outcome['data'])


def _read_source(source: str):
    """An open binary file object for a local path or an http(s) URL."""
    if source.startswith(URL_SCHEMES):
        return _fetch_url(source)
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


def _png_has_exif(stream) -> bool:
    """Whether a PNG file has an eXIf chunk, found by walking the chunk headers (seeks,
    no pixel data read). Pillow's ``getexif`` on a PNG decodes the whole image to look
    for one after the pixel data."""
    stream.seek(PNG_SIGNATURE_SIZE)
    while True:
        header = stream.read(8)
        if len(header) < 8:
            return False
        length, kind = int.from_bytes(header[:4], 'big'), header[4:]
        if kind == b'eXIf':
            return True
        if kind == b'IEND':
            return False
        stream.seek(length + 4, io.SEEK_CUR)  # data and CRC


def _opencv_decodable(opened: Image.Image, stream) -> bool:
    if len(opened.tile) != 1 or getattr(opened, 'n_frames', 1) != 1:
        return False
    raw_mode = opened.tile[0].args  # PNG: 'RGB', 'RGB;16B', ...; JPEG: ('RGB', '')
    if isinstance(raw_mode, tuple):
        raw_mode = raw_mode[0]
    if (opened.format, raw_mode) not in OPENCV_SAME_PIXELS or opened.mode != raw_mode:
        return False
    ending = FILE_ENDINGS[opened.format]
    stream.seek(-len(ending), io.SEEK_END)
    if stream.read(len(ending)) != ending:
        return False
    if opened.format == 'PNG':
        return not _png_has_exif(stream)
    return opened.getexif().get(EXIF_ORIENTATION, 1) == 1


OPENCV_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION


def _decode(source: str) -> Pixels:
    with _read_source(source) as stream:
        if source.startswith(URL_SCHEMES):
            return _decode_stream(stream, source, None)
        # decoded straight into our array: imread's own result is a copy
        return _decode_stream(stream, source,
                              lambda into: cv2.imread(source, into, OPENCV_FLAGS))


def _decode_encoded(image: EncodedImage) -> Pixels:
    """Bytes decode as their file does: OpenCV's imdecode is imread's decoder (it
    allocates its own array: it takes none to decode into)."""
    if not image.data:
        raise UnreadableImageError(f'{image.name!r}: empty file')
    buffer = np.frombuffer(image.data, np.uint8)
    return _decode_stream(io.BytesIO(image.data), image.name,
                          lambda into: cv2.imdecode(buffer, OPENCV_FLAGS))


def _decode_stream(stream, source: str, opencv_decode) -> Pixels:
    """Decode the image in ``stream`` (named ``source``): with ``opencv_decode(into)``
    when OpenCV gives Pillow's pixels for it (faster), else with Pillow."""
    with warnings.catch_warnings():
        # Pillow only warns between its limit and twice it; above the limit is refused
        # here, from the header, before any pixel memory is allocated.
        warnings.simplefilter('error', Image.DecompressionBombWarning)
        try:
            with Image.open(stream) as opened:
                if opencv_decode is not None and _opencv_decodable(opened, stream):
                    width, height = opened.size
                    array = opencv_decode(np.empty((height, width, 3), np.uint8))
                    if array is not None and array.size:  # else Pillow reports the fault
                        return Pixels(array, 'BGR')
                oriented = ImageOps.exif_transpose(opened)
                return Pixels(np.asarray(oriented.convert('RGB')), 'RGB')
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise UnreadableImageError(
                f'{source!r}: refused, more pixels than the decompression-bomb limit '
                f'of {Image.MAX_IMAGE_PIXELS} ({exc})') from exc
        except UnidentifiedImageError as exc:
            raise UnreadableImageError(
                f'{source!r}: not a recognised image format') from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            # Pillow reports truncated or corrupt data with these types.
            raise UnreadableImageError(f'{source!r}: corrupt image ({exc})') from exc
        except MemoryError as exc:
            raise UnreadableImageError(f'{source!r}: too large to decode') from exc
        except Exception as exc:  # a decoder's bug on hostile bytes is still a bad input
            raise UnreadableImageError(
                f'{source!r}: cannot decode ({type(exc).__name__}: {exc})') from exc


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


def _bgr_array_pixels(array: np.ndarray) -> np.ndarray:
    """A BGR(A) or grey array as uint8 (H, W, 3) BGR or (H, W, 4) BGRA."""
    if array.size == 0:
        raise UnsupportedArrayError(f'{describe(array)}: empty array')
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        grey = _to_uint8(array)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return np.ascontiguousarray(_to_uint8(array))
    raise UnsupportedArrayError(
        f'{describe(array)}: expected shape (H, W), (H, W, 1), (H, W, 3) BGR '
        'or (H, W, 4) BGRA')
