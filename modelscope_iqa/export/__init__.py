"""Models for runtimes outside PyTorch: ONNX files (onnxruntime, C++, Triton, mobile)
whose scores are checked against the exact mode before they are written, and
onnxruntime scoring through the same decoding and cropping as ours.

Needs the ``onnx`` extra: ``.venv/bin/pip install ".[onnx]"`` in the project folder.
"""

from .._lazy import lazy_namespace

# name -> the module that defines it, imported on first use
_EXPORTS = {
    'ExportReport': '.onnx_export', 'export_onnx': '.onnx_export',
    'read_onnx_metadata': '.onnx_export',
    'OnnxNetwork': '.onnx_runtime',
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_namespace(__name__, _EXPORTS)
