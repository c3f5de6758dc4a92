"""The whole router (backbone + every head) as one ONNX graph and its int8 variant (run by ``route.onnx``).

The graph takes ``input_ids`` and ``attention_mask`` (int64, dynamic batch and sequence axes) and returns the
raw logits of each head as ``logits_<head>`` and the pooled sentence vectors as ``features`` (what the
out-of-scope detectors score); calibration, the hybrid lexical pool and thresholds stay in numpy
(``Router``), so an exported router predicts exactly what the run predicts.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from triagekit.core.extras import require
from triagekit.exporters.common import copy_lexical, copy_tokenizer, load_merged, read_run, run_heads, write_info
from triagekit.route import HeadSpec
from triagekit.route.onnx import FEATURES_OUTPUT, INPUTS, INT8_FILE, ONNX_FILE, output_name

__all__ = [
    "export_onnx",
    "export_graph",
    "fuse_transformer",
    "quantize_int8",
    "output_name",
    "INPUTS",
    "ONNX_FILE",
    "INT8_FILE",
    "OPSET",
]

OPSET = 17
"""17 has LayerNormalization as one op; onnxruntime >= 1.14 and Triton's onnxruntime backend run it."""
QUANTIZE = ("int8",)
FUSABLE = {"bert": "bert", "roberta": "bert", "xlm-roberta": "bert", "distilbert": "bert", "electra": "bert"}
"""Backbone ``model_type`` -> onnxruntime.transformers optimizer type, for the encoders its BERT fusions match."""


