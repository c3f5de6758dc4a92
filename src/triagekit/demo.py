"""``triagekit demo``: the whole routing path on synthetic tickets, as the commands a user would type."""

from __future__ import annotations

import argparse
import shlex
import time
from functools import partial
from pathlib import Path
from typing import Callable

from triagekit.core.cli import Table, Verb, console

__all__ = ["commands", "demo_steps", "next_steps", "cmd_demo"]


def demo_steps(out: Path, n: int, config: str) -> list[tuple[str, list[str]]]:
    """(name, argv) of each step: synthetic tickets -> prepared splits -> router -> evaluation -> predictions."""
    return [
        ("synthesise", ["data", "synth", "--n", str(n), "--out", str(out / "tickets.jsonl"), "--seed", "0"]),
        (
            "prepare",
            [
                "data",
                "prepare",
                "--input",
                str(out / "tickets.jsonl"),
                "--out",
                str(out / "data"),
                "--labels",
                "queue,priority,type",
                "--multilabel",
                "tags",
                "--redact-pii",
            ],
        ),
        (
            "train",
            [
                "route",
                "train",
                "--data",
                str(out / "data"),
                "--labels",
                "queue,priority,type",
                "--multilabel",
                "tags",
                "--output",
                str(out / "router"),
                "--config",
                config,
                "--overwrite",
            ],
        ),
        (
            "evaluate",
            ["route", "eval", str(out / "router"), "--data", str(out / "data"), "--critical", "priority=high"],
        ),
        (
            "predict",
            [
                "route",
                "predict",
                str(out / "router"),
                "--input",
                str(out / "data" / "test.jsonl"),
                "--output",
                str(out / "predictions.jsonl"),
            ],
        ),
    ]


def next_steps(out: Path) -> list[tuple[str, list[str]]]:
    """(what, argv) of the commands to try after the demo: the same router served and exported, then the other two
    capabilities on their own synthetic data."""
    router, triage = str(out / "router"), str(out / "triage")
    return [
        (
            "export it to ONNX int8 (4-5x the HF pipeline on CPU)",
            ["route", "export", router, "--quantize", "int8", "--out", str(out / "router-int8")],
        ),
        ("serve it (POST /predict, the /ui review page)", ["serve", str(out / "router-int8"), "--port", "8000"]),
        (
            "triage: synthetic IT tickets with gold JSON",
            ["triage", "synth", "--n", "1000", "--out", str(out / "triage.jsonl"), "--seed", "0"],
        ),
        (
            "triage: fine-tune SmolLM2-135M to fill the schema",
            ["triage", "train", "--data", str(out / "triage.jsonl"), "--output", triage],
        ),
        (
            "triage: turn free text into schema-valid JSON",
            ["triage", "run", triage, "--text", "vpn drops every 10 min"],
        ),
        ("answer: reply pairs from your tickets", ["answer", "prepare", "--input", "tickets.csv", "--out", "answers"]),
    ]


def cmd_demo(args: argparse.Namespace, run: Callable[[list[str]], int]) -> int:
    """Run the steps with ``run`` (the CLI's ``main``), stopping at the first that fails, and print their times."""
    out = Path(args.out)
    log = console()
    timings = {}
    for name, argv in demo_steps(out, args.n, args.config):
        log.rule(f"[bold]{name}: triagekit {argv[0]} {argv[1]}")
        start = time.perf_counter()
        code = run(argv)
        timings[name] = time.perf_counter() - start
        if code:
            return code
    log.rule("[bold]timings")
    log.print("  ".join(f"{k} {v:.1f}s" for k, v in timings.items()) + f"  total {sum(timings.values()):.1f}s")
    log.print(f"report: {out / 'router' / 'eval' / 'report.md'}; predictions: {out / 'predictions.jsonl'}")
    log.rule("[bold]next (serve, triage, answer need `make install-all` or their extras)")
    for what, argv in next_steps(out):
        log.print(f"  {what}:\n    [cyan]triagekit {shlex.join(argv)}[/]", highlight=False)
    return 0


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="demo")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--config", default="demo", help="router preset name or YAML path (default: the demo preset)")


def commands(run: Callable[[list[str]], int]) -> Table:
    """The ``demo`` verb, running its steps through ``run`` (given by ``triagekit.cli``, which imports this module,
    so that this module never imports the CLI back)."""
    return {
        "demo": Verb(
            partial(cmd_demo, run=run),
            _demo_arguments,
            "the whole routing path on synthetic tickets with the embedded MiniLM",
        )
    }
