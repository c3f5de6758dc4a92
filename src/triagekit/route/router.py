"""``Router``: the one model surface the CLI, the service and the exporters go through."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol, Sequence

import numpy as np

from triagekit.route.calibration import sigmoid, softmax
from triagekit.route.heads import DEFAULT_TEXT_FIELDS, HeadSpec, build_text
from triagekit.route.oos import FEATURES

__all__ = ["Router", "Backend", "EncoderBackend", "ROUTER_FILE", "resolve_model_path", "registered_as"]

ROUTER_FILE = "router.json"
PRECISIONS = ("fp32", "bf16")
FORMAT = "triagekit-router"


def resolve_model_path(path: str | Path) -> tuple[Path, dict[str, Any] | None]:
    """The directory to load for ``path`` and, for a ``registry:`` reference, the version's registry metadata.

    Raises:
        RegistryError: not a registry, unknown name, version or alias; IntegrityError: files changed since
            registration.
    """
    from triagekit.core.registry import is_registry_ref, resolve

    if is_registry_ref(str(path)):
        return resolve(str(path))
    return Path(path), None


def registered_as(files: Path, registered: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata a registry version adds to its router: its ``NAME@vK`` as ``model_version`` and its own data."""
    out: dict[str, Any] = {
        "model_version": f"{registered['name']}@v{registered['version']}",
        "run_model_version": meta.get("model_version"),
        "registry": {"name": registered["name"], "version": registered["version"]},
    }
    if (files / "data" / "train.jsonl").exists():  # the registered copy of the run's prepared data
        out["data_dir"] = str(files / "data")
    return out


class Backend(Protocol):
    """What a router needs from a model: raw logits per head for a list of texts."""

    heads: list[HeadSpec]

    def logits(self, texts: list[str], batch_size: int = 64) -> dict[str, np.ndarray]: ...


class EncoderBackend:
    """A ``MultiHeadModel`` with its tokenizer; batches are sorted by length so padding stays small.

    ``precision="bf16"`` runs the forward pass under bf16 autocast (fast on GPUs and on CPUs with AMX; the weights
    stay fp32 and the logits come back as fp32). ``compile=True`` runs the forward pass through ``torch.compile``
    (dynamic shapes, so one graph serves every batch and sequence size; the first call compiles it).
    """

    def __init__(
        self,
        model,
        tokenizer,
        heads: list[HeadSpec],
        max_length: int,
        device: str = "cpu",
        precision: str = "fp32",
        long_text=None,
        compile: bool = False,
    ):
        from triagekit.route.windows import LongText

        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        self.model, self.tokenizer, self.heads = model, tokenizer, heads
        self.max_length, self.device, self.precision = max_length, device, precision
        self.long_text = long_text or LongText()
        self.forward = model.logits_and_features
        if compile:
            import torch

            # Off by default: on the 2-core benchmark CPU it compiled for ~10 s and ran within noise of eager
            # (docs/benchmarks.md, Inference).
            self.forward = torch.compile(model.logits_and_features, dynamic=True)

    @classmethod
    def load(
        cls,
        path: Path,
        heads: list[HeadSpec],
        max_length: int,
        device: str | None = None,
        precision: str = "fp32",
        long_text=None,
        compile: bool = False,
    ) -> "EncoderBackend":
        import torch
        from transformers import AutoTokenizer

        from triagekit.route.modeling import load_model

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = load_model(path, heads).to(device)
        tokenizer = AutoTokenizer.from_pretrained(str(path / "tokenizer"))
        return cls(model, tokenizer, heads, max_length, device, precision, long_text, compile)

    def logits(self, texts: list[str], batch_size: int = 64) -> dict[str, np.ndarray]:
        out = self.outputs(texts, batch_size=batch_size)
        out.pop(FEATURES, None)
        return out

    def outputs(self, texts: list[str], batch_size: int = 64) -> dict[str, np.ndarray]:
        """Logits per head and, under ``FEATURES``, the pooled sentence vectors (mean over a ticket's windows)."""
        import torch

        from triagekit.route.windows import encode_windows, padded_batches, pool_windows

        windows, owner = encode_windows(self.tokenizer, texts, self.max_length, self.long_text)
        out = {h.name: np.zeros((len(windows), len(h.labels)), dtype=np.float32) for h in self.heads}
        out[FEATURES] = np.zeros((len(windows), next(iter(self.model.heads.values())).in_features), dtype=np.float32)
        if not texts:
            return out
        pad_id = self.tokenizer.pad_token_id or 0
        self.model.eval()
        autocast = torch.autocast(
            torch.device(self.device).type, dtype=torch.bfloat16, enabled=self.precision == "bf16"
        )
        with torch.inference_mode(), autocast:
            for idx, ids, mask in padded_batches(windows, batch_size, pad_id):
                logits, features = self.forward(
                    torch.from_numpy(ids).to(self.device), torch.from_numpy(mask).to(self.device)
                )
                for name, value in logits.items():
                    out[name][idx] = value.float().cpu().numpy()
                out[FEATURES][idx] = features.float().cpu().numpy()
        # Long texts read as several windows (long_text: chunks): the ticket's logits are their mean.
        return {name: pool_windows(z, owner, len(texts)) for name, z in out.items()}


