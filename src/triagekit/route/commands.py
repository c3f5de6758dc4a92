"""``triagekit route {train,eval,predict,presets,retrain,select,sweep,topics}``: their options and the plain functions they
run (see ``triagekit.core.cli`` for the table format; ``route export`` is registered by
``triagekit.exporters.commands``). Importing this module is cheap: torch, transformers and rich load inside the
verbs."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from triagekit.core.cli import Alias, Group, Verb, console, csv_list, training_arguments

__all__ = [
    "COMMANDS",
    "ALIASES",
    "cmd_train",
    "cmd_eval",
    "cmd_predict",
    "cmd_presets",
    "cmd_retrain",
    "cmd_select",
    "cmd_sweep",
    "cmd_topics",
    "print_results",
    "STRATEGIES",
]

# Spelled out (= triagekit.route.select.STRATEGIES, tests/test_select.py checks) so --help imports no numpy.
STRATEGIES = ("least-confidence", "margin", "entropy", "diverse", "random")


def cmd_train(args: argparse.Namespace) -> int:
    """Train a router; without ``--config`` the documented default preset."""
    from triagekit.core.presets import DEFAULT_ROUTER_PRESET
    from triagekit.route.config import load_config, parse_overrides
    from triagekit.route.train import train

    overrides: dict[str, Any] = {
        "labels": csv_list(args.labels),
        "multilabel": csv_list(args.multilabel),
        "text_fields": csv_list(args.text),
        "backbone": args.backbone,
        "method": args.method,
        "epochs": args.epochs,
        "device": args.device,
        "seed": args.seed,
        "exclude_suspects": args.exclude_suspects,
    }
    if args.multilabel and not args.labels:
        overrides["labels"] = []
    overrides.update(parse_overrides(args.set or []))
    config = args.config or DEFAULT_ROUTER_PRESET
    if not args.config:
        console().print(f"config: the default preset {config!r} (`triagekit route presets` lists the others)")
    cfg = load_config(config, **overrides)
    result = train(
        cfg, args.data, args.output, val=args.val, resume=args.resume, overwrite=args.overwrite, console=console()
    )
    if os.environ.get("RANK", "0") != "0":  # one summary under `accelerate launch`
        return 0
    early = ", stopped early" if result.stopped_early else ""
    console().print(
        f"[green]done[/]: best val {cfg.objective} {result.best_score:.4f} at step {result.best_step} "
        f"({result.steps} steps, {result.train_seconds:.1f}s{early}) -> {result.output}"
    )
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
            console().print(
                f"[yellow]{len(errors)} rows of {data} rejected (first: line {errors[0].line}: {errors[0].reason})"
            )
        data_dir = Path(router.meta.get("data_dir", run_dir / "data"))
    prepared = load_prepared(data_dir) if (data_dir / "train.jsonl").exists() else {}
    val_rows = load_records(val, router.text_fields, labels, multi)[0] if val is not None else prepared.get("val")
    return test, val_rows, prepared.get("train")


def _baseline(router, run_dir: Path, train_rows: list[dict], val: list[dict] | None):
    """The tuned TF-IDF baseline: the run's own TF-IDF half when it was fitted with the baseline's settings on these
    very rows (``baseline_key``; the same model, so no second C search), else fitted here."""
    import json

    from triagekit.route.router import ROUTER_FILE
    from triagekit.route.tfidf import TfidfBackend, baseline_key

    stored = (json.loads((run_dir / ROUTER_FILE).read_text()).get("lexical") or {}).get("baseline_key")
    lexical = getattr(router.backend, "lexical", None)
    if stored and lexical is not None and val:
        if stored == baseline_key(train_rows, val, router.heads, router.text_fields):
            console().print("baseline: the run's own TF-IDF half (fitted like the baseline on these train/val rows)")
            return lexical
    return TfidfBackend.baseline(train_rows, router.heads, router.text_fields, val_rows=val)


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
    heads = csv_list(args.review_heads) or trained.get("heads")
    target = args.target_precision if args.target_precision is not None else trained.get("target_precision", 0.9)
    return budget, heads, target


def cmd_eval(args: argparse.Namespace) -> int:
    from triagekit.route.evaluate import evaluate
    from triagekit.route.router import Router, resolve_model_path

    run_dir, registered = resolve_model_path(args.model)
    router = Router.load(args.model)
    test, val, train_rows = _eval_data(router, Path(args.data), Path(args.val) if args.val else None, run_dir)
    baseline = None
    if not args.no_baseline and train_rows and router.meta.get("backbone") != "tfidf":
        baseline = Router(_baseline(router, run_dir, train_rows, val), router.heads, router.text_fields)
    # A registry version is immutable (its files are checksummed): its report goes beside, its calibration stays.
    default_out = Path(f"eval-{router.model_version.replace('@', '-')}") if registered else run_dir / "eval"
    out = Path(args.out) if args.out else default_out
    budget, heads, target = _review_settings(args, router)
    metrics = evaluate(
        router,
        test,
        out,
        val_rows=val,
        target_precision=target,
        review_budget=budget,
        review_heads=heads,
        critical=_critical(args.critical),
        baseline=baseline,
        batch_size=args.batch_size,
        train_rows=train_rows,
    )
    for note in (metrics.get("languages") or {}).get("warnings", []):
        console().print(f"[yellow]warning: {note}")
    if registered:
        console().print("[yellow]registry versions are read-only: the new calibration is in the report, not stored")
    else:
        router.set_calibration(
            run_dir, metrics["calibration"], review={"budget": budget, "heads": heads, "target_precision": target}
        )
    print_results(metrics)
    console().print(f"report: {out / 'report.md'}")
    return 0


def print_results(metrics: dict[str, Any]) -> None:
    """The results table of an evaluation (with the TF-IDF baseline beside it), then the review operating point."""
    from rich.table import Table

    table = Table(title=f"test set: {metrics.get('n_test', '?')} tickets (%, F1 = macro-F1, wF1 = weighted-F1)")
    base = (metrics.get("baseline") or {}).get("heads", {})
    for col in ["head", "acc", "F1", "wF1", "top3", "ECE", "review<"] + (["tfidf acc", "tfidf F1"] if base else []):
        table.add_column(col, justify="left" if col == "head" else "right")
    for name, m in metrics["heads"].items():
        row = [
            name,
            _pct(m.get("accuracy", m.get("subset_accuracy"))),
            _pct(m.get("macro_f1")),
            _pct(m.get("weighted_f1", m.get("micro_f1"))),
            _pct((m.get("top_k_accuracy") or {}).get("3")),
            f"{m['ece']:.3f}" if m.get("ece") is not None else "-",
            f"{m['review_threshold']:.2f}" if m.get("review_threshold") is not None else "-",
        ]
        if base:
            b = base.get(name, {})
            row += [_pct(b.get("accuracy", b.get("subset_accuracy"))), _pct(b.get("macro_f1"))]
        table.add_row(*row)
    out = console()
    out.print(table)
    review = metrics.get("review") or {}
    if review.get("heads"):
        per_head = "; ".join(
            f"{h} {_pct(m['auto_accuracy'])} vs {_pct(m['review_accuracy'])}" for h, m in review["heads"].items()
        )
        out.print(
            f"review: {_pct(review['auto_routed'])} % of tickets auto-routed; accuracy auto-routed vs "
            f"flagged: {per_head}"
        )
        for w in review.get("warnings") or []:
            out.print(f"[yellow]{w}")
    for h, m in (metrics.get("out_of_scope") or {}).items():
        recall = ""
        if m.get("open_recall") is not None:
            recall = f"; open-class recall {_pct(m['open_recall'])} % of {m['n_unseen_labels']} unseen-label tickets"
        out.print(f"out of scope ({h}, {m['detector']}): {_pct(m['oos_rate'])} % of test tickets flagged{recall}")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def cmd_predict(args: argparse.Namespace) -> int:
    if args.engine == "ray":
        from triagekit.route.distributed import predict_ray
        from triagekit.route.router import resolve_model_path

        if not args.input or not args.output:
            raise ValueError("--engine ray needs --input DIR_OR_GLOB and --output DIR")
        predict_ray(
            resolve_model_path(args.model)[0],
            args.input,
            args.output,
            address=args.address,
            num_actors=args.num_actors,
            batch_size=args.batch_size,
            top_k=args.top_k,
            fmt=args.format,
            precision=args.precision,
            console=console(),
        )
        return 0
    from triagekit.route.predict import interactive, predict_file, predict_texts
    from triagekit.route.router import Router

    router = Router.load(args.model, device=args.device, precision=args.precision, compile=args.compile)
    if args.text:
        for line in predict_texts(router, args.text, top_k=args.top_k):
            print(json.dumps(line, ensure_ascii=False))
    elif args.input:
        if not args.output:
            raise ValueError("--input needs --output FILE.jsonl")
        predict_file(
            router,
            args.input,
            args.output,
            batch_size=args.batch_size,
            top_k=args.top_k,
            console=console(),
            resume=args.resume,
        )
    else:
        interactive(router, top_k=args.top_k)
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    from triagekit.route.retrain import retrain_command

    return retrain_command(args)


def cmd_select(args: argparse.Namespace) -> int:
    """Rank the pool with the run's calibrated probabilities and write the ``--n`` tickets to label next."""
    import json
    from pathlib import Path

    from rich.console import Console

    from triagekit.data.io import RowError, iter_records
    from triagekit.data.text import build_text
    from triagekit.route.router import Router
    from triagekit.route.select import select, uncertainty

    console = Console(stderr=True)
    router = Router.load(args.run)
    rows, skipped = [], 0
    for rec in iter_records(args.pool):
        if isinstance(rec, RowError) or not build_text(rec.data, router.text_fields).strip():
            skipped += 1
        else:
            rows.append(rec.data)
    if not rows:
        raise ValueError(f"{args.pool} has no ticket with text in {router.text_fields} (or 'text'); nothing to select")
    probs = router.predict_proba(rows, batch_size=args.batch_size)
    multilabel = [h.name for h in router.heads if h.multilabel]
    vectors = _vectors(router.texts(rows), args.embed) if args.strategy == "diverse" else None
    picked = select(probs, args.n, args.strategy, vectors, multilabel, args.head, args.seed)
    scores = uncertainty(
        probs, "margin" if args.strategy in ("diverse", "random") else args.strategy, multilabel, args.head
    )
    predictions = router.predict([rows[i] for i in picked], batch_size=args.batch_size)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as f:
        for rank, (i, pred) in enumerate(zip(picked, predictions), 1):
            line = {
                "rank": rank,
                "uncertainty": round(float(scores[i]), 6),
                "strategy": args.strategy,
                "model_version": router.model_version,
                "ticket": rows[i],
                "prediction": pred,
            }
            f.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
    note = f" ({skipped} rows without text skipped)" if skipped else ""
    console.print(f"{len(picked)} of {len(rows)} tickets chosen by {args.strategy}{note} -> {out}")
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    """Cluster the tickets of ``--input`` the router flags as out of scope into candidate topics."""
    from rich.table import Table

    from triagekit.route.router import Router
    from triagekit.route.topics import topics_from_file

    router = Router.load(args.model)
    found = topics_from_file(router, args.input, head=args.head, min_size=args.min_size, batch_size=args.batch_size)
    out = console()
    table = Table(
        title=f"{found['out_of_scope']} of {found['tickets']} tickets out of scope "
        f"({_pct(found['out_of_scope_rate'])} %), {found['unclustered']} in no topic"
    )
    for col in ("topic", "size", "characteristic terms", "example"):
        table.add_column(col, justify="right" if col in ("topic", "size") else "left")
    for t in found["topics"]:
        example = t["examples"][0] if t["examples"] else ""
        table.add_row(str(t["topic"]), str(t["size"]), ", ".join(t["terms"][:6]), example[:80])
    out.print(table)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(found, indent=2, ensure_ascii=False, default=str))
        out.print(f"topics -> {args.output}")
    return 0


