"""Causal-LM SFT: the model, the answer-token data and SFT's hooks (loss, validation loss, best-model save,
``sft.json``) for the shared loop in ``triagekit.core.loop`` (HF Accelerate, resumable).

The run directory it writes is self-contained: ``sft.json`` (task metadata), ``config.yaml``, ``model/adapter``
(LoRA, separate and mergeable) with ``base/`` (the base weights) or ``model/weights`` (full fine-tuning),
``model/tokenizer``, ``metrics.jsonl`` and resumable ``checkpoints/step-N``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from triagekit.core.training import check_output, setup_accelerator, swap_in
from triagekit.sft.config import SFTConfig

__all__ = ["train_sft", "SFTResult", "load_causal_lm", "SFT_ARTIFACTS"]

SFT_ARTIFACTS = (
    "sft.json",
    "config.yaml",
    "metrics.jsonl",
    "parameters.json",
    "checkpoints",
    "model",
    "model.tmp",
    "model.old",
    "base",
    "tb",
)


@dataclass
class SFTResult:
    """What a finished SFT run reports."""

    output: str
    best_val_loss: float
    best_step: int
    steps: int
    stopped_early: bool
    train_seconds: float
    train_tokens: int
    parameters: dict[str, Any]
    encode: dict[str, Any]


def load_causal_lm(name_or_path: str, quantization: str = "none", dtype=None, attn_implementation: str = "auto"):
    """An ``AutoModelForCausalLM`` from ``smollm2``, an HF id or a local path (4-bit for QLoRA, CUDA only)."""
    from transformers import AutoModelForCausalLM

    from triagekit.core.backbones import resolve_backbone
    from triagekit.core.modeling import quantized_kwargs, quiet_transformers

    quiet_transformers()
    kwargs: dict[str, Any] = {"dtype": dtype} if dtype is not None else {}
    if attn_implementation != "auto":
        kwargs["attn_implementation"] = attn_implementation
    if quantization != "none":
        kwargs.update(quantized_kwargs(quantization))
    return AutoModelForCausalLM.from_pretrained(resolve_backbone(name_or_path), **kwargs)


def _build(cfg: SFTConfig, output: Path, write_base: bool):
    """The model to train (LoRA-wrapped or not) and its tokenizer; the base is copied to ``output/base`` once."""
    from transformers import AutoTokenizer

    from triagekit.core.backbones import lora_targets, resolve_backbone

    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone(cfg.base))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model = load_causal_lm(cfg.base, quantization=cfg.quantization, attn_implementation=cfg.attn_implementation)
    if write_base and _saves_base(cfg) and not (output / "base" / "config.json").exists():
        tmp = output / "base.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        os.replace(tmp, output / "base")
    if cfg.quantization != "none":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    if cfg.gradient_checkpointing:
        model.config.use_cache = False
        (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
    if cfg.method == "lora":
        from peft import LoraConfig, get_peft_model

        if cfg.gradient_checkpointing:
            model.enable_input_require_grads()
        targets = cfg.lora_target_modules or lora_targets(model.config.model_type)
        model = get_peft_model(
            model,
            LoraConfig(
                r=cfg.lora_r,
                lora_alpha=cfg.lora_alpha,
                task_type="CAUSAL_LM",
                lora_dropout=cfg.lora_dropout,
                target_modules=targets,
                bias="none",
            ),
        )
    return model, tokenizer


def _saves_base(cfg: SFTConfig) -> bool:
    """LoRA runs copy their (unquantised) base into ``DIR/base``; QLoRA and full runs do not need one."""
    return cfg.method == "lora" and cfg.quantization == "none" and cfg.save_base


def _save_best(accelerator, model, tokenizer, output: Path, cfg: SFTConfig) -> None:
    """The best model so far into ``output/model`` (swapped in atomically)."""
    if not accelerator.is_main_process:
        return

    def write(tmp: Path) -> None:
        accelerator.unwrap_model(model).save_pretrained(str(tmp / ("adapter" if cfg.method != "full" else "weights")))
        tokenizer.save_pretrained(str(tmp / "tokenizer"))

    swap_in(output / "model", write)


def _val_loss(accelerator, model, loader, keeps_logits: bool) -> float:
    """Token-weighted mean loss on the answer tokens of the whole validation set (all processes; the caller puts
    the model in eval mode)."""
    import torch

    from triagekit.sft.data import IGNORE_INDEX

    total = torch.zeros(2, device=accelerator.device, dtype=torch.float64)
    for batch in loader:
        loss = answer_token_loss(model, batch, keeps_logits)
        n = (batch["labels"][:, 1:] != IGNORE_INDEX).sum()
        total += torch.stack([loss.double() * n, n.double()])
    total = accelerator.reduce(total, reduction="sum")
    return float(total[0] / total[1].clamp(min=1))


def _keeps_logits(model) -> bool:
    """Whether the causal LM's forward takes ``logits_to_keep`` (transformers' Llama, Gemma, Qwen, Mistral, ...;
    through Accelerate's, DDP's and peft's wrappers)."""
    import inspect

    from accelerate.utils import extract_model_from_parallel

    inner = extract_model_from_parallel(model)  # DDP, DeepSpeed, torch.compile
    if hasattr(inner, "get_base_model"):  # peft
        inner = inner.get_base_model()
    try:
        return "logits_to_keep" in inspect.signature(inner.forward).parameters
    except (TypeError, ValueError):
        return False


