"""The router's training configuration: the schema behind ``configs/router/*.yaml``, CLI flags and ``--set``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from triagekit.core import config as _core_config
from triagekit.core.config import ATTENTION, PRECISIONS

__all__ = ["TrainConfig", "load_config", "parse_overrides"]

METHODS = ("lora", "full", "head")
LOSSES = ("ce", "focal")
SCHEDULERS = ("cosine", "linear", "constant")
SPLITS = ("stratified", "temporal", "none")


@dataclass
class TrainConfig:
    """Everything that defines a training run. Saved as ``config.yaml`` in the run directory."""

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
    """lora: adapters on the backbone; full: every weight; head: frozen backbone, heads only."""
    pooling: str = "auto"
    """Sentence vector: mean (masked average), cls (first token), last (last real token; decoders) or auto."""
    max_length: int = 128
    """Tokens per input; longer texts are truncated."""
    head_dropout: float = 0.1
    """Dropout before each classification head."""
    lora_r: int = 16
    """LoRA rank."""
    lora_alpha: int = 32
    """LoRA scaling numerator (scale = alpha / r)."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA input."""
    lora_target_modules: list[str] | None = None
    """Module names to adapt; None picks them from the architecture family."""
    quantization: str = "none"
    """QLoRA base weights: none, 4bit (NF4, double-quantised, bf16 compute) or 8bit; needs CUDA + bitsandbytes."""
    hybrid: bool = False
    """Pool the encoder with a TF-IDF model (lexical weight per head fitted on validation)."""
    gradient_checkpointing: bool = False
    """Recompute activations in backward to save memory (slower)."""
    attn_implementation: str = "auto"
    """Attention kernel: auto (the library's default, sdpa), sdpa or eager (trains short inputs faster on a CPU)."""

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

    # optimisation
    epochs: int = 5
    """Passes over the training data (early stopping may end sooner)."""
    max_steps: int = 0
    """Stop after this many optimizer steps (0: no limit); handy for smoke tests."""
    batch_size: int = 32
    """Examples per device per step (before accumulation)."""
    eval_batch_size: int = 128
    """Examples per forward pass at evaluation and prediction."""
    grad_accum: int = 1
    """Gradient accumulation steps."""
    lr: float | None = None
    """Backbone learning rate; None picks per method (full 5e-5, lora 5e-4, head unused)."""
    head_lr: float = 2e-3
    """Learning rate of the classification heads (randomly initialised, so larger)."""
    weight_decay: float = 0.01
    """AdamW weight decay (not applied to biases and norms)."""
    scheduler: str = "cosine"
    """Learning-rate schedule after warmup."""
    warmup_ratio: float = 0.06
    """Fraction of steps with linear warmup."""
    max_grad_norm: float = 1.0
    """Gradient clipping (0 disables)."""

    # loop
    eval_every: int = 0
    """Validate every N optimizer steps (0: once per epoch)."""
    save_every: int = 0
    """Write a resumable checkpoint every N optimizer steps (0: once per epoch)."""
    keep_checkpoints: int = 2
    """How many resumable checkpoints to keep."""
    early_stopping_patience: int = 3
    """Stop after this many validations without a better macro-F1 (0 disables)."""
    early_stopping_min_delta: float = 1e-4
    """Smallest macro-F1 gain that counts as better."""
    target_precision: float = 0.9
    """Precision the review threshold is fitted for (predictions below it get ``requires_review``)."""
    seed: int = 0
    """Seed for data order, initialisation and dropout."""
    device: str = "auto"
    """auto, cpu, cuda or mps."""
    mixed_precision: str = "auto"
    """auto (bf16 on CUDA when supported, fp16 otherwise; none on CPU), native (bf16 where the GPU or CPU computes
    it natively: AVX512-BF16/AMX, fp32 otherwise), no, bf16, fp16. bf16 on a CPU with AMX (``lscpu`` shows amx_bf16)
    trains a decoder about 2x faster; on a CPU without bf16 instructions it is slower."""
    num_threads: int = 0
    """torch CPU threads (0: torch's default)."""
    tensorboard: bool = True
    """Also log metrics to TensorBoard under ``DIR/tb``."""

    def __post_init__(self) -> None:
        checks = [
            (self.method in METHODS, f"method must be one of {METHODS}, got {self.method!r}"),
            (self.loss in LOSSES, f"loss must be one of {LOSSES}, got {self.loss!r}"),
            (self.scheduler in SCHEDULERS, f"scheduler must be one of {SCHEDULERS}, got {self.scheduler!r}"),
            (self.mixed_precision in PRECISIONS, f"mixed_precision must be one of {PRECISIONS}"),
            (self.split in SPLITS, f"split must be one of {SPLITS}, got {self.split!r}"),
            (self.attn_implementation in ATTENTION,
             f"attn_implementation must be one of {ATTENTION}, not {self.attn_implementation!r}"),
            (self.pooling in ("auto", "mean", "cls", "last"),
             f"pooling must be auto, mean, cls or last, not {self.pooling!r}"),
            (bool(self.labels or self.multilabel), "give at least one label field (labels or multilabel)"),
            (not set(self.labels) & set(self.multilabel), "a field cannot be both in labels and multilabel"),
            (self.batch_size > 0 and self.grad_accum > 0, "batch_size and grad_accum must be positive"),
            (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1, "val/test fractions must be in [0, 1)"),
            (self.val_fraction + self.test_fraction < 1, "val_fraction + test_fraction must be below 1"),
            (0 < self.target_precision <= 1, "target_precision must be in (0, 1]"),
            (0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
            (self.max_length >= 8, "max_length must be at least 8"),
            (self.quantization in ("none", "4bit", "8bit"), "quantization must be none, 4bit or 8bit"),
            (self.quantization == "none" or self.method == "lora",
             "quantization (QLoRA) trains adapters on a frozen quantised base: use it with method: lora"),
            (not any("." in f for f in self.labels + self.multilabel), "label field names cannot contain '.'"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def backbone_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        return {"full": 5e-5, "lora": 5e-4, "head": 0.0}[self.method]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)




def parse_overrides(pairs: list[str], schema: type | None = None) -> dict[str, Any]:
    """``--set key=value`` pairs typed by the router config (or ``schema``); see ``core.config.parse_overrides``."""
    return _core_config.parse_overrides(pairs, schema or TrainConfig)


def load_config(path: str | Path | None = None, *, schema: type | None = None, **overrides: Any) -> TrainConfig:
    """A router config from a YAML preset (optional) with ``overrides`` on top; see ``core.config.load_config``."""
    return _core_config.load_config(path, schema=schema or TrainConfig, **overrides)