def _topics_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a run directory, an export or registry:NAME@alias (with an out-of-scope detector)")
    p.add_argument("--input", required=True, help="tickets (CSV/JSONL/JSON/Parquet), e.g. a week of traffic")
    p.add_argument("--head", default=None, help="count only this head's flag (default: any single-label head)")
    p.add_argument("--min-size", type=int, default=None, help="smallest topic (default: max(5, flagged / 50))")
    p.add_argument("--output", default=None, help="JSON with every topic, its terms, examples and ticket ids")
    p.add_argument("--batch-size", type=int, default=64)


def _vectors(texts: list[str], kind: str):
    if kind == "tfidf":
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(sublinear_tf=True).fit_transform(texts)
    from triagekit.core.textsim import Embedder

    return Embedder(max_length=128).encode(texts)


def cmd_sweep(args: argparse.Namespace) -> int:
    """An Optuna study over ``--space`` on a preset; prints the results table."""
    from rich.table import Table

    from triagekit.route.config import parse_overrides
    from triagekit.route.sweep import sweep_router_workers

    summary = sweep_router_workers(
        args.workers,
        space=args.space,
        data=args.data,
        study_dir=args.study_dir,
        config=args.config,
        n_trials=args.trials,
        storage=args.storage,
        name=args.name,
        pruner=args.pruner,
        seed=args.seed,
        overrides=parse_overrides(args.set or []),
    )
    import csv

    rows = list(csv.DictReader(open(summary["results"])))
    table = Table(
        title=f"sweep: {summary['complete']} complete, {summary['pruned']} pruned (validation macro-F1, best first)"
    )
    for col in rows[0].keys() if rows else []:
        if col not in ("run",):
            table.add_column(col)
    for r in rows:
        table.add_row(*[str(v)[:10] for k, v in r.items() if k != "run"])
    console().print(table)
    if summary.get("best_config"):
        console().print(
            f"best: trial {summary['best_trial']} ({summary['best_value']:.4f}) -> "
            f"{summary['best_config']}; results {summary['results']}"
        )
    return 0


