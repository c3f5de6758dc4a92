"""The one training loop of router, triage and answer training: setup -> fit -> validate -> save.

A training mode hands the loop a :class:`Task`: its model, loaders and optimizer groups, and four hooks (a step
that returns the loss, a validation that returns a :class:`Score`, ``save_best`` and ``finish``). Everything
else lives here once: HF Accelerate (CPU, one GPU or ``accelerate launch`` multi-process), gradient accumulation
and clipping, the warmup + decay schedule, ``max_steps``, validation every ``eval_every`` steps (or per epoch),
early stopping on patience and ``min_delta``, atomic resumable checkpoints in ``DIR/checkpoints/step-N``
(``save_every``, ``keep_checkpoints``), ``metrics.jsonl`` and the experiment trackers (``core.tracking``: TensorBoard, MLflow, W&B).

When validation runs (the same for every mode):
- ``eval_every: 0``: at the end of every epoch.
- ``eval_every: N``: every N optimizer steps and once at the last step; epoch ends are not extra validations,
  so early-stopping patience counts validations that are N steps apart, as the user asked.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from triagekit.core.modeling import count_parameters, parameter_report
from triagekit.core.tracking import log_final, log_metrics, start_trackers
from triagekit.core.training import STATE_FILE, latest_checkpoint, save_checkpoint

__all__ = ["Score", "Task", "Loop", "run", "setup", "fit", "validate", "save", "release", "trim_heap", "new_state"]

LOG_EVERY = 10  # optimizer steps between train-loss records


@dataclass
class Score:
    """One validation: the number that selects the best model and drives early stopping."""

    value: float
    higher_is_better: bool
    metrics: dict[str, float] = field(default_factory=dict)
    """What goes into ``metrics.jsonl`` for this validation (e.g. ``{"val_loss": 1.2}``)."""
    text: str = ""
    """The console line (e.g. ``val loss 1.2000``)."""


class Task(Protocol):
    """What a training mode gives the loop (router: ``route.train``; SFT: ``sft.train``)."""

    model: Any
    train_loader: Any
    """A DataLoader whose ``batch_sampler`` has ``set_epoch`` (``core.batching.BucketBatchSampler``)."""
    val_loader: Any | None

    def param_groups(self) -> list[dict[str, Any]]:
        """AdamW parameter groups (each with its ``lr`` and ``weight_decay``)."""

    def step(self, model, batch) -> Any:
        """The loss of one batch (a scalar tensor); the loop calls backward."""

    def validate(self, model, loader) -> Score | None:
        """Score the prepared ``model`` on the validation loader (in eval mode, no grad); None: no validation
        set, the latest model is then the best one."""

    def save_best(self, model) -> None:
        """Save ``model`` as the best so far (``DIR/model``); called on every process."""

    def finish(self, state: dict[str, Any], parameters: dict[str, Any]) -> Any:
        """After the last step, on every process: write the run's metadata and return the mode's result."""


@dataclass
class Loop:
    """The prepared pieces of one run and its resumable ``state`` (saved in every checkpoint)."""

    cfg: Any
    accelerator: Any
    task: Task
    model: Any
    optimizer: Any
    scheduler: Any
    train_loader: Any
    val_loader: Any
    output: Path
    console: Any
    total_steps: int
    state: dict[str, Any]
    parameters: dict[str, Any]


def new_state() -> dict[str, Any]:
    """The loop's counters before the first step."""
    return {
        "global_step": 0,
        "epoch": 0,
        "batch_in_epoch": 0,
        "best_score": None,
        "best_step": 0,
        "best_metrics": {},
        "bad_evals": 0,
        "stopped_early": False,
        "train_seconds": 0.0,
        "train_tokens": 0,
    }


# Checkpoints written before the loops were one kept the best score under the mode's own name.
_OLD_STATE_KEYS = {"best_val_loss": "best_score", "best_val": "best_metrics"}


def _load_state(path: Path) -> dict[str, Any]:
    saved = json.loads((path / STATE_FILE).read_text())
    for old, new in _OLD_STATE_KEYS.items():
        if old in saved:
            saved.setdefault(new, saved.pop(old))
    if saved.get("best_score") in (-1.0, math.inf):  # the old "nothing validated yet" markers
        saved["best_score"] = None
    return saved


def _total_steps(cfg, batches_per_epoch: int) -> int:
    per_epoch = math.ceil(batches_per_epoch / cfg.grad_accum)
    if not cfg.epochs:  # epochs 0: max_steps alone bounds the run
        return cfg.max_steps
    return min(cfg.max_steps, per_epoch * cfg.epochs) if cfg.max_steps else per_epoch * cfg.epochs