class Router:
    """A trained router: ``load(dir)``, ``predict(inputs)``, ``predict_proba(inputs)``, ``save(dir)``.

    Inputs are strings or dicts with the run's text fields (e.g. ``{"subject": ..., "body": ...}``) or ``text``.
    Probabilities are temperature-calibrated; ``requires_review`` is set when a head's confidence falls below
    the threshold fitted for the target precision at training or evaluation time.
    """

    def __init__(
        self,
        backend: Backend,
        heads: list[HeadSpec],
        text_fields: Sequence[str] = DEFAULT_TEXT_FIELDS,
        calibration: Mapping[str, Mapping[str, Any]] | None = None,
        meta: Mapping[str, Any] | None = None,
    ):
        self.backend, self.heads, self.text_fields = backend, list(heads), list(text_fields)
        self.calibration = {k: dict(v) for k, v in (calibration or {}).items()}
        self.meta = dict(meta or {})
        self.review: dict[str, Any] = {}
        """How the review thresholds were fitted; ``review["heads"]`` (None: all) set the ticket-level flag."""
        self.oos = None
        """The fitted out-of-scope detector (``route.oos.OutOfScope``), or None."""

    # -- loading and saving -------------------------------------------------------------------------------
    @classmethod
    def load(
        cls, path: str | Path, device: str | None = None, precision: str = "fp32", compile: bool = False
    ) -> "Router":
        """Load a run or export directory, or a registry version (``registry:NAME@alias``); needs no network.

        Args:
            path: a directory with ``router.json``, or ``registry:[ROOT/]NAME[@vK|@alias]`` (checksums verified;
                ``model_version`` becomes ``NAME@vK``).
            precision: ``bf16`` runs a PyTorch backbone under bf16 autocast (about 2x the throughput of a decoder
                router on a CPU with AMX); ONNX and TF-IDF runs ignore it.
            compile: run a PyTorch backbone through ``torch.compile`` (see ``EncoderBackend``); others ignore it.
        """
        path, registered = resolve_model_path(path)
        file = path / ROUTER_FILE
        if not file.exists():
            raise FileNotFoundError(f"{path} is not a triagekit model directory (no {ROUTER_FILE})")
        info = json.loads(file.read_text())
        heads = [HeadSpec.from_dict(h) for h in info["heads"]]
        kind = info["backend"]
        from triagekit.route.windows import LongText

        long_text = LongText.from_info(info.get("long_text"))
        if kind == "tfidf":
            from triagekit.route.tfidf import TfidfBackend

            backend = TfidfBackend.load(path)
        elif kind == "encoder":
            backend = EncoderBackend.load(
                path / info.get("model_dir", "."),
                heads,
                info["max_length"],
                device=device,
                precision=precision,
                long_text=long_text,
                compile=compile,
            )
            if info.get("lexical"):
                from triagekit.route.hybrid import HybridBackend

                backend = HybridBackend.load(backend, path, info["lexical"]["weights"], info["lexical"].get("scales"))
        elif kind == "onnx":
            from triagekit.route.hybrid import HybridBackend
            from triagekit.route.onnx import OnnxBackend

            backend = OnnxBackend.load(
                path, heads, info["max_length"], file=info["onnx_file"], device=device, long_text=long_text
            )
            if info.get("lexical"):
                backend = HybridBackend.load(backend, path, info["lexical"]["weights"], info["lexical"].get("scales"))
        else:
            raise ValueError(f"{file}: unknown backend {kind!r}")
        router = cls(backend, heads, info["text_fields"], info.get("calibration"), info.get("meta"))
        router.review = dict(info.get("review") or {})
        router.load_out_of_scope(path, info.get("oos"))
        if registered is not None:
            router.meta.update(registered_as(path, registered, router.meta))
        return router

    def save_info(self, path: str | Path, backend: str, **extra: Any) -> None:
        """Write ``router.json``: heads, text fields, calibration and metadata. Weights are saved by the trainer."""
        info = {
            "format": FORMAT,
            "version": 1,
            "backend": backend,
            "heads": [h.to_dict() for h in self.heads],
            "text_fields": self.text_fields,
            "calibration": self.calibration,
            "meta": self.meta,
            **extra,
        }
        Path(path, ROUTER_FILE).write_text(json.dumps(info, indent=2))

    def set_calibration(
        self, path: str | Path, calibration: Mapping[str, Mapping[str, Any]], review: Mapping[str, Any] | None = None
    ) -> None:
        """Store new temperatures / review thresholds in memory and in ``path/router.json``; the keys not given
        (e.g. the prior correction fitted at training) are kept."""
        for k, v in calibration.items():
            self.calibration.setdefault(k, {}).update(v)
        if review is not None:
            self.review = dict(review)
        file = Path(path, ROUTER_FILE)
        info = json.loads(file.read_text())
        info["calibration"] = self.calibration
        if review is not None:
            info["review"] = self.review
        file.write_text(json.dumps(info, indent=2))

    def load_out_of_scope(self, path: str | Path, info: Mapping[str, Any] | None) -> None:
        """Attach the detector described by ``router.json["oos"]`` (None or detector ``none``: no detection).

        Raises:
            ValueError: the detector scores features and the backend gives none (an ONNX export made before
                out-of-scope detection existed: re-export the run).
        """
        from triagekit.route.oos import OutOfScope

        if not info or info.get("detector", "none") == "none":
            self.oos = None
            return
        oos = OutOfScope.load(path, info)
        if oos.needs_features and not getattr(self.backend, "has_features", True):
            raise ValueError(
                f"{path}: the out-of-scope detector {oos.detector!r} needs the pooled features and this model's "
                "graph does not return them; re-export the run with `triagekit route export`"
            )
        self.oos = oos

    def set_out_of_scope(self, path: str | Path, oos, target_rejection: float) -> None:
        """Store a fitted detector in memory, ``path/oos.npz`` and ``path/router.json["oos"]``."""
        oos.save(path)
        self.oos = oos
        file = Path(path, ROUTER_FILE)
        info = json.loads(file.read_text())
        info["oos"] = oos.info(target_rejection)
        file.write_text(json.dumps(info, indent=2))

    @property
    def model_version(self) -> str:
        return str(self.meta.get("model_version", "unknown"))

    # -- inference -----------------------------------------------------------------------------------------
    def texts(self, inputs: Iterable[str | Mapping[str, Any]]) -> list[str]:
        return [build_text(x, self.text_fields) for x in inputs]

    def logits(self, inputs: Sequence[str | Mapping[str, Any]], batch_size: int = 64) -> dict[str, np.ndarray]:
        """Logits per head before temperature scaling, with the prior correction fitted at training (if any)."""
        from triagekit.route.objective import apply_bias

        return apply_bias(self.backend.logits(self.texts(inputs), batch_size=batch_size), self.calibration)

    def outputs(self, inputs: Sequence[str | Mapping[str, Any]], batch_size: int = 64) -> dict[str, np.ndarray]:
        """``logits`` plus, for a neural backend, the pooled features under ``route.oos.FEATURES``."""
        from triagekit.route.objective import apply_bias

        run = getattr(self.backend, "outputs", self.backend.logits)
        return apply_bias(run(self.texts(inputs), batch_size=batch_size), self.calibration)

    def out_of_scope(self, outputs: Mapping[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per single-label head with a detector, ``(scores, flags)`` of each row of ``outputs``."""
        first = self.heads[0].name if self.heads else None
        if self.oos is None or first is None or not len(outputs[first]):
            return {}
        features = outputs.get(FEATURES)
        return {
            h.name: self.oos.flags(h.name, outputs[h.name], features, self._temperature(h.name))
            for h in self.heads
            if h.name in self.oos.heads
        }

    @property
    def review_heads(self) -> list[str]:
        """The heads whose ``requires_review`` flags the whole ticket."""
        chosen = self.review.get("heads")
        return [h.name for h in self.heads if chosen is None or h.name in chosen]

    def needs_review(self, result: Mapping[str, Any]) -> bool:
        """The ticket-level flag of one ``predict`` result: any review head asks for a human."""
        return any(bool((result.get(h) or {}).get("requires_review")) for h in self.review_heads)

    def _temperature(self, head: str) -> float:
        return float(self.calibration.get(head, {}).get("temperature", 1.0))

    def probs_from_logits(self, logits: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for h in self.heads:
            out[h.name] = (sigmoid if h.multilabel else softmax)(logits[h.name], self._temperature(h.name))
        return out

    def predict_proba(self, inputs: Sequence[str | Mapping[str, Any]], batch_size: int = 64) -> dict[str, np.ndarray]:
        """Calibrated probabilities per head, shape (n, n_classes), columns in ``head.labels`` order."""
        return self.probs_from_logits(self.logits(inputs, batch_size=batch_size))

    def predict(
        self, inputs: Sequence[str | Mapping[str, Any]], top_k: int = 3, batch_size: int = 64
    ) -> list[dict[str, Any]]:
        """One dict per input: ``{head: {label, confidence, top_k, requires_review, review_reasons}}`` (tags:
        ``labels``); with an out-of-scope detector a single-label head also has ``out_of_scope`` and
        ``oos_score``, and ``review_reasons`` lists ``low_confidence`` and/or ``out_of_scope``."""
        outputs = self.outputs(inputs, batch_size=batch_size)
        probs = self.probs_from_logits(outputs)
        oos = self.out_of_scope(outputs)
        results: list[dict[str, Any]] = [{} for _ in inputs]
        for h in self.heads:
            p = probs[h.name]
            threshold = self.calibration.get(h.name, {}).get("review_threshold")
            scores, flags = oos.get(h.name, (None, None))
            for i, row in enumerate(p):
                result = _head_result(h, row, top_k, threshold)
                if scores is not None:
                    result = _with_out_of_scope(result, float(scores[i]), bool(flags[i]))
                results[i][h.name] = result
        return results


def _with_out_of_scope(result: dict[str, Any], score: float, flagged: bool) -> dict[str, Any]:
    """A head's result with the detector's verdict: an out-of-scope ticket needs a human whatever its confidence."""
    reasons = result["review_reasons"] + (["out_of_scope"] if flagged else [])
    # JSON has no infinity: a score past every threshold (non-finite features) is written as the largest float.
    score = score if np.isfinite(score) else float(np.finfo(np.float64).max)
    return {
        **result,
        "out_of_scope": flagged,
        "oos_score": round(score, 6),
        "requires_review": bool(reasons),
        "review_reasons": reasons,
    }


def _head_result(head: HeadSpec, p: np.ndarray, top_k: int, threshold: float | None) -> dict[str, Any]:
    order = np.argsort(-p)
    if head.multilabel:
        chosen = [head.labels[j] for j in order if p[j] >= 0.5]
        return {
            "labels": chosen,
            "scores": {head.labels[j]: round(float(p[j]), 6) for j in order[: max(top_k, len(chosen))]},
            # Per-tag confidence is max(p, 1 - p); any uncertain tag sends the ticket to review.
            **_reasons(threshold is not None and bool((np.maximum(p, 1 - p) < float(threshold)).any())),
        }
    best = int(order[0])
    confidence = float(p[best])
    return {
        "label": head.labels[best],
        "confidence": round(confidence, 6),
        "top_k": [{"label": head.labels[j], "p": round(float(p[j]), 6)} for j in order[:top_k]],
        **_reasons(threshold is not None and confidence < float(threshold)),
    }


def _reasons(low_confidence: bool) -> dict[str, Any]:
    return {"requires_review": low_confidence, "review_reasons": ["low_confidence"] if low_confidence else []}