def _train_arguments(p: argparse.ArgumentParser) -> None:
    training_arguments(p, "a raw file (prepared on the fly) or a prepared directory")
    p.add_argument("--val", default=None, help="explicit validation file")
    p.add_argument(
        "--config", default=None, help="router preset name (`triagekit route presets`) or YAML path; default: minilm"
    )
    p.add_argument("--labels", default=None, help="single-label fields, comma-separated")
    p.add_argument("--multilabel", default=None, help="multi-label fields, comma-separated (e.g. tags)")
    p.add_argument("--text", default=None, help="text fields, comma-separated")
    p.add_argument("--backbone", default=None, help="minilm | gemma3 | auto | tfidf | HF id | local path")
    p.add_argument("--method", default=None, choices=["lora", "full", "head", "qlora"])
    p.add_argument("--device", default=None, choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument(
        "--exclude-suspects",
        default=None,
        metavar="AUDIT_FILE",
        help="drop the training labels a `triagekit data audit` file lists",
    )
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any config key (repeatable)")


def _eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a run directory or registry:NAME@alias")
    p.add_argument("--data", required=True, help="a prepared directory (uses test.jsonl) or a labelled file")
    p.add_argument("--val", default=None, help="validation file for calibration (default: the run's val split)")
    p.add_argument("--out", default=None)
    p.add_argument(
        "--review-budget",
        type=float,
        default=None,
        help="share of tickets to review, in (0, 1] (default: the run's review_budget)",
    )
    p.add_argument("--review-heads", default=None, help="heads whose doubt flags a ticket, comma-separated")
    p.add_argument(
        "--target-precision",
        type=float,
        default=None,
        help="per-head target precision instead of a budget (default: the run's)",
    )
    p.add_argument("--critical", action="append", metavar="HEAD=LABEL", help="report recall of these classes")
    p.add_argument("--no-baseline", action="store_true", help="skip the tuned TF-IDF baseline")
    p.add_argument("--batch-size", type=int, default=64)


def _predict_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a run directory, an export or registry:NAME@alias")
    p.add_argument("--text", action="append", help="a ticket text (repeatable)")
    p.add_argument(
        "--input",
        default=None,
        help="CSV/JSONL/JSON/Parquet file of tickets (--engine ray: a directory or glob of them)",
    )
    p.add_argument("--output", default=None, help="JSONL predictions (--engine ray: a directory)")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default=None)
    p.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        default="fp32",
        help="bf16: autocast the backbone (GPU, or a CPU with AMX; about 2x for decoder routers)",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the PyTorch backbone (compiles on the first batch; pays only for large jobs, if at all)",
    )
    p.add_argument("--resume", action="store_true", help="skip the records already in --output and append the rest")
    p.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="ray: Ray Data over the shards of --input, an actor pool of --num-actors, one output shard "
        "per input shard in --output; shards already written are skipped",
    )
    p.add_argument("--address", default=None, help="--engine ray: a Ray cluster to join (auto: this machine's)")
    p.add_argument("--num-actors", type=int, default=2, help="--engine ray: actors (one router each)")
    p.add_argument("--format", choices=["jsonl", "parquet"], default="jsonl", help="--engine ray: output shards")


