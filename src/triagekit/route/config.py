"""The router's training configuration: the schema behind the shipped ``presets/router/*.yaml``, CLI flags and
``--set``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from triagekit.core import config as _core_config
from triagekit.core.settings import LoopSettings, LoRASettings

__all__ = ["TrainConfig", "load_config", "parse_overrides"]

METHODS = ("lora", "full", "head")
LOSSES = ("ce", "focal")
SPLITS = ("stratified", "temporal", "none")
OBJECTIVES = ("macro_f1", "accuracy")
LONG_TEXT = ("truncate", "head_tail", "chunks")


@dataclass
class TrainConfig(LoRASettings, LoopSettings):
    """Everything that defines a router training run. Saved as ``config.yaml`` in the run directory.

    The adapter keys (``lora_*``, ``quantization``) come from ``LoRASettings`` and the loop keys (``epochs``, ``lr``,
    ``eval_every``, ``early_stopping_*``, ``device``, ...) from ``LoopSettings``; QLoRA is ``method: lora`` with
    ``quantization: 4bit``.
    """

    # data
    labels: list[str] = field(default_factory=lambda: ["queue", "priority", "type"])
    """Single-label fields; one softmax head each."""
    multilabel: list[str] = field(default_factory=list)
    """Multi-label fields (e.g. ``tags`` from ``tag_1..tag_n`` or a list column); one sigmoid head each."""
    text_fields: list[str] = field(default_factory=lambda: ["subject", "body"])
    """Columns joined (newline-separated) into the model input; a ``text`` column is used when these are absent."""
    split: str = "stratified"
    """How a raw ``--data`` file is split: stratified (by the first label), temporal, or none."""
    time_field: str = "created_at"
    """Timestamp column for ``split: temporal``."""
    val_fraction: float = 0.1
    """Share of rows for validation when a raw file is split on the fly."""
    test_fraction: float = 0.1
    """Share of rows held out for testing when a raw file is split on the fly."""
    redact_pii: bool = False
    """Replace e-mails, phones, IPs, card/IBAN numbers and secret-bearing URLs with placeholders before training."""

    # model
    backbone: str = "minilm"
    """``minilm`` (embedded all-MiniLM-L6-v2), ``smollm2`` (embedded SmolLM2-135M), ``gemma3`` (embedded Gemma 3
    270M, multilingual), ``tfidf``, ``auto`` (a preset chosen by the languages of the training data: see
    ``route.auto``), or an HF id / path."""
    method: str = "full"
    """lora: adapters on the backbone (QLoRA with ``quantization``); full: every weight; head: frozen backbone,
    heads only."""
    pooling: str = "auto"
    """Sentence vector: mean (masked average), cls (first token), last (last real token; decoders) or auto."""
    max_length: int = 128
    """Tokens per input (per window with ``long_text: chunks``)."""
    long_text: str = "truncate"
    """Texts longer than ``max_length`` tokens: truncate (keep the start), head_tail (the first quarter and the
    last three quarters of the budget from both ends) or chunks (overlapping windows, logits averaged per ticket;
    in training, prediction and the ONNX path)."""
    chunk_stride: int = 0
    """Tokens between the starts of two windows with ``long_text: chunks`` (below max_length: they overlap);
    0: three quarters of the window."""
    max_chunks: int = 4
    """At most this many windows per ticket (the rest of a very long text is dropped, bounding the cost)."""
    pad_to_multiple_of: int = 0
    """Training and validation batches are padded to a multiple of this many tokens (0: to the longest in the
    batch; prediction always pads to the longest). Fewer
    distinct tensor shapes keep the CPU allocator's heap from fragmenting over a long run: 16 in the Gemma 3 preset
    (see docs/benchmarks.md, memory)."""
    head_dropout: float = 0.1
    """Dropout before each classification head."""
    hybrid: bool = False
    """Pool the encoder with a TF-IDF model (lexical weight per head fitted on validation)."""

    # objective
    objective: str = "macro_f1"
    """What the run optimises: macro_f1 (every class counts the same; the default, because a queue that gets few
    tickets matters as much to its team and plain cross-entropy starves it) or accuracy (every ticket counts the
    same). It picks the early-stopping score, the TF-IDF half's class weighting and C, and the prior correction."""
    prior_correction: bool = True
    """Fit a per-head logit adjustment ``- tau * log(train prior)`` on validation (tau from a grid, 0 when it does
    not raise the validation objective); applied before temperature scaling, so calibration is fitted after it."""
    tfidf_C: float | None = None
    """C of the TF-IDF logistic regressions (tfidf backbone and hybrid half); None chooses it on validation."""
    exclude_suspects: str | None = None
    """A ``triagekit data audit`` file: the training labels it lists are dropped (the row keeps its other heads)."""

    # loss
    loss: str = "ce"
    """ce: cross-entropy; focal: focal loss (down-weights easy examples)."""
    focal_gamma: float = 2.0
    """Focusing parameter of the focal loss."""
    class_weights: bool = False
    """Weight classes by inverse frequency (balanced) in single-label losses."""
    label_smoothing: float = 0.0
    """Label smoothing for single-label cross-entropy."""
    head_weights: dict[str, float] = field(default_factory=dict)
    """Per-head multipliers of the summed loss (default 1.0 each)."""

    # optimisation and loop: LoopSettings (epochs, lr, eval_every, ...), with the router's defaults
    head_lr: float = 2e-3
    """Learning rate of the classification heads (randomly initialised, so larger than ``lr``)."""
    review_budget: float | None = 0.3
    """Share of tickets a team can review (0.3: at most 30 %); the least confident tickets, ranked on validation
    across ``review_heads``, are flagged. None: per-head ``target_precision`` instead."""
    review_heads: list[str] | None = None
    """Heads whose doubt flags the ticket (None: every head); the others still report their own flag."""
    target_precision: float = 0.9
    """With ``review_budget: null``: precision each head's review threshold is fitted for. A head that cannot reach
    it anywhere on validation is reported with its best point and does not flag tickets."""

    ood_detector: str = "auto"
    """Out-of-scope detector of each single-label head, fitted on the known classes only: mahalanobis (pooled
    features, class means + shared covariance), knn (distance to the k-th nearest training ticket), energy or msp
    (logits only), none, or auto (msp for neural runs, measured best on the open-intent
    protocol; energy for TF-IDF). See docs/routing.md."""
    ood_target_rejection: float = 0.05
    """Share of in-scope validation tickets the out-of-scope threshold flags (0.05: 5 %)."""

    DEFAULT_LR = {"full": 5e-5, "lora": 5e-4, "head": 0.0}

    def _checks(self) -> list[tuple[bool, str]]:
        return super()._checks() + [
            (self.method in METHODS, f"method must be one of {METHODS}, got {self.method!r}"),
            (self.loss in LOSSES, f"loss must be one of {LOSSES}, got {self.loss!r}"),
            (self.split in SPLITS, f"split must be one of {SPLITS}, got {self.split!r}"),
            (
                self.pooling in ("auto", "mean", "cls", "last"),
                f"pooling must be auto, mean, cls or last, not {self.pooling!r}",
            ),
            (bool(self.labels or self.multilabel), "give at least one label field (labels or multilabel)"),
            (not set(self.labels) & set(self.multilabel), "a field cannot be both in labels and multilabel"),
            (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1, "val/test fractions must be in [0, 1)"),
            (self.val_fraction + self.test_fraction < 1, "val_fraction + test_fraction must be below 1"),
            (0 < self.target_precision <= 1, "target_precision must be in (0, 1]"),
            (
                self.review_budget is None or 0 < self.review_budget <= 1,
                f"review_budget must be in (0, 1] (e.g. 0.3 = review at most 30 % of tickets) or null, "
                f"got {self.review_budget}",
            ),
            (self.objective in OBJECTIVES, f"objective must be one of {OBJECTIVES}, got {self.objective!r}"),
            (self.long_text in LONG_TEXT, f"long_text must be one of {LONG_TEXT}, got {self.long_text!r}"),
            (
                0 <= self.chunk_stride <= self.max_length and self.max_chunks >= 1,
                "chunk_stride must be in [0, max_length] (0: three quarters of it) and max_chunks at least 1",
            ),
            (self.tfidf_C is None or self.tfidf_C > 0, "tfidf_C must be positive or null"),
            (0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
            (
                self.ood_detector in ("auto", "mahalanobis", "knn", "energy", "msp", "none"),
                f"ood_detector must be auto, mahalanobis, knn, energy, msp or none, not {self.ood_detector!r}",
            ),
            (0 < self.ood_target_rejection < 1, "ood_target_rejection must be in (0, 1), e.g. 0.05"),
            (self.max_length >= 8, "max_length must be at least 8"),
            (self.pad_to_multiple_of >= 0, "pad_to_multiple_of must be 0 (pad to the longest) or a token count"),
            (not any("." in f for f in self.labels + self.multilabel), "label field names cannot contain '.'"),
        ]


def parse_overrides(pairs: list[str], schema: type | None = None) -> dict[str, Any]:
    """``--set key=value`` pairs typed by the router config (or ``schema``); see ``core.config.parse_overrides``."""
    return _core_config.parse_overrides(pairs, schema or TrainConfig)


def load_config(path: str | Path | None = None, *, schema: type | None = None, **overrides: Any) -> TrainConfig:
    """A router config from a YAML preset (optional) with ``overrides`` on top; see ``core.config.load_config``."""
    from triagekit.core.presets import resolve_preset

    path = resolve_preset(path, "router") if path is not None else None
    return _core_config.load_config(path, schema=schema or TrainConfig, **overrides)
