"""The images an export is checked on, and the checks.

Generated from the calibration photo that ships with the package: pristine and under
every degradation family at severities 1.5 and 3.5 (19 landscape images whose exact
scores spread like a real set's), and four of them turned to portrait. An export is
checked on ``FP32_CHECK_COUNT`` of them, both orientations.
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np

from ..config import EXACT_PRECISION, PRECISION_BOUNDS, PreprocessConfig
from ..errors import ExportError
from ..models.quantization import CALIBRATION_PHOTO
from ..preprocessors import Pixels, decode, network_crop
from ..synthetic.distortions import family_views

SEVERITIES = (1.5, 3.5)
VALIDATION_SEED = 1  # the int8 calibration uses seed 0: other noise, other images
PORTRAIT_COUNT = 4
FP32_CHECK_COUNT = 6  # 3 landscape, 3 portrait
# An fp32 export must give our exact mode's scores within fp32's bound.
FP32_TOLERANCE = PRECISION_BOUNDS[EXACT_PRECISION].max_abs_diff


def validation_crops(config: PreprocessConfig) -> List[np.ndarray]:
    """uint8 network crops: 19 landscape views, then ``PORTRAIT_COUNT`` portrait ones."""
    rgb = decode(CALIBRATION_PHOTO).rgb()
    rng = np.random.default_rng(VALIDATION_SEED)
    views = [rgb] + family_views(rgb, SEVERITIES, rng)
    step = len(views) // PORTRAIT_COUNT
    views += [np.rot90(view) for view in views[::step][:PORTRAIT_COUNT]]
    return [network_crop(Pixels(np.ascontiguousarray(view), 'RGB'), config) for view in views]


def fp32_check_crops(crops: Sequence[np.ndarray]) -> List[np.ndarray]:
    """Half landscape, half portrait."""
    half = FP32_CHECK_COUNT // 2
    return list(crops[:half]) + list(crops[-half:])


def check_fp32(path: str, scores: np.ndarray, exact: np.ndarray) -> float:
    """The largest difference; :class:`ExportError` when above ``FP32_TOLERANCE``."""
    largest = float(np.abs(scores - exact).max())
    if not largest <= FP32_TOLERANCE:
        raise ExportError(f'{path!r}: not written; its scores differ from the exact mode '
                          f'by up to {largest:.3g} (> {FP32_TOLERANCE:g})')
    return largest
