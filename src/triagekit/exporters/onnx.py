"""The whole router (backbone + every head) as one ONNX graph, its int8 variant, and the onnxruntime backend.

The graph takes ``input_ids`` and ``attention_mask`` (int64, dynamic batch and sequence axes) and returns the
raw logits of each head as ``logits_<head>``; calibration, the hybrid lexical pool and thresholds stay in numpy
(``Router``), so an exported router predicts exactly what the run predicts.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np

from triagekit.exporters import require
from triagekit.exporters.common import copy_lexical, copy_tokenizer, load_merged, read_run, run_heads, write_info
from triagekit.heads import HeadSpec

__all__ = ["export_onnx", "export_graph", "quantize_int8", "OnnxBackend", "output_name", "INPUTS", "ONNX_FILE",
           "INT8_FILE", "OPSET"]

ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
INPUTS = ("input_ids", "attention_mask")
OPSET = 17
"""17 has LayerNormalization as one op; onnxruntime >= 1.14 and Triton's onnxruntime backend run it."""
QUANTIZE = ("int8",)


def output_name(head: str) -> str:
    return f"logits_{head}"


def export_graph(model, heads: list[HeadSpec], path: Path, max_length: int) -> Path:
    """Trace ``model`` (a ``MultiHeadModel``) to ``path`` and check the graph with ``onnx.checker``."""
    import onnx
    import torch

    class Logits(torch.nn.Module):
        # ONNX outputs are positional: the dict of logits becomes a tuple in head order.
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask)
            return tuple(out[h.name] for h in heads)

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
    mask[1, width // 2:] = 0
    dynamic = {name: {0: "batch", 1: "sequence"} for name in INPUTS}
    dynamic.update({output_name(h.name): {0: "batch"} for h in heads})
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        # TracerWarnings about shape-dependent Python branches in transformers: the traced branches are the ones
        # every input takes (no cache, a padding mask), and the parity tests check other batch and sequence sizes.
        warnings.simplefilter("ignore")
        # The TorchScript exporter (dynamo=False) is the robust path for HF encoders with dynamic axes.
        torch.onnx.export(wrapper, (ids, mask), str(path), input_names=list(INPUTS),
                          output_names=[output_name(h.name) for h in heads], dynamic_axes=dynamic,
                          opset_version=OPSET, do_constant_folding=True, dynamo=False)
    onnx.checker.check_model(str(path))
    return path


class _NoPreprocessHint(logging.Filter):
    # quantize_dynamic logs a hint to run its pre-processing first; on these graphs that changes no number.
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def quantize_int8(src: Path, dst: Path) -> Path:
    """Dynamic quantization: int8 MatMul weights, one scale per output channel; activations quantized per call.

    Per-channel scales keep the argmax of a fine-tuned MiniLM on ~99.5% of tickets where one scale per tensor kept
    ~93% (x86 u8s8 kernels), at the same speed.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    hint = _NoPreprocessHint()
    logging.getLogger().addFilter(hint)
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                         per_channel=True)
    finally:
        logging.getLogger().removeFilter(hint)
    onnx.checker.check_model(str(dst))
    return dst


def export_onnx(run_dir: str | Path, out_dir: str | Path, quantize: str | None = None) -> Path:
    """Export a trained encoder run to ``out_dir`` so that ``Router.load(out_dir)`` serves it with onnxruntime.

    Args:
        run_dir: a run directory written by ``triagekit train`` (full, LoRA or head-only; hybrid or not).
        out_dir: written: ``model.onnx`` (fp32), ``model.int8.onnx`` (with ``quantize="int8"``), ``tokenizer/``,
            ``lexical/`` (hybrid runs) and ``router.json`` pointing at the int8 graph when there is one.
        quantize: None or ``"int8"``.

    Returns:
        ``out_dir``.
    """
    require("onnx", "onnxruntime")
    if quantize not in (None, *QUANTIZE):
        raise ValueError(f"--quantize must be one of {QUANTIZE}, got {quantize!r}")
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    info = read_run(run_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    export_graph(load_merged(run_dir, info), run_heads(info), out_dir / ONNX_FILE, info["max_length"])
    files = {"fp32": ONNX_FILE}
    if quantize == "int8":
        quantize_int8(out_dir / ONNX_FILE, out_dir / INT8_FILE)
        files["int8"] = INT8_FILE
    copy_tokenizer(run_dir, info, out_dir / "tokenizer")
    copy_lexical(run_dir, info, out_dir)
    write_info(info, out_dir, run_dir, "onnx", {"format": "onnx", "opset": OPSET, "quantize": quantize},
               onnx_file=files.get("int8", ONNX_FILE), onnx_files=files, tokenizer_dir="tokenizer")
    return out_dir


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class OnnxBackend:
    """An onnxruntime session of an exported router with its tokenizer; same ``logits`` protocol as
    ``EncoderBackend``: tokenise, sort by length, pad per batch, run, return raw logits per head."""

    def __init__(self, session, tokenizer, heads: list[HeadSpec], max_length: int):
        self.session, self.tokenizer, self.heads, self.max_length = session, tokenizer, heads, max_length
        self.outputs = [output_name(h.name) for h in heads]
        self.pad_id = tokenizer.pad_token_id or 0

    @staticmethod
    def session(file: str | Path, threads: int | None = None, device: str | None = None):
        """An ``InferenceSession`` with all graph optimisations and one intra-op thread per available core.

        ``TRIAGEKIT_ORT_THREADS`` overrides the thread count (e.g. several worker processes on one machine), and
        ``TRIAGEKIT_ORT_SPINNING=0`` stops idle threads from spin-waiting: on 2 cores another busy process cut int8
        batch-32 throughput from ~375 to ~160 tickets/s with spinning and to ~220 without, while on idle cores
        spinning is ~5% faster at batch 32 and ~1.5x faster at batch 1 (4 vs 6 ms), hence the default.
        """
        require("onnxruntime")
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads or int(os.environ.get("TRIAGEKIT_ORT_THREADS", 0)) or available_cores()
        # One graph runs at a time per call: inter-op parallelism only adds thread contention on few cores.
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if os.environ.get("TRIAGEKIT_ORT_SPINNING", "1") == "0":
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        return ort.InferenceSession(str(file), sess_options=opts, providers=providers)

    @classmethod
    def load(cls, path: str | Path, heads: list[HeadSpec], max_length: int, file: str = ONNX_FILE,
             tokenizer_dir: str = "tokenizer", threads: int | None = None, device: str | None = None
             ) -> "OnnxBackend":
        from transformers import AutoTokenizer

        path = Path(path)
        tokenizer = AutoTokenizer.from_pretrained(str(path / tokenizer_dir))
        return cls(cls.session(path / file, threads=threads, device=device), tokenizer, heads, max_length)

    def batches(self, texts: list[str], batch_size: int):
        """``(row indices, feed dict)`` per batch, rows sorted by length so that padding stays small."""
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        lengths = np.fromiter((len(ids) for ids in enc), dtype=np.int64, count=len(enc))
        order = np.argsort(lengths, kind="stable")
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            width = int(lengths[idx].max())
            ids = np.full((len(idx), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                ids[row, : lengths[i]] = enc[i]
                mask[row, : lengths[i]] = 1
            yield idx, {"input_ids": ids, "attention_mask": mask}

    def logits(self, texts: list[str], batch_size: int = 64) -> dict[str, np.ndarray]:
        out = {h.name: np.zeros((len(texts), len(h.labels)), dtype=np.float32) for h in self.heads}
        if not texts:
            return out
        for idx, feed in self.batches(texts, batch_size):
            for h, value in zip(self.heads, self.session.run(self.outputs, feed)):
                out[h.name][idx] = value
        return out
