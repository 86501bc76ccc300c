"""Models for runtimes outside PyTorch: ONNX files (onnxruntime, C++, Triton, mobile)
whose scores are checked against the exact mode before they are written, and
onnxruntime scoring through the same decoding and cropping as ours.

Needs the ``onnx`` extra: ``pip install "modelscope-iqa[onnx]"``.
"""
from .onnx_export import ExportReport, export_onnx, read_onnx_metadata
from .onnx_runtime import OnnxNetwork

__all__ = ['ExportReport', 'OnnxNetwork', 'export_onnx', 'read_onnx_metadata']
