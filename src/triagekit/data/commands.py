"""``triagekit data {synth,prepare,stats}``: their options and the plain functions they run (see
``triagekit.core.cli`` for the table format). Importing this module is cheap: the data code loads inside the verbs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from triagekit.core.cli import Alias, Group, Verb, console, csv_list

__all__ = ["COMMANDS", "ALIASES", "cmd_synth", "cmd_prepare", "cmd_stats"]


def cmd_synth(args: argparse.Namespace) -> int:
    from triagekit.data import write_synth

    write_synth(args.n, args.out, seed=args.seed)
    console().print(f"wrote {args.n} synthetic tickets to {args.out} (seed {args.seed})")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from triagekit.data import prepare, render_card

    summary = prepare(
        args.input, args.out, text_fields=csv_list(args.text) or ["subject", "body"],
        label_fields=csv_list(args.labels) or [], multilabel_fields=csv_list(args.multilabel) or [],
        split=args.split, time_field=args.time_field, val_fraction=args.val_fraction,
        test_fraction=args.test_fraction, redact_pii=args.redact_pii, dedup=not args.keep_duplicates, seed=args.seed,
    )
    out = console()
    card = json.loads((Path(args.out) / "data_card.json").read_text())
    out.print(render_card(card))
    out.print(f"{summary.valid} valid, {summary.rejected} rejected, {summary.duplicates} duplicates removed "
              f"of {summary.total} rows; splits {summary.splits}")
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


COMMANDS = {"data": Group("synthesise, validate, split and describe ticket data", {
    "synth": Verb(cmd_synth, _synth_arguments, "write synthetic support tickets for routing (reproducible by seed)"),
    "prepare": Verb(cmd_prepare, _prepare_arguments,
                    "validate, deduplicate, redact and split a CSV/JSONL/JSON/Parquet file"),
    "stats": Verb(cmd_stats, _stats_arguments, "print the data card of any ticket file or prepared directory"),
})}

ALIASES = [Alias("data synth", "data synth", option="--task=router")]
