"""The ``int8`` precision: the trunk statically quantized for x86 CPUs (VNNI int8
convolutions through PyTorch's FX graph mode quantization).

Activations use all 8 bits where the CPU has AVX512-VNNI, whose int8 dot products
accumulate in int32. Without it, PyTorch's x86 kernels add pairs of
uint8 x int8 products in int16, which 8-bit activations can overflow, so activations
keep 7 bits there (``reduce_range``, torch's default for x86), at a cost in accuracy.

The first residual stage (``layer1``, the finest detail the trunk sees) is left out of
int8: the default model's judgements of strong blur and contrast loss rest on small
activations, which coarse steps wash out, and with that stage quantized int8 misses its
bound (``config.PRECISION_BOUNDS``). It runs with its BatchNorms folded, channels-last,
in bfloat16 where the CPU computes bfloat16 natively (AVX512-BF16 or AMX), else in
float32. The splits tried, with their speed and error, are measured by
``experiments/tools/int8_splits.py`` (its run: ``experiments/results/issue33/``).

Activation ranges are calibrated once, when the network is prepared, on crops of the
calibration photo (shipped with the package) pristine and under every synthetic
degradation family, so that the ranges cover sharp, blurred, noisy, dark and bright
content. The result is cached (:mod:`.calibration_cache`) per weights and per the
settings calibration depends on (:func:`calibration_settings`).
"""
from __future__ import annotations

import contextlib
import copy
import functools
import logging
import warnings
from pathlib import Path
from typing import Iterator, List

import numpy as np
import torch
from torch import nn

from ..config import PRECISION_BOUNDS, PreprocessConfig
from ..preprocessors.crop import network_crop
from ..preprocessors.decoding import Pixels, decode
from ..preprocessors.scale import crop_to_float
from ..synthetic.distortions import family_views
from .calibration_cache import cache_path, load_observers, save_observers

CALIBRATION_PHOTO = Path(__file__).resolve().parent.parent / 'default_model' / \
    'calibration.jpg'
