"""Router training: one visible loop under HF Accelerate (CPU, one GPU or ``accelerate launch`` multi-process).

Split into setup -> fit -> validate -> save; resumable from ``DIR/checkpoints/step-N`` after any kill.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from triagekit.core.training import (
    CHECKPOINTS,
    STATE_FILE,
    check_output,
    latest_checkpoint,
    save_checkpoint,
    setup_accelerator,
)
from triagekit.route.config import TrainConfig
from triagekit.route.heads import HeadSpec, heads_from_rows

__all__ = ["train", "load_training_splits", "TrainResult"]



@dataclass
class TrainResult:
    """What a finished run reports."""

    output: str
    best_score: float
    best_step: int
    steps: int
    stopped_early: bool
    train_seconds: float
    parameters: dict[str, Any]
    val_metrics: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------------
# data
def load_training_splits(cfg: TrainConfig, data: str | Path, output: Path, val: str | Path | None = None,
                         log=print) -> dict[str, list[dict]]:
    """Train/val(/test) rows from a prepared directory, or from a raw file prepared into ``output/data``."""
    from triagekit.data import load_prepared, load_records, prepare

    data = Path(data)
    if data.is_dir():
        splits = load_prepared(data)
        if "train" not in splits:
            raise FileNotFoundError(f"{data} has no train.jsonl: run `triagekit data prepare` first")
    else:
        summary = prepare(
            data, output / "data", text_fields=cfg.text_fields, label_fields=cfg.labels,
            multilabel_fields=cfg.multilabel, split=cfg.split, time_field=cfg.time_field,
            val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction, redact_pii=cfg.redact_pii, seed=cfg.seed,
        )
        log(f"prepared {summary.valid} rows from {data} ({summary.rejected} rejected -> {summary.rejected_path}, "
            f"{summary.duplicates} duplicates removed): {summary.splits}")
        splits = load_prepared(output / "data")
    if val is not None:
        rows, errors = load_records(val, cfg.text_fields, cfg.labels, cfg.multilabel)
        if errors:
            log(f"{len(errors)} rows of {val} rejected; first: {errors[0].file}:{errors[0].line}: {errors[0].reason}")
        splits["val"] = rows
    if not splits.get("train"):
        raise ValueError("the training split is empty")
    return splits


def _macro_f1(heads: list[HeadSpec], logits: dict[str, np.ndarray], targets: dict[str, np.ndarray]
              ) -> dict[str, float]:
    from sklearn.metrics import f1_score

    scores = {}
    for h in heads:
        z, y = logits[h.name], targets[h.name]
        if h.multilabel:
            scores[h.name] = float(f1_score(y, z > 0, average="macro", zero_division=0))
        else:
            keep = y >= 0
            scores[h.name] = float(f1_score(y[keep], z[keep].argmax(1), average="macro", zero_division=0)
                                   ) if keep.any() else 0.0
    return scores


def _calibrate(cfg: TrainConfig, heads: list[HeadSpec], logits: dict[str, np.ndarray],
               targets: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Temperature per head and the confidence threshold that reaches ``cfg.target_precision``, on validation."""
    from triagekit.route.calibration import fit_temperature, sigmoid, softmax, threshold_for_precision

    out = {}
    for h in heads:
        z, y = logits[h.name], targets[h.name]
        if h.multilabel:
            t = fit_temperature(z, y, multilabel=True)
            p = sigmoid(z, t)
            conf, correct = np.maximum(p, 1 - p).ravel(), ((p >= 0.5) == (y > 0.5)).ravel()
        else:
            keep = y >= 0
            z, y = z[keep], y[keep]
            t = fit_temperature(z, y) if len(y) else 1.0
            p = softmax(z, t)
            conf, correct = p.max(1), p.argmax(1) == y
        threshold = threshold_for_precision(conf, correct, cfg.target_precision) if len(conf) else None
        out[h.name] = {"temperature": float(t), "review_threshold": threshold,
                       "target_precision": cfg.target_precision, "fitted_on": "val"}
    return out


