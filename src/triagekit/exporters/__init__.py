"""Exporters of a trained router: one ONNX graph (+ int8), merged HF weights, and a Triton model repository.

``triagekit.export`` is the entry point; each module here writes one format. They need the ``export`` extra
(``pip install triagekit[export]``: onnx and onnxruntime), imported where used.
"""

from __future__ import annotations

import importlib.util

__all__ = ["require"]


def require(*modules: str) -> None:
    """Fail early with an install hint when an optional dependency of the exporters is missing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not installed: `pip install 'triagekit[export]'`")
