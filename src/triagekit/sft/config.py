"""Typed configuration of a causal-LM SFT run: the schema behind the shipped ``presets/triage/*.yaml`` and ``--set``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triagekit.core.config import load_config, parse_overrides
from triagekit.core.settings import LoopSettings, LoRASettings

__all__ = ["SFTConfig", "load_sft_config", "parse_sft_overrides"]

METHODS = ("lora", "full")


@dataclass
class SFTConfig(LoRASettings, LoopSettings):
    """Everything that defines one SFT run (triage, answer). Saved as ``config.yaml`` in the run directory.

    The adapter keys (``lora_*``, ``quantization``) and the loop keys (``epochs``, ``lr``, ``eval_every``, ...) are
    the router's (``LoRASettings``, ``LoopSettings``); QLoRA is ``method: lora`` with ``quantization: 4bit``
    (``method: qlora`` still loads, with a deprecation warning).
    """

    # model
    base: str = "smollm2"
    """Causal LM to tune: ``smollm2`` (embedded SmolLM2-135M-Instruct), an HF id or a local path."""
    method: str = "lora"
    """lora: adapters on a frozen base (QLoRA with ``quantization: 4bit``, CUDA only); full: every weight."""
    save_base: bool = True
    """Copy the base weights into the run directory (self-contained); False records only the base id/path."""

    # data
    max_length: int = 384
    """Tokens per example (prompt + answer); the prompt is cut in the middle first, answers are never cut."""
    system_prompt: str | None = None
    """System message put before every prompt (None: the chat template's default)."""

    # LoopSettings with the defaults of a small causal LM (documented there)
    epochs: int = 2
    batch_size: int = 8
    eval_batch_size: int = 16
    weight_decay: float = 0.0
    warmup_ratio: float = 0.05
    keep_checkpoints: int = 1
    early_stopping_patience: int = 2
    early_stopping_min_delta: float = 1e-3

    DEFAULT_LR = {"full": 5e-5, "lora": 1e-3}

    def _checks(self) -> list[tuple[bool, str]]:
        return super()._checks() + [
            (self.method in METHODS, f"method must be one of {METHODS}, got {self.method!r}"),
            (self.max_length >= 16, "max_length must be at least 16"),
        ]


def parse_sft_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["lr=3e-4", "method=full"]`` -> typed dict; unknown keys raise with the list of valid ones."""
    return parse_overrides(pairs, schema=SFTConfig)


def load_sft_config(path: str | Path | None = None, **overrides: Any) -> SFTConfig:
    """A config from a YAML file (optional) with ``overrides`` on top; None values in overrides are ignored."""
    return load_config(path, schema=SFTConfig, **overrides)
