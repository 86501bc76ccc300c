"""Scoring with an exported ONNX file in onnxruntime, through our decoding and cropping:
:class:`OnnxNetwork` stands in for :class:`~modelscope_iqa.models.InferenceNetwork` in
the scoring engine, so ``modelscope-iqa score --backend onnxruntime`` checks a
deployment end to end."""
from __future__ import annotations

import json
from typing import Optional

import numpy as np
import torch

from ..config import PreprocessConfig
from ..errors import MissingExtraError, ModelFolderError
from ..preprocessors.scale import to_unit_range
from .graph import INPUT_NAME, OUTPUT_NAME
from .metadata import (PREPROCESSOR_KEY, WEIGHTS_SHA256_KEY, metadata_identity,
                       read_onnx_metadata)


def as_network_input(batch: torch.Tensor) -> np.ndarray:
    """uint8 crops (N, H, W, 3), or float (N, 3, H, W) in [0, 1] -> the file's input:
    float32 (N, 3, H, W), contiguous."""
    if batch.dtype == torch.uint8:
        batch = to_unit_range(batch)
    return np.ascontiguousarray(batch.numpy(), dtype=np.float32)


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingExtraError('onnxruntime is needed', 'onnx') from exc
    return onnxruntime


class OnnxNetwork:
    """An exported file in an onnxruntime CPU session. Call it with a batch of uint8
    crops (N, H, W, 3), or float32 (N, 3, H, W) in [0, 1], for float32 scores (N,).
    ``preprocess_config`` is the file's own, read from its metadata."""

    def __init__(self, path: str, threads: Optional[int] = None):
        ort = _onnxruntime()
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(path, options,
                                                providers=['CPUExecutionProvider'])
        except Exception as exc:  # onnxruntime raises its own types for bad files
            raise ModelFolderError(f'{path!r}: not a usable ONNX model ({exc})') from exc
        metadata = read_onnx_metadata(path)
        for key in (PREPROCESSOR_KEY, WEIGHTS_SHA256_KEY):
            if key not in metadata:
                raise ModelFolderError(f'{path!r}: no {key} metadata; export it with '
                                       'modelscope-iqa export --format onnx')
        self.path = path
        self.metadata = metadata
        # the weights it was exported from: what its scores record
        self.identity = metadata_identity(metadata)
        self.preprocess_config = PreprocessConfig.from_mapping(
            json.loads(metadata[PREPROCESSOR_KEY]))

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run([OUTPUT_NAME],
                                                 {INPUT_NAME: as_network_input(batch)})[0])

    def forward_with_maps(self, batch: torch.Tensor, window: int):
        raise ValueError('quality maps need the PyTorch backend: the exported file '
                         'gives scores only')
