"""``backbone: auto``: the router preset chosen by the languages of the training data, and the memory check that
stops a backbone too big for the machine before any training starts.

English only -> the MiniLM preset (``minilm.yaml``: an English sentence encoder, the fastest good router); any other
language, alone or mixed -> the multilingual Gemma 3 preset (``gemma3-lora.yaml``). Keys the user set (in a config
file or with ``--set``, i.e. every key whose value differs from ``TrainConfig``'s default) win over the preset's.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from triagekit.route.config import TrainConfig, load_config

__all__ = ["AUTO_PRESETS", "choose_preset", "resolve_auto", "preset_path", "check_memory", "estimate_training_bytes"]

AUTO_PRESETS = {"english": "minilm", "multilingual": "gemma3-lora"}
ENGLISH = "en"


def preset_path(name: str) -> Path:
    """The YAML file of a router preset shipped in the package (``triagekit/presets/router``)."""
    from triagekit.core.presets import preset_path as _shipped

    path = _shipped("router", name)
    if not path.exists():
        raise FileNotFoundError(f"router preset {name!r} not found at {path}")
    return path


def choose_preset(languages: Sequence[str]) -> tuple[str, str]:
    """``(preset name, reason)`` for the training rows' languages (``unknown`` rows do not vote)."""
    from triagekit.data.language import UNKNOWN, language_mix

    mix = {k: v for k, v in language_mix(languages).items() if k != UNKNOWN}
    shown = ", ".join(f"{k} {v}" for k, v in mix.items()) or "none detected"
    if not mix or set(mix) == {ENGLISH}:
        return AUTO_PRESETS["english"], f"training rows are English only ({shown})"
    what = f"{len(mix)} languages" if len(mix) > 1 else "not in English"
    return AUTO_PRESETS["multilingual"], f"training rows are {what} ({shown})"


def _user_set(cfg: TrainConfig) -> dict[str, Any]:
    defaults = TrainConfig()
    return {
        f.name: getattr(cfg, f.name)
        for f in dataclasses.fields(TrainConfig)
        if f.name != "backbone" and getattr(cfg, f.name) != getattr(defaults, f.name)
    }


def resolve_auto(
    cfg: TrainConfig, rows: Sequence[Mapping], language_field: str = "language", log: Callable[[str], Any] = print
) -> TrainConfig:
    """``cfg`` with ``backbone: auto`` replaced by the preset the rows' languages call for (user keys kept)."""
    from triagekit.data.language import row_languages

    preset, reason = choose_preset(row_languages(rows, cfg.text_fields, language_field))
    log(f"backbone auto -> preset {preset}: {reason}")
    return load_config(preset_path(preset), **_user_set(cfg))


# ---------------------------------------------------------------------------------------------------------------
# memory
def _weight_bytes(path: Path) -> int:
    files = list(path.glob("*.safetensors")) or list(path.glob("*.bin"))
    return sum(f.stat().st_size for f in files)


def estimate_training_bytes(cfg: TrainConfig, model_config: Any, weight_bytes: int) -> int:
    """A deliberately rough peak-RSS estimate for training a router (bytes).

    Weights as stored, plus gradients and two AdamW moments for every trained weight (full fine-tuning), plus the
    activations backward keeps: measured on Gemma 3 270M at ~0.12 GB per 96-token ticket in bf16 autocast, i.e.
    about 48 numbers of ``hidden_size`` per token per layer at 2 bytes (fp32 doubles it), plus 0.6 GB for the
    Python process, the tokenizer and the data.
    """
    hidden = getattr(model_config, "hidden_size", 768)
    layers = getattr(model_config, "num_hidden_layers", 12)
    width = 2 if cfg.mixed_precision in ("bf16", "fp16", "native") else 4
    tokens = cfg.batch_size * cfg.max_length
    activations = 0 if cfg.method == "head" else tokens * layers * hidden * 48 * width
    if cfg.gradient_checkpointing:
        activations //= layers
    optimizer = 3 * weight_bytes if cfg.method == "full" else 0
    return weight_bytes + optimizer + activations + 600 * 2**20


def available_bytes() -> int | None:
    """Memory this process may still use: MemAvailable, capped by a cgroup limit; None where neither is known."""
    values = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                values.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < 1 << 60:
            values.append(int(raw))
    return min(values) if values else None


def check_memory(cfg: TrainConfig, backbone_path: str, available: int | None = None) -> int | None:
    """Raise ``MemoryError`` before training when the estimate exceeds the memory left; returns the estimate.

    Only local backbones are checked (a hub id's size is unknown before download). ``TRIAGEKIT_SKIP_MEMORY_CHECK=1``
    turns the check off.
    """
    path = Path(backbone_path)
    if os.environ.get("TRIAGEKIT_SKIP_MEMORY_CHECK") == "1" or not (path / "config.json").exists():
        return None
    from transformers import AutoConfig

    need = estimate_training_bytes(cfg, AutoConfig.from_pretrained(str(path)), _weight_bytes(path))
    free = available_bytes() if available is None else available
    if free is not None and need > free:
        gb = 2**30
        raise MemoryError(
            f"training {cfg.backbone} ({cfg.method}, batch_size {cfg.batch_size} x max_length {cfg.max_length}) "
            f"needs about {need / gb:.1f} GB and {free / gb:.1f} GB are free: lower batch_size (raise grad_accum "
            "to keep the effective batch), lower max_length, set gradient_checkpointing: true or "
            "mixed_precision: native, or pick a smaller backbone (TRIAGEKIT_SKIP_MEMORY_CHECK=1 skips this check)"
        )
    return need