def _presets_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", choices=["router", "triage", "answer"], default="router")


def _retrain_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base", required=True, help="the model to improve: registry:NAME@production or a run dir")
    p.add_argument(
        "--feedback", required=True, help="prediction log with corrections: SQLAlchemy URL, SQLite file or a model dir"
    )
    p.add_argument("--data", default=None, help="the base's prepared data (default: the data the base was trained on)")
    p.add_argument("--output", required=True, help="run directory of the candidate")
    p.add_argument("--config", default=None, help="training preset (default: the base's own config.yaml)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a training config key")
    p.add_argument(
        "--holdout",
        type=float,
        default=0.3,
        help="fraction of the corrected tickets held out to compare candidate and base (default 0.3)",
    )
    p.add_argument(
        "--new-labels",
        choices=["grow", "refuse"],
        default="grow",
        help="a correction naming a label the base does not know: grow the head by that class "
        "(default) or refuse the retrain",
    )
    p.add_argument(
        "--promote-if-better", action="store_true", help="register the candidate and promote it when it passes the gate"
    )
    p.add_argument(
        "--max-regression",
        type=float,
        default=0.5,
        help="most macro-F1 points the candidate may lose on any head of the test split (default 0.5)",
    )
    p.add_argument("--alias", default="production", help="the alias --promote-if-better moves")
    p.add_argument("--registry", default=None, help="registry for --promote-if-better (default: the base's)")
    p.add_argument("--name", default=None, help="model name in the registry (default: the base's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an earlier candidate in --output")


