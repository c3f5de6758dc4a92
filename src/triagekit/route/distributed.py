"""Batch routing on Ray Data: many input shards, an actor pool that loads the router once per actor, one output
shard per input shard, resumable.

    triagekit route predict RUN --input 'tickets/*.csv' --output routed/ --engine ray --num-actors 2
    triagekit route predict RUN --input tickets/ --output routed/ --engine ray --address auto   # join a cluster

Rows are read with triagekit's own readers (``triagekit.data.io``) inside Ray tasks, so a malformed row is
reported with its file and line exactly as by the in-process ``predict`` (in ``<shard>.rejected.jsonl``), and the
prediction records are the same, in the same order. A shard whose output exists is skipped, so a killed job
rerun does only the rest; outputs are written to a temporary name and renamed when complete.
"""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path
from typing import Any, Sequence

from triagekit.route.predict import CHUNK_SIZE

__all__ = ["input_shards", "predict_ray", "require_ray", "actor_threads"]

FORMATS = ("jsonl", "parquet")


def require_ray():
    """``ray`` with its Data library, or a clear install hint."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise RuntimeError("--engine ray needs Ray Data: pip install 'triagekit[ray]'") from exc
    return ray


def input_shards(spec: str | Path) -> list[Path]:
    """The input files of ``spec``: a directory (every supported file in it), a glob, or one file."""
    from triagekit.data.io import SUPPORTED_SUFFIXES

    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
    elif path.is_file():
        files = [path]
    else:
        files = sorted(Path(p) for p in glob.glob(str(spec)) if Path(p).is_file())
    if not files:
        raise FileNotFoundError(f"--input {spec}: no CSV/JSONL/JSON/Parquet files found")
    names = [f.stem for f in files]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ValueError(f"--input {spec}: shards {clash} would write the same output name; rename them")
    return files


def actor_threads(num_actors: int, address: str | None = None, given: int | None = None) -> int:
    """Torch / onnxruntime threads per actor: ``given``, else this machine's cores shared out between the actors on
    a local Ray, else 1 on a cluster (whose nodes this process cannot see)."""
    from triagekit.route.onnx import available_cores

    if given is not None:
        if given < 1:
            raise ValueError("threads per actor must be at least 1")
        return given
    return 1 if address else max(1, available_cores() // num_actors)


def _output(out_dir: Path, shard: Path, fmt: str) -> Path:
    return out_dir / f"{shard.stem}.{fmt}"


def _read_shard(item: dict[str, Any], text_fields: Sequence[str]) -> list[dict[str, Any]]:
    """Every record of one shard as a row: text, id, line, or the reason it cannot be routed."""
    from triagekit.data.io import RowError, iter_records
    from triagekit.data.text import build_text

    rows = []
    for n, rec in enumerate(iter_records(item["path"])):
        if isinstance(rec, RowError):
            rows.append(
                {
                    "shard": item["shard"],
                    "seq": n,
                    "text": "",
                    "id": "",
                    "rejected": json.dumps(rec.to_dict(), ensure_ascii=False, default=str),
                }
            )
            continue
        text = build_text(rec.data, text_fields)
        if not text:
            err = RowError(rec.file, rec.line, f"no text in {list(text_fields)} or 'text'", rec.data)
            rows.append(
                {
                    "shard": item["shard"],
                    "seq": n,
                    "text": "",
                    "id": "",
                    "rejected": json.dumps(err.to_dict(), ensure_ascii=False, default=str),
                }
            )
            continue
        rid = rec.data.get("id") if rec.data.get("id") is not None else f"{Path(rec.file).stem}-{rec.line}"
        rows.append({"shard": item["shard"], "seq": n, "text": text, "id": json.dumps(rid), "rejected": ""})
    return rows


class _Predictor:
    """One actor: the router loaded once, then batches of rows in, JSON prediction lines out."""

    def __init__(self, run: str, top_k: int, batch_size: int, precision: str = "fp32", threads: int = 1):
        import torch

        from triagekit.route import Router

        # The actor's share of the cores, for torch and onnxruntime alike (set before the model is loaded).
        torch.set_num_threads(threads)
        os.environ["TRIAGEKIT_ORT_THREADS"] = str(threads)
        self.router = Router.load(run, precision=precision)
        self.top_k, self.batch_size = top_k, batch_size

    def __call__(self, batch):
        from triagekit.route.predict import prediction_lines

        good = [i for i, r in enumerate(batch["rejected"]) if not r]
        lines = prediction_lines(
            self.router,
            [batch["text"][i] for i in good],
            [json.loads(batch["id"][i]) for i in good],
            top_k=self.top_k,
            batch_size=self.batch_size,
        )
        out = [""] * len(batch["rejected"])
        for i, line in zip(good, lines):
            out[i] = json.dumps(line, ensure_ascii=False)
        return {"shard": batch["shard"], "seq": batch["seq"], "prediction": out, "rejected": batch["rejected"]}


def _write(out_dir: Path, shard: Path, fmt: str, predictions: list[str], rejected: list[str]) -> None:
    """The shard's predictions (and rejected rows) under temporary names, then renamed: never half a shard."""
    final = _output(out_dir, shard, fmt)
    tmp = final.with_name(final.name + ".tmp")
    if fmt == "jsonl":
        tmp.write_text("".join(p + "\n" for p in predictions), encoding="utf-8")
    else:
        import pandas as pd

        pd.DataFrame([json.loads(p) for p in predictions]).to_parquet(tmp)
    rej = out_dir / f"{shard.stem}.rejected.jsonl"
    if rejected:
        rej.write_text("".join(r + "\n" for r in rejected), encoding="utf-8")
    os.replace(tmp, final)


