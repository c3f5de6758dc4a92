"""The review queue's SQL alone, before and after the stored review state: CPU ms per call with 100 and 10,000 waiting.

Fills a SQLite log with N synthetic predictions (three single-label heads and a tag head, all waiting) and times each
``reviewstore`` call the queue and review pages make, as the median of ``--reps`` calls of CPU time
(``time.process_time``), so a loaded machine slows the run but not the figures. "before" runs the queries as they
were before the priority was stored (``reviewstore.LEGACY_QUERIES``: order from the ``outputs`` JSON per row,
waiting test a NOT EXISTS per row), on the same log. ``benchmarks/ui_queue.py`` times the whole pages.

Usage:
    python benchmarks/review_queue_sql.py [--sizes 100 10000] [--reps 15]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ui_queue import print_table  # noqa: E402 - the same table as the page-level benchmark

SINGLE = ["queue", "priority", "type"]


def _row(i: int, rng: random.Random) -> dict:
    outputs = {
        h: {
            "label": rng.choice(["Billing", "Technical Support", "Returns"]),
            "confidence": rng.random(),
            "top_k": [{"label": "Billing", "p": 0.3}] * 3,
            "requires_review": True,
        }
        for h in SINGLE
    }
    outputs["tags"] = {"labels": ["vpn"], "scores": {"vpn": 0.6}, "requires_review": False}
    return {
        "id": f"{i:032x}",
        "request_id": None,
        "input_hash": "0" * 64,
        "inputs": {"subject": "s" * 40, "body": "b" * 400, "language": rng.choice(["en", "de"])},
        "outputs": outputs,
        "requires_review": True,
        "latency_ms": 1.0,
        "model_version": "m1",
        "created_at": datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=i),
    }


def _cpu_ms(reps: int, fn, *args) -> float:
    times = []
    for _ in range(reps):
        t = time.process_time()
        fn(*args)
        times.append((time.process_time() - t) * 1000)
    return statistics.median(times)


def time_calls(store, n: int, reps: int) -> dict[str, float]:
    from triagekit.serve import reviewstore
    from triagekit.serve.reviewstore import Heads, QueueFilter

    heads, e, every = Heads(SINGLE, ["tags"]), store.engine, QueueFilter()
    narrow = QueueFilter(language="de", head="queue", label="Technical Support")
    return {
        "count": _cpu_ms(reps, reviewstore.queue_count, e, every, heads),
        "count, filtered (language, head, label)": _cpu_ms(reps, reviewstore.queue_count, e, narrow, heads),
        "page 1 (25 rows)": _cpu_ms(reps, reviewstore.queue_page, e, every, heads, 0, 25),
        "last page": _cpu_ms(reps, reviewstore.queue_page, e, every, heads, max(0, n - 25), 25),
        "page 1, filtered": _cpu_ms(reps, reviewstore.queue_page, e, narrow, heads, 0, 25),
        "filter menus (facets)": _cpu_ms(reps, reviewstore.queue_facets, e),
        "next ticket (keyset)": _cpu_ms(reps, reviewstore.neighbour, e, every, heads, f"{5:032x}"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 10_000])
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args()
    from triagekit.serve import reviewstore
    from triagekit.serve.db import PredictionStore

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            store = PredictionStore(f"sqlite:///{Path(tmp) / f'log{n}.db'}")
            store.create()
            rng = random.Random(0)
            store.write([_row(i, rng) for i in range(n)], [])
            for mode, legacy in (("before", True), ("after", False)):
                reviewstore.LEGACY_QUERIES = legacy
                results[(n, mode)] = time_calls(store, n, args.reps)
            reviewstore.LEGACY_QUERIES = False
            store.dispose()
    print_table(results, "call (median CPU ms)", digits=2)


if __name__ == "__main__":
    main()