def answer_token_loss(model, batch, keeps_logits: bool = True):
    """The causal-LM loss on the answer tokens, the vocabulary projection computed only where it is needed.

    The same mean cross-entropy as ``model(..., labels=...)`` (next-token targets, the prompt's ``IGNORE_INDEX``
    left out), but the logits are made for the positions that predict an answer token in some row of the batch,
    not for every position: the prompt (the ticket, the system prompt) is most of a sequence, and the (positions x
    vocabulary) logits, their softmax and their gradient are the largest tensors of a step for a small model with a
    large vocabulary (Gemma 3 270M: 168M of its 268M weights are the 262k-token table; SmolLM2: 49k tokens).
    Falls back to ``labels=`` when the model's forward takes no ``logits_to_keep``."""
    import torch

    from triagekit.sft.data import IGNORE_INDEX

    labels = batch["labels"]
    targets = labels[:, 1:]
    keep = (targets != IGNORE_INDEX).any(0).nonzero().squeeze(1)
    if not keeps_logits or keep.numel() == 0:
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep).logits
    return torch.nn.functional.cross_entropy(
        logits.float().flatten(0, 1), targets[:, keep].flatten(), ignore_index=IGNORE_INDEX
    )


class _SFTTask:
    """SFT's hooks for ``core.loop``: the causal-LM loss on answer tokens, the validation loss (lower is better),
    the best model (adapter or weights) and ``sft.json`` at the end."""

    def __init__(self, cfg: SFTConfig, accelerator, model, tokenizer, train_ex, val_ex, output: Path, meta: dict):
        import torch

        from triagekit.core.batching import BucketBatchSampler, IndexedDataset, SequentialLengthSampler
        from triagekit.sft.data import SFTCollator

        self.cfg, self.accelerator, self.model, self.tokenizer = cfg, accelerator, model, tokenizer
        self.output, self.meta, self.has_val = output, meta, bool(val_ex)
        self.keeps_logits = _keeps_logits(model)
        collate = SFTCollator(tokenizer.pad_token_id)
        self.train_loader = torch.utils.data.DataLoader(
            IndexedDataset(train_ex),
            collate_fn=collate,
            batch_sampler=BucketBatchSampler([len(e["input_ids"]) for e in train_ex], cfg.batch_size, seed=cfg.seed),
        )
        self.val_loader = torch.utils.data.DataLoader(
            IndexedDataset(val_ex),
            collate_fn=collate,
            batch_sampler=(SequentialLengthSampler([len(e["input_ids"]) for e in val_ex], cfg.eval_batch_size)),
        )

    def param_groups(self) -> list[dict[str, Any]]:
        from triagekit.core.modeling import decay_groups

        return decay_groups(self.model.parameters(), self.cfg.resolved_lr, self.cfg.weight_decay)

    def step(self, model, batch):
        return answer_token_loss(model, batch, self.keeps_logits)

    def validate(self, model, loader):
        from triagekit.core.loop import Score

        if not self.has_val:
            return None
        loss = _val_loss(self.accelerator, model, loader, self.keeps_logits)
        return Score(loss, higher_is_better=False, metrics={"val_loss": loss}, text=f"val loss {loss:.4f}")

    def save_best(self, model) -> None:
        _save_best(self.accelerator, model, self.tokenizer, self.output, self.cfg)

    def finish(self, state: dict[str, Any], parameters: dict[str, Any]) -> SFTResult:
        best = state["best_score"] if state["best_score"] is not None else math.inf  # inf: no validation set
        if self.accelerator.is_main_process:
            self.meta.update(
                best_step=state["best_step"],
                best_val_loss=best,
                steps=state["global_step"],
                train_seconds=state["train_seconds"],
                train_tokens=state["train_tokens"],
                parameters=parameters,
            )
            (self.output / "sft.json").write_text(json.dumps(self.meta, indent=2, default=str))
        return SFTResult(
            str(self.output),
            best,
            state["best_step"],
            state["global_step"],
            state["stopped_early"],
            state["train_seconds"],
            state["train_tokens"],
            parameters,
            self.meta["encode"],
        )


