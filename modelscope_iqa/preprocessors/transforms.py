"""From an RGB uint8 array to the network's input tensor, as the hub model was trained:

1. a portrait image (taller than wide) uses the landscape sizes transposed;
2. resize, keeping the aspect ratio, to the smallest size that covers ``resize_size``
   (bicubic, target size rounded up);
3. take the centre ``crop_size`` window;
4. rotate a portrait crop 90 degrees counter-clockwise, so every tensor is landscape
   and a batch can mix orientations;
5. reorder channels (``BGR`` for the hub model), scale to [0, 1] (no mean/std).
"""
import math
from typing import Tuple

import cv2
import numpy as np
import torch

from ..config import PreprocessConfig

CV2_INTERPOLATION = {'bicubic': cv2.INTER_CUBIC}


def cover_size(height: int, width: int, target_height: int,
               target_width: int) -> Tuple[int, int]:
    """The (height, width) that keeps the aspect ratio and covers the target size."""
    scale = max(target_width / width, target_height / height)
    return int(math.ceil(scale * height)), int(math.ceil(scale * width))


def to_network_input(rgb: np.ndarray, config: PreprocessConfig) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> float32 tensor (3, crop_h, crop_w) in [0, 1].

    A fourth channel (alpha) is resized with the others and dropped after the crop.
    """
    height, width = rgb.shape[:2]
    (resize_h, resize_w), (crop_h, crop_w) = config.resize_size, config.crop_size
    portrait = (width - height) * (resize_w - resize_h) < 0
    if portrait:
        resize_h, resize_w, crop_h, crop_w = resize_w, resize_h, crop_w, crop_h
    out_h, out_w = cover_size(height, width, resize_h, resize_w)
    resized = cv2.resize(rgb, (out_w, out_h),
                         interpolation=CV2_INTERPOLATION[config.interpolation])
    top, left = (out_h - crop_h) // 2, (out_w - crop_w) // 2
    crop = resized[top:top + crop_h, left:left + crop_w]
    if portrait:
        crop = np.rot90(crop)
    crop = crop[:, :, 2::-1] if config.channel_order == 'BGR' else crop[:, :, :3]
    chw = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)
    return chw.float().div_(255.0)
