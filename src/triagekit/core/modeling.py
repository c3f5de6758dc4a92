"""Model helpers every capability uses: quiet transformers logging, QLoRA quantisation arguments and parameter
counts."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["quiet_transformers", "quantized_kwargs", "count_parameters", "parameter_report", "decay_groups"]


def quiet_transformers() -> None:
    """Silence transformers' per-file progress bars; our own progress display is enough."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


def quantized_kwargs(quantization: str) -> dict[str, Any]:
    if not torch.cuda.is_available():
        raise RuntimeError(
            f"quantization={quantization} (QLoRA) needs a CUDA GPU and bitsandbytes; on this machine "
            "train with method: lora and quantization: none"
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise RuntimeError("QLoRA needs bitsandbytes: pip install bitsandbytes") from exc
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if quantization == "4bit":
        bnb = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute
        )
    else:
        bnb = BitsAndBytesConfig(load_in_8bit=True)
    return {"quantization_config": bnb, "dtype": compute, "device_map": {"": torch.cuda.current_device()}}


def count_parameters(model: nn.Module) -> dict[str, Any]:
    """Trainable and total parameters (LoRA-frozen base weights count as total, not trainable)."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "trainable": trainable,
        "total": total,
        "trainable_percent": 100.0 * trainable / max(total, 1),
        "reduction_ratio": total / max(trainable, 1),
    }


def parameter_report(params: dict[str, Any]) -> str:
    """The console line for :func:`count_parameters`: how much smaller the trained part is, or that every weight
    is trained (a full fine-tune has nothing "fewer" to report)."""
    head = f"parameters: {params['trainable']:,} trainable / {params['total']:,} total"
    if params["trainable"] >= params["total"]:
        return f"{head} (full fine-tune: every weight is trained)"
    return f"{head} ({params['trainable_percent']:.3f}%, {params['reduction_ratio']:.1f}x fewer trained)"


def decay_groups(params, lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups for the trainable ``params``: weight decay on matrices, none on biases and norms (1-D)."""
    decay, no_decay = [], []
    for p in params:
        if p.requires_grad:
            (no_decay if p.ndim < 2 else decay).append(p)
    groups = [{"params": decay, "lr": lr, "weight_decay": weight_decay}] if decay else []
    return groups + ([{"params": no_decay, "lr": lr, "weight_decay": 0.0}] if no_decay else [])