def setup(task: Task, cfg, accelerator, output: Path, *, resume: bool, console) -> Loop:
    """Optimizer, schedule, ``accelerator.prepare`` and the state of the latest checkpoint when resuming."""
    import torch
    from transformers import get_scheduler

    parameters = count_parameters(task.model)
    if accelerator.is_main_process:
        (output / "parameters.json").write_text(json.dumps(parameters, indent=2))
        console.print(parameter_report(parameters))
    optimizer = torch.optim.AdamW(task.param_groups())
    model, optimizer, train_loader, val_loader = accelerator.prepare(
        task.model, optimizer, task.train_loader, task.val_loader
    )
    total = _total_steps(cfg, len(train_loader))
    # The prepared scheduler steps once per process per optimizer step (accelerate's convention).
    name = cfg.scheduler if cfg.scheduler != "constant" else "constant_with_warmup"
    scheduler = accelerator.prepare(
        get_scheduler(
            name,
            optimizer,
            num_warmup_steps=int(cfg.warmup_ratio * total) * accelerator.num_processes,
            num_training_steps=total * accelerator.num_processes,
        )
    )
    state = new_state()
    ckpt = latest_checkpoint(output) if resume else None
    if ckpt is not None:
        accelerator.load_state(str(ckpt))
        state.update(_load_state(ckpt))
        console.print(f"resumed from {ckpt} (step {state['global_step']}, epoch {state['epoch']})")
    elif resume:
        console.print("[yellow]--resume: no checkpoint found, starting from scratch")
    start_trackers(accelerator, cfg, output, parameters)
    return Loop(
        cfg,
        accelerator,
        task,
        model,
        optimizer,
        scheduler,
        train_loader,
        val_loader,
        output,
        console,
        total,
        state,
        parameters,
    )


def log(loop: Loop, record: dict[str, Any]) -> None:
    """One line of ``metrics.jsonl`` (main process) and the same numbers to the trackers (``cfg.trackers``)."""
    if loop.accelerator.is_main_process:
        with (loop.output / "metrics.jsonl").open("a") as f:
            f.write(json.dumps(record) + "\n")
    log_metrics(loop.accelerator, record, record["step"])


def save(loop: Loop) -> None:
    """A resumable checkpoint ``DIR/checkpoints/step-N`` (atomic; the oldest beyond ``keep_checkpoints`` go)."""
    save_checkpoint(loop.accelerator, loop.output, loop.state, loop.cfg.keep_checkpoints)


def _improved(score: Score, best: float | None, min_delta: float) -> bool:
    if best is None:
        return True
    return score.value > best + min_delta if score.higher_is_better else score.value < best - min_delta


def validate(loop: Loop) -> bool:
    """Validation, best-model save and early stopping; returns True when training should stop."""
    import torch

    s, cfg = loop.state, loop.cfg
    s["last_eval"] = s["global_step"]
    loop.model.eval()
    with torch.inference_mode():
        score = loop.task.validate(loop.model, loop.val_loader)
    loop.model.train()
    if score is None:  # no validation set: the latest model is the best one
        s["best_step"] = s["global_step"]
        loop.task.save_best(loop.model)
        return False
    improved = _improved(score, s["best_score"], cfg.early_stopping_min_delta)
    if improved:
        s.update(best_score=score.value, best_step=s["global_step"], bad_evals=0, best_metrics=score.metrics)
        loop.task.save_best(loop.model)
    else:
        s["bad_evals"] += 1
    log(loop, {"step": s["global_step"], "epoch": s["epoch"], **score.metrics, "best": improved})
    if loop.accelerator.is_main_process:
        loop.console.print(f"step {s['global_step']}: {score.text}{' *' if improved else ''}")
    s["stopped_early"] = bool(cfg.early_stopping_patience and s["bad_evals"] >= cfg.early_stopping_patience)
    return s["stopped_early"]


def _optimizer_step(loop: Loop, batch) -> float:
    """Forward, backward and (when the accumulation window closes) clip + optimizer + schedule; the batch loss."""
    acc, cfg = loop.accelerator, loop.cfg
    with acc.accumulate(loop.model):
        loss = loop.task.step(loop.model, batch)
        acc.backward(loss)
        if acc.sync_gradients and cfg.max_grad_norm:
            acc.clip_grad_norm_(loop.model.parameters(), cfg.max_grad_norm)
        loop.optimizer.step()
        loop.scheduler.step()
        loop.optimizer.zero_grad()
    return float(loss.detach())


