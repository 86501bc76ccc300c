"""Scoring at speed: the network prepared for inference in one of the precisions of
``config.PRECISION_BOUNDS``, the one table of where each runs and how far it may move a
score (docs/deploy.md; ``tests/test_inference.py`` holds each to it).

- ``fp32`` (exact, the default): BatchNorm folded into the convolutions, channels-last
  memory; ModelScope's built-in pipeline's scores, only the order of float32 operations
  differing.
- ``bf16``: the trunk's weights and activations in bfloat16; fast on CPUs that compute
  bfloat16 natively (AVX-512 BF16 or AMX) and on CUDA.
- ``fp16``: the trunk in float16.
- ``int8``: the trunk statically quantized but for its first residual stage, calibrated
  when the network is first prepared for a model, then cached (:mod:`.quantization`).

Pooling and the MLP head always run in float32, one image at a time, so a score does
not depend on the batch it came in. Inputs are the preprocessing's uint8 crops
(N, H, W, 3), moved to the device as bytes and scaled there, or float tensors
(N, 3, H, W) in [0, 1].

On CUDA, float32 means IEEE float32. PyTorch lets cuDNN run float32 convolutions in TF32
by default, which moves fp32 scores beyond fp32's bound (``benchmarks/cuda_precisions.py``
measures it); the network turns TF32 off around its own forward and restores the
setting after.
"""
from __future__ import annotations

import contextlib
import copy
from typing import Dict, Optional, Tuple

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..config import EXACT_PRECISION, PRECISION_BOUNDS, PRECISIONS, PreprocessConfig
from ..preprocessors.scale import to_unit_range
from .network import IqaMosNet, ResNet18Trunk, mos_from_logits
from .quantization import quantize_trunk, quantized_engine

_DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16,
           'int8': torch.float32}  # int8: float in and out, quantized inside
PRECISION_DTYPES: Dict[str, torch.dtype] = {name: _DTYPES[name] for name in PRECISIONS}
_TABLE_DEVICES = {kind for bound in PRECISION_BOUNDS.values() for kind in bound.devices}


def _runs_on(precision: str, device_type: str) -> bool:
    """Whether ``PRECISION_BOUNDS`` lets ``precision`` run on ``device_type``; one
    that runs on every device the table names is not refused on others (MPS)."""
    devices = PRECISION_BOUNDS[precision].devices
    return device_type in devices or set(devices) == _TABLE_DEVICES


def validate_precision(precision: str, device: Optional[torch.device] = None) -> None:
    """Refuse (``ValueError``) an unknown precision, or one that ``device`` cannot run
    (None: check the name only)."""
    if precision not in PRECISION_DTYPES:
        raise ValueError(f'precision must be one of {sorted(PRECISION_DTYPES)}, '
                         f'got {precision!r}')
    if device is None or _runs_on(precision, device.type):
        return
    where = ' or '.join(kind.upper() for kind in PRECISION_BOUNDS[precision].devices)
    usable = ', '.join(repr(name) for name in PRECISIONS if _runs_on(name, device.type))
    raise ValueError(f'precision {precision!r} runs on {where} only, not '
                     f'{device.type.upper()} (there: {usable})')


@contextlib.contextmanager
def ieee_float32(device: torch.device):
    """No TF32 in float32 convolutions and matrix products on CUDA while inside (the
    process-wide settings restored after); nothing to do elsewhere."""
    if device.type != 'cuda':
        yield
        return
    backends = torch.backends
    if hasattr(backends.cudnn, 'conv') and hasattr(backends.cudnn.conv, 'fp32_precision'):
        settings = [(backends.cudnn.conv, 'fp32_precision', 'ieee'),
                    (backends.cuda.matmul, 'fp32_precision', 'ieee')]
    else:  # torch before the fp32_precision settings
        settings = [(backends.cudnn, 'allow_tf32', False),
                    (backends.cuda.matmul, 'allow_tf32', False)]
    saved = [getattr(owner, name) for owner, name, _ in settings]
    try:
        for owner, name, value in settings:
            setattr(owner, name, value)
        yield
    finally:
        for (owner, name, _), value in zip(settings, saved):
            setattr(owner, name, value)


def fold_batch_norms(trunk: ResNet18Trunk) -> ResNet18Trunk:
    """A float64 copy of ``trunk`` (eval mode) whose BatchNorms are folded into the
    convolutions before them; the BatchNorms become identities. Folding in float64
    rounds each folded weight once when the caller casts it down."""
    folded = copy.deepcopy(trunk).eval().double()
    folded.conv1 = fuse_conv_bn_eval(folded.conv1, folded.bn1)
    folded.bn1 = nn.Identity()
    for stage in (folded.layer1, folded.layer2, folded.layer3, folded.layer4):
        for block in stage:
            block.conv1 = fuse_conv_bn_eval(block.conv1, block.bn1)
            block.conv2 = fuse_conv_bn_eval(block.conv2, block.bn2)
            block.bn1, block.bn2 = nn.Identity(), nn.Identity()
            if block.downsample is not None:
                block.downsample = fuse_conv_bn_eval(*block.downsample)
    return folded


class InferenceNetwork(nn.Module):
    """``network`` prepared for scoring in ``precision`` on ``device``; call it with a
    batch for float32 scores (N,) in [0, 1]. ``preprocess_config`` (the crop size) matters
    for ``int8`` only, whose calibration crops it cuts."""

    def __init__(self, network: IqaMosNet, precision: str = EXACT_PRECISION,
                 device='cpu', preprocess_config: Optional[PreprocessConfig] = None):
        super().__init__()
        self.device = torch.device(device)
        validate_precision(precision, self.device)
        self.precision = precision
        self.dtype = PRECISION_DTYPES[precision]
        folded = fold_batch_norms(network.backbone)
        if precision == 'int8':  # calibrated on crops of the configured size
            self.trunk = quantize_trunk(network.backbone,
                                        preprocess_config or PreprocessConfig.from_mapping(),
                                        folded)
        else:
            self.trunk = folded.to(self.device, self.dtype).to(
                memory_format=torch.channels_last)
        self.head = copy.deepcopy(network.head).eval().to(self.device, torch.float32)

    def _as_input(self, batch: torch.Tensor) -> torch.Tensor:
        batch = batch.to(self.device, non_blocking=True)
        if batch.dtype == torch.uint8:  # (N, H, W, C) crops: NCHW view, channels-last
            return to_unit_range(batch, self.dtype)
        return batch.to(self.dtype).contiguous(memory_format=torch.channels_last)

    def _features(self, batch: torch.Tensor) -> torch.Tensor:
        with quantized_engine() if self.precision == 'int8' else contextlib.nullcontext():
            return self.trunk(self._as_input(batch)).float()

    @torch.inference_mode()
    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        with ieee_float32(self.device):
            return mos_from_logits(self.head(self._features(batch))).flatten()

    @torch.inference_mode()
    def forward_with_maps(self, batch: torch.Tensor,
                          window: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Scores (N,) as :meth:`forward` gives them, bit for bit, and local scores
        (N, h, w) in [0, 1] from the same trunk pass: the head on the mean features of
        each ``window`` x ``window`` neighbourhood of the feature map (one position per
        32 x 32 pixels of the crop), see :meth:`MosHead.local_logits`."""
        with ieee_float32(self.device):
            features = self._features(batch)
            scores = mos_from_logits(self.head(features)).flatten()
            return scores, mos_from_logits(self.head.local_logits(features, window))
