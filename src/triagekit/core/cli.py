"""The machinery of the ``triagekit`` command table: verbs, groups, old spellings, and the parser built from them.

The table is a nested dict of plain data (in the style of litgpt's ``__main__``)::

    COMMANDS = {"route": Group("train, evaluate and run routers", {
        "train": Verb(cmd_train, _train_arguments, "train a router"),
    })}
    ALIASES = [Alias("train", "route train", option="--task=router", default=True)]

- ``Verb(run, arguments, help)``: ``arguments(parser)`` declares the options on an ``argparse`` parser and
  ``run(args)`` does the work and returns the exit code. Both are plain functions; ``run`` imports what is heavy
  (torch, transformers, rich...) inside its body so that building the parser stays cheap.
- ``Group(help, verbs)``: a word that holds verbs (or further groups), e.g. ``route`` or ``feedback``.
- ``Alias(old, new, option=None, default=False)``: an old spelling kept for one release. It is rewritten to the new
  one before parsing, with a one-line note on stderr, and never shown in ``--help``. ``option`` (``--task=answer``
  or a flag like ``--eval``) is an option of the old spelling that selects this alias and is dropped from the
  arguments; ``default=True``: the alias also applies when that option is absent.

``merge`` folds several modules' tables into one (a group may get verbs from several modules), ``build_parser``
turns a table into an ``argparse`` parser, ``resolve`` rewrites old spellings. ``triagekit.cli`` wires them up.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, NamedTuple, Union

__all__ = [
    "Verb",
    "Group",
    "Alias",
    "Table",
    "merge",
    "build_parser",
    "resolve",
    "console",
    "csv_list",
    "training_arguments",
]

HELP_FLAGS = ("-h", "--help")


class Verb(NamedTuple):
    """One command: ``arguments(parser)`` declares its options, ``run(args)`` returns its exit code."""

    run: Callable[[argparse.Namespace], int]
    arguments: Callable[[argparse.ArgumentParser], None]
    help: str


class Group(NamedTuple):
    """A word that holds verbs (or groups), e.g. ``route``; its help line lists them."""

    help: str
    verbs: dict[str, Union[Verb, "Group"]]


Table = dict[str, Union[Verb, Group]]


class Alias(NamedTuple):
    """An old spelling (``old``, plus ``option`` when set) that now reads ``new``; see the module docstring."""

    old: str
    new: str
    option: str | None = None
    default: bool = False

    def spelling(self, given: bool = True) -> str:
        """The old spelling as the note quotes it, e.g. ``train --task answer`` (``train`` when the option was not
        ``given`` and this is the default)."""
        return f"{self.old} {self.option.replace('=', ' ')}" if self.option and given else self.old

    def rewrite(self, argv: list[str], table: Table) -> tuple[list[str], str] | None:
        """(``argv`` in the new spelling, the old spelling it had), or None when this alias does not apply."""
        words = self.old.split()
        if argv[: len(words)] != words:
            return None
        if _names_command(table, argv) and not isinstance(_lookup(table, words), Verb):
            return None  # new grammar already (`triage run X` is not the old `triage X`)
        rest = argv[len(words) :]
        if self.option is None:
            return self.new.split() + rest, self.old
        name, _, value = self.option.partition("=")
        found, rest = _pop_option(rest, name, takes_value=bool(value))
        if found is None and not self.default or found is not None and found != (value or True):
            return None
        return self.new.split() + rest, self.spelling(given=found is not None)


def _pop_option(argv: list[str], name: str, takes_value: bool) -> tuple[str | bool | None, list[str]]:
    """(the option's value, or True for a flag, or None when absent; argv without it). ``--name=v`` works too."""
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == name:
            if not takes_value:
                return True, argv[:i] + argv[i + 1 :]
            if i + 1 < len(argv):
                return argv[i + 1], argv[:i] + argv[i + 2 :]
        if takes_value and arg.startswith(name + "="):
            return arg.split("=", 1)[1], argv[:i] + argv[i + 1 :]
    return None, argv


def _names_command(table: Table, argv: list[str]) -> bool:
    """Whether ``argv`` is already in the new grammar: it reaches a verb, or stops at a group to ask for help."""
    node: Verb | Group = Group("", table)
    for word in argv:
        if isinstance(node, Verb):
            return True
        if word not in node.verbs:
            return word in HELP_FLAGS
        node = node.verbs[word]
    return True


def _lookup(table: Table, words: list[str]) -> Verb | Group | None:
    node: Verb | Group | None = Group("", table)
    for word in words:
        node = node.verbs.get(word) if isinstance(node, Group) else None
    return node


def resolve(argv: list[str], table: Table, aliases: list[Alias]) -> list[str]:
    """``argv`` with an old spelling rewritten to the new one (and a note on stderr); raises ValueError for an old
    command word that no alias matches (e.g. ``train --task nope``)."""
    # aliases that need an option are the more specific ones, so they are tried first
    for alias in sorted(aliases, key=lambda a: (a.option is None, -len(a.old.split()))):
        rewritten = alias.rewrite(argv, table)
        if rewritten is not None:
            print(f"note: 'triagekit {rewritten[1]}' is now 'triagekit {alias.new}'", file=sys.stderr)
            return rewritten[0]
    if argv and argv[0] not in table:
        known = [a for a in aliases if a.old.split()[0] == argv[0]]
        if known:
            spellings = "; ".join(f"'{a.spelling()}' is now '{a.new}'" for a in known)
            raise ValueError(f"'triagekit {' '.join(argv[:3])}' is not a command ({spellings}); see triagekit --help")
    return argv


def merge(*tables: Table) -> Table:
    """One table from several; a group named in several tables gets the verbs of all (a verb defined twice is an
    error, so two modules cannot silently replace each other's command)."""
    out: Table = {}
    for table in tables:
        for name, node in table.items():
            old = out.get(name)
            if old is None:
                out[name] = node
            elif isinstance(old, Group) and isinstance(node, Group):
                out[name] = Group(old.help or node.help, merge(old.verbs, node.verbs))
            else:
                raise ValueError(f"the command {name!r} is defined twice")
    return out


def build_parser(table: Table, prog: str = "triagekit", **kwargs) -> argparse.ArgumentParser:
    """The ``argparse`` parser of ``table``; each verb's parser gets ``func`` = its ``run``."""
    parser = argparse.ArgumentParser(prog=prog, **kwargs)
    _add_nodes(parser, table, prog)
    return parser


def _add_nodes(parser: argparse.ArgumentParser, table: Table, path: str) -> None:
    sub = parser.add_subparsers(dest=f"command_{path.count(' ')}", required=True, metavar="COMMAND")
    for name, node in table.items():
        if isinstance(node, Verb):
            p = sub.add_parser(name, help=node.help, description=node.help)
            node.arguments(p)
            p.set_defaults(func=node.run)
        else:
            text = f"{node.help} ({' | '.join(node.verbs)})"
            p = sub.add_parser(name, help=text, description=text)
            _add_nodes(p, node.verbs, f"{path} {name}")


def console():
    """A rich console on stderr (imported when first needed: rich is not on the start-up path)."""
    from rich.console import Console

    return Console(stderr=True)


def csv_list(value: str | None) -> list[str] | None:
    """``"a, b,"`` -> ``["a", "b"]``; None or empty -> None."""
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def training_arguments(p: argparse.ArgumentParser, data_help: str) -> None:
    """The options every training verb has (``route train``, ``triage train``, ``answer train``, ``answer dpo``)."""
    p.add_argument("--data", required=True, help=data_help)
    p.add_argument("--output", required=True, help="the run directory to write")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run in --output")
