"""Models for other runtimes, each checked before it is handed over: ONNX files
(onnxruntime, C++, Triton, mobile) whose scores are checked against the exact mode
before they are written, and onnxruntime scoring through the same decoding and cropping
as ours; published model folders that stock ModelScope runs (:mod:`.published_folder`).

ONNX needs the ``onnx`` extra: ``.venv/bin/pip install ".[onnx]"`` in the project folder.
"""

from .._lazy import lazy_namespace

# name -> the module that defines it, imported on first use
_EXPORTS = {
    'ExportReport': '.onnx_export', 'export_onnx': '.onnx_export',
    'read_onnx_metadata': '.onnx_export',
    'OnnxNetwork': '.onnx_runtime',
    'MODEL_FOLDER_FILES': '.published_folder', 'PUBLISHED_TOLERANCE': '.published_folder',
    'export_model_folder': '.published_folder',
    'published_configuration': '.published_folder',
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_namespace(__name__, _EXPORTS)
