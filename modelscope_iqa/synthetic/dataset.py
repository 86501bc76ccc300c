"""Training data made on the fly: random crops of pristine photos, degraded by a random
recipe of :mod:`.distortions`, labelled with :func:`.distortions.quality_target`."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from modelscope.msdatasets.dataset_cls.custom_datasets import TorchCustomDataset

from ..config import PreprocessConfig
from ..preprocessors.crop import cover_resize, landscape_crop, oriented
from ..preprocessors.decoding import decode
from ..preprocessors.scale import crop_to_float
from .distortions import degrade, quality_target, sample_severities, scene_key

# Extra pixels around a crop while degrading, so blurs see real neighbours at the border.
DEGRADE_MARGIN = 24
DETAIL_CANDIDATES = 8


def detail(window: np.ndarray) -> float:
    grey = cv2.cvtColor(np.ascontiguousarray(window[:, :, :3]), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


class SyntheticDistortionDataset(TorchCustomDataset):
    """``length`` samples per epoch of ``{'input': (3, h, w), 'target': quality}``.

    Each photo is first brought to the model's working scale exactly as the
    preprocessor does (cover-resize to 1080x1920), so degradations are made at the
    scale the network sees them.

    Args:
        photos: image paths (or arrays/PIL images) of pristine photos.
        length: samples per epoch.
        crop_size: (height, width) of the landscape training crop.
        seed: base seed; a sample depends on it, its index and the worker's torch seed.
        preprocess_config: the preprocessing options; None takes the package defaults.
    """

    def __init__(self,
                 photos: Sequence,
                 length: int,
                 crop_size: Tuple[int, int] = (224, 224),
                 seed: int = 0,
                 preprocess_config: Optional[PreprocessConfig] = None):
        if not photos:
            raise ValueError('no photos given')
        self.preprocess_config = preprocess_config or PreprocessConfig.from_mapping()
        self.length = int(length)
        self.crop_size = tuple(crop_size)
        self.seed = int(seed)
        # (image, portrait, key of the whole image), as SyntheticLadderDataset keeps them
        self.photos: List[Tuple[np.ndarray, bool, float]] = []
        for photo in photos:
            image, portrait = cover_resize(decode(photo).rgb(), self.preprocess_config)
            self.photos.append((image, portrait, scene_key(image)))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Dict[str, object]:
        rng = np.random.default_rng([self.seed, index, torch.initial_seed() % 2**32])
        image, portrait, key = self.photos[int(rng.integers(len(self.photos)))]
        crop_h, crop_w = oriented(self.crop_size, portrait)
        height, width = image.shape[:2]
        margin = min(DEGRADE_MARGIN, (height - crop_h) // 2, (width - crop_w) // 2)
        # Of a few random windows keep the most detailed: blur or compression of a flat
        # (e.g. bokeh) region changes nothing visible, and its label would be noise.
        windows = []
        for _ in range(DETAIL_CANDIDATES):
            top = int(rng.integers(margin, height - crop_h - margin + 1))
            left = int(rng.integers(margin, width - crop_w - margin + 1))
            windows.append(image[top - margin:top + crop_h + margin,
                                 left - margin:left + crop_w + margin])
        window = max(windows, key=detail)
        severities = sample_severities(rng)
        degraded = degrade(np.ascontiguousarray(window), severities, rng, key)
        crop = degraded[margin:margin + crop_h, margin:margin + crop_w]
        return {
            'input': crop_to_float(landscape_crop(crop, portrait, 'RGB', self.preprocess_config,
                                                  flip=bool(rng.integers(2)))),
            'target': quality_target(severities),
        }
