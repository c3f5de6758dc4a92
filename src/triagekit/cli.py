"""The ``triagekit`` command: one table mapping each command to one plain function."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

__all__ = ["main", "COMMANDS"]


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


# ---------------------------------------------------------------------------------------------------------------
# data
def cmd_data_synth(args: argparse.Namespace) -> int:
    if getattr(args, "task", "router") == "triage":
        from triagekit.triage.commands import cmd_synth_triage

        return cmd_synth_triage(args)
    from triagekit.data import write_synth

    write_synth(args.n, args.out, seed=args.seed)
    _console().print(f"wrote {args.n} synthetic tickets to {args.out} (seed {args.seed})")
    return 0


def cmd_data_prepare(args: argparse.Namespace) -> int:
    from triagekit.data import prepare, render_card

    summary = prepare(
        args.input, args.out, text_fields=_csv(args.text) or ["subject", "body"], label_fields=_csv(args.labels) or [],
        multilabel_fields=_csv(args.multilabel) or [], split=args.split, time_field=args.time_field,
        val_fraction=args.val_fraction, test_fraction=args.test_fraction, redact_pii=args.redact_pii,
        dedup=not args.keep_duplicates, seed=args.seed,
    )
    console = _console()
    card = json.loads((Path(args.out) / "data_card.json").read_text())
    console.print(render_card(card))
    console.print(f"{summary.valid} valid, {summary.rejected} rejected, {summary.duplicates} duplicates removed "
                  f"of {summary.total} rows; splits {summary.splits}")
    if summary.rejected:
        console.print(f"[yellow]rejected rows with file, line and reason: {summary.rejected_path}")
    return 0


def cmd_data_stats(args: argparse.Namespace) -> int:
    from triagekit.data import render_card, stats

    card = stats(args.file)
    if args.json:
        print(json.dumps(card, indent=2, default=str))
    else:
        _console().print(render_card(card))
    return 0


# ---------------------------------------------------------------------------------------------------------------
# train / eval / predict
# `train --task NAME` for tasks other than the router: "module:function" run with the same parsed arguments
TRAIN_TASKS = {"answer": "triagekit.answer.commands:cmd_train_answer",
               "answer-dpo": "triagekit.answer.commands:cmd_train_answer_dpo"}

TRAIN_TASKS["triage"] = "triagekit.triage.commands:cmd_train_triage"


def cmd_train(args: argparse.Namespace) -> int:
    task = getattr(args, "task", "router")
    if task != "router":
        if task not in TRAIN_TASKS:
            raise ValueError(f"unknown --task {task!r}; choose one of router, {', '.join(TRAIN_TASKS)}")
        import importlib

        module, func = TRAIN_TASKS[task].split(":")
        return getattr(importlib.import_module(module), func)(args)
    from triagekit.route.config import load_config, parse_overrides
    from triagekit.route.train import train

    overrides: dict[str, Any] = {
        "labels": _csv(args.labels), "multilabel": _csv(args.multilabel), "text_fields": _csv(args.text),
        "backbone": args.backbone, "method": args.method, "epochs": args.epochs, "device": args.device,
        "seed": args.seed,
    }
    if args.multilabel and not args.labels:
        overrides["labels"] = []
    overrides.update(parse_overrides(args.set or []))
    cfg = load_config(args.config, **overrides)
    result = train(cfg, args.data, args.output, val=args.val, resume=args.resume, overwrite=args.overwrite,
                   console=_console())
    if os.environ.get("RANK", "0") != "0":  # one summary under `accelerate launch`
        return 0
    early = ", stopped early" if result.stopped_early else ""
    _console().print(f"[green]done[/]: best val macro-F1 {result.best_score:.4f} at step {result.best_step} "
                     f"({result.steps} steps, {result.train_seconds:.1f}s{early}) -> {result.output}")
    return 0


def _eval_data(router, data: Path, val: Path | None, run_dir: Path):
    """(test rows, val rows or None, train rows or None) for ``eval``, with rejected rows reported."""
    from triagekit.data import load_prepared, load_records

    if data.is_dir():
        splits = load_prepared(data)
        if "test" not in splits:
            raise FileNotFoundError(f"{data} has no test.jsonl")
        test, data_dir = splits["test"], data
    else:
        labels = [h.name for h in router.heads if not h.multilabel]
        multi = [h.name for h in router.heads if h.multilabel]
        test, errors = load_records(data, router.text_fields, labels, multi)
        if errors:
            _console().print(f"[yellow]{len(errors)} rows of {data} rejected (first: line {errors[0].line}: "
                             f"{errors[0].reason})")
        data_dir = Path(router.meta.get("data_dir", run_dir / "data"))
    prepared = load_prepared(data_dir) if (data_dir / "train.jsonl").exists() else {}
    if val is not None:
        val_rows, _ = load_records(val, router.text_fields, [h.name for h in router.heads if not h.multilabel],
                                   [h.name for h in router.heads if h.multilabel])
    else:
        val_rows = prepared.get("val")
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
    _console().print(f"report: {out / 'report.md'}")
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
    _console().print(table)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def cmd_predict(args: argparse.Namespace) -> int:
    if getattr(args, "engine", "local") == "ray":
        from triagekit.route.distributed import predict_ray

        if not args.input or not args.output:
            raise ValueError("--engine ray needs --input DIR_OR_GLOB and --output DIR")
        predict_ray(args.model, args.input, args.output, address=args.address, num_actors=args.num_actors,
                    batch_size=args.batch_size, top_k=args.top_k, fmt=args.format, precision=args.precision,
                    console=_console())
        return 0
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
                     console=_console(), resume=args.resume)
    else:
        interactive(router, top_k=args.top_k)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from triagekit.exporters.export import export

    fmt = args.format or ("hf" if args.merge else "onnx")
    if args.merge and fmt != "hf":
        raise ValueError("--merge writes merged HF weights (--format hf); ONNX and Triton exports merge LoRA anyway")
    out = export(args.model, args.out, format=fmt, quantize=args.quantize)
    _console().print(f"[green]exported[/] {args.model} as {fmt}{' (' + args.quantize + ')' if args.quantize else ''}"
                     f" -> {out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Synthetic tickets -> prepared splits -> default router -> evaluation report -> a few predictions."""
    import time

    out = Path(args.out)
    console = _console()
    steps = [
        ("synthesise", ["data", "synth", "--n", str(args.n), "--out", str(out / "tickets.jsonl"), "--seed", "0"]),
        ("prepare", ["data", "prepare", "--input", str(out / "tickets.jsonl"), "--out", str(out / "data"),
                     "--labels", "queue,priority,type", "--multilabel", "tags", "--redact-pii"]),
        ("train", ["train", "--data", str(out / "data"), "--labels", "queue,priority,type", "--multilabel", "tags",
                   "--output", str(out / "router"), "--config", args.config, "--overwrite"]),
        ("evaluate", ["eval", str(out / "router"), "--data", str(out / "data"), "--critical", "priority=high"]),
        ("predict", ["predict", str(out / "router"), "--input", str(out / "data" / "test.jsonl"),
                     "--output", str(out / "predictions.jsonl")]),
    ]
    timings = {}
    for name, argv in steps:
        console.rule(f"[bold]{name}")
        start = time.perf_counter()
        code = main(argv)
        timings[name] = time.perf_counter() - start
        if code:
            return code
    console.rule("[bold]timings")
    console.print("  ".join(f"{k} {v:.1f}s" for k, v in timings.items()) + f"  total {sum(timings.values()):.1f}s")
    console.print(f"report: {out / 'router' / 'eval' / 'report.md'}; predictions: {out / 'predictions.jsonl'}")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# the command table
