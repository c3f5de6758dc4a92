"""Start-up time of the CLI: ``triagekit --help`` and ``triagekit route train --help``, before vs after the one-grammar
CLI, in one run.

BEFORE is the tree of commit 39e2e65 (``git archive`` into a temporary folder; its spelling ``train --help``), AFTER
is this checkout's ``src``. Each command runs in a fresh ``python -m triagekit`` subprocess with ``PYTHONPATH``
pointing at one tree (checked: the subprocess imports triagekit from there), once to warm the file cache and
compile bytecode (into a temporary cache, as a pip install would have), then ``--runs`` times; the median wall
time is printed with the before/after ratio.

    flock /tmp/triagekit-cpu.lock python benchmarks/cli_startup.py [--runs 9] [--before 39e2e65]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 0.5  # issue 12: both commands answer in under 0.5 s


def export_tree(commit: str, into: Path) -> Path:
    """``src/`` of ``commit`` extracted into ``into``; returns the folder to put on PYTHONPATH."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit, "src"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def _env(src: Path, pycache: Path) -> dict[str, str]:
    """Bytecode is cached (as after a pip install) under ``pycache``, outside both trees: with
    PYTHONDONTWRITEBYTECODE set, every run would compile every imported module again."""
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1", "PYTHONPYCACHEPREFIX": str(pycache)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def check_imports_from(src: Path, pycache: Path) -> None:
    """Fail loudly when PYTHONPATH does not win over an installed triagekit (the figures would be of the wrong tree)."""
    probe = [sys.executable, "-c", "import triagekit; print(triagekit.__file__)"]
    where = subprocess.run(probe, env=_env(src, pycache), capture_output=True, text=True, check=True).stdout.strip()
    if not Path(where).resolve().is_relative_to(src.resolve()):
        raise SystemExit(f"triagekit imported from {where}, not from {src}")


def median_seconds(src: Path, argv: list[str], runs: int, pycache: Path) -> float:
    """Median wall time of ``python -m triagekit ARGV`` over ``runs`` runs after one warm-up."""
    cmd = [sys.executable, "-m", "triagekit", *argv]
    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        done = subprocess.run(cmd, env=_env(src, pycache), capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if done.returncode != 0 or "usage: triagekit" not in done.stdout:
            raise SystemExit(f"{' '.join(argv)} failed in {src}: {done.stderr[-500:]}")
        if i:
            times.append(elapsed)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="timed runs per command (after one warm-up)")
    parser.add_argument("--before", default="39e2e65", help="commit of the BEFORE tree")
    args = parser.parse_args()
    after_src = REPO / "src"
    rows = [
        ("triagekit --help", ["--help"], ["--help"]),
        ("triagekit route train --help", ["train", "--help"], ["route", "train", "--help"]),
    ]
    with tempfile.TemporaryDirectory(prefix="triagekit-before-") as tmp:
        before_src, pycache = export_tree(args.before, Path(tmp)), Path(tmp) / "pycache"
        for src in (before_src, after_src):
            check_imports_from(src, pycache)
        print(
            f"median of {args.runs} runs, python -m triagekit, {os.cpu_count()} CPUs; before = {args.before} "
            f"(old spelling `train --help`), after = {after_src}"
        )
        print(f"{'command':<30} {'before s':>9} {'after s':>9} {'ratio':>7}  under {TARGET_S} s")
        for name, old, new in rows:
            before = median_seconds(before_src, old, args.runs, pycache)
            after = median_seconds(after_src, new, args.runs, pycache)
            met = "yes" if after < TARGET_S else "NO"
            print(f"{name:<30} {before:>9.3f} {after:>9.3f} {before / after:>6.1f}x  {met}")


if __name__ == "__main__":
    main()
