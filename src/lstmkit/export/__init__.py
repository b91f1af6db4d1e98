"""Deployment: ONNX export checked in onnxruntime, and compression.

- :func:`to_onnx` (``lstmkit.export.onnx_export``): layers, cells, the LM and the forecaster to
  ONNX, every export checked against PyTorch before it is written.
- ``lstmkit.export.compress``: int8, float16/bfloat16, magnitude and structured pruning,
  low-rank factorisation.

onnx and onnxruntime are the ``deploy`` extra; they are imported when first needed.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "to_onnx": "lstmkit.export.onnx_export",
    "ExportReport": "lstmkit.export.onnx_export",
    "ParityError": "lstmkit.export.onnx_export",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lstmkit.export' has no attribute {name!r}")