def _add_data(sub) -> None:
    data = sub.add_parser("data", help="synthesise, validate, split and describe ticket data")
    dsub = data.add_subparsers(dest="data_command", required=True)
    p = dsub.add_parser("synth", help="write synthetic support tickets (reproducible by seed)")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--out", required=True, help="output .jsonl or .csv")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--task", choices=["router", "triage"], default="router",
                   help="router: tickets with queue/priority/type/tags; triage: IT tickets with gold triage JSON")
    p.add_argument("--schema", default=None, help="--task triage: JSON Schema with x-taxonomy (default: IT schema)")
    p.set_defaults(func=cmd_data_synth)
    p = dsub.add_parser("prepare", help="validate, deduplicate, redact and split a CSV/JSONL/JSON/Parquet file")
    p.add_argument("--input", required=True)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--text", default="subject,body", help="text fields, comma-separated")
    p.add_argument("--labels", default="queue,priority,type", help="single-label fields, comma-separated")
    p.add_argument("--multilabel", default=None, help="multi-label fields (e.g. tags)")
    p.add_argument("--split", choices=["stratified", "temporal", "none"], default="stratified")
    p.add_argument("--time-field", default="created_at")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--test-fraction", type=float, default=0.1)
    p.add_argument("--redact-pii", action="store_true", help="replace PII in the text fields with placeholders")
    p.add_argument("--keep-duplicates", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_data_prepare)
    p = dsub.add_parser("stats", help="print the data card of any ticket file or prepared directory")
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_data_stats)


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a router (multi-head classifier) or, with --task, another model")
    p.add_argument("--task", default="router", help="router (default) | answer (SFT of a chat model on replies) | "
                                                    "answer-dpo (preference tuning from chosen/rejected replies)")
    p.add_argument("--data", required=True, help="a raw file (prepared on the fly) or a prepared directory")
    p.add_argument("--val", default=None, help="explicit validation file")
    p.add_argument("--output", required=True)
    p.add_argument("--config", default=None, help="YAML preset (e.g. configs/router/minilm.yaml)")
    p.add_argument("--labels", default=None, help="single-label fields, comma-separated")
    p.add_argument("--multilabel", default=None, help="multi-label fields, comma-separated (e.g. tags)")
    p.add_argument("--text", default=None, help="text fields, comma-separated")
    p.add_argument("--backbone", default=None, help="minilm | tfidf | HF id | local path")
    p.add_argument("--method", default=None, choices=["lora", "full", "head", "qlora"], help="qlora: --task answer")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--device", default=None, choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--schema", default=None, help="--task triage: JSON Schema of the output (default: IT schema)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run in --output")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any config key (repeatable)")
    p.set_defaults(func=cmd_train)


