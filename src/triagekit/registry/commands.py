"""``triagekit registry register|list|show|diff|promote|rollback|delete``: parsers and the plain functions they run."""

from __future__ import annotations

import argparse
import json

from triagekit.core.cli import Group, Verb
from triagekit.core.registry import Registry, parse_ref

__all__ = ["cmd_register", "cmd_list", "cmd_show", "cmd_diff", "cmd_promote", "cmd_rollback", "cmd_delete", "COMMANDS"]


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _registry(args: argparse.Namespace, create: bool = False) -> Registry:
    return Registry(args.registry, create=create)


def _ref(args: argparse.Namespace, value: str):
    return parse_ref(value, root=_registry(args).root)


def cmd_register(args: argparse.Namespace) -> int:
    reg = _registry(args, create=True)
    meta = reg.register(args.run, args.name, link=args.link, parent=args.parent)
    _console().print(
        f"[green]registered[/] {args.run} as {args.name}@v{meta['version']} in {reg.root} ({len(meta['files'])} files)"
    )
    for alias in args.alias or []:
        reg.promote(args.name, meta["version"], alias)
        _console().print(f"{args.name}@{alias} -> v{meta['version']}")
    print(json.dumps({"name": args.name, "version": meta["version"]}))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    reg = _registry(args)
    table = Table(title=f"registry {reg.root}")
    for col in ("model", "version", "aliases", "created", "model_version", "parent", "test F1 per head"):
        table.add_column(col)
    rows = []
    for name in [args.name] if args.name else reg.names():
        for version in reg.versions(name):
            meta = reg.get(name, version)
            heads = (meta.get("metrics") or {}).get("heads") or {}
            f1 = " ".join(f"{h}={100 * m['macro_f1']:.1f}" for h, m in heads.items() if m.get("macro_f1") is not None)
            rows.append(
                {
                    "name": name,
                    "version": version,
                    "aliases": meta["aliases"],
                    "created_at": meta["created_at"],
                    "model_version": meta.get("model_version"),
                    "parent": meta.get("parent"),
                }
            )
            table.add_row(
                name,
                f"v{version}",
                ",".join(meta["aliases"]),
                meta["created_at"],
                str(meta.get("model_version")),
                str(meta.get("parent") or "-"),
                f1 or "-",
            )
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        from rich.console import Console

        Console().print(table)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    ref = _ref(args, args.ref)
    meta = Registry(ref.root).get(ref.name, ref.selector)
    if not args.files:
        meta = {**meta, "files": f"{len(meta['files'])} files (--files to list them with their sha256)"}
    print(json.dumps(meta, indent=2, ensure_ascii=False, default=str))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from rich.table import Table

    a, b = _ref(args, args.a), _ref(args, args.b)
    diff = Registry(a.root).diff(a.name, a.selector, b.name, b.selector)
    if args.json:
        print(json.dumps(diff, indent=2))
        return 0
    table = Table(title=f"{diff['a']} vs {diff['b']} (test split)")
    for col in ("head", "metric", diff["a"], diff["b"], "change"):
        table.add_column(col, justify="left" if col in ("head", "metric") else "right")
    for head, metrics in diff["heads"].items():
        for key, (va, vb, delta) in metrics.items():
            table.add_row(head, key, _fmt(va), _fmt(vb), "-" if delta is None else f"{delta:+.4f}")
    from rich.console import Console

    Console().print(table)
    if not diff["heads"]:
        _console().print("[yellow]neither version has evaluation metrics (run `triagekit eval` before registering)")
    return 0


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.4f}"


def cmd_promote(args: argparse.Namespace) -> int:
    ref = _ref(args, args.ref)
    if ref.selector is None:
        raise ValueError(f"say which version to promote: {ref.name}@vK (or {ref.name}@staging)")
    out = Registry(ref.root).promote(ref.name, ref.selector, args.alias)
    _console().print(f"[green]{ref.name}@{args.alias}[/] -> v{out['version']}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    ref = _ref(args, args.name)
    out = Registry(ref.root).rollback(ref.name, args.alias)
    _console().print(f"[green]{ref.name}@{args.alias}[/] rolled back -> v{out['version']}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    ref = _ref(args, args.ref)
    if ref.selector is None:
        raise ValueError(f"say which version to delete: {ref.name}@vK")
    version = Registry(ref.root).delete(ref.name, ref.selector)
    _console().print(f"deleted {ref.name}@v{version}")
    return 0


def _with_registry(extra):
    def arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--registry", default=None, help="registry directory (default $TRIAGEKIT_REGISTRY or ./registry)"
        )
        extra(p)

    return arguments


def _register_args(v):
    v.add_argument("run", help="run or export directory (router.json)")
    v.add_argument("--name", required=True)
    v.add_argument("--link", action="store_true", help="hard-link instead of copying (same file system)")
    v.add_argument("--parent", default=None, help="the version this one derives from, e.g. router@v2")
    v.add_argument("--alias", action="append", help="also promote the new version to this alias (repeatable)")


def _list_args(v):
    v.add_argument("name", nargs="?", default=None)
    v.add_argument("--json", action="store_true")


def _show_args(v):
    v.add_argument("ref")
    v.add_argument("--files", action="store_true", help="list every file with its sha256")


def _diff_args(v):
    v.add_argument("a", help="NAME@vK or NAME@alias")
    v.add_argument("b")
    v.add_argument("--json", action="store_true")


def _promote_args(v):
    v.add_argument("ref", help="NAME@vK (or NAME@another-alias)")
    v.add_argument("--alias", required=True, help="e.g. production or staging")


def _rollback_args(v):
    v.add_argument("name")
    v.add_argument("--alias", default="production")


def _delete_args(v):
    v.add_argument("ref", help="NAME@vK")


COMMANDS = {
    "registry": Group(
        "versioned models with aliases: register, promote, roll back",
        {
            "register": Verb(
                cmd_register, _with_registry(_register_args), "copy a run or export in as the next version"
            ),
            "list": Verb(cmd_list, _with_registry(_list_args), "versions with their aliases and test macro-F1"),
            "show": Verb(cmd_show, _with_registry(_show_args), "metadata of NAME, NAME@vK or NAME@alias"),
            "diff": Verb(cmd_diff, _with_registry(_diff_args), "metrics of two versions side by side, per head"),
            "promote": Verb(cmd_promote, _with_registry(_promote_args), "point an alias at a version"),
            "rollback": Verb(
                cmd_rollback, _with_registry(_rollback_args), "point an alias back at its previous version"
            ),
            "delete": Verb(
                cmd_delete, _with_registry(_delete_args), "remove a version (refused while an alias points at it)"
            ),
        },
    )
}