def predict_ray(
    run: str | Path,
    inputs: str | Path,
    output: str | Path,
    *,
    address: str | None = None,
    num_actors: int = 2,
    batch_size: int = 256,
    top_k: int = 3,
    fmt: str = "jsonl",
    precision: str = "fp32",
    threads_per_actor: int | None = None,
    console=None,
) -> dict[str, int]:
    """Route every record of the shards of ``inputs`` with Ray Data and write one output per shard to ``output``.

    Args:
        run: a run or export directory (an ONNX export serves the int8 graph through onnxruntime).
        address: a Ray cluster to join (``auto``: the one this machine belongs to); None starts a local Ray.
        num_actors: the actor pool's size (each actor loads the router once).
        threads_per_actor: torch / onnxruntime threads of each actor, and the CPUs it reserves; None: this
            machine's cores shared out between the actors on a local Ray (2 cores, 2 actors: 1 each, like the
            in-process path's 2 threads in all), 1 on a cluster (``--num-actors`` then sets the parallelism).
        batch_size: rows per model call; each ``map_batches`` call takes at least ``CHUNK_SIZE`` rows, as the
            in-process ``predict_file`` does (256-row calls ran ~25 % slower: more padding and per-call overhead).
        fmt: ``jsonl`` or ``parquet`` output shards.

    Returns:
        counts of ``predicted``, ``rejected``, ``shards`` (done now) and ``skipped`` (already written) shards.
    """
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {FORMATS}, got {fmt!r}")
    if num_actors < 1:
        raise ValueError("--num-actors must be at least 1")
    run = Path(run)
    info_file = run / "router.json"
    if not info_file.exists():
        raise FileNotFoundError(f"{run} is not a triagekit model directory (no router.json)")
    text_fields = json.loads(info_file.read_text())["text_fields"]
    shards = input_shards(inputs)
    out_dir = Path(output)
    out_dir.mkdir(parents=True, exist_ok=True)
    pending = [s for s in shards if not _output(out_dir, s, fmt).exists()]
    counts = {"predicted": 0, "rejected": 0, "shards": len(pending), "skipped": len(shards) - len(pending)}
    if not pending:
        return counts
    from triagekit.route.onnx import available_cores

    ray = require_ray()
    threads = actor_threads(num_actors, address, threads_per_actor)
    if not ray.is_initialized():
        # The actors are the parallelism: each gets its share of the cores, never a thread per core each
        # (2 actors x 2 threads on 2 cores oversubscribe them).
        env = {
            "env_vars": {
                "TRIAGEKIT_ORT_THREADS": str(threads),
                "OMP_NUM_THREADS": str(threads),
                "TOKENIZERS_PARALLELISM": "false",
                "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
            }
        }
        ray.init(
            address=address,
            runtime_env=env,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            **({} if address else {"num_cpus": max(num_actors * threads, available_cores())}),
        )
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # the same order as the in-process predict
    ctx.enable_progress_bars = console is not None
    items = [{"path": str(s.resolve()), "shard": i} for i, s in enumerate(pending)]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    # Reading takes no CPU reservation: with every CPU held by an actor, a reading task that needs one would
    # never be scheduled (the actors would wait for rows forever).
    ds = ds.flat_map(_read_shard, fn_kwargs={"text_fields": text_fields}, num_cpus=0)
    ds = ds.map_batches(
        _Predictor,
        fn_constructor_kwargs={
            "run": str(run.resolve()),
            "top_k": top_k,
            "batch_size": batch_size,
            "precision": precision,
            "threads": threads,
        },
        batch_size=max(batch_size, CHUNK_SIZE),
        compute=ray.data.ActorPoolStrategy(size=num_actors),  # a fixed pool (`concurrency=` is deprecated)
        num_cpus=threads,
        batch_format="numpy",
    )
    current, preds, rejs = 0, [], []

    def flush(upto: int) -> None:  # rows arrive in shard order: every shard before ``upto`` is complete
        nonlocal current, preds, rejs
        while current < upto:
            _write(out_dir, pending[current], fmt, preds, rejs)
            counts["predicted"] += len(preds)
            counts["rejected"] += len(rejs)
            current, preds, rejs = current + 1, [], []

    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for shard, pred, rej in zip(batch["shard"], batch["prediction"], batch["rejected"]):
            flush(int(shard))
            (rejs if rej else preds).append(str(rej or pred))
    flush(len(pending))
    if console is not None:
        console.print(
            f"{counts['predicted']} predictions in {len(pending)} shards -> {out_dir}"
            + (f" ({counts['skipped']} shards already done)" if counts["skipped"] else "")
            + (f"; {counts['rejected']} rows rejected (see *.rejected.jsonl)" if counts["rejected"] else "")
        )
    return counts
