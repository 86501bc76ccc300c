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


def build_image_set(folder: str, count: int = 24, seed: int = 0) -> List[str]:
    """Write ``count`` images to ``folder`` (kept if already there) and return their paths.
    Image i has size ``SIZES[i % 8]``, is portrait for every other block of 8... and a
    PNG for every third; its degradation cycles through the families and severities."""
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
        image = cv2.resize(degraded, (width, height), interpolation=cv2.INTER_CUBIC)
        grain = rng.normal(0.0, GRAIN_SIGMA, image.shape)
        image = np.clip(image + grain, 0, 255).astype(np.uint8)
        if portrait:
            image = np.ascontiguousarray(np.rot90(image))
        options = {'compress_level': 1} if suffix == '.png' else {'quality': 90}
        Image.fromarray(image).save(path, **options)
    return paths