# ---------------------------------------------------------------------------------------------------------------
# setup
def build_model(cfg: TrainConfig, heads: list[HeadSpec]):
    """Backbone (+ LoRA or frozen) and heads, per ``cfg.method``."""
    from triagekit.core.backbones import is_decoder, lora_targets, resolve_backbone
    from triagekit.route.modeling import MultiHeadModel, load_backbone

    backbone = load_backbone(resolve_backbone(cfg.backbone), quantization=cfg.quantization,
                             attn_implementation=cfg.attn_implementation)
    if cfg.quantization != "none":
        from peft import prepare_model_for_kbit_training

        backbone = prepare_model_for_kbit_training(backbone, use_gradient_checkpointing=cfg.gradient_checkpointing)
    pooling = cfg.pooling if cfg.pooling != "auto" else ("last" if is_decoder(backbone.config) else "mean")
    if cfg.gradient_checkpointing:
        # transformers 5 renamed it; keep working on 4.x.
        (getattr(backbone, "activation_checkpointing_enable", None) or backbone.gradient_checkpointing_enable)()
    if cfg.method == "lora":
        from peft import LoraConfig, get_peft_model

        if cfg.gradient_checkpointing:
            backbone.enable_input_require_grads()
        targets = cfg.lora_target_modules or lora_targets(backbone.config.model_type)
        lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=targets, bias="none")
        backbone = get_peft_model(backbone, lora)
    elif cfg.method == "head":
        for p in backbone.parameters():
            p.requires_grad_(False)
    return MultiHeadModel(backbone, heads, pooling=pooling, dropout=cfg.head_dropout)


def _optimizer(cfg: TrainConfig, model):
    import torch

    decay, no_decay = [], []
    for p in model.backbone.parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 else decay).append(p)
    groups = [{"params": list(model.heads.parameters()), "lr": cfg.head_lr, "weight_decay": cfg.weight_decay}]
    if decay:
        groups.append({"params": decay, "lr": cfg.backbone_lr, "weight_decay": cfg.weight_decay})
    if no_decay:
        groups.append({"params": no_decay, "lr": cfg.backbone_lr, "weight_decay": 0.0})
    return torch.optim.AdamW(groups)


# ---------------------------------------------------------------------------------------------------------------
# checkpoints
def _save_best(accelerator, model, tokenizer, output: Path, adapter: bool) -> None:
    """The best model so far into ``output/model`` (swapped in atomically)."""
    from triagekit.route.modeling import save_model

    if not accelerator.is_main_process:
        return
    tmp, final, old = output / "model.tmp", output / "model", output / "model.old"
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(accelerator.unwrap_model(model), tmp, adapter=adapter)
    tokenizer.save_pretrained(str(tmp / "tokenizer"))
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# validate
def validate(accelerator, model, loader, heads: list[HeadSpec], n: int) -> dict[str, np.ndarray]:
    """Logits of every validation example, gathered across processes and put back in dataset order."""
    import torch

    model.eval()
    out = {h.name: np.zeros((n, len(h.labels)), dtype=np.float32) for h in heads}
    with torch.inference_mode():
        for batch in loader:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            index = accelerator.gather_for_metrics(batch["index"]).cpu().numpy()
            for h in heads:
                out[h.name][index] = accelerator.gather_for_metrics(logits[h.name]).float().cpu().numpy()
    model.train()
    return out


def _batch_loss(cfg: TrainConfig, heads: list[HeadSpec], logits, batch, weights) -> Any:
    from triagekit.route.losses import head_loss

    total = 0.0
    for h in heads:
        loss = head_loss(logits[h.name], batch[f"target.{h.name}"], multilabel=h.multilabel, kind=cfg.loss,
                         gamma=cfg.focal_gamma, weight=weights.get(h.name), label_smoothing=cfg.label_smoothing)
        total = total + cfg.head_weights.get(h.name, 1.0) * loss
    return total


