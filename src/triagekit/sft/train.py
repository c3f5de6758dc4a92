"""Causal-LM SFT: one visible loop under HF Accelerate (setup -> fit -> validate -> save), resumable.

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

from triagekit.core.training import STATE_FILE, check_output, latest_checkpoint, save_checkpoint, setup_accelerator
from triagekit.sft.config import SFTConfig

__all__ = ["train_sft", "SFTResult", "load_causal_lm", "SFT_ARTIFACTS"]

SFT_ARTIFACTS = ("sft.json", "config.yaml", "metrics.jsonl", "parameters.json", "checkpoints", "model", "model.tmp",
                 "model.old", "base", "tb")


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
    if write_base and cfg.method == "lora" and cfg.save_base and not (output / "base" / "config.json").exists():
        tmp = output / "base.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        os.replace(tmp, output / "base")
    if cfg.method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    if cfg.gradient_checkpointing:
        model.config.use_cache = False
        (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
    if cfg.method in ("lora", "qlora"):
        from peft import LoraConfig, get_peft_model

        if cfg.gradient_checkpointing:
            model.enable_input_require_grads()
        targets = cfg.lora_target_modules or lora_targets(model.config.model_type)
        model = get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, task_type="CAUSAL_LM",
                                                 lora_dropout=cfg.lora_dropout, target_modules=targets, bias="none"))
    return model, tokenizer


def _save_best(accelerator, model, tokenizer, output: Path, cfg: SFTConfig) -> None:
    """The best model so far into ``output/model`` (swapped in atomically)."""
    if not accelerator.is_main_process:
        return
    tmp, final, old = output / "model.tmp", output / "model", output / "model.old"
    shutil.rmtree(tmp, ignore_errors=True)
    unwrapped = accelerator.unwrap_model(model)
    unwrapped.save_pretrained(str(tmp / ("adapter" if cfg.method != "full" else "weights")))
    tokenizer.save_pretrained(str(tmp / "tokenizer"))
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def _val_loss(accelerator, model, loader) -> float:
    """Token-weighted mean loss on the answer tokens of the whole validation set (all processes)."""
    import torch

    model.eval()
    total = torch.zeros(2, device=accelerator.device, dtype=torch.float64)
    with torch.inference_mode():
        for batch in loader:
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
            n = (batch["labels"][:, 1:] != -100).sum()
            total += torch.stack([out.loss.double() * n, n.double()])
    model.train()
    total = accelerator.reduce(total, reduction="sum")
    return float(total[0] / total[1].clamp(min=1))


def train_sft(cfg: SFTConfig, train_pairs: Sequence[tuple[Any, str]], output: str | Path, *,
              val_pairs: Sequence[tuple[Any, str]] = (), task: str = "sft", task_meta: dict | None = None,
              resume: bool = False, overwrite: bool = False, console=None) -> SFTResult:
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
    import torch
    from accelerate.utils import set_seed
    from rich.console import Console
    from transformers import get_scheduler

    from triagekit.core.batching import BucketBatchSampler, IndexedDataset, SequentialLengthSampler
    from triagekit.core.modeling import count_parameters
    from triagekit.sft.data import SFTCollator, encode_pairs

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
    params = count_parameters(model)
    train_ex, stats = encode_pairs(tokenizer, train_pairs, cfg.max_length, cfg.system_prompt)
    val_ex, val_stats = encode_pairs(tokenizer, val_pairs, cfg.max_length, cfg.system_prompt)
    if not train_ex:
        raise ValueError(f"no training example fits max_length={cfg.max_length}: {stats.summary()}")
    if accelerator.is_main_process:
        (output / "parameters.json").write_text(json.dumps(params, indent=2))
        console.print(f"parameters: {params['trainable']:,} trainable / {params['total']:,} total "
                      f"({params['trainable_percent']:.3f}%)")
        console.print(f"train: {stats.summary()}\nval: {val_stats.summary()}")

    collate = SFTCollator(tokenizer.pad_token_id)
    sampler = BucketBatchSampler([len(e["input_ids"]) for e in train_ex], cfg.batch_size, seed=cfg.seed)
    train_dl = torch.utils.data.DataLoader(IndexedDataset(train_ex), batch_sampler=sampler, collate_fn=collate)
    val_dl = torch.utils.data.DataLoader(IndexedDataset(val_ex), collate_fn=collate, batch_sampler=(
        SequentialLengthSampler([len(e["input_ids"]) for e in val_ex], cfg.eval_batch_size)))
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.learning_rate)
    model, optimizer, train_dl, val_dl = accelerator.prepare(model, optimizer, train_dl, val_dl)
    per_epoch = math.ceil(len(train_dl) / cfg.grad_accum)
    total_steps = min(cfg.max_steps or math.inf, per_epoch * cfg.epochs) if cfg.epochs else cfg.max_steps
    scheduler = accelerator.prepare(get_scheduler(
        "cosine", optimizer, num_warmup_steps=int(cfg.warmup_ratio * total_steps) * accelerator.num_processes,
        num_training_steps=total_steps * accelerator.num_processes))

    state = {"global_step": 0, "epoch": 0, "batch_in_epoch": 0, "best_val_loss": math.inf, "best_step": 0,
             "bad_evals": 0, "stopped_early": False, "train_seconds": 0.0, "train_tokens": 0}
    ckpt = latest_checkpoint(output) if resume else None
    if ckpt is not None:
        accelerator.load_state(str(ckpt))
        state.update(json.loads((ckpt / STATE_FILE).read_text()))
        console.print(f"resumed from {ckpt} (step {state['global_step']}, epoch {state['epoch']})")
    meta = {"task": task, "base": cfg.base, "method": cfg.method, "adapter": cfg.method != "full",
            "base_dir": "base" if cfg.method == "lora" and cfg.save_base else None,
            "system_prompt": cfg.system_prompt, "max_length": cfg.max_length, "task_meta": task_meta or {},
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "encode": {"train": vars(stats), "val": vars(val_stats)}}
    fit = _Fit(cfg, accelerator, model, optimizer, scheduler, train_dl, val_dl, sampler, tokenizer, output, state,
               total_steps, console)
    fit.run(has_val=bool(val_ex))
    if accelerator.is_main_process:
        meta.update(best_step=state["best_step"], best_val_loss=state["best_val_loss"], steps=state["global_step"],
                    train_seconds=state["train_seconds"], train_tokens=state["train_tokens"], parameters=params)
        (output / "sft.json").write_text(json.dumps(meta, indent=2, default=str))
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return SFTResult(str(output), state["best_val_loss"], state["best_step"], state["global_step"],
                     state["stopped_early"], state["train_seconds"], state["train_tokens"], params, meta["encode"])


class _Fit:
    """The loop's state and its three moves: step, validate (+ early stopping, best save), checkpoint."""

    def __init__(self, cfg, accelerator, model, optimizer, scheduler, train_dl, val_dl, sampler, tokenizer, output,
                 state, total_steps, console):
        self.__dict__.update(locals())
        del self.__dict__["self"]

    def log(self, record: dict[str, Any]) -> None:
        if self.accelerator.is_main_process:
            with (self.output / "metrics.jsonl").open("a") as f:
                f.write(json.dumps(record) + "\n")
        self.accelerator.log({k: v for k, v in record.items() if isinstance(v, (int, float))}, step=record["step"])

    def validate(self, has_val: bool) -> bool:
        """Validation loss, best-model save and early stopping; returns True when training should stop."""
        s, cfg = self.state, self.cfg
        s["last_eval"] = s["global_step"]
        if not has_val:  # no validation set: the latest model is the best one
            _save_best(self.accelerator, self.model, self.tokenizer, self.output, cfg)
            s["best_step"] = s["global_step"]
            return False
        loss = _val_loss(self.accelerator, self.model, self.val_dl)
        improved = loss < s["best_val_loss"] - cfg.early_stopping_min_delta
        if improved:
            s.update(best_val_loss=loss, best_step=s["global_step"], bad_evals=0)
            _save_best(self.accelerator, self.model, self.tokenizer, self.output, cfg)
        else:
            s["bad_evals"] += 1
        self.log({"step": s["global_step"], "epoch": s["epoch"], "val_loss": loss, "best": improved})
        self.console.print(f"step {s['global_step']}: val loss {loss:.4f}{' *' if improved else ''}")
        s["stopped_early"] = bool(cfg.early_stopping_patience and s["bad_evals"] >= cfg.early_stopping_patience)
        return s["stopped_early"]

    def run(self, has_val: bool) -> None:
        s, cfg, acc = self.state, self.cfg, self.accelerator
        eval_every, save_every = cfg.eval_every or math.inf, cfg.save_every or math.inf
        started = time.perf_counter() - s["train_seconds"]
        stop = s["global_step"] >= self.total_steps or s["stopped_early"]
        running, seen = 0.0, 0
        self.model.train()
        while not stop and (cfg.epochs == 0 or s["epoch"] < cfg.epochs):  # epochs 0: max_steps alone bounds it
            self.sampler.set_epoch(s["epoch"])
            skip = s["batch_in_epoch"]
            loader = acc.skip_first_batches(self.train_dl, skip) if skip else self.train_dl
            for batch in loader:
                with acc.accumulate(self.model):
                    out = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                     labels=batch["labels"])
                    acc.backward(out.loss)
                    if acc.sync_gradients and cfg.max_grad_norm:
                        acc.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                    self.optimizer.step()
                    self.scheduler.step()
                    self.optimizer.zero_grad()
                s["batch_in_epoch"] += 1
                s["train_tokens"] += int(batch["attention_mask"].sum())
                running, seen = running + float(out.loss.detach()), seen + 1
                if not acc.sync_gradients:
                    continue
                s["global_step"] += 1
                s["train_seconds"] = time.perf_counter() - started
                if s["global_step"] % 10 == 0 or s["global_step"] == self.total_steps:
                    self.log({"step": s["global_step"], "epoch": s["epoch"], "train_loss": running / seen,
                              "lr": self.scheduler.get_last_lr()[-1],
                              "tokens_per_s": s["train_tokens"] / max(s["train_seconds"], 1e-9)})
                    self.console.print(f"step {s['global_step']}/{self.total_steps}: loss {running / seen:.4f} "
                                       f"({s['train_tokens'] / max(s['train_seconds'], 1e-9):.0f} tokens/s)")
                    running, seen = 0.0, 0
                if s["global_step"] % eval_every == 0 or s["global_step"] >= self.total_steps:
                    stop = self.validate(has_val)
                stop = stop or s["global_step"] >= self.total_steps
                if s["global_step"] % save_every == 0 or stop:
                    save_checkpoint(acc, self.output, s, cfg.keep_checkpoints)
                if stop:
                    break
            else:
                s["epoch"] += 1
                s["batch_in_epoch"] = 0
                if not cfg.eval_every and s.get("last_eval") != s["global_step"]:
                    stop = self.validate(has_val)
                save_checkpoint(acc, self.output, s, cfg.keep_checkpoints)
