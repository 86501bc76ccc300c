"""From decoded pixels to the network's uint8 crop, as the hub model was trained:

1. a portrait image (taller than wide) uses the landscape sizes transposed;
2. resize, keeping the aspect ratio, to the smallest size that covers ``resize_size``
   (bicubic, target size rounded up);
3. take the centre ``crop_size`` window (training: a random window, mirrored half of
   the time);
4. rotate a portrait crop 90 degrees counter-clockwise, so every crop is landscape and
   a batch can mix orientations;
5. put the channels in ``channel_order`` (``BGR`` for the hub model), whatever order
   the pixels were decoded in, and drop an alpha channel.

The result is uint8 (crop_h, crop_w, 3), a quarter of the bytes of floats; the network
side scales it to [0, 1] (:mod:`.scale`, no mean/std).
"""
import math
from typing import Optional, Tuple

import cv2
import numpy as np

from ..config import PreprocessConfig
from .decoding import Pixels

CV2_INTERPOLATION = {'bicubic': cv2.INTER_CUBIC}


def cover_size(height: int, width: int, target_height: int,
               target_width: int) -> Tuple[int, int]:
    """The (height, width) that keeps the aspect ratio and covers the target size."""
    scale = max(target_width / width, target_height / height)
    return int(math.ceil(scale * height)), int(math.ceil(scale * width))


def oriented(size: Tuple[int, int], portrait: bool) -> Tuple[int, int]:
    """A landscape (height, width) as it applies to a portrait or landscape image."""
    return (size[1], size[0]) if portrait else (size[0], size[1])


def is_portrait(height: int, width: int, config: PreprocessConfig) -> bool:
    """Whether an image is oriented against the configured (landscape) sizes."""
    resize_h, resize_w = config.resize_size
    return (width - height) * (resize_w - resize_h) < 0


def centre_offsets(resized_shape: Tuple[int, ...],
                   crop_size: Tuple[int, int]) -> Tuple[int, int]:
    """(top, left) of the centre ``crop_size`` window of an image of ``resized_shape``."""
    return (resized_shape[0] - crop_size[0]) // 2, (resized_shape[1] - crop_size[1]) // 2


def centre_window(image: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """The centre ``size`` (height, width) window of ``image`` (a view, not a copy)."""
    top, left = centre_offsets(image.shape, size)
    return image[top:top + size[0], left:left + size[1]]


def centre_crop_region(height: int, width: int,
                       config: PreprocessConfig) -> Tuple[float, float, float, float]:
    """The part of a ``height`` x ``width`` image that the centre crop shows the network,
    as (left, top, right, bottom) in the image's own pixel coordinates and orientation
    (before step 4's rotation)."""
    portrait = is_portrait(height, width, config)
    out_h, out_w = cover_size(height, width, *oriented(config.resize_size, portrait))
    crop_h, crop_w = oriented(config.crop_size, portrait)
    top, left = centre_offsets((out_h, out_w), (crop_h, crop_w))
    scale_y, scale_x = height / out_h, width / out_w
    return (left * scale_x, top * scale_y, (left + crop_w) * scale_x,
            (top + crop_h) * scale_y)


def cover_resize(image: np.ndarray, config: PreprocessConfig) -> Tuple[np.ndarray, bool]:
    """Steps 1-2 on an image of any channel order: the resized image and whether it is
    portrait."""
    height, width = image.shape[:2]
    portrait = is_portrait(height, width, config)
    out_h, out_w = cover_size(height, width, *oriented(config.resize_size, portrait))
    resized = cv2.resize(image, (out_w, out_h),
                         interpolation=CV2_INTERPOLATION[config.interpolation])
    return resized, portrait


def landscape_crop(crop: np.ndarray, portrait: bool, order: str, config: PreprocessConfig,
                   flip: bool = False) -> np.ndarray:
    """Steps 4-5 on a cut crop whose first three channels are in ``order``: rotated to
    landscape, mirrored if ``flip``, channels in ``config.channel_order`` (a fourth,
    alpha, channel dropped), contiguous uint8."""
    if portrait:
        crop = np.rot90(crop)
    if flip:
        crop = crop[:, ::-1]
    same_order = order == config.channel_order
    return np.ascontiguousarray(crop[:, :, :3] if same_order else crop[:, :, 2::-1])


def network_crop(pixels: Pixels, config: PreprocessConfig,
                 rng: Optional[np.random.Generator] = None,
                 crop_size: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """Steps 1-5: the network's uint8 crop (crop_h, crop_w, 3) of decoded pixels.

    Without ``rng``, the centre ``config.crop_size`` window (inference and evaluation).
    With ``rng`` (training), a random window of ``crop_size`` (landscape; default
    ``config.crop_size``), mirrored with probability 1/2: smaller windows make a CPU
    training budget go much further. A fourth (alpha) channel is resized with the others
    and dropped after the crop."""
    resized, portrait = cover_resize(pixels.array, config)
    crop_h, crop_w = oriented(crop_size or config.crop_size, portrait)
    if rng is None:
        return landscape_crop(centre_window(resized, (crop_h, crop_w)), portrait,
                              pixels.order, config)
    top = int(rng.integers(0, resized.shape[0] - crop_h + 1))
    left = int(rng.integers(0, resized.shape[1] - crop_w + 1))
    return landscape_crop(resized[top:top + crop_h, left:left + crop_w], portrait,
                          pixels.order, config, flip=bool(rng.integers(0, 2)))