# ---------------------------------------------------------------------------------------------------------------
# fit
RUN_ARTIFACTS = ("router.json", "config.yaml", "metrics.jsonl", "parameters.json", "val_logits.npz", CHECKPOINTS,
                 "model", "model.tmp", "model.old", "lexical", "tb", "eval", "data", "tfidf.joblib")


def train(cfg: TrainConfig, data: str | Path, output: str | Path, *, val: str | Path | None = None,
          resume: bool = False, overwrite: bool = False, console=None, on_validate=None) -> TrainResult:
    """Train a router on ``data`` (prepared dir or raw file) into ``output``; see ``TrainConfig`` for knobs.

    Args:
        cfg: the resolved configuration (saved as ``output/config.yaml``).
        data: a prepared directory (train/val/test.jsonl) or a raw CSV/JSONL/JSON/Parquet file.
        output: the run directory; becomes a self-contained model directory loadable with ``Router.load``.
        val: an explicit validation file, overriding the split's.
        resume: continue from the latest checkpoint in ``output/checkpoints``.
        overwrite: delete an earlier run's files in ``output`` first (otherwise an earlier run is an error).
        console: a ``rich.console.Console`` for progress (a quiet one is made if None).
        on_validate: ``f(step, val_macro_f1)`` called after each validation (a sweep's pruner raises from it).
    """
    from rich.console import Console

    output = Path(output)
    console = console or Console(stderr=True)
    if resume and (output / "config.yaml").exists():
        saved = TrainConfig(**__import__("yaml").safe_load((output / "config.yaml").read_text()))
        if saved.to_dict() != cfg.to_dict():
            console.print("[yellow]resuming with the saved config.yaml of the run (flags given now are ignored)")
        cfg = saved
    # Under `accelerate launch` every process runs this: the main one checks the folder and prepares the data
    # first, the others then read what it wrote.
    accelerator = setup_accelerator(cfg, output) if cfg.backbone != "tfidf" else None
    is_main = accelerator is None or accelerator.is_main_process
    data_dir = output / "data" if resume and (output / "data" / "train.jsonl").exists() else data
    with accelerator.main_process_first() if accelerator else contextlib.nullcontext():
        if is_main:
            check_output(output, resume or Path(data).resolve() == (output / "data").resolve(), overwrite,
                         RUN_ARTIFACTS)
            output.mkdir(parents=True, exist_ok=True)
            splits = load_training_splits(cfg, data_dir, output, val=val, log=console.print)
            cfg.save(output / "config.yaml")
        else:
            prepared = data_dir if Path(data_dir).is_dir() else output / "data"
            splits = load_training_splits(cfg, prepared, output, val=val, log=lambda *_: None)
    heads = heads_from_rows(splits["train"], cfg.labels, cfg.multilabel)
    for h in heads:
        if len(h.labels) < (1 if h.multilabel else 2):
            raise ValueError(f"head {h.name!r} has {len(h.labels)} class(es) in the training split; need at least 2")
    data_dir = Path(data_dir).resolve() if Path(data_dir).is_dir() else (output / "data").resolve()
    meta = {"backbone": cfg.backbone, "data_dir": str(data_dir), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if accelerator is None:
        return _train_tfidf(cfg, splits, heads, output, meta, console)
    return _fit_neural(cfg, accelerator, splits, heads, output, resume, meta, console, on_validate)


def _fit_neural(cfg, accelerator, splits, heads, output: Path, resume: bool, meta: dict, console,
                on_validate=None) -> TrainResult:
    import torch
    from accelerate.utils import set_seed
    from transformers import AutoTokenizer, get_scheduler

    from triagekit.core.backbones import resolve_backbone
    from triagekit.core.batching import BucketBatchSampler, IndexedDataset, SequentialLengthSampler
    from triagekit.core.modeling import count_parameters
    from triagekit.route.batching import Collator, encode_rows
    from triagekit.route.heads import row_targets
    from triagekit.route.losses import balanced_weights

    set_seed(cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone(cfg.backbone))
    if tokenizer.pad_token is None:  # decoder tokenizers often have none; the mask keeps pads out of pooling
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model = build_model(cfg, heads)
    params = count_parameters(model)
    if accelerator.is_main_process:
        (output / "parameters.json").write_text(json.dumps(params, indent=2))
        console.print(f"parameters: {params['trainable']:,} trainable / {params['total']:,} total "
                      f"({params['trainable_percent']:.3f}%, {params['reduction_ratio']:.1f}x fewer)")

    train_ex = encode_rows(splits["train"], tokenizer, heads, cfg.text_fields, cfg.max_length)
    val_rows = splits.get("val") or []
    val_ex = encode_rows(val_rows, tokenizer, heads, cfg.text_fields, cfg.max_length) if val_rows else []
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    collate = Collator(heads, pad_id)
    sampler = BucketBatchSampler([len(e["input_ids"]) for e in train_ex], cfg.batch_size, seed=cfg.seed)
    train_dl = torch.utils.data.DataLoader(IndexedDataset(train_ex), batch_sampler=sampler, collate_fn=collate)
    val_dl = torch.utils.data.DataLoader(
        IndexedDataset(val_ex), collate_fn=collate,
        batch_sampler=SequentialLengthSampler([len(e["input_ids"]) for e in val_ex], cfg.eval_batch_size))
    weights = {}
    if cfg.class_weights:
        weights = {h.name: balanced_weights([e[h.name] for e in train_ex], len(h.labels)).to(accelerator.device)
                   for h in heads if not h.multilabel}

    optimizer = _optimizer(cfg, model)
    model, optimizer, train_dl, val_dl = accelerator.prepare(model, optimizer, train_dl, val_dl)
    per_epoch = math.ceil(len(train_dl) / cfg.grad_accum)
    total_steps = per_epoch * cfg.epochs if not cfg.max_steps else min(cfg.max_steps, per_epoch * cfg.epochs)
    # The prepared scheduler steps once per process per optimizer step (accelerate's convention).
    scheduler = get_scheduler(cfg.scheduler if cfg.scheduler != "constant" else "constant_with_warmup", optimizer,
                              num_warmup_steps=int(cfg.warmup_ratio * total_steps) * accelerator.num_processes,
                              num_training_steps=total_steps * accelerator.num_processes)
    scheduler = accelerator.prepare(scheduler)

    state = {"global_step": 0, "epoch": 0, "batch_in_epoch": 0, "best_score": -1.0, "best_step": 0,
             "bad_evals": 0, "stopped_early": False, "train_seconds": 0.0, "best_val": {}}
    ckpt = latest_checkpoint(output) if resume else None
    if ckpt is not None:
        accelerator.load_state(str(ckpt))
        state.update(json.loads((ckpt / STATE_FILE).read_text()))
        console.print(f"resumed from {ckpt} (step {state['global_step']}, epoch {state['epoch']})")
    elif resume:
        console.print("[yellow]--resume: no checkpoint found, starting from scratch")
    if cfg.tensorboard and accelerator.log_with:
        accelerator.init_trackers("tb", config={k: v for k, v in cfg.to_dict().items()
                                                if isinstance(v, (int, float, str, bool))})

    val_targets = row_targets(val_rows, heads) if val_ex else {}
    metrics_file = output / "metrics.jsonl"
    # 0 means "at the end of each epoch" (handled where the loader runs out), not every len(loader) steps.
    eval_every = cfg.eval_every or math.inf
    save_every = cfg.save_every or math.inf
    best_logits: dict[str, np.ndarray] = {}
    started = time.perf_counter() - state["train_seconds"]

    def log(record: dict[str, Any]) -> None:
        if accelerator.is_main_process:
            with metrics_file.open("a") as f:
                f.write(json.dumps(record) + "\n")
        accelerator.log({k: v for k, v in record.items() if isinstance(v, (int, float))}, step=record["step"])

    def save() -> None:
        save_checkpoint(accelerator, output, state, cfg.keep_checkpoints)

    def evaluate_and_maybe_stop() -> bool:
        nonlocal best_logits
        state["last_eval"] = state["global_step"]
        if not val_ex:
            _save_best(accelerator, model, tokenizer, output, cfg.method == "lora")
            return False
        logits = validate(accelerator, model, val_dl, heads, len(val_ex))
        f1 = _macro_f1(heads, logits, val_targets)
        score = float(np.mean(list(f1.values())))
        improved = score > state["best_score"] + cfg.early_stopping_min_delta
        if improved:
            state.update(best_score=score, best_step=state["global_step"], bad_evals=0, best_val=f1)
            best_logits = logits
            _save_best(accelerator, model, tokenizer, output, cfg.method == "lora")
            if accelerator.is_main_process:
                np.savez(output / "val_logits.npz", **logits)
        else:
            state["bad_evals"] += 1
        log({"step": state["global_step"], "epoch": state["epoch"], "val_macro_f1": score,
             **{f"val_macro_f1/{k}": v for k, v in f1.items()}, "best": improved})
        if accelerator.is_main_process:
            console.print(f"step {state['global_step']}: val macro-F1 {score:.4f} "
                          f"({', '.join(f'{k} {v:.3f}' for k, v in f1.items())}){' *' if improved else ''}")
        patience = cfg.early_stopping_patience
        state["stopped_early"] = bool(patience and state["bad_evals"] >= patience)
        if on_validate is not None:
            on_validate(state["global_step"], score)
        return state["stopped_early"]

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                        TimeRemainingColumn(), console=console, disable=not accelerator.is_main_process)
    task = progress.add_task("train", total=total_steps, completed=state["global_step"], info="")
    model.train()
    stop = state["global_step"] >= total_steps or state["stopped_early"]
    running, seen = 0.0, 0
    with progress:
        while not stop and state["epoch"] < cfg.epochs:
            sampler.set_epoch(state["epoch"])
            loader = accelerator.skip_first_batches(train_dl, state["batch_in_epoch"]) if state[
                "batch_in_epoch"] else train_dl
            for batch in loader:
                with accelerator.accumulate(model):
                    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
                    loss = _batch_loss(cfg, heads, logits, batch, weights)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and cfg.max_grad_norm:
                        accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
                state["batch_in_epoch"] += 1
                running, seen = running + float(loss.detach()), seen + 1
                if not accelerator.sync_gradients:
                    continue
                state["global_step"] += 1
                state["train_seconds"] = time.perf_counter() - started
                progress.update(task, advance=1, info=f"loss {running / seen:.4f}")
                if state["global_step"] % 10 == 0 or state["global_step"] == total_steps:
                    log({"step": state["global_step"], "epoch": state["epoch"], "train_loss": running / seen,
                         "lr": scheduler.get_last_lr()[-1]})
                    running, seen = 0.0, 0
                if state["global_step"] % eval_every == 0 or state["global_step"] >= total_steps:
                    stop = evaluate_and_maybe_stop()
                stop = stop or state["global_step"] >= total_steps
                if state["global_step"] % save_every == 0 or stop:
                    save()
                if stop:
                    break
            else:
                # The epoch ran out. Its end is where the loader stops, not len(loader): sharding across processes
                # can leave a process one batch short.
                state["epoch"] += 1
                state["batch_in_epoch"] = 0
                if state.get("last_eval") != state["global_step"]:
                    stop = evaluate_and_maybe_stop()
                save()
    result = _finish(cfg, accelerator, heads, output, state, params, best_logits, splits, meta, console)
    accelerator.end_training()  # after the last barrier: it tears down the process group
    return result