def _select_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run dir or registry:NAME@alias whose uncertainty ranks the pool")
    p.add_argument("--pool", required=True, help="unlabelled tickets (CSV/JSONL/JSON/Parquet)")
    p.add_argument("--n", type=int, default=200, help="batch size")
    p.add_argument("--strategy", choices=STRATEGIES, default="margin")
    p.add_argument("--head", default=None, help="rank by this head only (default: the mean over heads)")
    p.add_argument(
        "--embed",
        choices=["minilm", "tfidf"],
        default="minilm",
        help="vectors the diverse strategy clusters: the embedded MiniLM or a TF-IDF of the pool",
    )
    p.add_argument("--out", required=True, help="JSONL batch to label: the tickets, their predictions and score")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=64)


def _sweep_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--space", required=True, help="YAML search space (config key -> {log_uniform|uniform|int|choice})")
    p.add_argument("--data", required=True, help="a prepared directory (every trial sees the same split)")
    p.add_argument("--study-dir", required=True, help="trials, the SQLite study, results and plots")
    p.add_argument("--config", default=None, help="the preset the space is applied on (default: the space's base)")
    p.add_argument("--trials", type=int, default=12, help="finished trials the study should hold")
    p.add_argument(
        "--storage",
        default=None,
        help="an RDB URL (e.g. postgresql+psycopg://...) shared by machines; default: SQLite in --study-dir",
    )
    p.add_argument("--name", default=None, help="study name (default: the folder's name)")
    p.add_argument("--workers", type=int, default=1, help="local worker processes on the one study")
    p.add_argument("--pruner", choices=["median", "hyperband", "none"], default="median")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a fixed config key for every trial")


COMMANDS = {
    "route": Group(
        "train, evaluate, run and export routers, the multi-head ticket classifiers",
        {
            "train": Verb(
                cmd_train, _train_arguments, "train a router (default preset: minilm, the MiniLM + TF-IDF hybrid)"
            ),
            "eval": Verb(cmd_eval, _eval_arguments, "evaluate a router beside the tuned TF-IDF baseline; report.md"),
            "predict": Verb(
                cmd_predict, _predict_arguments, "route tickets with a trained router (--engine ray: shards)"
            ),
            "presets": Verb(cmd_presets, _presets_arguments, "list the shipped presets, one line each"),
            "retrain": Verb(cmd_retrain, _retrain_arguments, "retrain from corrections; --promote-if-better gates it"),
            "select": Verb(cmd_select, _select_arguments, "choose the tickets to label next (active learning)"),
            "sweep": Verb(cmd_sweep, _sweep_arguments, "hyperparameter sweep on Optuna over a preset's keys"),
            "topics": Verb(cmd_topics, _topics_arguments, "cluster out-of-scope tickets into candidate new topics"),
        },
    )
}

ALIASES = [
    Alias("train", "route train", option="--task=router", default=True),
    Alias("eval", "route eval"),
    Alias("predict", "route predict"),
]
