"""Typed configuration of a causal-LM SFT run: the schema behind the shipped ``presets/triage/*.yaml`` and ``--set``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from triagekit.core.config import ATTENTION, PRECISIONS, load_config, parse_overrides

__all__ = ["SFTConfig", "load_sft_config", "parse_sft_overrides"]

METHODS = ("lora", "full", "qlora")


@dataclass
class SFTConfig:
    """Everything that defines one SFT run. Saved as ``config.yaml`` in the run directory."""

    # model
    base: str = "smollm2"
    """Causal LM to tune: ``smollm2`` (embedded SmolLM2-135M-Instruct), an HF id or a local path."""
    method: str = "lora"
    """lora: adapters on a frozen base; full: every weight; qlora: adapters on a 4-bit base (CUDA only)."""
    lora_r: int = 16
    """LoRA rank."""
    lora_alpha: int = 32
    """LoRA scaling numerator (scale = alpha / r)."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA input."""
    lora_target_modules: list[str] | None = None
    """Module names to adapt; None picks them from the architecture family."""
    gradient_checkpointing: bool = False
    """Recompute activations in backward to save memory (slower)."""
    attn_implementation: str = "auto"
    """Attention kernel: auto (the library's default, sdpa), sdpa or eager (trains short inputs faster on a CPU)."""
    save_base: bool = True
    """Copy the base weights into the run directory (self-contained); False records only the base id/path."""

    # data
    max_length: int = 384
    """Tokens per example (prompt + answer); the prompt is cut in the middle first, answers are never cut."""
    system_prompt: str | None = None
    """System message put before every prompt (None: the chat template's default)."""

    # optimisation
    epochs: int = 2
    """Passes over the training data (early stopping may end sooner)."""
    max_steps: int = 0
    """Stop after this many optimizer steps (0: no limit)."""
    batch_size: int = 8
    """Examples per device per step (before accumulation)."""
    eval_batch_size: int = 16
    """Examples per forward pass on validation."""
    grad_accum: int = 1
    """Gradient accumulation steps."""
    lr: float | None = None
    """Learning rate; None picks per method (full 5e-5, lora/qlora 1e-3)."""
    weight_decay: float = 0.0
    """AdamW weight decay (not applied to biases and norms)."""
    warmup_ratio: float = 0.05
    """Fraction of steps with linear warmup before the cosine decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping (0 disables)."""

    # loop
    eval_every: int = 0
    """Validation loss every N optimizer steps (0: once per epoch)."""
    save_every: int = 0
    """Resumable checkpoint every N optimizer steps (0: once per epoch)."""
    keep_checkpoints: int = 1
    """How many resumable checkpoints to keep."""
    early_stopping_patience: int = 2
    """Stop after this many validations without a lower validation loss (0 disables)."""
    early_stopping_min_delta: float = 1e-3
    """Smallest validation-loss drop that counts as better."""
    seed: int = 0
    """Seed for data order, initialisation and dropout."""
    device: str = "auto"
    """auto, cpu, cuda or mps."""
    mixed_precision: str = "auto"
    """auto (bf16 on CUDA when supported, fp16 otherwise; none on CPU), no, bf16, fp16. bf16 on a CPU with AMX
    (``lscpu`` shows amx_bf16) trains about 2x faster; on a CPU without bf16 instructions it is slower."""
    num_threads: int = 0
    """torch CPU threads (0: torch's default)."""
    tensorboard: bool = False
    """Also log metrics to TensorBoard under ``DIR/tb``."""

    def __post_init__(self) -> None:
        checks = [
            (self.method in METHODS, f"method must be one of {METHODS}, got {self.method!r}"),
            (self.batch_size > 0 and self.grad_accum > 0 and self.eval_batch_size > 0,
             "batch_size, eval_batch_size and grad_accum must be positive"),
            (self.max_length >= 16, "max_length must be at least 16"),
            (self.lr is None or self.lr > 0, "lr must be positive"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (self.mixed_precision in PRECISIONS, f"mixed_precision must be one of {PRECISIONS}"),
            (self.attn_implementation in ATTENTION,
             f"attn_implementation must be one of {ATTENTION}, not {self.attn_implementation!r}"),
            (self.device in ("auto", "cpu", "cuda", "mps"), "device must be auto, cpu, cuda or mps"),
            (self.epochs > 0 or self.max_steps > 0, "give epochs > 0 or max_steps > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else {"full": 5e-5, "lora": 1e-3, "qlora": 1e-3}[self.method]

    @property
    def quantization(self) -> str:
        """What the router's loader understands: QLoRA loads the base in 4 bit."""
        return "4bit" if self.method == "qlora" else "none"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    def replace(self, **changes: Any) -> "SFTConfig":
        return dataclasses.replace(self, **changes)


def parse_sft_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["lr=3e-4", "method=full"]`` -> typed dict; unknown keys raise with the list of valid ones."""
    return parse_overrides(pairs, schema=SFTConfig)


def load_sft_config(path: str | Path | None = None, **overrides: Any) -> SFTConfig:
    """A config from a YAML file (optional) with ``overrides`` on top; None values in overrides are ignored."""
    return load_config(path, schema=SFTConfig, **overrides)
