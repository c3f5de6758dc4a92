"""Batch routing throughput: the in-process ``route predict`` against Ray Data with an actor pool, same tickets.

Both engines route the same ``--n`` synthetic tickets (seed 1, ``triagekit.data.write_synth``) with the same
router and write JSONL: the in-process path reads one JSONL file with all the cores as torch threads (2 on this
machine); Ray reads ``--shards`` JSONL shards of the same tickets into ``--num-actors`` actors, each with its share
of the cores (2 cores, 2 actors: one thread each). Ray's time includes starting the local cluster and loading the
router in every actor (what a user's batch job pays); the in-process time includes loading the router once. The
predictions of both are compared record by record (every head's label must agree) before the table is printed.

Without ``--run`` a router is trained first (the ``minilm-head`` preset, one epoch on ``--train-n`` synthetic
tickets, seed 0: a real MiniLM router, whose inference cost does not depend on how long it trained).

Usage:
    python benchmarks/batch_predict.py                       # 100,000 tickets, 2 actors (the issue's run)
    python benchmarks/batch_predict.py --n 2000              # a quick check
    python benchmarks/batch_predict.py --run runs/minilm --num-actors 2 --out batch.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip().split("load average:")[-1]


def train_quick(work: Path, n: int, config: str) -> Path:
    from triagekit.cli import main
    from triagekit.data import write_synth

    write_synth(n, work / "train.jsonl", seed=0)
    run = work / "run"
    args = ["route", "train", "--data", str(work / "train.jsonl"), "--labels", "queue,priority,type"]
    args += ["--output", str(run), "--config", config, "--set", "epochs=1", "--set", "trackers=[]"]
    if main(args) != 0:
        raise SystemExit("training the router failed")
    return run


def write_inputs(work: Path, n: int, shards: int) -> tuple[Path, Path]:
    """``n`` tickets as one JSONL file (in-process) and as ``shards`` JSONL shards of the same lines (Ray)."""
    from triagekit.data import write_synth

    whole = write_synth(n, work / "tickets.jsonl", seed=1)
    lines = whole.read_text(encoding="utf-8").splitlines(keepends=True)
    folder = work / "shards"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    size = -(-len(lines) // shards)
    for i in range(shards):
        (folder / f"part-{i:04d}.jsonl").write_text("".join(lines[i * size : (i + 1) * size]), encoding="utf-8")
    return whole, folder


def in_process(run: Path, tickets: Path, out: Path, batch_size: int, threads: int) -> float:
    import torch

    from triagekit.route import Router
    from triagekit.route.predict import predict_file

    torch.set_num_threads(threads)
    started = time.perf_counter()
    router = Router.load(run)
    predict_file(router, tickets, out, batch_size=batch_size)
    return time.perf_counter() - started


def on_ray(run: Path, shards: Path, out: Path, batch_size: int, actors: int) -> float:
    import ray

    from triagekit.route.distributed import predict_ray

    started = time.perf_counter()
    predict_ray(run, shards, out, num_actors=actors, batch_size=batch_size)
    seconds = time.perf_counter() - started
    ray.shutdown()
    return seconds


def labels(lines: list[str], heads: list[str]) -> dict[str, tuple]:
    records = (json.loads(line) for line in lines if line.strip())
    return {str(r["id"]): tuple(json.dumps(r[h].get("label", r[h].get("labels"))) for h in heads) for r in records}


def agree(run: Path, single: Path, shard_dir: Path) -> int:
    """How many records both engines routed identically; raises when a record differs or is missing."""
    heads = [h["name"] for h in json.loads((run / "router.json").read_text())["heads"]]
    ours = labels(single.read_text().splitlines(), heads)
    theirs = labels([line for f in sorted(shard_dir.glob("*.jsonl")) for line in f.read_text().splitlines()], heads)
    if ours != theirs:
        differ = [k for k in ours if ours.get(k) != theirs.get(k)]
        raise SystemExit(f"engines disagree on {len(differ)} of {len(ours)} records (e.g. {differ[:3]})")
    return len(ours)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="tickets to route")
    parser.add_argument("--run", type=Path, help="an existing run or export directory (default: train one)")
    parser.add_argument("--config", default="minilm-head", help="preset of the router trained without --run")
    parser.add_argument("--train-n", type=int, default=1000, help="tickets the router is trained on")
    parser.add_argument("--num-actors", type=int, default=2)
    parser.add_argument("--shards", type=int, default=8, help="input shards for Ray (one output shard each)")
    parser.add_argument("--batch-size", type=int, default=256, help="rows per model call, both engines")
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from triagekit.route.onnx import available_cores

    console = Console()
    cores = available_cores()
    with tempfile.TemporaryDirectory(prefix="batch-predict-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        run = args.run or train_quick(work, args.train_n, args.config)
        tickets, shards = write_inputs(work, args.n, args.shards)
        shutil.rmtree(work / "ray", ignore_errors=True)  # Ray skips shards already written: start clean
        console.print(f"{args.n:,} tickets, {cores} cores, load average before:{load()}")
        single = in_process(run, tickets, work / "in-process.jsonl", args.batch_size, cores)
        ray_s = on_ray(run, shards, work / "ray", args.batch_size, args.num_actors)
        checked = agree(run, work / "in-process.jsonl", work / "ray")
        rows = [
            {"engine": "in-process", "workers": 1, "threads_each": cores, "seconds": single},
            {
                "engine": "ray",
                "workers": args.num_actors,
                "threads_each": max(1, cores // args.num_actors),
                "seconds": ray_s,
            },
        ]
        table = Table(title=f"route predict, {args.n:,} synthetic tickets ({run.name}, batch {args.batch_size})")
        for col in ("engine", "actors", "threads each", "seconds", "tickets/s"):
            table.add_column(col, justify="left" if col == "engine" else "right")
        for r in rows:
            r["tickets_per_s"] = args.n / r["seconds"]
            table.add_row(
                r["engine"],
                str(r["workers"]),
                str(r["threads_each"]),
                f"{r['seconds']:.1f}",
                f"{r['tickets_per_s']:.0f}",
            )
        console.print(table)
        ratio = single / ray_s
        console.print(f"Ray / in-process throughput: {ratio:.2f}x (goal >= 0.9x); {checked:,} records identical")
        console.print(f"load average after:{load()}")
        if args.out:
            args.out.write_text(json.dumps({"n": args.n, "cores": cores, "rows": rows, "ratio": ratio}, indent=2))


if __name__ == "__main__":
    main()
