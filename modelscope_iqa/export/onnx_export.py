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
from typing import Optional

import numpy as np
import torch

from ..config import EXACT_PRECISION
from ..errors import MissingExtraError
from .graph import INPUT_NAME, OUTPUT_NAME, ExportNetwork
from .metadata import export_metadata, read_onnx_metadata
from .onnx_runtime import OnnxNetwork
from .validation import check_fp32, fp32_check_crops, validation_crops

__all__ = ['ExportReport', 'export_onnx', 'read_onnx_metadata']

LOG = logging.getLogger(__name__)
OPSET = 18
# fp32 only. onnxruntime's static int8 quantization of the default model differed from
# the exact scores by up to 0.36 on the benchmark images, far beyond int8's bound
# (config.PRECISION_BOUNDS), with every range method and activation type tried; it was
# removed rather than shipped outside its bound (docs/deploy.md).
ONNX_PRECISIONS = (EXACT_PRECISION, )


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


def export_onnx(model_dir: Optional[str] = None, path: str = 'model.onnx',
                precision: str = EXACT_PRECISION) -> ExportReport:
    """Write ``model_dir``'s model (default: the embedded default model; a folder or hub
    id, as ``--model`` takes) to ``path`` as ONNX in float32, once onnxruntime has scored
    the validation images as the exact mode does, within fp32's bound
    (``config.PRECISION_BOUNDS``; see :mod:`.validation`). Raises
    :class:`~modelscope_iqa.errors.ExportError` otherwise, and ``ValueError`` for any
    other ``precision`` (there is no int8 export: it missed int8's bound).
    """
    onnx = _import_onnx()

    from .. import DEFAULT_MODEL_DIR, __version__
    from ..hub import open_model_folder
    from ..hub import load_model

    if precision not in ONNX_PRECISIONS:
        raise ValueError(f'ONNX export writes {ONNX_PRECISIONS} only, got {precision!r} (an '
                         'int8 export missed int8\'s bound; see docs/deploy.md)')
    start = time.perf_counter()
    folder = open_model_folder(model_dir or DEFAULT_MODEL_DIR)
    model = load_model(folder)
    config = folder.preprocess_config
    out_dir = os.path.dirname(os.path.abspath(path))
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix='.export-') as scratch:
        written = os.path.join(scratch, 'model.onnx')
        _write_fp32(ExportNetwork(model.network), config.crop_size, written)
        proto = onnx.load(written)
        onnx.helper.set_model_props(proto, export_metadata(
            config, folder.dataset, precision, folder.identity, __version__))
        proto.doc_string = ('modelscope-iqa: no-reference image quality (MOS in [0, 1]); '
                            'see the metadata for the preprocessing')
        onnx.checker.check_model(proto)
        onnx.save(proto, written)

        crops = fp32_check_crops(validation_crops(config))
        exact = model.inference_network(EXACT_PRECISION, 'cpu', config)(
            torch.from_numpy(np.stack(crops))).numpy()
        onnx_network = OnnxNetwork(written)  # as scoring with the file runs it
        scores = np.concatenate([onnx_network(torch.from_numpy(crop)[None]).numpy()
                                 for crop in crops])
        largest = check_fp32(path, scores, exact)
        os.replace(written, path)
    return ExportReport(path, precision, len(crops), largest,
                        time.perf_counter() - start)
