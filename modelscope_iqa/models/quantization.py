"""The ``int8`` precision: the trunk statically quantized for x86 CPUs (VNNI int8
convolutions through PyTorch's FX graph mode quantization).

Activations use all 8 bits where the CPU has AVX512-VNNI, whose int8 dot products
accumulate in int32. Without it, PyTorch's x86 kernels add pairs of
uint8 x int8 products in int16, which 8-bit activations can overflow, so activations
keep 7 bits there (``reduce_range``, torch's default for x86), at a cost in accuracy.
The first residual stage (``layer1``, the finest detail the trunk sees) is left out of
int8: the default model's judgements of strong blur and contrast loss rest on small
activations, which coarse steps wash out. It runs with its BatchNorms folded,
channels-last, in bfloat16 where the CPU computes bfloat16 natively (AVX512-BF16 or
AMX), else in float32. Measured by ``experiments/tools/int8_splits.py`` on a 2-core AMD
EPYC (AVX512-BF16), one 720x1280 forward and the largest difference from exact on the 19
views of tests/test_inference.py: the stage in float32 (as version 0.3.0 ran it) 0.153 s
and 0.124; in bfloat16 0.113 s and 0.113; quantized too 0.093 s and 0.177, beyond int8's
bound; only its first block out of int8 0.143; conv1 out as well 0.148. The shipped
default model's figure is int8's bound in config.PRECISION_BOUNDS.

Activation ranges are calibrated once, when the network is prepared, on crops of the
calibration photo (shipped with the package) pristine and under every synthetic
degradation family, so that the ranges cover sharp, blurred, noisy, dark and bright
content. Calibration takes about 10 s on 2 cores, so its result (the observers' state)
is cached per weights, crop size, torch version and calibration set, in
``$MODELSCOPE_IQA_CACHE`` or else ``$XDG_CACHE_HOME/modelscope-iqa`` (``~/.cache``); later
starts take about a second. The files are safe to delete; one that does not load or
does not fit the network is ignored and rewritten.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Iterator, List

import numpy as np
import torch
from torch import nn

from ..config import PreprocessConfig
from ..preprocessors.crop import network_crop
from ..preprocessors.decoding import Pixels, decode
from ..preprocessors.scale import crop_to_float
from ..synthetic.distortions import family_views

CALIBRATION_PHOTO = Path(__file__).resolve().parent.parent / 'default_model' / \
    'calibration.jpg'
CALIBRATION_SEVERITY = 3.0
CALIBRATION_SEED = 0
QUANTIZED_ENGINE = 'x86'
CACHE_ENV = 'MODELSCOPE_IQA_CACHE'
# Part of every cache key: bump it when the calibration procedure changes.
CALIBRATION_VERSION = 3
# The trunk stage left out of int8 (see the module docstring).
FLOAT_STAGE = 'layer1'
# The prepared trunk's observers: what calibration sets and the cache holds (about
# 250 kB; the weights are the network's own).
OBSERVER_PREFIX = 'activation_post_process_'
LOG = logging.getLogger(__name__)
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
    family at severity 3 (10 crops). With only the four most extreme families the
    largest error on 15 other photos grew from 0.003 to 0.012."""
    rgb = decode(CALIBRATION_PHOTO).rgb()
    rng = np.random.default_rng(CALIBRATION_SEED)
    views = [rgb] + family_views(rgb, (CALIBRATION_SEVERITY, ), rng)
    return [network_crop(Pixels(np.ascontiguousarray(view), 'RGB'), config) for view in views]


def calibration_cache_dir() -> Path:
    """Where calibrations are cached (see the module docstring)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return Path(base) / 'modelscope-iqa'


def _calibration_key(trunk: nn.Module, config: PreprocessConfig, full_range: bool) -> str:
    digest = hashlib.sha256()
    digest.update(repr((CALIBRATION_VERSION, torch.__version__, QUANTIZED_ENGINE,
                        config.crop_size, config.resize_size, config.interpolation,
                        config.channel_order, CALIBRATION_SEVERITY,
                        CALIBRATION_SEED, full_range, FLOAT_STAGE)).encode())
    digest.update(CALIBRATION_PHOTO.read_bytes())
    for name, value in sorted(trunk.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def _observer_state(prepared: nn.Module) -> dict:
    return {k: v for k, v in prepared.state_dict().items() if k.startswith(OBSERVER_PREFIX)}


def _load_calibration(prepared: nn.Module, path: Path) -> bool:
    """Load cached observer state into ``prepared``; False (and a log line) if there is
    none or it cannot be trusted."""
    if not path.is_file():
        return False
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
        if not isinstance(state, dict) or set(state) != set(_observer_state(prepared)):
            raise ValueError('its observers do not fit this network')
        prepared.load_state_dict(state, strict=False)
    except Exception as exc:  # corrupt, truncated, another layout: calibrate again
        LOG.warning('ignoring the int8 calibration cache %s (%s: %s)', path,
                    type(exc).__name__, exc)
        return False
    return True


def _save_calibration(prepared: nn.Module, path: Path) -> None:
    """Write atomically (a reader never sees half a file); a cache that cannot be
    written is only logged."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix='.tmp',
                                         delete=False) as f:
            torch.save(_observer_state(prepared), f)
        os.replace(f.name, path)
    except OSError as exc:
        LOG.warning('cannot write the int8 calibration cache %s (%s)', path, exc)


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
                    'may differ from the exact mode by up to about 0.3 (bf16 stays within '
                    'about 0.004)')
    path = calibration_cache_dir() / f'int8_{_calibration_key(trunk, config, full_range)}.pt'
    example = torch.zeros(1, 3, *config.crop_size)
    with quantized_engine(), warnings.catch_warnings():
        for category, message in TORCH_AO_NOTICES:
            warnings.filterwarnings('ignore', message, category)
        # The float stage is one module of the graph, not traced into: it is swapped after.
        prepared = prepare_fx(copy.deepcopy(trunk).float().eval(),
                              qconfig_mapping(full_range), example_inputs=(example, ),
                              prepare_custom_config=PrepareCustomConfig()
                              .set_non_traceable_module_names([FLOAT_STAGE]))
        if not _load_calibration(prepared, path):
            with torch.inference_mode():
                for crop in calibration_crops(config):
                    prepared(crop_to_float(crop)[None])
            _save_calibration(prepared, path)
        quantized = convert_fx(prepared)
    stage = copy.deepcopy(getattr(folded, FLOAT_STAGE)).float()
    setattr(quantized, FLOAT_STAGE, FloatStage(stage, float_stage_dtype()))
    return quantized
