"""``triagekit route {train,eval,predict}``: their options and the plain functions they run (see
``triagekit.core.cli`` for the table format; ``route export`` is registered by ``triagekit.exporters.commands``).
Importing this module is cheap: torch, transformers and rich load inside the verbs."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from triagekit.core.cli import Alias, Group, Verb, console, csv_list, training_arguments

__all__ = ["COMMANDS", "ALIASES", "cmd_train", "cmd_eval", "cmd_predict", "print_results"]


def cmd_train(args: argparse.Namespace) -> int:
    from triagekit.route.config import load_config, parse_overrides
    from triagekit.route.train import train

    overrides: dict[str, Any] = {
        "labels": csv_list(args.labels), "multilabel": csv_list(args.multilabel), "text_fields": csv_list(args.text),
        "backbone": args.backbone, "method": args.method, "epochs": args.epochs, "device": args.device,
        "seed": args.seed,
    }
    if args.multilabel and not args.labels:
        overrides["labels"] = []
    overrides.update(parse_overrides(args.set or []))
    cfg = load_config(args.config, **overrides)
    result = train(cfg, args.data, args.output, val=args.val, resume=args.resume, overwrite=args.overwrite,
                   console=console())
    if os.environ.get("RANK", "0") != "0":  # one summary under `accelerate launch`
        return 0
    early = ", stopped early" if result.stopped_early else ""
    console().print(f"[green]done[/]: best val macro-F1 {result.best_score:.4f} at step {result.best_step} "
                    f"({result.steps} steps, {result.train_seconds:.1f}s{early}) -> {result.output}")
    return 0


def _eval_data(router, data: Path, val: Path | None, run_dir: Path):
    """(test rows, val rows or None, train rows or None) for ``route eval``, with rejected rows reported."""
    from triagekit.data import load_prepared, load_records

    labels = [h.name for h in router.heads if not h.multilabel]
    multi = [h.name for h in router.heads if h.multilabel]
    if data.is_dir():
        splits = load_prepared(data)
        if "test" not in splits:
            raise FileNotFoundError(f"{data} has no test.jsonl")
        test, data_dir = splits["test"], data
    else:
        test, errors = load_records(data, router.text_fields, labels, multi)
        if errors:
            console().print(f"[yellow]{len(errors)} rows of {data} rejected (first: line {errors[0].line}: "
                            f"{errors[0].reason})")
        data_dir = Path(router.meta.get("data_dir", run_dir / "data"))
    prepared = load_prepared(data_dir) if (data_dir / "train.jsonl").exists() else {}
    val_rows = load_records(val, router.text_fields, labels, multi)[0] if val is not None else prepared.get("val")
    return test, val_rows, prepared.get("train")


def _critical(pairs: list[str] | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ValueError(f"--critical expects head=label, got {pair!r}")
        head, label = pair.split("=", 1)
        out.setdefault(head.strip(), []).append(label.strip())
    return out


def cmd_eval(args: argparse.Namespace) -> int:
    from triagekit.route.evaluate import evaluate
    from triagekit.route.router import Router

    run_dir = Path(args.model)
    router = Router.load(run_dir)
    test, val, train_rows = _eval_data(router, Path(args.data), Path(args.val) if args.val else None, run_dir)
    baseline = None
    if not args.no_baseline and train_rows and router.meta.get("backbone") != "tfidf":
        from triagekit.route.tfidf import TfidfBackend

        baseline = Router(TfidfBackend().fit(train_rows, router.heads, router.text_fields), router.heads,
                          router.text_fields)
    out = Path(args.out) if args.out else run_dir / "eval"
    metrics = evaluate(router, test, out, val_rows=val, target_precision=args.target_precision,
                       critical=_critical(args.critical), baseline=baseline, batch_size=args.batch_size)
    router.set_calibration(run_dir, metrics["calibration"])
    print_results(metrics)
    console().print(f"report: {out / 'report.md'}")
    return 0


def print_results(metrics: dict[str, Any]) -> None:
    """The results table of an evaluation (with the TF-IDF baseline beside it when present)."""
    from rich.table import Table

    table = Table(title=f"test set: {metrics.get('n_test', '?')} tickets (%, F1 = macro-F1, wF1 = weighted-F1)")
    base = (metrics.get("baseline") or {}).get("heads", {})
    for col in ["head", "acc", "F1", "wF1", "top3", "ECE", "review<"] + (["tfidf acc", "tfidf F1"] if base else []):
        table.add_column(col, justify="left" if col == "head" else "right")
    for name, m in metrics["heads"].items():
        row = [name, _pct(m.get("accuracy", m.get("subset_accuracy"))), _pct(m.get("macro_f1")),
               _pct(m.get("weighted_f1", m.get("micro_f1"))), _pct((m.get("top_k_accuracy") or {}).get("3")),
               f"{m['ece']:.3f}" if m.get("ece") is not None else "-",
               f"{m['review_threshold']:.2f}" if m.get("review_threshold") is not None else "-"]
        if base:
            b = base.get(name, {})
            row += [_pct(b.get("accuracy", b.get("subset_accuracy"))), _pct(b.get("macro_f1"))]
        table.add_row(*row)
    console().print(table)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def cmd_predict(args: argparse.Namespace) -> int:
    from triagekit.route.predict import interactive, predict_file, predict_texts
    from triagekit.route.router import Router

    router = Router.load(args.model, device=args.device, precision=args.precision)
    if args.text:
        for line in predict_texts(router, args.text, top_k=args.top_k):
            print(json.dumps(line, ensure_ascii=False))
    elif args.input:
        if not args.output:
            raise ValueError("--input needs --output FILE.jsonl")
        predict_file(router, args.input, args.output, batch_size=args.batch_size, top_k=args.top_k,
                     console=console(), resume=args.resume)
    else:
        interactive(router, top_k=args.top_k)
    return 0


def _train_arguments(p: argparse.ArgumentParser) -> None:
    training_arguments(p, "a raw file (prepared on the fly) or a prepared directory")
    p.add_argument("--val", default=None, help="explicit validation file")
    p.add_argument("--config", default=None, help="YAML preset (e.g. configs/router/minilm.yaml)")
    p.add_argument("--labels", default=None, help="single-label fields, comma-separated")
    p.add_argument("--multilabel", default=None, help="multi-label fields, comma-separated (e.g. tags)")
    p.add_argument("--text", default=None, help="text fields, comma-separated")
    p.add_argument("--backbone", default=None, help="minilm | tfidf | HF id | local path")
    p.add_argument("--method", default=None, choices=["lora", "full", "head", "qlora"])
    p.add_argument("--device", default=None, choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any config key (repeatable)")


def _eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model")
    p.add_argument("--data", required=True, help="a prepared directory (uses test.jsonl) or a labelled file")
    p.add_argument("--val", default=None, help="validation file for calibration (default: the run's val split)")
    p.add_argument("--out", default=None)
    p.add_argument("--target-precision", type=float, default=0.9)
    p.add_argument("--critical", action="append", metavar="HEAD=LABEL", help="report recall of these classes")
    p.add_argument("--no-baseline", action="store_true", help="skip the TF-IDF baseline")
    p.add_argument("--batch-size", type=int, default=64)


def _predict_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model")
    p.add_argument("--text", action="append", help="a ticket text (repeatable)")
    p.add_argument("--input", default=None, help="CSV/JSONL/JSON/Parquet file of tickets")
    p.add_argument("--output", default=None, help="JSONL predictions")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default=None)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: autocast the backbone (GPU, or a CPU with AMX; about 2x for decoder routers)")
    p.add_argument("--resume", action="store_true", help="skip the records already in --output and append the rest")


COMMANDS = {"route": Group("train, evaluate, run and export routers, the multi-head ticket classifiers", {
    "train": Verb(cmd_train, _train_arguments, "train a router: queue/priority/type heads, multi-label tags"),
    "eval": Verb(cmd_eval, _eval_arguments, "evaluate a router; writes DIR/eval/metrics.json and report.md"),
    "predict": Verb(cmd_predict, _predict_arguments, "route tickets with a trained router"),
})}

ALIASES = [Alias("train", "route train", option="--task=router", default=True),
           Alias("eval", "route eval"), Alias("predict", "route predict")]
