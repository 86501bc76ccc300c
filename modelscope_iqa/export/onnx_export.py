"""Writing an ONNX file of a model folder, checked against the exact mode first.

The file's input is the network input the preprocessor documents (float32, N x 3 x crop
height x crop width, in ``channel_order``, [0, 1]; dynamic batch), its output the MOS
per image. The preprocessing facts travel in its metadata (:mod:`.metadata`). Before
the file is moved into place, onnxruntime loads it and scores the validation images
(:mod:`.validation`); a file that does not give our scores is not written.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch

from ..config import EXACT_PRECISION
from ..errors import MissingExtraError
from .graph import INPUT_NAME, OUTPUT_NAME, ExportNetwork
from .metadata import export_metadata, read_onnx_metadata
from .onnx_runtime import OnnxNetwork, as_network_input
from .validation import check_fp32, check_int8, fp32_check_crops, validation_crops

__all__ = ['ExportReport', 'export_onnx', 'read_onnx_metadata']

LOG = logging.getLogger(__name__)
OPSET = 18
ONNX_PRECISIONS = (EXACT_PRECISION, 'int8')


@dataclass(frozen=True)
class ExportReport:
    """What was written and how it was checked: ``max_abs_diff`` against the exact
    mode over ``images`` validation images."""
    path: str
    precision: str
    images: int
    max_abs_diff: float
    seconds: float


def _import_onnx():
    try:
        import onnx
        import onnxruntime  # noqa: F401  (validation)
        import onnxscript  # noqa: F401  (torch's exporter)
    except ImportError as exc:
        raise MissingExtraError('ONNX export needs onnx, onnxscript and onnxruntime',
                                'onnx') from exc
    return onnx


def _write_fp32(network: ExportNetwork, crop_size, path: str) -> None:
    sample = torch.zeros(2, 3, *crop_size)
    batch = torch.export.Dim('batch', min=1)
    # torch's exporter reports its steps on stdout; a library keeps stdout clean.
    with contextlib.redirect_stdout(io.StringIO()) as steps:
        program = torch.onnx.export(network, (sample, ), input_names=[INPUT_NAME],
                                    output_names=[OUTPUT_NAME], opset_version=OPSET,
                                    dynamic_shapes={INPUT_NAME: {0: batch}}, dynamo=True,
                                    optimize=True, verbose=False)
        program.save(path, external_data=False)
    LOG.debug('torch.onnx.export: %s', steps.getvalue())


def _quantize(source: str, path: str, calibration: List[np.ndarray]) -> None:
    """onnxruntime's static quantization (QDQ, int8 per-channel weights, uint8
    activations, min-max ranges) of the convolutions, calibrated on ``calibration``."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod,
                                          QuantFormat, QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Crops(CalibrationDataReader):
        def __init__(self):
            self.items = iter(calibration)

        def get_next(self):
            crop = next(self.items, None)
            return None if crop is None else {
                INPUT_NAME: as_network_input(torch.from_numpy(crop)[None])}

    prepared = path + '.prepared.onnx'
    try:
        quant_pre_process(source, prepared)
        quantize_static(prepared, path, Crops(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                        op_types_to_quantize=['Conv'])
    finally:
        if os.path.exists(prepared):
            os.remove(prepared)


def export_onnx(model_dir: Optional[str] = None, path: str = 'model.onnx',
                precision: str = EXACT_PRECISION) -> ExportReport:
    """Write ``model_dir``'s model (default: the embedded default model; a folder or hub
    id, as ``--model`` takes) to ``path`` as ONNX, ``precision`` ``'fp32'`` or
    ``'int8'`` (onnxruntime static quantization, calibrated on the same crops as our
    int8), once onnxruntime has scored the validation images as the exact mode does:
    fp32 within 1e-5, int8 within 0.02 and in the same order (see
    :mod:`.validation`). Raises :class:`~modelscope_iqa.errors.ExportError` otherwise.
    """
    onnx = _import_onnx()

    from .. import DEFAULT_MODEL_DIR, __version__
    from ..hub import open_model_folder
    from ..models.quantization import calibration_crops
    from ..hub import load_model

    if precision not in ONNX_PRECISIONS:
        raise ValueError(f'precision must be one of {ONNX_PRECISIONS}, got {precision!r}')
    start = time.perf_counter()
    folder = open_model_folder(model_dir or DEFAULT_MODEL_DIR)
    model = load_model(folder)
    config = folder.preprocess_config
    out_dir = os.path.dirname(os.path.abspath(path))
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix='.export-') as scratch:
        written = os.path.join(scratch, 'model.onnx')
        _write_fp32(ExportNetwork(model.network), config.crop_size, written)
        if precision == 'int8':
            quantized = os.path.join(scratch, 'model.int8.onnx')
            _quantize(written, quantized, calibration_crops(config))
            written = quantized
        proto = onnx.load(written)
        onnx.helper.set_model_props(proto, export_metadata(
            config, folder.dataset, precision, folder.weights, __version__))
        proto.doc_string = ('modelscope-iqa: no-reference image quality (MOS in [0, 1]); '
                            'see the metadata for the preprocessing')
        onnx.checker.check_model(proto)
        onnx.save(proto, written)

        crops = validation_crops(config)
        if precision == EXACT_PRECISION:
            crops = fp32_check_crops(crops)
        exact = model.inference_network(EXACT_PRECISION, 'cpu', config)(
            torch.from_numpy(np.stack(crops))).numpy()
        onnx_network = OnnxNetwork(written)  # as scoring with the file runs it
        scores = np.concatenate([onnx_network(torch.from_numpy(crop)[None]).numpy()
                                 for crop in crops])
        check = check_fp32 if precision == EXACT_PRECISION else check_int8
        largest = check(path, scores, exact)
        os.replace(written, path)
    return ExportReport(path, precision, len(crops), largest,
                        time.perf_counter() - start)