def _finish(cfg, accelerator, heads, output, state, params, best_logits, splits, meta, console) -> TrainResult:
    """Fit the optional lexical pool, calibrate on the best model's validation logits, write ``router.json``."""
    from triagekit.route.heads import row_targets
    from triagekit.route.router import Router

    extra: dict[str, Any] = {}
    if accelerator.is_main_process:
        if not best_logits and (output / "val_logits.npz").exists():
            with np.load(output / "val_logits.npz") as z:  # a resumed run whose best was before the kill
                best_logits = {k: z[k] for k in z.files}
        val_targets = row_targets(splits.get("val") or [], heads)
        if cfg.hybrid and best_logits:
            best_logits, extra["lexical"] = _fit_lexical(cfg, heads, splits, output, best_logits, val_targets, console)
        calibration = _calibrate(cfg, heads, best_logits, val_targets) if best_logits else {}
        digest = hashlib.sha256((output / "model" / "heads.safetensors").read_bytes()).hexdigest()[:12]
        router = Router(None, heads, cfg.text_fields, calibration, meta={
            **meta, "model_version": f"{Path(cfg.backbone).name}-{cfg.method}-{digest}", "method": cfg.method,
            "parameters": params, "best_step": state["best_step"], "best_val_macro_f1": state["best_score"]})
        router.save_info(output, "encoder", model_dir="model", max_length=cfg.max_length, **extra)
    accelerator.wait_for_everyone()
    return TrainResult(str(output), state["best_score"], state["best_step"], state["global_step"],
                       state["stopped_early"], state["train_seconds"], params, state["best_val"])


