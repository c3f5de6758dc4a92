"""Router training: data, model and the router's hooks (loss, macro-F1, best-model save, ``router.json``) for the
shared loop in ``triagekit.core.loop`` (HF Accelerate: CPU, one GPU or ``accelerate launch``; resumable from
``DIR/checkpoints/step-N`` after any kill). ``backbone: tfidf`` is fitted directly, without the loop.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from triagekit.core.training import CHECKPOINTS, check_output, setup_accelerator, swap_in
from triagekit.route.config import TrainConfig
from triagekit.route.heads import HeadSpec, heads_from_rows

__all__ = ["train", "load_training_splits", "TrainResult", "build_model"]


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
def load_training_splits(
    cfg: TrainConfig, data: str | Path, output: Path, val: str | Path | None = None, log=print
) -> dict[str, list[dict]]:
    """Train/val(/test) rows from a prepared directory, or from a raw file prepared into ``output/data``."""
    from triagekit.data import load_prepared, load_records, prepare

    data = Path(data)
    if data.is_dir():
        splits = load_prepared(data)
        if "train" not in splits:
            raise FileNotFoundError(f"{data} has no train.jsonl: run `triagekit data prepare` first")
    else:
        summary = prepare(
            data,
            output / "data",
            text_fields=cfg.text_fields,
            label_fields=cfg.labels,
            multilabel_fields=cfg.multilabel,
            split=cfg.split,
            time_field=cfg.time_field,
            val_fraction=cfg.val_fraction,
            test_fraction=cfg.test_fraction,
            redact_pii=cfg.redact_pii,
            seed=cfg.seed,
        )
        log(
            f"prepared {summary.valid} rows from {data} ({summary.rejected} rejected -> {summary.rejected_path}, "
            f"{summary.duplicates} duplicates removed): {summary.splits}"
        )
        splits = load_prepared(output / "data")
    if val is not None:
        rows, errors = load_records(val, cfg.text_fields, cfg.labels, cfg.multilabel)
        if errors:
            log(f"{len(errors)} rows of {val} rejected; first: {errors[0].file}:{errors[0].line}: {errors[0].reason}")
        splits["val"] = rows
    if not splits.get("train"):
        raise ValueError("the training split is empty")
    if cfg.exclude_suspects:
        from triagekit.data.audit import drop_suspect_labels

        splits["train"], dropped = drop_suspect_labels(splits["train"], cfg.exclude_suspects, cfg.text_fields)
        log(
            f"exclude_suspects: dropped {sum(dropped.values())} training labels listed in {cfg.exclude_suspects} "
            f"({', '.join(f'{h} {n}' for h, n in dropped.items()) or 'none matched'})"
        )
    return splits


def _macro_f1(
    heads: list[HeadSpec], logits: dict[str, np.ndarray], targets: dict[str, np.ndarray], objective: str = "macro_f1"
) -> dict[str, float]:
    """Per head, the validation objective (macro-F1 by default)."""
    from triagekit.route.objective import head_scores

    return head_scores(heads, logits, targets, objective)


def _calibrate(
    cfg: TrainConfig, heads: list[HeadSpec], logits: dict[str, np.ndarray], targets: dict[str, np.ndarray], console=None
) -> dict[str, dict[str, Any]]:
    """Temperature per head and the review thresholds (budget or target precision), on validation."""
    from triagekit.route.calibration import fit_temperature, sigmoid, softmax
    from triagekit.route.review import (
        check_review_heads,
        decision_confidence,
        fit_operating_point,
        unreachable_message,
    )

    out, conf, correct = {}, {}, {}
    for h in heads:
        z, y = logits[h.name], targets[h.name]
        keep = np.arange(len(y)) if h.multilabel else np.flatnonzero(y >= 0)
        t = fit_temperature(z[keep], y[keep], multilabel=h.multilabel) if len(keep) else 1.0
        p = (sigmoid if h.multilabel else softmax)(z, t)
        conf[h.name] = decision_confidence(p, h.multilabel)
        correct[h.name] = (
            keep,
            np.all((p[keep] >= 0.5) == (y[keep] > 0.5), axis=1) if h.multilabel else p[keep].argmax(1) == y[keep],
        )
        out[h.name] = {"temperature": float(t), "fitted_on": "val"}
    review = check_review_heads(cfg.review_heads, heads)
    points = fit_operating_point(conf, correct, review, cfg.review_budget, cfg.target_precision)
    for h in heads:
        info = points[h.name]
        out[h.name].update(
            review_threshold=info["review_threshold"],
            target_precision=cfg.target_precision,
            review_rule=info["rule"],
            precision_target=info["precision_target"],
        )
        if console is not None and info["rule"] == "target_precision" and not info["precision_target"]["reachable"]:
            console.print(f"[yellow]{unreachable_message(h.name, cfg.target_precision, info['precision_target'])}")
    return out


# ---------------------------------------------------------------------------------------------------------------
# setup
def build_model(cfg: TrainConfig, heads: list[HeadSpec]):
    """Backbone (+ LoRA or frozen) and heads, per ``cfg.method``."""
    from triagekit.core.backbones import is_decoder, lora_targets, resolve_backbone
    from triagekit.route.modeling import MultiHeadModel, load_backbone

    backbone = load_backbone(
        resolve_backbone(cfg.backbone), quantization=cfg.quantization, attn_implementation=cfg.attn_implementation
    )
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
        lora = LoraConfig(
            r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, target_modules=targets, bias="none"
        )
        backbone = get_peft_model(backbone, lora)
    elif cfg.method == "head":
        for p in backbone.parameters():
            p.requires_grad_(False)
    return MultiHeadModel(backbone, heads, pooling=pooling, dropout=cfg.head_dropout)


def _param_groups(cfg: TrainConfig, model) -> list[dict[str, Any]]:
    """Heads at ``head_lr`` (randomly initialised); the trainable backbone at ``lr``, without decay on biases/norms."""
    from triagekit.core.modeling import decay_groups

    heads = [{"params": list(model.heads.parameters()), "lr": cfg.head_lr, "weight_decay": cfg.weight_decay}]
    return heads + decay_groups(model.backbone.parameters(), cfg.resolved_lr, cfg.weight_decay)


# ---------------------------------------------------------------------------------------------------------------
# checkpoints
def _save_best(accelerator, model, tokenizer, output: Path, adapter: bool, base_saved: bool = False) -> None:
    """The best model so far into ``output/model`` (swapped in atomically). ``base_saved``: this process wrote
    ``model/backbone`` already in this run, and LoRA leaves it as it was: link it, do not write it again."""
    from triagekit.route.modeling import save_model

    if not accelerator.is_main_process:
        return
    base_from = output / "model" / "backbone" if adapter and base_saved else None

    def write(tmp: Path) -> None:
        save_model(accelerator.unwrap_model(model), tmp, adapter=adapter, base_from=base_from)
        tokenizer.save_pretrained(str(tmp / "tokenizer"))

    swap_in(output / "model", write)


# ---------------------------------------------------------------------------------------------------------------
# validate
def val_logits(accelerator, model, loader, heads: list[HeadSpec], n: int) -> dict[str, np.ndarray]:
    """Logits of every validation example, gathered across processes and put back in dataset order (the caller
    puts the model in eval mode)."""
    out = {h.name: np.zeros((n, len(h.labels)), dtype=np.float32) for h in heads}
    for batch in loader:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], owner=batch.get("owner"))
        index = accelerator.gather_for_metrics(batch["index"]).cpu().numpy()
        for h in heads:
            out[h.name][index] = accelerator.gather_for_metrics(logits[h.name]).float().cpu().numpy()
    return out


def _batch_loss(cfg: TrainConfig, heads: list[HeadSpec], logits, batch, weights) -> Any:
    from triagekit.route.losses import head_loss

    total = 0.0
    for h in heads:
        loss = head_loss(
            logits[h.name],
            batch[f"target.{h.name}"],
            multilabel=h.multilabel,
            kind=cfg.loss,
            gamma=cfg.focal_gamma,
            weight=weights.get(h.name),
            label_smoothing=cfg.label_smoothing,
        )
        total = total + cfg.head_weights.get(h.name, 1.0) * loss
    return total


# ---------------------------------------------------------------------------------------------------------------
# fit
RUN_ARTIFACTS = (
    "router.json",
    "config.yaml",
    "metrics.jsonl",
    "parameters.json",
    "val_logits.npz",
    CHECKPOINTS,
    "model",
    "model.tmp",
    "model.old",
    "lexical",
    "tb",
    "eval",
    "data",
    "tfidf.joblib",
    "oos.npz",
)


def train(
    cfg: TrainConfig,
    data: str | Path,
    output: str | Path,
    *,
    val: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    console=None,
    on_validate=None,
) -> TrainResult:
    """Train a router on ``data`` (prepared dir or raw file) into ``output``; see ``TrainConfig`` for knobs.

    Args:
        cfg: the resolved configuration (saved as ``output/config.yaml``).
        data: a prepared directory (train/val/test.jsonl) or a raw CSV/JSONL/JSON/Parquet file.
        output: the run directory; becomes a self-contained model directory loadable with ``Router.load``.
        val: an explicit validation file, overriding the split's.
        resume: continue from the latest checkpoint in ``output/checkpoints``.
        overwrite: delete an earlier run's files in ``output`` first (otherwise an earlier run is an error).
        console: a ``rich.console.Console`` for progress (a quiet one is made if None).
        on_validate: ``f(n, score)`` after the n-th validation (a sweep's pruner raises ``TrialPruned`` from it).
    """
    from rich.console import Console

    output = Path(output)
    console = console or Console(stderr=True)
    if resume and (output / "config.yaml").exists():
        saved = TrainConfig(**__import__("yaml").safe_load((output / "config.yaml").read_text()))
        if saved.to_dict() != cfg.to_dict():
            console.print("[yellow]resuming with the saved config.yaml of the run (flags given now are ignored)")
        cfg = saved
    if cfg.backbone == "auto":
        cfg = _resolve_auto(cfg, data, console)
    # Under `accelerate launch` every process runs this: the main one checks the folder and prepares the data
    # first, the others then read what it wrote.
    accelerator = setup_accelerator(cfg, output) if cfg.backbone != "tfidf" else None
    is_main = accelerator is None or accelerator.is_main_process
    data_dir = output / "data" if resume and (output / "data" / "train.jsonl").exists() else data
    with accelerator.main_process_first() if accelerator else contextlib.nullcontext():
        if is_main:
            check_output(
                output, resume or Path(data).resolve() == (output / "data").resolve(), overwrite, RUN_ARTIFACTS
            )
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
    from triagekit.route.review import check_review_heads

    check_review_heads(cfg.review_heads, heads)
    data_dir = Path(data_dir).resolve() if Path(data_dir).is_dir() else (output / "data").resolve()
    meta = {"backbone": cfg.backbone, "data_dir": str(data_dir), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if accelerator is None:
        return _train_tfidf(cfg, splits, heads, output, meta, console)
    from accelerate.utils import set_seed

    from triagekit.core.loop import run

    set_seed(cfg.seed)
    task = _RouterTask(cfg, accelerator, splits, heads, output, meta, console)
    task.on_validate = on_validate
    return run(task, cfg, accelerator, output, resume=resume, console=console)


def _resolve_auto(cfg: TrainConfig, data: str | Path, console) -> TrainConfig:
    """``backbone: auto`` -> the preset for the languages of ``data`` (a prepared dir's train split, or a raw file)."""
    from triagekit.data import load_prepared, load_records
    from triagekit.route.auto import resolve_auto

    data = Path(data)
    rows = (
        load_prepared(data).get("train", [])
        if data.is_dir()
        else load_records(data, cfg.text_fields, cfg.labels, cfg.multilabel)[0]
    )
    return resolve_auto(cfg, rows, log=console.print)


class _RouterTask:
    """The router's hooks for ``core.loop``: summed head losses, mean validation macro-F1 (higher is better), the
    best model with its validation logits, and ``router.json`` at the end."""

    def __init__(self, cfg: TrainConfig, accelerator, splits, heads: list[HeadSpec], output: Path, meta: dict, console):
        import torch
        from transformers import AutoTokenizer

        from triagekit.core.backbones import resolve_backbone
        from triagekit.core.batching import BucketBatchSampler, IndexedDataset, SequentialLengthSampler
        from triagekit.route.batching import Collator, encode_rows
        from triagekit.route.heads import row_targets
        from triagekit.route.losses import balanced_weights
        from triagekit.route.windows import LongText

        self.cfg, self.accelerator, self.splits, self.heads = cfg, accelerator, splits, heads
        self.output, self.meta, self.console = output, meta, console
        self.base_saved = False  # set by the first save_best (a LoRA base is then linked, not written again)
        from triagekit.route.auto import check_memory

        backbone_path = resolve_backbone(cfg.backbone)
        needed = check_memory(cfg, backbone_path)
        if needed and accelerator.is_main_process:
            console.print(f"memory: training needs about {needed / 2**30:.1f} GB (estimate)")
        self.tokenizer = AutoTokenizer.from_pretrained(backbone_path)
        if self.tokenizer.pad_token is None:  # decoder tokenizers often have none; the mask keeps pads out of pooling
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.model = build_model(cfg, heads)
        long_text = LongText(cfg.long_text, cfg.chunk_stride, cfg.max_chunks)
        train_ex = encode_rows(splits["train"], self.tokenizer, heads, cfg.text_fields, cfg.max_length, long_text)
        val_rows = splits.get("val") or []
        self.val_ex = (
            encode_rows(val_rows, self.tokenizer, heads, cfg.text_fields, cfg.max_length, long_text) if val_rows else []
        )
        self.val_targets = row_targets(val_rows, heads) if self.val_ex else {}
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        collate = Collator(heads, pad_id, cfg.pad_to_multiple_of)
        self.train_loader = torch.utils.data.DataLoader(
            IndexedDataset(train_ex),
            collate_fn=collate,
            batch_sampler=BucketBatchSampler([e["length"] for e in train_ex], cfg.batch_size, seed=cfg.seed),
        )
        self.val_loader = torch.utils.data.DataLoader(
            IndexedDataset(self.val_ex),
            collate_fn=collate,
            batch_sampler=SequentialLengthSampler([e["length"] for e in self.val_ex], cfg.eval_batch_size),
        )
        # A frozen backbone (method: head) gives every example the same sentence vector in every epoch: compute it
        # once and train the heads on the cached vectors (one process only: under several, the unwrapped model
        # would bypass DDP's gradient all-reduce).
        self.frozen = cfg.method == "head" and accelerator.num_processes == 1
        self._cache: dict[str, Any] = {}
        self._feature_loaders = {
            "train": torch.utils.data.DataLoader(
                IndexedDataset(train_ex),
                collate_fn=collate,
                batch_sampler=SequentialLengthSampler([e["length"] for e in train_ex], cfg.eval_batch_size),
            ),
            "val": self.val_loader,
        }
        self.weights = {}
        if cfg.class_weights:
            self.weights = {
                h.name: balanced_weights([e[h.name] for e in train_ex], len(h.labels)).to(accelerator.device)
                for h in heads
                if not h.multilabel
            }
        self.logits: dict[str, np.ndarray] = {}
        self.best_logits: dict[str, np.ndarray] = {}
        self.on_validate, self.validations = None, 0

    def param_groups(self) -> list[dict[str, Any]]:
        return _param_groups(self.cfg, self.model)

    def step(self, model, batch):
        if self.frozen:
            z = self._features(model, "train")[batch["index"].to(self.accelerator.device)]
            logits = self.accelerator.unwrap_model(model).classify(z)
        else:
            logits = model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], owner=batch.get("owner")
            )
        return _batch_loss(self.cfg, self.heads, logits, batch, self.weights)

    def _features(self, model, split: str):
        """Each example's sentence vector from the frozen backbone, computed on the first use of ``split``."""
        import torch

        if split not in self._cache:
            net, device = self.accelerator.unwrap_model(model), self.accelerator.device
            training, out = net.training, None
            net.eval()
            with torch.no_grad(), self.accelerator.autocast():
                for batch in self._feature_loaders[split]:
                    owner = batch.get("owner")
                    z = net.features(
                        batch["input_ids"].to(device),
                        batch["attention_mask"].to(device),
                        owner.to(device) if owner is not None else None,
                    ).float()
                    if out is None:
                        out = torch.zeros(len(self._feature_loaders[split].dataset), z.shape[1], device=device)
                    out[batch["index"].to(device)] = z
            net.train(training)
            self._cache[split] = out
        return self._cache[split]

    def validate(self, model, loader):
        from triagekit.core.loop import Score

        if not self.val_ex:
            return None
        if self.frozen:
            import torch

            with torch.no_grad():
                z = self.accelerator.unwrap_model(model).classify(self._features(model, "val"))
            self.logits = {h.name: z[h.name].float().cpu().numpy() for h in self.heads}
        else:
            self.logits = val_logits(self.accelerator, model, loader, self.heads, len(self.val_ex))
        f1 = _macro_f1(self.heads, self.logits, self.val_targets, self.cfg.objective)
        score = float(np.mean(list(f1.values())))
        self.validations += 1
        if self.on_validate is not None:
            self.on_validate(self.validations, score)
        return Score(
            score,
            higher_is_better=True,
            metrics={"val_macro_f1": score, **{f"val_macro_f1/{k}": v for k, v in f1.items()}},
            text=f"val {self.cfg.objective} {score:.4f} ({', '.join(f'{k} {v:.3f}' for k, v in f1.items())})",
        )

    def save_best(self, model) -> None:
        _save_best(self.accelerator, model, self.tokenizer, self.output, self.cfg.method == "lora", self.base_saved)
        self.base_saved = True
        if self.logits:
            self.best_logits = self.logits
            if self.accelerator.is_main_process:
                np.savez(self.output / "val_logits.npz", **self.logits)

    def finish(self, state: dict[str, Any], parameters: dict[str, Any]) -> TrainResult:
        return _finish(
            self.cfg,
            self.accelerator,
            self.heads,
            self.output,
            state,
            parameters,
            self.best_logits,
            self.splits,
            self.meta,
            self.console,
        )


