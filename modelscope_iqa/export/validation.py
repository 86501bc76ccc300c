"""The images an export is checked on, and the checks.

Generated from the calibration photo that ships with the package: pristine and under
every degradation family at severities 1.5 and 3.5 (19 landscape images whose exact
scores spread like a real set's), and four of them turned to portrait. fp32 files are
checked on ``FP32_CHECK_COUNT`` of them, both orientations; int8 files on all 23, for
the error bound and the order.
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np

from ..config import PreprocessConfig
from ..errors import ExportError
from ..models.quantization import CALIBRATION_PHOTO
from ..preprocessors import Pixels, decode, network_crop
from ..synthetic.distortions import family_views

SEVERITIES = (1.5, 3.5)
VALIDATION_SEED = 1  # the int8 calibration uses seed 0: other noise, other images
PORTRAIT_COUNT = 4
FP32_CHECK_COUNT = 6  # 3 landscape, 3 portrait
# An fp32 export must give our exact mode's scores within this.
FP32_TOLERANCE = 1e-5
# An int8 export must stay as close as our own int8: within INT8_MAX_DIFF of exact, and
# any two images whose exact scores differ by INT8_ORDER_GAP or more in the same order.
INT8_MAX_DIFF = 0.02
INT8_ORDER_GAP = 0.01


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


def check_int8(path: str, scores: np.ndarray, exact: np.ndarray) -> float:
    """The largest difference; :class:`ExportError` when above ``INT8_MAX_DIFF`` or when
    two images ``INT8_ORDER_GAP`` apart in exact scores swap order."""
    largest = float(np.abs(scores - exact).max())
    if not largest <= INT8_MAX_DIFF:
        raise ExportError(f'{path!r}: not written; int8 scores differ from the exact mode '
                          f'by up to {largest:.3g} (> {INT8_MAX_DIFF:g})')
    better = exact[:, None] - exact[None, :] >= INT8_ORDER_GAP
    swapped = better & (scores[:, None] <= scores[None, :])
    if swapped.any():
        raise ExportError(f'{path!r}: not written; int8 swaps the order of '
                          f'{int(swapped.sum())} pairs of images whose exact scores '
                          f'differ by >= {INT8_ORDER_GAP:g}')
    return largest
