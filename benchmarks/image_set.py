"""The benchmark's own image set: landscape and portrait, 720p to 6K, JPEG and PNG, of
varied quality (the repository's sample photo under the synthetic degradations, brought
to each size, with fine grain so that large files carry real detail to decode)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import List

import cv2
import numpy as np
from PIL import Image

from modelscope_iqa.synthetic.distortions import FAMILIES

SOURCE = Path(__file__).resolve().parent.parent / 'samples' / 'cups_pristine.jpg'
# (width, height) of landscape images: 720p, 1080p, 1440p, 12 MP phone, 4K, 5K, 6K, 24 MP
SIZES = [(1280, 720), (1920, 1080), (2560, 1440), (4032, 3024), (3840, 2160),
         (5120, 2880), (6144, 3456), (6000, 4000)]
GRAIN_SIGMA = 3.0


def grained_resize(rgb: np.ndarray, size, rng: np.random.Generator) -> np.ndarray:
    """``rgb`` resized (bicubic) to ``size`` (width, height) with fine Gaussian grain."""
    image = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0.0, GRAIN_SIGMA, image.shape)
    return np.clip(image + grain, 0, 255).astype(np.uint8)


def build_image_set(folder: str, count: int = 24, seed: int = 0) -> List[str]:
    """Write ``count`` images to ``folder`` (kept if already there) and return their paths.
    Image i has size ``SIZES[i % 8]``; it is portrait in the second block of 8 and when
    i % 4 == 3, a PNG when i % 3 == 0; its degradation cycles through the families and
    severities 0-4."""
    os.makedirs(folder, exist_ok=True)
    base = np.asarray(Image.open(SOURCE).convert('RGB'))
    families = sorted(FAMILIES)
    paths = []
    for i in range(count):
        width, height = SIZES[i % len(SIZES)]
        portrait = (i // len(SIZES)) % 2 == 1 or i % 4 == 3
        suffix = '.png' if i % 3 == 0 else '.jpg'
        name = f'{i:02d}_{height if portrait else width}x{width if portrait else height}{suffix}'
        path = os.path.join(folder, name)
        paths.append(path)
        if os.path.exists(path):
            continue
        rng = np.random.default_rng(seed + i)
        family, severity = families[i % len(families)], float(i % 5)
        degraded = FAMILIES[family](base, severity, rng) if severity else base
        image = grained_resize(degraded, (width, height), rng)
        if portrait:
            image = np.ascontiguousarray(np.rot90(image))
        options = {'compress_level': 1} if suffix == '.png' else {'quality': 90}
        Image.fromarray(image).save(path, **options)
    return paths