def _fit_lexical(cfg, heads, splits, output: Path, neural_val: dict[str, np.ndarray],
                 val_targets: dict[str, np.ndarray], console) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """TF-IDF on the training split, its pooling weight per head on validation; returns the pooled val logits."""
    from triagekit.data.text import build_text
    from triagekit.route.hybrid import LEXICAL_DIR, fit_fusion_weights, fuse
    from triagekit.route.tfidf import TfidfBackend

    lexical = TfidfBackend().fit(splits["train"], heads, cfg.text_fields, seed=cfg.seed)
    lexical.save(output / LEXICAL_DIR)
    lexical_val = lexical.logits([build_text(r, cfg.text_fields) for r in splits["val"]])
    weights = fit_fusion_weights(heads, neural_val, lexical_val, val_targets)
    pooled = {h.name: fuse(h, neural_val[h.name], lexical_val[h.name], weights[h.name]) for h in heads}
    f1 = _macro_f1(heads, pooled, val_targets)
    console.print(f"hybrid: lexical weights {weights}; pooled val macro-F1 {np.mean(list(f1.values())):.4f}")
    return pooled, {"weights": weights, "dir": LEXICAL_DIR, "val_macro_f1": f1}


def _train_tfidf(cfg, splits, heads, output: Path, meta: dict, console) -> TrainResult:
    from triagekit.route.router import Router
    from triagekit.route.tfidf import TfidfBackend

    started = time.perf_counter()
    backend = TfidfBackend().fit(splits["train"], heads, cfg.text_fields, seed=cfg.seed)
    seconds = time.perf_counter() - started
    backend.save(output)
    calibration, f1 = {}, {}
    if splits.get("val"):
        from triagekit.route.heads import row_targets

        targets = row_targets(splits["val"], heads)
        logits = backend.logits(Router(backend, heads, cfg.text_fields).texts(splits["val"]))
        calibration = _calibrate(cfg, heads, logits, targets)
        f1 = _macro_f1(heads, logits, targets)
    score = float(np.mean(list(f1.values()))) if f1 else -1.0
    digest = hashlib.sha256((output / "tfidf.joblib").read_bytes()).hexdigest()[:12]
    router = Router(backend, heads, cfg.text_fields, calibration, meta={
        **meta, "model_version": f"tfidf-{digest}", "method": "tfidf", "best_val_macro_f1": score})
    router.save_info(output, "tfidf")
    console.print(f"tfidf: fitted in {seconds:.1f}s; val macro-F1 {score:.4f}")
    return TrainResult(str(output), score, 0, 0, False, seconds, {"trainable": 0, "total": 0}, f1)
