"""Data commands added beside ``data synth/prepare/stats``: ``data audit`` (likely label errors)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["cmd_audit", "add_audit"]


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
            console.print(f"[yellow]{len(errors)} rows rejected and not audited (first: line {errors[0].line}: "
                          f"{errors[0].reason})")
    suspects = audit_labels(rows, labels, text_fields, folds=args.folds, seed=args.seed)
    path = write_suspects(suspects, args.out)
    per_head = {h: sum(s["head"] == h for s in suspects) for h in labels}
    console.print(f"{len(suspects)} suspect labels in {len(rows)} tickets "
                  f"({', '.join(f'{h} {n} ({100 * n / len(rows):.1f} %)' for h, n in per_head.items())}) -> {path}")
    for s in suspects[: args.show]:
        console.print(f"  {s['head']}: {s['given']!r} -> suggested {s['suggested']!r} "
                      f"(p {s['given_probability']:.2f} vs {s['suggested_probability']:.2f}): "
                      f"{s['text'][:80]!r}", markup=False, highlight=False)
    return 0


def add_audit(dsub) -> None:
    """``triagekit data audit`` on the ``data`` sub-command parser."""
    p = dsub.add_parser("audit", help="find likely label errors (cleanlab confident learning, out-of-fold TF-IDF)")
    p.add_argument("--data", required=True, help="a labelled file, or a prepared directory (audits train.jsonl)")
    p.add_argument("--labels", default="queue,priority,type", help="single-label fields, comma-separated")
    p.add_argument("--text", default="subject,body", help="text fields, comma-separated")
    p.add_argument("--out", required=True, help="suspects file (.jsonl, or .csv)")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds of the out-of-fold predictions")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--show", type=int, default=10, help="print the first N suspects")
    p.set_defaults(func=cmd_audit)
