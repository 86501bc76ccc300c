"""Scoring at speed: the network prepared for inference in one of three precisions.

- ``fp32`` (exact, the default): BatchNorm folded into the convolutions, channels-last
  memory. On trained checkpoints scores stay within 1e-5 of ModelScope's built-in
  pipeline (about 1e-8 on the default model: only the order of float32 operations
  changes); on any checkpoint they stay about as close to a float64 evaluation as the
  built-in pipeline's (within 2x on an AMD EPYC, 2.1x on an Intel Xeon, whose
  channels-last kernels sum in another order; ``tests/test_inference.py``).
- ``bf16`` (fast, CPU or CUDA): the trunk's weights and activations in bfloat16;
  AVX-512 BF16 (or AMX) CPUs run it about twice as fast.
- ``fp16`` (fast, CUDA only).
- ``int8`` (fastest, x86 CPUs): the trunk statically quantized but for its first
  residual stage (bfloat16 where the CPU has it natively, else float32), calibrated when
  the network is first prepared for a model (about 10 s, then cached; see
  :mod:`.quantization`).

Pooling and the MLP head always run in float32, one image at a time, so a score does
not depend on the batch it came in. Inputs are the preprocessing's uint8 crops
(N, H, W, 3), moved to the device as bytes and scaled there, or float tensors
(N, 3, H, W) in [0, 1].

On CUDA, float32 means IEEE float32. PyTorch lets cuDNN run float32 convolutions in TF32
by default, which moved fp32 scores by up to 2.1e-3 from the exact CPU scores on an
NVIDIA H200 (``benchmarks/cuda_precisions.py``); the network turns TF32 off around its
own forward and restores the setting after.
"""
from __future__ import annotations

import contextlib
import copy
from typing import Dict, Optional, Tuple

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..config import EXACT_PRECISION, PRECISIONS, PreprocessConfig
from ..preprocessors.scale import to_unit_range
from .network import IqaMosNet, ResNet18Trunk
from .quantization import quantize_trunk, quantized_engine

_DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16,
           'int8': torch.float32}  # int8: float in and out, quantized inside
PRECISION_DTYPES: Dict[str, torch.dtype] = {name: _DTYPES[name] for name in PRECISIONS}
CUDA_ONLY_PRECISIONS = frozenset({'fp16'})
CPU_ONLY_PRECISIONS = frozenset({'int8'})


def check_precision(precision: str, device: Optional[torch.device]) -> None:
    """Refuse an unknown precision, or one that ``device`` cannot run (None: check the
    name only)."""
    if precision not in PRECISION_DTYPES:
        raise ValueError(f'precision must be one of {sorted(PRECISION_DTYPES)}, '
                         f'got {precision!r}')
    if device is None:
        return
    if precision in CUDA_ONLY_PRECISIONS and device.type != 'cuda':
        raise ValueError(f'precision {precision!r} needs a CUDA device (on CPU use '
                         "'bf16' or 'int8' for speed, 'fp32' for exact scores)")
    if precision in CPU_ONLY_PRECISIONS and device.type != 'cpu':
        raise ValueError(f"precision {precision!r} runs on CPU only (on CUDA use 'fp16' "
                         "or 'bf16' for speed)")


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
        check_precision(precision, self.device)
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
            return torch.sigmoid(self.head(self._features(batch))).flatten()

    @torch.inference_mode()
    def forward_with_maps(self, batch: torch.Tensor,
                          window: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Scores (N,) as :meth:`forward` gives them, bit for bit, and local scores
        (N, h, w) in [0, 1] from the same trunk pass: the head on the mean features of
        each ``window`` x ``window`` neighbourhood of the feature map (one position per
        32 x 32 pixels of the crop), see :meth:`MosHead.local_logits`."""
        with ieee_float32(self.device):
            features = self._features(batch)
            scores = torch.sigmoid(self.head(features)).flatten()
            return scores, torch.sigmoid(self.head.local_logits(features, window))
