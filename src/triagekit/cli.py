"""The ``triagekit`` command: one table of verbs, gathered from each capability's ``commands`` module.

``triagekit data|route|triage|answer ...``, ``serve``, ``feedback``, ``drift`` and ``demo``. Each ``commands``
module (``data``, ``route``, ``exporters``, ``triage``, ``answer``, ``serve``) holds ``COMMANDS`` (a nested dict of
``Verb``/``Group``, see ``triagekit.core.cli``) and optionally ``ALIASES`` (old spellings, rewritten with a note on
stderr, hidden from ``--help``). This module merges them, builds the ``argparse`` parser and runs the verb.

To add a verb, e.g. ``triagekit route retrain``: in ``triagekit/route/commands.py`` write ``cmd_retrain(args) ->
int`` (heavy imports inside it) and ``_retrain_arguments(parser)``, and add
``"retrain": Verb(cmd_retrain, _retrain_arguments, "one-line help")`` to the ``route`` group of ``COMMANDS``. A verb
of another package's group (``data audit`` from a new package) goes in that package's own ``COMMANDS`` as
``{"data": Group("", {"audit": Verb(...)})}``; a new group (``registry ...``) is a new ``commands`` module added to
``_MODULES`` below. Command modules import only ``argparse``, ``pathlib`` and ``triagekit.core.cli`` at module level:
``triagekit --help`` must stay under 0.5 s (``benchmarks/cli_startup.py``).

Errors a user can fix (ValueError, FileNotFoundError, FileExistsError, RuntimeError) print ``error: ...`` and exit 2.
"""

from __future__ import annotations

import sys

from triagekit import demo
from triagekit.answer import commands as answer
from triagekit.core.cli import build_parser, merge, resolve
from triagekit.data import commands as data
from triagekit.exporters import commands as exporters
from triagekit.registry import commands as registry
from triagekit.route import commands as route
from triagekit.serve import commands as serve
from triagekit.serve import ui_commands as reviewers
from triagekit.triage import commands as triage

__all__ = ["main", "TABLE", "ALIASES"]

_MODULES = (data, route, exporters, triage, answer, serve, reviewers, registry)
TABLE = merge(*(m.COMMANDS for m in _MODULES), demo.commands(lambda argv: main(argv)))
ALIASES = [alias for m in _MODULES for alias in getattr(m, "ALIASES", [])]
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, RuntimeError)


def main(argv: list[str] | None = None) -> int:
    """Run ``triagekit ARGV``; returns the exit code (argparse exits itself on ``--help`` and bad options)."""
    from triagekit import __version__

    try:
        argv = resolve(list(sys.argv[1:] if argv is None else argv), TABLE, ALIASES)
    except ValueError as exc:
        return _error(exc)
    parser = build_parser(TABLE, description="Route, triage and answer support tickets.")
    parser.add_argument("--version", action="version", version=f"triagekit {__version__}")
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as exc:
        return _error(exc)


def _error(exc: Exception) -> int:
    from rich.markup import escape

    from triagekit.core.cli import console

    # The message is text, not markup: paths and library errors contain "[...]" (e.g. gloo's "[/.../pair.cc:553]").
    # soft_wrap: no line breaks inserted into it, so a path in it can be copied whole whatever the terminal's width.
    console().print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
    return 2


if __name__ == "__main__":
    sys.exit(main())
