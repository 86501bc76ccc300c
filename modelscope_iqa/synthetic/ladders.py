"""Training data as ladders: one window of one photo at several severities of one
degradation family, so the network sees the same content at different quality side by
side (RankIQA's synthetic ladders).

Each item is a group of ``rungs`` views: the pristine window (or the window under a
fixed "background" degradation, for mixtures) and ``rungs - 1`` views at severities
drawn from rising bands. Every family is drawn often and at visible strength; JPEG,
whose artefacts are the easiest to miss on a small crop, twice as often as the others.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from modelscope.msdatasets.dataset_cls.custom_datasets import TorchCustomDataset

from ..config import PreprocessConfig
from ..preprocessors.crop import landscape_crop, oriented
from ..preprocessors.decoding import decode
from ..preprocessors.scale import crop_to_float
from .dataset import DEGRADE_MARGIN, detail
from .distortions import FAMILIES, degrade, quality_target, scene_key

# JPEG codes luma in 8x8 blocks and, with 4:2:0 chroma subsampling (PIL's default, as
# most cameras'), colour in 16x16 macroblocks: the crop starts at a random offset of that
# 16-pixel grid in each axis, as an arbitrary crop of a compressed photo does. An offset
# drawn within 8 pixels (stages 2 and 3 of the shipped model) leaves half of the colour
# grid's vertical phases unseen, and the centre crop of a 1080x1920 photo starts at one
# of them (row 180 = 4 mod 16): there, strong JPEG scored as well as clean.
JPEG_MACROBLOCK = 16
SEVERITY_BANDS = ((0.5, 1.5), (1.5, 2.75), (2.75, 4.0))
FAMILY_WEIGHTS: Mapping[str, float] = {
    family: 2.0 if family == 'jpeg_compression' else 1.0 for family in FAMILIES}
BACKGROUND_SEVERITY = (0.5, 2.0)


class SyntheticLadderDataset(TorchCustomDataset):
    """``length`` groups per epoch of ``{'input': (rungs, 3, h, w), 'target': (rungs,)}``.

    Photos are taken as given (the default model's build brings them to the model's working
    scale, never upscaling) and also downscaled by each factor of ``scales`` below 1, which
    washes out the sources' own JPEG artefacts and varies the scale of detail.

    Args:
        photos: image paths (or RGB arrays/PIL images) of pristine photos.
        length: groups per epoch.
        crop_size: (height, width) of the landscape training crop.
        rungs: views per group: the base view and ``rungs - 1`` rising severities.
        seed: base seed; an item depends on it, its index and the worker's torch seed.
        scales: resize factors at which every photo is used.
        mixture_share: share of groups whose every view carries a second family at a
            fixed moderate severity (the base view included).
        windows: of this many random windows the most detailed is kept, so that flat
            (e.g. bokeh) windows, where blur changes nothing visible, are rarer.
        family_weights: how often a family is drawn, relative to the others, where it
            differs from ``FAMILY_WEIGHTS``.
        grid_period: the crop's offset from the window's corner, where the JPEG grid
            starts, is drawn from this many pixels in each axis: ``JPEG_MACROBLOCK``,
            or 8 as stages 2 and 3 of the shipped model drew it.
        preprocess_config: the preprocessing options; None takes the package defaults.
    """

    def __init__(self,
                 photos: Sequence,
                 length: int,
                 crop_size: Tuple[int, int] = (224, 224),
                 rungs: int = 4,
                 seed: int = 0,
                 scales: Sequence[float] = (1.0, 0.75, 0.5),
                 mixture_share: float = 0.25,
                 windows: int = 2,
                 family_weights: Optional[Mapping[str, float]] = None,
                 grid_period: int = JPEG_MACROBLOCK,
                 preprocess_config: Optional[PreprocessConfig] = None):
        if not photos:
            raise ValueError('no photos given')
        if not 2 <= rungs <= len(SEVERITY_BANDS) + 1:
            raise ValueError(f'rungs must be in [2, {len(SEVERITY_BANDS) + 1}], got {rungs}')
        self.preprocess_config = preprocess_config or PreprocessConfig.from_mapping()
        self.length = int(length)
        self.crop_size = tuple(crop_size)
        self.rungs = int(rungs)
        self.seed = int(seed)
        self.mixture_share = float(mixture_share)
        self.windows = int(windows)
        unknown = set(family_weights or {}) - set(FAMILIES)
        if unknown:
            raise ValueError(f'unknown families {sorted(unknown)}; known: {sorted(FAMILIES)}')
        if grid_period < 1:
            raise ValueError(f'grid_period must be >= 1, got {grid_period}')
        self.grid_period = int(grid_period)
        # Around a crop while degrading: room for blur kernels and for the grid offset.
        self.window_pad = DEGRADE_MARGIN + self.grid_period
        need = max(self.crop_size) + 2 * self.window_pad
        # (image, portrait, key of the whole image)
        self.images: List[Tuple[np.ndarray, bool, float]] = []
        for photo in photos:
            rgb = decode(photo).rgb()
            for scale in scales:
                image = rgb if scale == 1.0 else cv2.resize(
                    rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                if min(image.shape[:2]) >= need:
                    self.images.append((np.ascontiguousarray(image),
                                        image.shape[0] > image.shape[1], scene_key(image)))
        if not self.images:
            raise ValueError(f'no photo is large enough for {self.crop_size} crops')
        self.families = sorted(FAMILIES)
        # FAMILY_WEIGHTS with family_weights over it, normalised
        chosen = {**FAMILY_WEIGHTS, **(family_weights or {})}
        weights = np.array([float(chosen[f]) for f in self.families])
        if (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f'family weights must be >= 0 and not all 0, got {chosen}')
        self.family_p = weights / weights.sum()

    def __len__(self) -> int:
        return self.length

    def _windows(self, rng: np.random.Generator) -> Tuple[List[np.ndarray], bool, float]:
        """``windows`` random windows of a random image (each the crop with a
        ``window_pad`` margin on every side), whether the image is portrait and the
        image's key."""
        index = int(rng.integers(len(self.images)))
        image, portrait, key = self.images[index]
        crop_h, crop_w = oriented(self.crop_size, portrait)
        span_h, span_w = crop_h + 2 * self.window_pad, crop_w + 2 * self.window_pad
        height, width = image.shape[:2]
        candidates = []
        for _ in range(self.windows):
            top = int(rng.integers(0, height - span_h + 1))
            left = int(rng.integers(0, width - span_w + 1))
            candidates.append(image[top:top + span_h, left:left + span_w])
        return candidates, portrait, key

    def recipes(self, rng: np.random.Generator) -> Tuple[str, List[Dict[str, float]]]:
        """The ladder's family and the degradation recipe of each rung, best first."""
        family = str(rng.choice(self.families, p=self.family_p))
        background = {}
        if rng.random() < self.mixture_share:
            other = str(rng.choice([f for f in self.families if f != family]))
            background = {other: float(rng.uniform(*BACKGROUND_SEVERITY))}
        bands = SEVERITY_BANDS[len(SEVERITY_BANDS) - (self.rungs - 1):]
        return family, [dict(background)] + [
            {**background, family: float(rng.uniform(*band))} for band in bands]

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index, torch.initial_seed() % 2**32])
        candidates, portrait, key = self._windows(rng)
        crop_h, crop_w = oriented(self.crop_size, portrait)
        top = self.window_pad - int(rng.integers(self.grid_period))
        left = self.window_pad - int(rng.integers(self.grid_period))
        flip = bool(rng.integers(2))
        _, recipes = self.recipes(rng)
        window = max(candidates, key=detail)
        crops = []
        for recipe in recipes:
            # Exposure faults relative to the photo's key: a window of a dark photo is
            # brightened as the photo would be.
            degraded = degrade(window, recipe, rng, key)
            crop = degraded[top:top + crop_h, left:left + crop_w]
            crops.append(landscape_crop(crop, portrait, 'RGB', self.preprocess_config, flip))
        return {'input': torch.stack([crop_to_float(crop) for crop in crops]),
                'target': torch.tensor([quality_target(r) for r in recipes],
                                       dtype=torch.float32)}


def collate_ladders(groups: Sequence[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """A batch of ladder groups (:class:`SyntheticLadderDataset` items), stacked as the
    default collation stacks them: ``{'input': (N, K, 3, h, w), 'target': (N, K)}``."""
    shapes = sorted({tuple(group['input'].shape) for group in groups})
    if len(shapes) > 1:
        raise ValueError(f'ladder groups of one batch must have one shape, got {shapes}')
    return {key: torch.stack([group[key] for group in groups]) for key in ('input', 'target')}
