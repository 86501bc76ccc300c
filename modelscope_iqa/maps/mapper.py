"""Quality maps: the score of an image and a grid of local scores, from one forward pass.

The network pools the trunk's feature map (one 512-vector per 32 x 32 pixels of the
720 x 1280 crop: 23 x 40 positions) into one mean vector, and its head turns that mean
into the score. A local score is the head applied to the mean of the
``LOCAL_WINDOW`` x ``LOCAL_WINDOW`` positions around one position (about 160 x 160
pixels of the crop) instead of all of them: the score the model would give a photo
that looked everywhere like that neighbourhood. The global score is the head on the
mean of all positions, so it is not the mean of the local scores (the head is not
linear); it is written on the overlay beside the map.

The grid covers what the score covers: the centre crop the network sees (``region``),
not always the whole photo; it is returned in the photo's orientation as the user sees
it (EXIF applied, portrait photos turned back from the network's landscape crop).
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import cv2
import numpy as np
import torch
from PIL import Image

from ..config import DEFAULT_MAP_ALPHA, EXACT_PRECISION
from ..preprocessors import ImageInput, Pixels, decode, network_crop
from ..preprocessors.crop import centre_crop_region, is_portrait
from .overlay import PREVIEW_SIDE, render_overlay

# Neighbourhood of a local score, in feature-map positions (32 px of the crop each).
# 5 (160 px) separated a blurred, noisy or darkened half of a photo from the intact
# half more clearly than 1 or 3, and kept more detail than 7.
LOCAL_WINDOW = 5

Region = Tuple[float, float, float, float]


@dataclass(frozen=True)
class QualityMap:
    """``score``: the image's score, as the pipeline gives it. ``grid``: float32
    (rows, cols) local scores in [0, 1], in the photo's orientation, covering
    ``region`` = (left, top, right, bottom) of ``photo`` (RGB uint8, possibly a
    downscaled preview) in its pixel coordinates."""
    score: float
    grid: np.ndarray
    photo: np.ndarray
    region: Region

    def overlay(self, alpha: float = DEFAULT_MAP_ALPHA,
                max_side: int = PREVIEW_SIDE) -> Image.Image:
        """The photo (longest side at most ``max_side``) with the map drawn over the
        region the model sees (``alpha``: the map's opacity), the rest dimmed, a colour
        bar and the score written above."""
        return render_overlay(self.photo, self.grid, self.region, self.score, alpha,
                              max_side)


def user_oriented(grid: np.ndarray, portrait: bool) -> np.ndarray:
    """A grid of the network's landscape crop, turned back to the photo's orientation
    (a portrait crop was rotated 90 degrees counter-clockwise)."""
    return np.ascontiguousarray(np.rot90(grid, -1) if portrait else grid, np.float32)


def preview(pixels: Pixels, max_side: int = PREVIEW_SIDE) -> Tuple[np.ndarray, float]:
    """The photo in RGB, downscaled (area averaging) so that its longest side is at most
    ``max_side``, and the scale applied."""
    rgb = pixels.rgb()
    height, width = rgb.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return rgb, scale


def map_geometry(pixels: Pixels, preprocess_config) -> Tuple[bool, Region]:
    """Whether the photo is portrait, and the region of it that the crop shows."""
    height, width = pixels.array.shape[:2]
    return (is_portrait(height, width, preprocess_config),
            centre_crop_region(height, width, preprocess_config))


class QualityMapper:
    """Quality maps with one model: ``QualityMapper(model)(image)`` -> :class:`QualityMap`.

    Args:
        model: a model folder or hub id (what ``--model`` takes), an opened
            :class:`~modelscope_iqa.hub.ModelFolder`, or a loaded
            ``ImageQualityAssessmentMosModel``; default: the embedded default model.
        precision: as the pipeline's (``fp32`` exact, ``bf16``, ``fp16``, ``int8``).
        device: where the network runs.
        window: the neighbourhood of a local score, in feature positions (odd).
    """

    def __init__(self, model=None, precision: str = EXACT_PRECISION,
                 device: Union[str, torch.device] = 'cpu', window: int = LOCAL_WINDOW):
        from .. import DEFAULT_MODEL_DIR
        from ..hub import ModelFolder, open_model_folder
        from ..hub import load_model
        if window < 1 or window % 2 == 0:
            raise ValueError(f'window must be an odd number >= 1, got {window}')
        if model is None or isinstance(model, (str, os.PathLike, ModelFolder)):
            folder = model if isinstance(model, ModelFolder) else open_model_folder(
                os.fspath(model) if model is not None else DEFAULT_MODEL_DIR)
            model = load_model(folder)
        else:
            folder = open_model_folder(model.model_dir)
        self.preprocess_config = folder.preprocess_config
        self.identity = folder.identity  # the weights behind every map it makes
        self.network = model.inference_network(precision, device, self.preprocess_config)
        self.window = window

    def __call__(self, image: ImageInput) -> QualityMap:
        pixels = decode(image)
        crop = torch.from_numpy(network_crop(pixels, self.preprocess_config))[None]
        scores, local = self.network.forward_with_maps(crop, self.window)
        portrait, region = map_geometry(pixels, self.preprocess_config)
        return QualityMap(float(scores[0]), user_oriented(local[0].cpu().numpy(), portrait),
                          pixels.rgb(), region)


@functools.lru_cache(maxsize=4)
def _mapper(model: Optional[str], precision: str, device: str) -> QualityMapper:
    return QualityMapper(model, precision, device)


def quality_map(image: ImageInput, model=None, precision: str = EXACT_PRECISION,
                device: str = 'cpu') -> QualityMap:
    """The score and local quality map of one image (path, URL, PIL image or BGR array,
    as the pipeline takes). ``model``: a model folder or hub id, or a loaded model;
    default: the embedded default model. The model is loaded once per (model, precision,
    device) and kept for later calls; use :class:`QualityMapper` to hold it yourself."""
    if model is None or isinstance(model, (str, os.PathLike)):
        key = os.path.abspath(model) if model is not None and os.path.isdir(model) else model
        return _mapper(None if key is None else os.fspath(key), precision, str(device))(image)
    return QualityMapper(model, precision, device)(image)
