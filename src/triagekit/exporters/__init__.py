"""Exporters of a trained router: one ONNX graph (+ int8), merged HF weights, and a Triton model repository.

``triagekit.exporters.export`` is the entry point; each module here writes one format. They need the ``export``
extra (``pip install triagekit[export]``: onnx and onnxruntime), imported where used. The runtime that loads an
ONNX export is ``triagekit.route.onnx.OnnxBackend``.
"""

from __future__ import annotations

__all__ = ["export", "FORMATS"]


def __getattr__(name):
    if name in ("export", "FORMATS"):
        from triagekit.exporters import export as _module

        return getattr(_module, name)
    raise AttributeError(name)