def export_graph(model, heads: list[HeadSpec], path: Path, max_length: int, features: bool = True) -> Path:
    """Trace ``model`` (a ``MultiHeadModel``) to ``path`` and check the graph with ``onnx.checker``.

    Args:
        features: also return the pooled sentence vectors as the last output ``features`` (what the out-of-scope
            detectors score; the Triton ensemble, which does no out-of-scope detection, leaves it out).
    """
    import onnx
    import torch

    class Logits(torch.nn.Module):
        # ONNX outputs are positional: the dict of logits becomes a tuple in head order.
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            out, pooled = self.inner.logits_and_features(input_ids, attention_mask)
            return (*(out[h.name] for h in heads), *((pooled,) if features else ()))

    # Eager attention traces to a smaller graph than SDPA (no shape arithmetic around the mask) that onnxruntime runs
    # 10-20% faster on CPU, with the same numbers.
    setter = getattr(model.backbone, "set_attn_implementation", None)
    if setter is not None:
        setter("eager")
    else:
        model.backbone.config._attn_implementation = "eager"
    # eval() on the wrapper too: the exporter restores the wrapper's training flag recursively afterwards.
    wrapper = Logits(model).eval()
    width = min(16, max_length)
    ids = torch.randint(100, 1000, (2, width), dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, width // 2 :] = 0
    dynamic = {name: {0: "batch", 1: "sequence"} for name in INPUTS}
    dynamic.update({output_name(h.name): {0: "batch"} for h in heads})
    names = [output_name(h.name) for h in heads] + ([FEATURES_OUTPUT] if features else [])
    if features:
        dynamic[FEATURES_OUTPUT] = {0: "batch"}
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        # TracerWarnings about shape-dependent Python branches in transformers: the traced branches are the ones
        # every input takes (no cache, a padding mask), and the parity tests check other batch and sequence sizes.
        warnings.simplefilter("ignore")
        # The TorchScript exporter (dynamo=False) is the robust path for HF encoders with dynamic axes.
        torch.onnx.export(
            wrapper,
            (ids, mask),
            str(path),
            input_names=list(INPUTS),
            output_names=names,
            dynamic_axes=dynamic,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    onnx.checker.check_model(str(path))
    return path


class _NoPreprocessHint(logging.Filter):
    # quantize_dynamic logs a hint to run its pre-processing first; on these graphs that changes no number.
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def fusion_type(config) -> str:
    """The onnxruntime optimizer type for a backbone config.

    Raises:
        ValueError: the backbone is not one the BERT fusions match (``FUSABLE``).
    """
    kind = FUSABLE.get(getattr(config, "model_type", ""))
    if kind is None:
        raise ValueError(
            f"--optimize fuses BERT-like encoders ({', '.join(sorted(FUSABLE))}); this backbone is "
            f"{getattr(config, 'model_type', None)!r}: export it without --optimize"
        )
    return kind


def fuse_transformer(src: Path, dst: Path, config) -> dict[str, int]:
    """Rewrite the graph with onnxruntime's transformer fusions (one ``Attention``, ``SkipLayerNormalization``,
    ``BiasGelu`` and ``EmbedLayerNormalization`` op per block instead of their dozens of primitive ops).

    Args:
        config: the backbone's HF config (``model_type``, ``num_attention_heads``, ``hidden_size``).

    Returns:
        The count of each fused op in the written graph.

    Raises:
        ValueError: the backbone is not one the BERT fusions match (``FUSABLE``).
    """
    from onnxruntime.transformers.optimizer import optimize_model

    kind = fusion_type(config)
    # opt_level 0: only the offline fusions; the session applies onnxruntime's own graph optimisations at load.
    model = optimize_model(
        str(src),
        model_type=kind,
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
        opt_level=0,
    )
    model.save_model_to_file(str(dst))
    return {op: n for op, n in model.get_fused_operator_statistics().items() if n}


def quantize_int8(src: Path, dst: Path) -> Path:
    """Dynamic quantization: int8 MatMul weights, one scale per output channel; activations quantized per call.

    Per-channel scales keep the argmax of a fine-tuned MiniLM on ~99.5% of tickets where one scale per tensor kept
    ~93% (x86 u8s8 kernels), at the same speed. A fused graph (``fuse_transformer``) also gets its ``Attention`` ops
    quantized (``QAttention``); their outputs are a contrib domain's, hence the default tensor type.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    hint = _NoPreprocessHint()
    logging.getLogger().addFilter(hint)
    try:
        quantize_dynamic(
            str(src),
            str(dst),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Attention"],
            per_channel=True,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        logging.getLogger().removeFilter(hint)
    onnx.checker.check_model(str(dst))
    return dst


def export_onnx(run_dir: str | Path, out_dir: str | Path, quantize: str | None = None, optimize: bool = False) -> Path:
    """Export a trained encoder run to ``out_dir`` so that ``Router.load(out_dir)`` serves it with onnxruntime.

    Args:
        run_dir: a run directory written by ``triagekit route train`` (full, LoRA or head-only; hybrid or not).
        out_dir: written: ``model.onnx`` (fp32), ``model.int8.onnx`` (with ``quantize="int8"``), ``tokenizer/``,
            ``lexical/`` (hybrid runs) and ``router.json`` pointing at the int8 graph when there is one.
        quantize: None or ``"int8"``.
        optimize: fuse the graph offline with onnxruntime's transformer optimizer (``fuse_transformer``) before
            quantizing. Off by default: onnxruntime 1.32 applies the same fusions when a session loads the plain
            graph, and on the 2-core benchmark machine the fused graph ran no faster (docs/benchmarks.md).

    Returns:
        ``out_dir``.
    """
    require("onnx", "onnxruntime")
    if quantize not in (None, *QUANTIZE):
        raise ValueError(f"--quantize must be one of {QUANTIZE}, got {quantize!r}")
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    info = read_run(run_dir)
    model = load_merged(run_dir, info)
    if optimize:
        fusion_type(model.backbone.config)  # refused before anything is written
    out_dir.mkdir(parents=True, exist_ok=True)
    export_graph(model, run_heads(info), out_dir / ONNX_FILE, info["max_length"])
    fused = fuse_transformer(out_dir / ONNX_FILE, out_dir / ONNX_FILE, model.backbone.config) if optimize else None
    files = {"fp32": ONNX_FILE}
    if quantize == "int8":
        quantize_int8(out_dir / ONNX_FILE, out_dir / INT8_FILE)
        files["int8"] = INT8_FILE
    copy_tokenizer(run_dir, info, out_dir / "tokenizer")
    copy_lexical(run_dir, info, out_dir)
    write_info(
        info,
        out_dir,
        run_dir,
        "onnx",
        {"format": "onnx", "opset": OPSET, "quantize": quantize, "fused": fused},
        onnx_file=files.get("int8", ONNX_FILE),
        onnx_files=files,
        tokenizer_dir="tokenizer",
    )
    return out_dir
