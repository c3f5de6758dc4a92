"""The router's commands: ``route train`` (the documented default preset without ``--config``), ``route eval``
(with the tuned TF-IDF baseline and the review operating point) and ``route presets``.

Each is ``cmd_xxx(args)`` plus the ``add_route`` parser setup, so the CLI table wires them in one line.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

__all__ = ["cmd_train_router", "cmd_eval", "cmd_presets", "add_route", "add_train_arguments", "add_eval_arguments",
           "print_results"]


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def cmd_train_router(args: argparse.Namespace) -> int:
    """Train a router; without ``--config`` the documented default preset (``minilm``)."""
    from triagekit.core.presets import DEFAULT_ROUTER_PRESET
    from triagekit.route.config import load_config, parse_overrides
    from triagekit.route.train import train

    overrides: dict[str, Any] = {
        "labels": _csv(args.labels), "multilabel": _csv(args.multilabel), "text_fields": _csv(args.text),
        "backbone": args.backbone, "method": args.method, "epochs": args.epochs, "device": args.device,
        "seed": args.seed, "exclude_suspects": getattr(args, "exclude_suspects", None),
    }
    if args.multilabel and not args.labels:
        overrides["labels"] = []
    overrides.update(parse_overrides(args.set or []))
    config = args.config or DEFAULT_ROUTER_PRESET
    if not args.config:
        _console().print(f"config: the default preset {config!r} (`triagekit route presets` lists the others)")
    cfg = load_config(config, **overrides)
    result = train(cfg, args.data, args.output, val=args.val, resume=args.resume, overwrite=args.overwrite,
                   console=_console())
    if os.environ.get("RANK", "0") != "0":  # one summary under `accelerate launch`
        return 0
    early = ", stopped early" if result.stopped_early else ""
    _console().print(f"[green]done[/]: best val {cfg.objective} {result.best_score:.4f} at step {result.best_step} "
                     f"({result.steps} steps, {result.train_seconds:.1f}s{early}) -> {result.output}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    """One line per shipped preset: its name and what it is for."""
    from triagekit.core.presets import DEFAULT_ROUTER_PRESET, list_presets

    for name, summary in list_presets(args.task):
        mark = " (default)" if args.task == "router" and name == DEFAULT_ROUTER_PRESET else ""
        print(f"{name}{mark}: {summary}")
    return 0


def _eval_data(router, data: Path, val: Path | None, run_dir: Path):
    """(test rows, val rows or None, train rows or None) for ``eval``, with rejected rows reported."""
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
            _console().print(f"[yellow]{len(errors)} rows of {data} rejected (first: line {errors[0].line}: "
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


def _review_settings(args: argparse.Namespace, router) -> tuple[float | None, list[str] | None, float]:
    """The review budget, heads and target precision: the flags, else what the run was trained with. Giving only
    ``--target-precision`` asks for the per-head precision rule."""
    trained = router.review or {}
    if args.review_budget is not None:
        budget = args.review_budget
    elif args.target_precision is not None:
        budget = None
    else:
        budget = trained.get("budget")
    heads = _csv(args.review_heads) or trained.get("heads")
    target = args.target_precision if args.target_precision is not None else trained.get("target_precision", 0.9)
    return budget, heads, target


def cmd_eval(args: argparse.Namespace) -> int:
    from triagekit.route.evaluate import evaluate
    from triagekit.route.router import Router

    run_dir = Path(args.model)
    router = Router.load(run_dir)
    test, val, train_rows = _eval_data(router, Path(args.data), Path(args.val) if args.val else None, run_dir)
    baseline = None
    if not args.no_baseline and train_rows and router.meta.get("backbone") != "tfidf":
        from triagekit.route.tfidf import TfidfBackend

        baseline = Router(TfidfBackend.baseline(train_rows, router.heads, router.text_fields, val_rows=val),
                          router.heads, router.text_fields)
    out = Path(args.out) if args.out else run_dir / "eval"
    budget, heads, target = _review_settings(args, router)
    metrics = evaluate(router, test, out, val_rows=val, target_precision=target, review_budget=budget,
                       review_heads=heads, critical=_critical(args.critical), baseline=baseline,
                       batch_size=args.batch_size)
    router.set_calibration(run_dir, metrics["calibration"],
                           review={"budget": budget, "heads": heads, "target_precision": target})
    print_results(metrics)
    _console().print(f"report: {out / 'report.md'}")
    return 0


def print_results(metrics: dict[str, Any]) -> None:
    """The results table of an evaluation (with the TF-IDF baseline beside it), then the review operating point."""
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
    console = _console()
    console.print(table)
    review = metrics.get("review") or {}
    if review.get("heads"):
        per_head = "; ".join(f"{h} {_pct(m['auto_accuracy'])} vs {_pct(m['review_accuracy'])}"
                             for h, m in review["heads"].items())
        console.print(f"review: {_pct(review['auto_routed'])} % of tickets auto-routed; accuracy auto-routed vs "
                      f"flagged: {per_head}")
        for w in review.get("warnings") or []:
            console.print(f"[yellow]{w}")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The router training flags (shared by ``route train`` and the legacy ``train``)."""
    p.add_argument("--data", required=True, help="a raw file (prepared on the fly) or a prepared directory")
    p.add_argument("--val", default=None, help="explicit validation file")
    p.add_argument("--output", required=True)
    p.add_argument("--config", default=None,
                   help="router preset name (`triagekit route presets`) or YAML path; default: minilm")
    p.add_argument("--labels", default=None, help="single-label fields, comma-separated")
    p.add_argument("--multilabel", default=None, help="multi-label fields, comma-separated (e.g. tags)")
    p.add_argument("--text", default=None, help="text fields, comma-separated")
    p.add_argument("--backbone", default=None, help="minilm | tfidf | HF id | local path")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--device", default=None, choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--exclude-suspects", default=None, metavar="AUDIT_FILE",
                   help="drop the training labels a `triagekit data audit` file lists")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run in --output")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any config key (repeatable)")


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model")
    p.add_argument("--data", required=True, help="a prepared directory (uses test.jsonl) or a labelled file")
    p.add_argument("--val", default=None, help="validation file for calibration (default: the run's val split)")
    p.add_argument("--out", default=None)
    p.add_argument("--review-budget", type=float, default=None,
                   help="share of tickets to review, in (0, 1] (default: the run's review_budget)")
    p.add_argument("--review-heads", default=None, help="heads whose doubt flags a ticket, comma-separated")
    p.add_argument("--target-precision", type=float, default=None,
                   help="per-head target precision instead of a budget (default: the run's)")
    p.add_argument("--critical", action="append", metavar="HEAD=LABEL", help="report recall of these classes")
    p.add_argument("--no-baseline", action="store_true", help="skip the tuned TF-IDF baseline")
    p.add_argument("--batch-size", type=int, default=64)


def add_route(sub) -> None:
    """``triagekit route {train,eval,presets}``."""
    route = sub.add_parser("route", help="train, evaluate and list presets of routers (multi-head classifiers)")
    rsub = route.add_subparsers(dest="route_command", required=True)
    p = rsub.add_parser("train", help="train a router (default preset: minilm, the MiniLM + TF-IDF hybrid)")
    add_train_arguments(p)
    p.add_argument("--method", default=None, choices=["lora", "full", "head"])
    p.set_defaults(func=cmd_train_router)
    p = rsub.add_parser("eval", help="evaluate a trained router beside the tuned TF-IDF baseline")
    add_eval_arguments(p)
    p.set_defaults(func=cmd_eval)
    p = rsub.add_parser("presets", help="list the shipped presets, one line each")
    p.add_argument("--task", choices=["router", "triage", "answer"], default="router")
    p.set_defaults(func=cmd_presets)