def _finish(cfg, accelerator, heads, output, state, params, best_logits, splits, meta, console) -> TrainResult:
    """Fit the optional lexical pool, calibrate on the best model's validation logits, write ``router.json``."""
    from triagekit.route.heads import row_targets
    from triagekit.route.router import Router

    extra: dict[str, Any] = {}
    best_score = state["best_score"] if state["best_score"] is not None else -1.0  # -1: no validation set
    if accelerator.is_main_process:
        if not best_logits and (output / "val_logits.npz").exists():
            with np.load(output / "val_logits.npz") as z:  # a resumed run whose best was before the kill
                best_logits = {k: z[k] for k in z.files}
        val_targets = row_targets(splits.get("val") or [], heads)
        if cfg.hybrid and best_logits:
            best_logits, extra["lexical"] = _fit_lexical(cfg, heads, splits, output, best_logits, val_targets, console)
        calibration = (
            _correct_and_calibrate(cfg, heads, best_logits, val_targets, splits, console) if best_logits else {}
        )
        digest = hashlib.sha256((output / "model" / "heads.safetensors").read_bytes()).hexdigest()[:12]
        router = Router(
            None,
            heads,
            cfg.text_fields,
            calibration,
            meta={
                **meta,
                "model_version": f"{Path(cfg.backbone).name}-{cfg.method}-{digest}",
                "method": cfg.method,
                "parameters": params,
                "best_step": state["best_step"],
                "best_val_macro_f1": best_score,
            },
        )
        router.save_info(
            output,
            "encoder",
            model_dir="model",
            max_length=cfg.max_length,
            review=_review_info(cfg),
            long_text=_long_text_info(cfg),
            **extra,
        )
        _fit_out_of_scope(cfg, output, splits, console)
    accelerator.wait_for_everyone()
    best_val = {k.split("/", 1)[1]: v for k, v in state["best_metrics"].items() if "/" in k}
    return TrainResult(
        str(output),
        best_score,
        state["best_step"],
        state["global_step"],
        state["stopped_early"],
        state["train_seconds"],
        params,
        best_val,
    )