def train_sft(
    cfg: SFTConfig,
    train_pairs: Sequence[tuple[Any, str]],
    output: str | Path,
    *,
    val_pairs: Sequence[tuple[Any, str]] = (),
    task: str = "sft",
    task_meta: dict | None = None,
    resume: bool = False,
    overwrite: bool = False,
    console=None,
) -> SFTResult:
    """Fine-tune ``cfg.base`` on ``(prompt, answer)`` pairs with the loss on the answer tokens only.

    Args:
        cfg: the run's configuration (saved as ``output/config.yaml``).
        train_pairs: ``(prompt, answer)``; a prompt is a string (one user turn) or a list of chat messages.
        output: the run directory; loadable with ``triagekit.sft.load`` afterwards.
        val_pairs: validation pairs: the loss on them drives early stopping and best-model selection.
        task: a task name recorded in ``sft.json`` (e.g. ``triage``, ``answer``).
        task_meta: JSON-serialisable task metadata recorded in ``sft.json`` (e.g. the schema).
        resume: continue from the latest checkpoint in ``output/checkpoints``.
        overwrite: delete an earlier run's files in ``output`` first (otherwise an earlier run is an error).
        console: a ``rich.console.Console`` for progress (a stderr one if None).
    """
    from accelerate.utils import set_seed
    from rich.console import Console

    from triagekit.core.loop import run
    from triagekit.sft.data import encode_pairs

    output, console = Path(output), console or Console(stderr=True)
    if resume and (output / "config.yaml").exists():
        cfg = SFTConfig(**__import__("yaml").safe_load((output / "config.yaml").read_text()))
    accelerator = setup_accelerator(cfg, output)
    if accelerator.is_main_process:
        check_output(output, resume, overwrite, SFT_ARTIFACTS)
        output.mkdir(parents=True, exist_ok=True)
        cfg.save(output / "config.yaml")
    accelerator.wait_for_everyone()
    set_seed(cfg.seed)
    model, tokenizer = _build(cfg, output, write_base=accelerator.is_main_process)
    train_ex, stats = encode_pairs(tokenizer, train_pairs, cfg.max_length, cfg.system_prompt)
    val_ex, val_stats = encode_pairs(tokenizer, val_pairs, cfg.max_length, cfg.system_prompt)
    if not train_ex:
        raise ValueError(f"no training example fits max_length={cfg.max_length}: {stats.summary()}")
    if accelerator.is_main_process:
        console.print(f"train: {stats.summary()}\nval: {val_stats.summary()}")
    meta = {
        "task": task,
        "base": cfg.base,
        "method": cfg.method,
        "quantization": cfg.quantization,
        "adapter": cfg.method != "full",
        "base_dir": "base" if _saves_base(cfg) else None,
        "system_prompt": cfg.system_prompt,
        "max_length": cfg.max_length,
        "task_meta": task_meta or {},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "encode": {"train": vars(stats), "val": vars(val_stats)},
    }
    task_hooks = _SFTTask(cfg, accelerator, model, tokenizer, train_ex, val_ex, output, meta)
    return run(task_hooks, cfg, accelerator, output, resume=resume, console=console)
