"""``triagekit data {synth,prepare,stats}``: their options and the plain functions they run (see
``triagekit.core.cli`` for the table format). Importing this module is cheap: the data code loads inside the verbs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from triagekit.core.cli import Alias, Group, Verb, console, csv_list

__all__ = ["COMMANDS", "ALIASES", "cmd_synth", "cmd_prepare", "cmd_stats", "cmd_audit"]


def cmd_synth(args: argparse.Namespace) -> int:
    from triagekit.data import write_synth

    write_synth(args.n, args.out, seed=args.seed)
    console().print(f"wrote {args.n} synthetic tickets to {args.out} (seed {args.seed})")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from triagekit.data import prepare, render_card

    summary = prepare(
        args.input,
        args.out,
        text_fields=csv_list(args.text) or ["subject", "body"],
        label_fields=csv_list(args.labels) or [],
        multilabel_fields=csv_list(args.multilabel) or [],
        split=args.split,
        time_field=args.time_field,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        redact_pii=args.redact_pii,
        dedup=not args.keep_duplicates,
        seed=args.seed,
    )
    out = console()
    card = json.loads((Path(args.out) / "data_card.json").read_text())
    out.print(render_card(card))
    out.print(
        f"{summary.valid} valid, {summary.rejected} rejected, {summary.duplicates} duplicates removed "
        f"of {summary.total} rows; splits {summary.splits}"
    )
    if summary.rejected:
        out.print(f"[yellow]rejected rows with file, line and reason: {summary.rejected_path}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from triagekit.data import render_card, stats

    card = stats(args.file)
    if args.json:
        print(json.dumps(card, indent=2, default=str))
    else:
        console().print(render_card(card))
    return 0


def _synth_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--out", required=True, help="output .jsonl or .csv")
    p.add_argument("--seed", type=int, default=0)


def _prepare_arguments(p: argparse.ArgumentParser) -> None:
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


def _stats_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file")
    p.add_argument("--json", action="store_true")


def cmd_audit(args: argparse.Namespace) -> int:
    """Rank likely label errors of a file or a prepared directory's training split; write them with suggestions."""
    from rich.console import Console

    from triagekit.data.audit import audit_labels, write_suspects
    from triagekit.data.io import load_prepared
    from triagekit.data.validate import load_records

    console = Console(stderr=True)
    labels = [v.strip() for v in args.labels.split(",") if v.strip()]
    text_fields = [v.strip() for v in args.text.split(",") if v.strip()]
    source = Path(args.data)
    if source.is_dir():
        rows = load_prepared(source).get("train")
        if not rows:
            raise FileNotFoundError(f"{source} has no train.jsonl: run `triagekit data prepare` first")
        console.print(f"auditing the training split of {source} ({len(rows)} tickets); val and test stay unaudited")
    else:
        rows, errors = load_records(source, text_fields, labels)
        if errors:
            console.print(
                f"[yellow]{len(errors)} rows rejected and not audited (first: line {errors[0].line}: "
                f"{errors[0].reason})"
            )
    suspects = audit_labels(rows, labels, text_fields, folds=args.folds, seed=args.seed)
    path = write_suspects(suspects, args.out)
    per_head = {h: sum(s["head"] == h for s in suspects) for h in labels}
    console.print(
        f"{len(suspects)} suspect labels in {len(rows)} tickets "
        f"({', '.join(f'{h} {n} ({100 * n / len(rows):.1f} %)' for h, n in per_head.items())}) -> {path}"
    )
    for s in suspects[: args.show]:
        console.print(
            f"  {s['head']}: {s['given']!r} -> suggested {s['suggested']!r} "
            f"(p {s['given_probability']:.2f} vs {s['suggested_probability']:.2f}): "
            f"{s['text'][:80]!r}",
            markup=False,
            highlight=False,
        )
    return 0


def _audit_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="a labelled file, or a prepared directory (audits train.jsonl)")
    p.add_argument("--labels", default="queue,priority,type", help="single-label fields, comma-separated")
    p.add_argument("--text", default="subject,body", help="text fields, comma-separated")
    p.add_argument("--out", required=True, help="suspects file (.jsonl, or .csv)")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds of the out-of-fold predictions")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--show", type=int, default=10, help="print the first N suspects")


COMMANDS = {
    "data": Group(
        "synthesise, validate, split and describe ticket data",
        {
            "synth": Verb(
                cmd_synth, _synth_arguments, "write synthetic support tickets for routing (reproducible by seed)"
            ),
            "prepare": Verb(
                cmd_prepare, _prepare_arguments, "validate, deduplicate, redact and split a CSV/JSONL/JSON/Parquet file"
            ),
            "stats": Verb(cmd_stats, _stats_arguments, "print the data card of any ticket file or prepared directory"),
            "audit": Verb(
                cmd_audit,
                _audit_arguments,
                "find likely label errors (cleanlab confident learning on out-of-fold TF-IDF predictions)",
            ),
        },
    )
}

ALIASES = [Alias("data synth", "data synth", option="--task=router")]
