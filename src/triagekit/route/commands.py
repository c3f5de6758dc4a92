"""``triagekit route retrain|select``: parsers and the plain functions they run (imports stay light for --help)."""

from __future__ import annotations

import argparse

__all__ = ["cmd_retrain", "cmd_select", "add_retrain", "add_select", "add_route"]


def cmd_retrain(args: argparse.Namespace) -> int:
    from triagekit.route.retrain import retrain_command

    return retrain_command(args)


def cmd_select(args: argparse.Namespace) -> int:
    from triagekit.route.selection_file import select_command

    return select_command(args)


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
    from triagekit.route.select import STRATEGIES

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