def _add_eval_predict(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a trained router; writes DIR/eval/metrics.json and report.md")
    p.add_argument("model")
    p.add_argument("--data", required=True, help="a prepared directory (uses test.jsonl) or a labelled file")
    p.add_argument("--val", default=None, help="validation file for calibration (default: the run's val split)")
    p.add_argument("--out", default=None)
    p.add_argument("--target-precision", type=float, default=0.9)
    p.add_argument("--critical", action="append", metavar="HEAD=LABEL", help="report recall of these classes")
    p.add_argument("--no-baseline", action="store_true", help="skip the TF-IDF baseline")
    p.add_argument("--batch-size", type=int, default=64)
    p.set_defaults(func=cmd_eval)
    p = sub.add_parser("predict", help="route tickets with a trained router")
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
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="ray: Ray Data over the shards of --input (a directory or glob), an actor pool of "
                        "--num-actors, one output shard per input shard in --output (a directory); resumable")
    p.add_argument("--address", default=None, help="--engine ray: a Ray cluster to join (auto: this machine's)")
    p.add_argument("--num-actors", type=int, default=2, help="--engine ray: actors (one router each)")
    p.add_argument("--format", choices=["jsonl", "parquet"], default="jsonl", help="--engine ray: output shards")
    p.set_defaults(func=cmd_predict)


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="the whole path on synthetic tickets with the embedded MiniLM")
    p.add_argument("--out", default="demo")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--config", default=str(Path(__file__).resolve().parents[2] / "configs" / "router" / "demo.yaml"))
    p.set_defaults(func=cmd_demo)


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="export a trained router: ONNX (fp32/int8), Triton repository, merged HF")
    p.add_argument("model", help="a run directory")
    p.add_argument("--format", choices=["onnx", "triton", "hf"], default=None, help="default: onnx (hf with --merge)")
    p.add_argument("--quantize", choices=["int8"], default=None, help="dynamic int8 weights (onnx, triton)")
    p.add_argument("--merge", action="store_true", help="merged full weights in HF format (= --format hf)")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=cmd_export)


COMMANDS: list[Callable] = [_add_data, _add_train, _add_eval_predict, _add_export, _add_demo]

from triagekit.serve.commands import _add_drift, _add_feedback, _add_serve  # noqa: E402 - cheap, no serve extra

COMMANDS += [_add_serve, _add_feedback, _add_drift]

from triagekit.answer.commands import _add_answers, _add_eval_answers, _add_generate  # noqa: E402 - cheap imports

COMMANDS += [_add_answers, _add_generate, _add_eval_answers]

from triagekit.triage.commands import _add_triage  # noqa: E402 - cheap import

COMMANDS += [_add_triage]


def build_parser() -> argparse.ArgumentParser:
    from triagekit import __version__

    parser = argparse.ArgumentParser(prog="triagekit", description="Route, triage and answer support tickets.")
    parser.add_argument("--version", action="version", version=f"triagekit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as exc:
        _console().print(f"[red]error:[/] {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