def _fit_lexical(
    cfg, heads, splits, output: Path, neural_val: dict[str, np.ndarray], val_targets: dict[str, np.ndarray], console
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """TF-IDF on the training split, its pooling weight per head on validation; returns the pooled val logits."""
    from triagekit.data.text import build_text
    from triagekit.route.hybrid import LEXICAL_DIR, fit_fusion, fuse
    from triagekit.route.tfidf import BASELINE

    lexical = _fit_tfidf(cfg, splits, heads)
    lexical.save(output / LEXICAL_DIR)
    info: dict[str, Any] = {}
    if _tfidf_settings(cfg) == BASELINE and splits.get("val"):
        from triagekit.route.tfidf import baseline_key

        info["baseline_key"] = baseline_key(splits["train"], splits["val"], heads, cfg.text_fields)
    lexical_val = lexical.logits([build_text(r, cfg.text_fields) for r in splits["val"]])
    weights, scales = fit_fusion(heads, neural_val, lexical_val, val_targets)
    pooled = {h.name: fuse(h, neural_val[h.name], lexical_val[h.name], weights[h.name], scales[h.name]) for h in heads}
    f1 = _macro_f1(heads, pooled, val_targets)
    console.print(f"hybrid: lexical weights {weights}; pooled val macro-F1 {np.mean(list(f1.values())):.4f}")
    return pooled, {"weights": weights, "scales": scales, "dir": LEXICAL_DIR, "val_macro_f1": f1, **info}


def _fit_out_of_scope(cfg: TrainConfig, output: Path, splits, console) -> None:
    """The out-of-scope detector of the saved run, on its training and validation rows (``ood_detector``)."""
    from triagekit.route.oos import fit_run
    from triagekit.route.router import Router

    if cfg.ood_detector == "none":
        return
    started = time.perf_counter()
    oos = fit_run(Router.load(output), output, splits, cfg.ood_detector, cfg.ood_target_rejection)
    if oos is not None:
        rates = ", ".join(f"{h} {100 * v['val_rejection']:.1f} %" for h, v in oos.heads.items())
        console.print(
            f"out of scope: {oos.detector} fitted in {time.perf_counter() - started:.1f}s; "
            f"in-scope val tickets flagged: {rates}"
        )


def _review_info(cfg: TrainConfig) -> dict[str, Any]:
    """How ``requires_review`` was fitted, stored in ``router.json`` (``review_heads`` drives the ticket flag)."""
    return {"budget": cfg.review_budget, "heads": cfg.review_heads, "target_precision": cfg.target_precision}


def _long_text_info(cfg: TrainConfig) -> dict[str, Any]:
    return {"mode": cfg.long_text, "stride": cfg.chunk_stride, "max_chunks": cfg.max_chunks}


def _fit_tfidf(cfg, splits, heads):
    """TF-IDF for ``cfg.objective``: class-balanced for macro-F1, C from ``cfg.tfidf_C`` or chosen on validation."""
    from triagekit.route.tfidf import TfidfBackend

    return TfidfBackend().fit(
        splits["train"], heads, cfg.text_fields, val_rows=splits.get("val"), **_tfidf_settings(cfg)
    )


def _tfidf_settings(cfg) -> dict[str, Any]:
    """The ``TfidfBackend.fit`` settings of the hybrid's TF-IDF half; equal to ``tfidf.BASELINE`` when it is the
    tuned baseline itself (then ``route eval`` reuses it)."""
    return {
        "C": cfg.tfidf_C,
        "class_weight": "balanced" if cfg.objective == "macro_f1" else None,
        "objective": cfg.objective,
        "seed": cfg.seed,
    }


def _correct_and_calibrate(cfg, heads, logits, val_targets, splits, console) -> dict[str, dict[str, Any]]:
    """The prior correction for ``cfg.objective`` (fitted on validation), then temperatures and review thresholds
    fitted on the corrected logits, so that calibration describes what is served."""
    from triagekit.route.heads import row_targets
    from triagekit.route.objective import apply_bias, fit_prior_correction

    correction = {}
    if cfg.prior_correction and splits.get("val"):
        correction = fit_prior_correction(
            heads, logits, val_targets, row_targets(splits["train"], heads), cfg.objective
        )
        taus = {h: c["tau"] for h, c in correction.items()}
        gains = ", ".join(f"{h} {c['val_before']:.3f}->{c['val_after']:.3f}" for h, c in correction.items() if c["tau"])
        console.print(f"prior correction ({cfg.objective}, on val): tau {taus}" + (f"; {gains}" if gains else ""))
    calibration = {h: {"logit_bias": c["logit_bias"], "prior_tau": c["tau"]} for h, c in correction.items()}
    fitted = _calibrate(cfg, heads, apply_bias(logits, calibration), val_targets, console)
    for h, c in fitted.items():
        calibration.setdefault(h, {}).update(c)
    _print_review(cfg, heads, calibration, console)
    return calibration


def _print_review(cfg, heads, calibration, console) -> None:
    if cfg.review_budget is not None:
        console.print(
            f"review: at most {100 * cfg.review_budget:.0f} % of tickets flagged "
            f"(heads {', '.join(cfg.review_heads or [h.name for h in heads])}); thresholds "
            + ", ".join(
                f"{h} {c['review_threshold']:.3f}"
                for h, c in calibration.items()
                if c.get("review_threshold") is not None
            )
        )


def _train_tfidf(cfg, splits, heads, output: Path, meta: dict, console) -> TrainResult:
    from triagekit.route.objective import apply_bias
    from triagekit.route.router import Router

    started = time.perf_counter()
    backend = _fit_tfidf(cfg, splits, heads)
    seconds = time.perf_counter() - started
    backend.save(output)
    calibration, f1 = {}, {}
    if splits.get("val"):
        from triagekit.route.heads import row_targets

        targets = row_targets(splits["val"], heads)
        logits = backend.logits(Router(backend, heads, cfg.text_fields).texts(splits["val"]))
        calibration = _correct_and_calibrate(cfg, heads, logits, targets, splits, console)
        f1 = _macro_f1(heads, apply_bias(logits, calibration), targets)
    score = float(np.mean(list(f1.values()))) if f1 else -1.0
    digest = hashlib.sha256((output / "tfidf.joblib").read_bytes()).hexdigest()[:12]
    router = Router(
        backend,
        heads,
        cfg.text_fields,
        calibration,
        meta={**meta, "model_version": f"tfidf-{digest}", "method": "tfidf", "best_val_macro_f1": score},
    )
    router.save_info(output, "tfidf", review=_review_info(cfg))
    _fit_out_of_scope(cfg, output, splits, console)
    console.print(f"tfidf: fitted in {seconds:.1f}s (C per head {backend.chosen_C}); val macro-F1 {score:.4f}")
    return TrainResult(str(output), score, 0, 0, False, seconds, {"trainable": 0, "total": 0}, f1)