class _Meter:
    """Mean train loss since the last record, and the progress display (a bar on a terminal, lines in a log)."""

    def __init__(self, loop: Loop):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.loop, self.running, self.seen = loop, 0.0, 0
        main = loop.accelerator.is_main_process
        self.lines = main and not loop.console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            console=loop.console,
            disable=not main or self.lines,
        )
        self.bar = self.progress.add_task("train", total=loop.total_steps, completed=loop.state["global_step"], info="")

    def add(self, loss: float) -> None:
        self.running, self.seen = self.running + loss, self.seen + 1

    def optimizer_step(self) -> None:
        s, loop = self.loop.state, self.loop
        tokens_per_s = s["train_tokens"] / max(s["train_seconds"], 1e-9)
        info = f"loss {self.running / max(self.seen, 1):.4f}, {tokens_per_s:.0f} tokens/s"
        self.progress.update(self.bar, advance=1, info=info)
        if s["global_step"] % LOG_EVERY and s["global_step"] != loop.total_steps:
            return
        log(
            loop,
            {
                "step": s["global_step"],
                "epoch": s["epoch"],
                "train_loss": self.running / max(self.seen, 1),
                "lr": loop.scheduler.get_last_lr()[-1],
                "tokens_per_s": tokens_per_s,
            },
        )
        if self.lines:
            loop.console.print(f"step {s['global_step']}/{loop.total_steps}: {info}")
        self.running, self.seen = 0.0, 0


def _epoch(loop: Loop, meter: _Meter, started: float) -> bool:
    """The rest of the current epoch (after the batches a resumed checkpoint already saw); True: stop training."""
    s, cfg, acc = loop.state, loop.cfg, loop.accelerator
    eval_every, save_every = cfg.eval_every or math.inf, cfg.save_every or math.inf
    loop.task.train_loader.batch_sampler.set_epoch(s["epoch"])
    skip = s["batch_in_epoch"]
    for batch in acc.skip_first_batches(loop.train_loader, skip) if skip else loop.train_loader:
        meter.add(_optimizer_step(loop, batch))
        s["batch_in_epoch"] += 1
        if "attention_mask" in batch:
            s["train_tokens"] += int(batch["attention_mask"].sum())
        if not acc.sync_gradients:
            continue
        s["global_step"] += 1
        s["train_seconds"] = time.perf_counter() - started
        meter.optimizer_step()
        stop = False
        if s["global_step"] % eval_every == 0 or s["global_step"] >= loop.total_steps:
            stop = validate(loop)
        stop = stop or s["global_step"] >= loop.total_steps
        if s["global_step"] % save_every == 0 or stop:
            save(loop)
        if stop:
            return True
    # The epoch ran out. Its end is where the loader stops, not len(loader): sharding across processes can leave a
    # process one batch short.
    s["epoch"] += 1
    s["batch_in_epoch"] = 0
    stop = False
    if not cfg.eval_every and s.get("last_eval") != s["global_step"]:
        stop = validate(loop)
    save(loop)
    return stop


def fit(loop: Loop) -> None:
    """Epochs until ``max_steps``, the last epoch or early stopping; a resumed run continues mid-epoch."""
    s, cfg = loop.state, loop.cfg
    started = time.perf_counter() - s["train_seconds"]
    meter = _Meter(loop)
    loop.model.train()
    stop = s["global_step"] >= loop.total_steps or s["stopped_early"]
    with meter.progress:
        while not stop and (cfg.epochs == 0 or s["epoch"] < cfg.epochs):
            stop = _epoch(loop, meter, started)
    if s.get("last_eval") != s["global_step"] and not s["stopped_early"]:
        # Only when the loader ran out before total_steps (a sharded process one batch short) with eval_every
        # set: the last model is still validated once.
        validate(loop)
        save(loop)


def release(loop: Loop) -> None:
    """Drop the trained model, its optimizer state and loaders before ``finish``: the best model is on disk, and
    a mode's ``finish`` that loads it again (the router's out-of-scope fit) would otherwise hold two copies. The freed
    heap goes back to the system (glibc ``malloc_trim``): measured on the Gemma 3 270M LoRA preset, the finish phase
    peaked at 5.3 GB RSS beside the training model and its fragmented heap."""
    loop.task.model = loop.model = loop.optimizer = loop.scheduler = None
    loop.train_loader = loop.val_loader = None
    loop.accelerator.free_memory()  # accelerate's release_memory: drops its own references, then gc.collect()
    trim_heap()


def trim_heap() -> None:
    """Return the free memory at the top and inside glibc's heap to the system (no-op elsewhere)."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # musl and other libcs have no malloc_trim
        pass


def run(task: Task, cfg, accelerator, output: Path, *, resume: bool = False, console=None) -> Any:
    """Train ``task`` under ``accelerator`` into ``output`` and return ``task.finish``'s result."""
    from rich.console import Console

    loop = setup(task, cfg, accelerator, Path(output), resume=resume, console=console or Console(stderr=True))
    fit(loop)
    release(loop)
    result = task.finish(loop.state, loop.parameters)
    log_final(accelerator, loop.state)
    accelerator.wait_for_everyone()
    accelerator.end_training()  # after the last barrier: it tears down the process group
    return result
