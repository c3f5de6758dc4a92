"""Optional preference tuning (DPO, through TRL) from examples with a chosen and a rejected reply.

Examples need ``outputs.rejected`` (Q&A rows with ``chosen``/``rejected`` columns load that way). Training starts
from a tuned answer run (usually the SFT run) or a base model, adds LoRA adapters (or tunes every weight), and
writes a run directory that :func:`triagekit.sft.load`, ``triagekit answer generate``, the service and ``answer eval``
read like any other: the adapters are merged into ``model/weights``. TRL is imported only here:
``pip install 'triagekit[dpo]'``.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triagekit.answer.model import SYSTEM_PROMPT, example_prompt
from triagekit.answer.prepare import load_split

__all__ = ["train_dpo", "DPOSettings"]


@dataclass
class DPOSettings:
    """The settings of a DPO run; ``triagekit answer dpo --set KEY=VALUE`` takes these keys."""

    beta: float = 0.1
    """DPO temperature (how far the policy may move from the reference model)."""
    lr: float | None = None
    """Learning rate (default 5e-5 with LoRA, 5e-7 for every weight)."""
    epochs: float = 1.0
    """Passes over the pairs (when ``max_steps`` is 0)."""
    max_steps: int = 0
    """Optimiser steps (0: use ``epochs``)."""
    batch_size: int = 4
    """Pairs per step."""
    max_length: int = 384
    """Tokens per prompt + reply."""
    lora: bool = True
    """Train LoRA adapters (merged on save) instead of every weight."""
    lora_r: int = 16
    """LoRA rank."""
    seed: int = 0
    """Seed for data order and initialisation."""


def _require_trl():
    try:
        import datasets  # noqa: F401
        import trl
    except ImportError as exc:
        raise ImportError(
            "preference tuning needs TRL: pip install 'triagekit[dpo]' (installs trl and datasets)"
        ) from exc
    return trl


def _rows(examples, system: str) -> list[dict[str, Any]]:
    return [
        {
            "prompt": [{"role": "system", "content": system}, {"role": "user", "content": example_prompt(ex)}],
            "chosen": [{"role": "assistant", "content": ex.outputs.answer}],
            "rejected": [{"role": "assistant", "content": ex.outputs.rejected}],
        }
        for ex in examples
    ]


def train_dpo(
    start: str | Path, data: str | Path, output: str | Path, *, overwrite: bool = False, console=None, **settings: Any
) -> dict[str, Any]:
    """DPO on the preference pairs of ``data`` (a prepared folder's train split, or a raw file).

    Args:
        start: an answer run directory (its system prompt is kept) or a base (``smollm2``, HF id, folder).
        data: examples with ``outputs.rejected``; examples without one are skipped (and counted).
        output: the new run directory.
        overwrite: replace an earlier run in ``output``.
        settings: fields of :class:`DPOSettings` (``beta``, ``lr``, ``epochs``, ``max_steps``, ...).

    Returns:
        ``sft.json``'s content (with ``dpo``: steps, losses, pairs used and skipped).
    """
    cfg = DPOSettings(**settings)
    trl = _require_trl()
    import torch
    from datasets import Dataset

    from triagekit.sft import load

    output = Path(output)
    if (output / "sft.json").exists() and not overwrite:
        raise FileExistsError(f"{output} already holds a run; pass --overwrite to replace it")
    examples = load_split(data, "train")
    pairs = [ex for ex in examples if ex.outputs.rejected]
    if not pairs:
        raise ValueError(f"no example in {data} has a rejected reply (outputs.rejected, or a 'rejected' column)")
    lm = load(start, device="cuda" if torch.cuda.is_available() else "cpu", merge=True)
    system = lm.system_prompt or SYSTEM_PROMPT
    peft_config = None
    if cfg.lora:
        from peft import LoraConfig

        from triagekit.core.backbones import lora_targets

        peft_config = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=2 * cfg.lora_r,
            lora_dropout=0.0,
            task_type="CAUSAL_LM",
            target_modules=lora_targets(lm.model.config.model_type),
        )
    args = trl.DPOConfig(
        output_dir=str(output / "trl"),
        beta=cfg.beta,
        learning_rate=cfg.lr or (5e-5 if cfg.lora else 5e-7),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps or -1,
        per_device_train_batch_size=cfg.batch_size,
        max_length=cfg.max_length,
        seed=cfg.seed,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=True,
    )
    trainer = trl.DPOTrainer(
        model=lm.model,
        args=args,
        train_dataset=Dataset.from_list(_rows(pairs, system)),
        processing_class=lm.tokenizer,
        peft_config=peft_config,
    )
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    model = trainer.model.merge_and_unload() if cfg.lora else trainer.model
    shutil.rmtree(output / "model", ignore_errors=True)
    model.save_pretrained(str(output / "model" / "weights"))
    lm.tokenizer.save_pretrained(str(output / "model" / "tokenizer"))
    shutil.rmtree(output / "trl", ignore_errors=True)
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    meta = {
        "task": "answer",
        "method": "dpo" + ("+lora" if cfg.lora else ""),
        "base": str(start),
        "adapter": False,
        "system_prompt": system,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "dpo": {
            "beta": cfg.beta,
            "steps": trainer.state.global_step,
            "pairs": len(pairs),
            "skipped_without_rejected": len(examples) - len(pairs),
            "losses": losses,
            "train_seconds": seconds,
        },
    }
    (output / "sft.json").write_text(json.dumps(meta, indent=2))
    if console is not None:
        console.print(
            f"DPO: {len(pairs)} pairs, {trainer.state.global_step} steps, loss {losses[0]:.4f} -> "
            f"{losses[-1]:.4f} ({seconds:.1f}s) -> {output}"
        )
    return meta
