"""``triagekit reviewers``: reviewer accounts of the ``/ui`` review page, in the service's database.

Importing this module needs none of the ``serve`` extra (the command table imports it at start-up)."""

from __future__ import annotations

import argparse
import getpass
import os

from triagekit.core.cli import Group, Verb

__all__ = ["cmd_reviewers", "COMMANDS"]


def _password(args: argparse.Namespace) -> str:
    if args.password_env:
        value = os.environ.get(args.password_env, "")
        if not value:
            raise ValueError(f"--password-env {args.password_env}: that environment variable is not set or empty")
        return value
    first = getpass.getpass(f"password for {args.name}: ")
    if first != getpass.getpass("again: "):
        raise ValueError("the two passwords differ; nothing was changed")
    return first


def cmd_reviewers(args: argparse.Namespace) -> int:
    from triagekit.serve import require_serve_extra

    require_serve_extra("sqlalchemy")
    from triagekit.serve import accounts
    from triagekit.serve.commands import db_url
    from triagekit.serve.db import PredictionStore

    new_ok = args.reviewers_command == "add" and "://" not in args.db
    store = PredictionStore(_db_for_add(args.db) if new_ok else db_url(args.db))
    try:
        store.create()
        if args.reviewers_command == "add":
            accounts.add_reviewer(store.engine, args.name, _password(args), args.role)
            print(f"{args.name}: {args.role} account saved (its open sessions were closed)")
        elif args.reviewers_command == "remove":
            if not accounts.remove_reviewer(store.engine, args.name):
                raise ValueError(f"no reviewer account named {args.name!r}")
            print(f"{args.name}: removed (their feedback rows keep the name)")
        else:
            for r in accounts.list_reviewers(store.engine):
                print(f"{r['name']}\t{r['role']}\t{r['created_at']:%Y-%m-%d}")
    finally:
        store.dispose()
    return 0


def _db_for_add(value: str) -> str:
    """``add`` may create the log: a model directory without predictions.db yet gets a new one."""
    from pathlib import Path

    path = Path(value)
    if path.is_dir():
        path = path / "predictions.db"
    return f"sqlite:///{path.resolve()}"


def _db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db", required=True, help="SQLAlchemy URL, SQLite file or model dir (predictions.db) of the service"
    )


def _add_arguments(a: argparse.ArgumentParser) -> None:
    a.add_argument("name")
    _db(a)
    a.add_argument(
        "--role", choices=["reviewer", "admin"], default="reviewer", help="admin: may also manage accounts on /ui/admin"
    )
    a.add_argument(
        "--password-env",
        default=None,
        metavar="NAME",
        help="read the password from this environment variable (default: ask twice)",
    )


def _remove_arguments(r: argparse.ArgumentParser) -> None:
    r.add_argument("name")
    _db(r)


def _verb(name: str):
    def run(args: argparse.Namespace) -> int:
        args.reviewers_command = name
        return cmd_reviewers(args)

    return run


COMMANDS = {
    "reviewers": Group(
        "reviewer accounts of the /ui review page (serve extra)",
        {
            "add": Verb(
                _verb("add"), _add_arguments, "create an account, or set a new password/role (logs its sessions out)"
            ),
            "remove": Verb(_verb("remove"), _remove_arguments, "delete an account and its sessions"),
            "list": Verb(_verb("list"), _db, "names and roles"),
        },
    )
}
