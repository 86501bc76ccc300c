"""The ``int8`` precision: the trunk statically quantized for x86 CPUs (VNNI int8
convolutions through PyTorch's FX graph mode quantization).

Activation ranges are calibrated once, when the network is prepared, on crops of the
calibration photo (shipped with the package) pristine and under every synthetic
degradation family, so that the ranges cover sharp, blurred, noisy, dark and bright
content. Calibration
takes about 10 s on 2 cores: worth it for folders (it is paid back after a few dozen
images against fp32), not for a handful of images.
"""
from __future__ import annotations

import contextlib
import copy
import warnings
from pathlib import Path
from typing import Iterator, List

import numpy as np
import torch
from torch import nn

from ..config import PreprocessConfig
from ..preprocessors.crop import network_crop
from ..preprocessors.decode import Pixels, decode
from ..preprocessors.scale import crop_to_float
from ..synthetic.distortions import FAMILIES

CALIBRATION_PHOTO = Path(__file__).resolve().parent.parent / 'default_model' / \
    'calibration.jpg'
CALIBRATION_SEVERITY = 3.0
CALIBRATION_SEED = 0
QUANTIZED_ENGINE = 'x86'
# What torch.ao says while it prepares the trunk, none of it about our use: its move to
# torchao, and its observers' reduce_range notice.
TORCH_AO_NOTICES = (
    (DeprecationWarning, r'torch\.ao\.quantization is deprecated'),
    (UserWarning, r'Please use quant_min and quant_max'),
)


@contextlib.contextmanager
def quantized_engine() -> Iterator[None]:
    """Run int8 kernels on ``QUANTIZED_ENGINE``; the process-wide setting is restored
    on exit."""
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = QUANTIZED_ENGINE
    try:
        yield
    finally:
        torch.backends.quantized.engine = previous


def calibration_crops(config: PreprocessConfig) -> List[np.ndarray]:
    """uint8 network crops: the calibration photo pristine and under every degradation
    family at severity 3 (10 crops). With only the four most extreme families the
    largest error on 15 other photos grew from 0.003 to 0.012."""
    rgb = decode(CALIBRATION_PHOTO).rgb()
    rng = np.random.default_rng(CALIBRATION_SEED)
    views = [rgb] + [FAMILIES[family](rgb, CALIBRATION_SEVERITY, rng)
                     for family in sorted(FAMILIES)]
    return [network_crop(Pixels(np.ascontiguousarray(view), 'RGB'), config) for view in views]


def quantize_trunk(trunk: nn.Module, config: PreprocessConfig) -> nn.Module:
    """An int8 copy of ``trunk`` (float input (N, 3, H, W) in [0, 1], float output)."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    crops = [crop_to_float(c)[None] for c in calibration_crops(config)]
    with quantized_engine(), warnings.catch_warnings():
        for category, message in TORCH_AO_NOTICES:
            warnings.filterwarnings('ignore', message, category)
        prepared = prepare_fx(copy.deepcopy(trunk).float().eval(),
                              get_default_qconfig_mapping(QUANTIZED_ENGINE),
                              example_inputs=(crops[0],))
        with torch.inference_mode():
            for crop in crops:
                prepared(crop)
        return convert_fx(prepared)
