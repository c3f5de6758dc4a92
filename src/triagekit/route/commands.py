"""``triagekit route retrain|select``: parsers and the plain functions they run (imports stay light for --help)."""

from __future__ import annotations

import argparse

__all__ = ["cmd_retrain", "cmd_select", "add_retrain", "add_select", "add_route", "STRATEGIES"]

# Spelled out (= triagekit.route.select.STRATEGIES, tests/test_select.py checks) so --help imports no numpy.
STRATEGIES = ("least-confidence", "margin", "entropy", "diverse", "random")


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
    scores = uncertainty(probs, "margin" if args.strategy in ("diverse", "random") else args.strategy, multilabel,
                         args.head)
    predictions = router.predict([rows[i] for i in picked], batch_size=args.batch_size)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as f:
        for rank, (i, pred) in enumerate(zip(picked, predictions), 1):
            line = {"rank": rank, "uncertainty": round(float(scores[i]), 6), "strategy": args.strategy,
                    "model_version": router.model_version, "ticket": rows[i], "prediction": pred}
            f.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
    note = f" ({skipped} rows without text skipped)" if skipped else ""
    console.print(f"{len(picked)} of {len(rows)} tickets chosen by {args.strategy}{note} -> {out}")
    return 0


def _vectors(texts: list[str], kind: str):
    if kind == "tfidf":
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(sublinear_tf=True).fit_transform(texts)
    from triagekit.core.textsim import Embedder

    return Embedder(max_length=128).encode(texts)


def add_retrain(sub) -> None:
    """``retrain``: a candidate from the base's data plus reviewers' corrections, behind a quality gate."""
    p = sub.add_parser("retrain", help="retrain from corrections; --promote-if-better gates the promotion")
    p.add_argument("--base", required=True, help="the model to improve: registry:NAME@production or a run dir")
    p.add_argument("--feedback", required=True,
                   help="prediction log with corrections: SQLAlchemy URL, SQLite file or a model dir")
    p.add_argument("--data", default=None, help="the base's prepared data (default: the data the base was trained on)")
    p.add_argument("--output", required=True, help="run directory of the candidate")
    p.add_argument("--config", default=None, help="training preset (default: the base's own config.yaml)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a training config key")
    p.add_argument("--holdout", type=float, default=0.3,
                   help="fraction of the corrected tickets held out to compare candidate and base (default 0.3)")
    p.add_argument("--new-labels", choices=["grow", "refuse"], default="grow",
                   help="a correction naming a label the base does not know: grow the head by that class "
                        "(default) or refuse the retrain")
    p.add_argument("--promote-if-better", action="store_true",
                   help="register the candidate and promote it when it passes the gate")
    p.add_argument("--max-regression", type=float, default=0.5,
                   help="most macro-F1 points the candidate may lose on any head of the test split (default 0.5)")
    p.add_argument("--alias", default="production", help="the alias --promote-if-better moves")
    p.add_argument("--registry", default=None, help="registry for --promote-if-better (default: the base's)")
    p.add_argument("--name", default=None, help="model name in the registry (default: the base's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an earlier candidate in --output")
    p.set_defaults(func=cmd_retrain)


def add_select(sub) -> None:
    """``select``: the next batch of tickets to label, chosen by a selection strategy."""
    p = sub.add_parser("select", help="choose the tickets to label next (active learning)")
    p.add_argument("--run", required=True, help="run dir or registry:NAME@alias whose uncertainty ranks the pool")
    p.add_argument("--pool", required=True, help="unlabelled tickets (CSV/JSONL/JSON/Parquet)")
    p.add_argument("--n", type=int, default=200, help="batch size")
    p.add_argument("--strategy", choices=STRATEGIES, default="margin")
    p.add_argument("--head", default=None, help="rank by this head only (default: the mean over heads)")
    p.add_argument("--embed", choices=["minilm", "tfidf"], default="minilm",
                   help="vectors the diverse strategy clusters: the embedded MiniLM or a TF-IDF of the pool")
    p.add_argument("--out", required=True, help="JSONL batch to label: the tickets, their predictions and score")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=64)
    p.set_defaults(func=cmd_select)


def add_route(sub) -> None:
    """``triagekit route <verb>`` (retrain, select)."""
    p = sub.add_parser("route", help="router lifecycle: retrain from corrections, select tickets to label")
    rsub = p.add_subparsers(dest="route_command", required=True)
    add_retrain(rsub)
    add_select(rsub)
