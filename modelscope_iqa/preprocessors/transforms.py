"""From decoded pixels to the network's input, as the hub model was trained:

1. a portrait image (taller than wide) uses the landscape sizes transposed;
2. resize, keeping the aspect ratio, to the smallest size that covers ``resize_size``
   (bicubic, target size rounded up);
3. take the centre ``crop_size`` window;
4. rotate a portrait crop 90 degrees counter-clockwise, so every tensor is landscape
   and a batch can mix orientations;
5. reorder channels (``BGR`` for the hub model), scale to [0, 1] (no mean/std).

Steps 1-4 and the channel order give :func:`network_crop`, a uint8 array; scoring
carries that (a quarter of the bytes of floats) and scales it at the network.
:func:`to_network_input` is the float tensor ModelScope's preprocessor contract asks for.
"""
import math
from typing import Tuple

import cv2
import numpy as np
import torch

from ..config import PreprocessConfig
from .image_io import Pixels

CV2_INTERPOLATION = {'bicubic': cv2.INTER_CUBIC}


def cover_size(height: int, width: int, target_height: int,
               target_width: int) -> Tuple[int, int]:
    """The (height, width) that keeps the aspect ratio and covers the target size."""
    scale = max(target_width / width, target_height / height)
    return int(math.ceil(scale * height)), int(math.ceil(scale * width))


def oriented(size: Tuple[int, int], portrait: bool) -> Tuple[int, int]:
    """A landscape (height, width) as it applies to a portrait or landscape image."""
    return (size[1], size[0]) if portrait else (size[0], size[1])


def cover_resize(rgb: np.ndarray, config: PreprocessConfig) -> Tuple[np.ndarray, bool]:
    """Steps 1-2: the resized image and whether it is portrait."""
    height, width = rgb.shape[:2]
    resize_h, resize_w = config.resize_size
    portrait = (width - height) * (resize_w - resize_h) < 0
    out_h, out_w = cover_size(height, width, *oriented(config.resize_size, portrait))
    resized = cv2.resize(rgb, (out_w, out_h),
                         interpolation=CV2_INTERPOLATION[config.interpolation])
    return resized, portrait


def _landscape_in_order(crop: np.ndarray, portrait: bool, order: str,
                        config: PreprocessConfig, flip: bool = False) -> np.ndarray:
    """Step 4 and the channel order on a cut crop whose first three channels are in
    ``order``: rotated to landscape, mirrored if ``flip``, channels in
    ``config.channel_order`` (a fourth, alpha, channel dropped), contiguous."""
    if portrait:
        crop = np.rot90(crop)
    if flip:
        crop = crop[:, ::-1]
    same_order = order == config.channel_order
    return np.ascontiguousarray(crop[:, :, :3] if same_order else crop[:, :, 2::-1])


def crop_to_tensor(crop: np.ndarray, portrait: bool, config: PreprocessConfig,
                   flip: bool = False) -> torch.Tensor:
    """Steps 4-5 on an already cut RGB crop; ``flip`` mirrors it left-right (training)."""
    return crop_to_float(_landscape_in_order(crop, portrait, 'RGB', config, flip))


def network_crop(pixels: Pixels, config: PreprocessConfig) -> np.ndarray:
    """Steps 1-4 and the channel order: uint8 (crop_h, crop_w, 3), landscape, channels
    in ``config.channel_order``, contiguous. A fourth (alpha) channel is resized with
    the others and dropped after the crop."""
    resized, portrait = cover_resize(pixels.array, config)
    crop_h, crop_w = oriented(config.crop_size, portrait)
    top, left = (resized.shape[0] - crop_h) // 2, (resized.shape[1] - crop_w) // 2
    return _landscape_in_order(resized[top:top + crop_h, left:left + crop_w], portrait,
                               pixels.order, config)


def crop_to_float(crop: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (3, H, W) in [0, 1]."""
    return torch.from_numpy(crop).permute(2, 0, 1).float().div_(255.0)


def to_network_input(rgb: np.ndarray, config: PreprocessConfig) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> float32 tensor (3, crop_h, crop_w) in [0, 1], centre crop.

    A fourth channel (alpha) is resized with the others and dropped after the crop.
    """
    return crop_to_float(network_crop(Pixels(rgb, 'RGB'), config))


def to_random_training_input(rgb: np.ndarray, config: PreprocessConfig,
                             crop_size: Tuple[int, int],
                             rng: np.random.Generator) -> torch.Tensor:
    """The training view: a random ``crop_size`` (landscape) window of the resized image,
    mirrored with probability 1/2. ``crop_size`` may be smaller than the evaluation
    crop: small patches make a CPU training budget go much further."""
    resized, portrait = cover_resize(rgb, config)
    crop_h, crop_w = oriented(crop_size, portrait)
    top = int(rng.integers(0, resized.shape[0] - crop_h + 1))
    left = int(rng.integers(0, resized.shape[1] - crop_w + 1))
    return crop_to_tensor(resized[top:top + crop_h, left:left + crop_w], portrait, config,
                          flip=bool(rng.integers(0, 2)))
