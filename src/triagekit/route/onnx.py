"""The onnxruntime backend of an exported router: same ``logits`` protocol as ``EncoderBackend``.

The graph (written by ``triagekit.exporters.onnx``) takes ``input_ids`` and ``attention_mask`` (int64, dynamic
batch and sequence axes) and returns the raw logits of each head as ``logits_<head>`` and the pooled sentence
vectors as ``features``; calibration, the hybrid
lexical pool and thresholds stay in numpy (``Router``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from triagekit.core.extras import require
from triagekit.route.heads import HeadSpec
from triagekit.route.oos import FEATURES
from triagekit.route.windows import LongText, encode_windows, padded_batches, pool_windows

__all__ = ["OnnxBackend", "output_name", "available_cores", "INPUTS", "ONNX_FILE", "INT8_FILE", "FEATURES_OUTPUT"]

ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
INPUTS = ("input_ids", "attention_mask")
FEATURES_OUTPUT = "features"
"""The pooled sentence vectors, the last output of the graph (the out-of-scope detectors score them)."""


def output_name(head: str) -> str:
    return f"logits_{head}"


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class OnnxBackend:
    """An onnxruntime session of an exported router with its tokenizer; same ``logits`` protocol as
    ``EncoderBackend``: tokenise, sort by length, pad per batch, run, return raw logits per head."""

    def __init__(self, session, tokenizer, heads: list[HeadSpec], max_length: int, long_text: LongText | None = None):
        self.session, self.tokenizer, self.heads, self.max_length = session, tokenizer, heads, max_length
        self.long_text = long_text or LongText()
        self.output_names = [output_name(h.name) for h in heads]
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
    def load(
        cls,
        path: str | Path,
        heads: list[HeadSpec],
        max_length: int,
        file: str = ONNX_FILE,
        tokenizer_dir: str = "tokenizer",
        threads: int | None = None,
        device: str | None = None,
        long_text: LongText | None = None,
    ) -> "OnnxBackend":
        from transformers import AutoTokenizer

        path = Path(path)
        tokenizer = AutoTokenizer.from_pretrained(str(path / tokenizer_dir))
        return cls(cls.session(path / file, threads=threads, device=device), tokenizer, heads, max_length, long_text)

    @property
    def has_features(self) -> bool:
        """Whether the graph returns the pooled features (exports before out-of-scope detection do not)."""
        return FEATURES_OUTPUT in {o.name for o in self.session.get_outputs()}

    def logits(self, texts: list[str], batch_size: int = 64) -> dict[str, np.ndarray]:
        return self._run(texts, batch_size, features=False)

    def outputs(self, texts: list[str], batch_size: int = 64) -> dict[str, np.ndarray]:
        """Logits per head and, when the graph has them, the pooled features under ``FEATURES``."""
        return self._run(texts, batch_size, features=self.has_features)

    def _run(self, texts: list[str], batch_size: int, features: bool) -> dict[str, np.ndarray]:
        windows, owner = encode_windows(self.tokenizer, texts, self.max_length, self.long_text)
        names = [h.name for h in self.heads] + ([FEATURES] if features else [])
        wanted = self.output_names + ([FEATURES_OUTPUT] if features else [])
        out: dict[str, np.ndarray] = {}
        for idx, ids, mask in padded_batches(windows, batch_size, self.pad_id):
            values = self.session.run(wanted, {"input_ids": ids, "attention_mask": mask})
            for name, value in zip(names, values):
                if name not in out:
                    out[name] = np.zeros((len(windows), value.shape[1]), dtype=np.float32)
                out[name][idx] = value
        for h in self.heads:
            out.setdefault(h.name, np.zeros((0, len(h.labels)), dtype=np.float32))
        # Long texts read as several windows (long_text: chunks): the ticket's logits are their mean.
        return {name: pool_windows(z, owner, len(texts)) for name, z in out.items()}