CALIBRATION_SEVERITY = 3.0
CALIBRATION_SEED = 0
QUANTIZED_ENGINE = 'x86'
# Part of every cache key: bump it when the calibration procedure changes.
CALIBRATION_VERSION = 3
# The trunk stage left out of int8 (see the module docstring).
FLOAT_STAGE = 'layer1'
LOG = logging.getLogger(__name__)
# What torch.ao says while it prepares and converts the trunk, none of it about our use:
# its move to torchao, its observers' reduce_range notice, and the deprecation of the
# quantized tensor types its converted modules are made of.
TORCH_AO_NOTICES = (
    (DeprecationWarning, r'torch\.ao\.quantization is deprecated'),
    (UserWarning, r'Please use quant_min and quant_max'),
    (UserWarning, r'torch\.quantize_per_tensor, torch\.quantize_per_channel and other '
     r'quantized tensor creation functions'),
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


@functools.lru_cache(maxsize=None)
def cpu_has(*features: str) -> bool:
    """Whether this CPU has any of ``features`` (names as /proc/cpuinfo's flags and
    torch's capabilities spell them): torch's own CPU capabilities where this torch has
    them, else /proc/cpuinfo's flags (False where neither says)."""
    get_capabilities = getattr(torch.cpu, 'get_capabilities', None)
    if get_capabilities is not None:
        capabilities = get_capabilities()
        return any(bool(capabilities.get(feature, False)) for feature in features)
    try:
        flags = set(Path('/proc/cpuinfo').read_text().split())
    except OSError:
        return False
    return bool(flags.intersection(features))


def full_range_activations() -> bool:
    """Whether this CPU has AVX512-VNNI, the int32-accumulating int8 dot products of the
    quantized kernels: then activations use 8 bits, else 7 (see the module docstring)."""
    return cpu_has('avx512_vnni')


def float_stage_dtype() -> torch.dtype:
    """bfloat16 where the CPU computes it natively (AVX512-BF16, AMX), else float32: the
    precision of ``FLOAT_STAGE``."""
    return torch.bfloat16 if cpu_has('avx512_bf16', 'amx_bf16') else torch.float32


class FloatStage(nn.Module):
    """A trunk stage outside int8: float32 in and out, ``dtype`` and channels-last inside."""

    def __init__(self, stage: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.dtype = dtype
        self.stage = stage.to(dtype).to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stage(x.to(self.dtype, memory_format=torch.channels_last)).float()


def qconfig_mapping(full_range: bool):
    """torch's x86 default (per-channel int8 weights, histogram-calibrated uint8
    activations with ``reduce_range``), with ``reduce_range`` off when ``full_range``
    and ``FLOAT_STAGE`` left out."""
    from torch.ao.quantization import QConfig, get_default_qconfig_mapping
    from torch.ao.quantization.observer import (HistogramObserver,
                                                default_per_channel_weight_observer)
    mapping = get_default_qconfig_mapping(QUANTIZED_ENGINE)
    if full_range:
        mapping = mapping.set_global(QConfig(
            activation=HistogramObserver.with_args(reduce_range=False),
            weight=default_per_channel_weight_observer))
    return mapping.set_module_name(FLOAT_STAGE, None)


def calibration_crops(config: PreprocessConfig) -> List[np.ndarray]:
    """uint8 network crops: the calibration photo pristine and under every degradation
    family at ``CALIBRATION_SEVERITY``. Every family, not only the most extreme ones:
    ranges calibrated on those alone left other photos further from exact."""
    rgb = decode(CALIBRATION_PHOTO).rgb()
    rng = np.random.default_rng(CALIBRATION_SEED)
    views = [rgb] + family_views(rgb, (CALIBRATION_SEVERITY, ), rng)
    return [network_crop(Pixels(np.ascontiguousarray(view), 'RGB'), config) for view in views]


def calibration_settings(config: PreprocessConfig, full_range: bool) -> tuple:
    """Everything but the weights and the calibration photo that a calibration depends
    on: part of its cache key."""
    return (CALIBRATION_VERSION, torch.__version__, QUANTIZED_ENGINE, config.crop_size,
            config.resize_size, config.interpolation, config.channel_order,
            CALIBRATION_SEVERITY, CALIBRATION_SEED, full_range, FLOAT_STAGE)


def quantize_trunk(trunk: nn.Module, config: PreprocessConfig,
                   folded: nn.Module) -> nn.Module:
    """An int8 copy of ``trunk`` (float input (N, 3, H, W) in [0, 1], float output),
    calibrated on :func:`calibration_crops` or taken from the cache; its ``FLOAT_STAGE``
    is ``folded``'s (the trunk with its BatchNorms folded) in :func:`float_stage_dtype`."""
    from torch.ao.quantization.fx.custom_config import PrepareCustomConfig
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    full_range = full_range_activations()
    if not full_range:
        LOG.warning('this CPU has no AVX512-VNNI: int8 activations keep 7 bits, and scores '
                    'may lie outside int8\'s bound (%s); bf16 keeps %s',
                    PRECISION_BOUNDS['int8'].describe(), PRECISION_BOUNDS['bf16'].describe())
    path = cache_path(calibration_settings(config, full_range), [CALIBRATION_PHOTO], trunk)
    example = torch.zeros(1, 3, *config.crop_size)
    with quantized_engine(), warnings.catch_warnings():
        for category, message in TORCH_AO_NOTICES:
            warnings.filterwarnings('ignore', message, category)
        # The float stage is one module of the graph, not traced into: it is swapped after.
        prepared = prepare_fx(copy.deepcopy(trunk).float().eval(),
                              qconfig_mapping(full_range), example_inputs=(example, ),
                              prepare_custom_config=PrepareCustomConfig()
                              .set_non_traceable_module_names([FLOAT_STAGE]))
        if not load_observers(prepared, path):
            with torch.inference_mode():
                for crop in calibration_crops(config):
                    prepared(crop_to_float(crop)[None])
            save_observers(prepared, path)
        quantized = convert_fx(prepared)
    stage = copy.deepcopy(getattr(folded, FLOAT_STAGE)).float()
    setattr(quantized, FLOAT_STAGE, FloatStage(stage, float_stage_dtype()))
    return quantized
