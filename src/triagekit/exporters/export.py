"""``triagekit route export``: a trained router as one ONNX graph (fp32 / int8), merged HF weights, or a Triton model
repository. Every export directory except Triton's is loadable with ``Router.load`` and predicts what the run does.

The writers live in ``triagekit.exporters`` (one module per format); this module is the one entry point. The
ONNX runtime backend is ``triagekit.route.onnx.OnnxBackend``.
"""

from __future__ import annotations

from pathlib import Path

from triagekit.exporters.merged import export_merged
from triagekit.exporters.onnx import export_onnx
from triagekit.exporters.triton import export_triton
from triagekit.exporters.triton_check import validate_repository

__all__ = ["export", "export_onnx", "export_merged", "export_triton", "validate_repository", "FORMATS"]

FORMATS = ("onnx", "triton", "hf")


def export(
    run_dir: str | Path,
    out_dir: str | Path,
    format: str = "onnx",
    quantize: str | None = None,
    optimize: bool = False,
) -> Path:
    """Export ``run_dir`` to ``out_dir`` in ``format`` (onnx | triton | hf).

    Args:
        run_dir: a run directory written by ``triagekit route train`` (encoder or decoder backbone; ONNX and Triton
            take encoders).
        out_dir: the export directory (created).
        format: ``onnx`` (one graph, ``Router.load``-able), ``triton`` (a model repository) or ``hf`` (merged
            full weights in Hugging Face format, LoRA folded in).
        quantize: ``"int8"`` for dynamic int8 quantization of the ONNX graph (onnx and triton only).
        optimize: fuse the ONNX graph with onnxruntime's transformer optimizer first (onnx only; see
            ``export_onnx``).

    Returns:
        ``out_dir``.
    """
    if format not in FORMATS:
        raise ValueError(f"--format must be one of {FORMATS}, got {format!r}")
    if optimize and format != "onnx":
        raise ValueError(f"--optimize applies to --format onnx, not to --format {format}")
    if format == "hf":
        if quantize:
            raise ValueError("--quantize applies to ONNX graphs (--format onnx or triton), not to --format hf")
        return export_merged(run_dir, out_dir)
    if format == "triton":
        return export_triton(run_dir, out_dir, quantize=quantize)
    return export_onnx(run_dir, out_dir, quantize=quantize, optimize=optimize)
