"""Does a long review queue slow the /ui pages? Time them with 100 and with 10,000 waiting tickets.

Trains a TF-IDF router on synthetic tickets (seconds), fills a fresh SQLite prediction log with N real predictions
of it (every one waiting for review), and times each page in-process (FastAPI TestClient: routing, SQL, template
rendering; no network) as the median of ``--reps`` requests. ``--legacy`` also times every page on the same log
with the queue queries as they were before the review state was stored (order from the ``outputs`` JSON per row,
waiting test a NOT EXISTS per row): before and after side by side.

Usage:
    flock /tmp/triagekit-cpu.lock python benchmarks/ui_queue.py --legacy   # N = 100 and 10,000, before and after
    python benchmarks/ui_queue.py --sizes 100 10000 100000 --reps 10
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path


def train_router(work: Path) -> Path:
    from triagekit.data import prepare, write_synth
    from triagekit.route.config import load_config
    from triagekit.route.train import train

    write_synth(600, work / "tickets.jsonl", seed=1)
    prepare(
        work / "tickets.jsonl",
        work / "prepared",
        text_fields=["subject", "body"],
        label_fields=["queue", "priority", "type"],
        multilabel_fields=["tags"],
        seed=0,
    )
    cfg = load_config(
        None,
        backbone="tfidf",
        method="full",
        hybrid=False,
        labels=["queue", "priority", "type"],
        multilabel=["tags"],
        trackers=[],
    )
    out = work / "router"
    train(cfg, work / "prepared", out)
    info = json.loads((out / "router.json").read_text())
    info["calibration"].setdefault("priority", {})["review_threshold"] = 1.01  # every prediction waits
    (out / "router.json").write_text(json.dumps(info))
    return out


def fill(service, n: int, tickets: list[dict]) -> None:
    """N predictions of the served router, logged as the service logs them."""
    from triagekit.data.text import build_text
    from triagekit.serve.db import utcnow

    router, rows = service.router, []
    for start in range(0, n, 500):
        batch = [tickets[i % len(tickets)] for i in range(start, min(n, start + 500))]
        inputs = [{"subject": t["subject"], "body": t["body"], "language": t["language"]} for t in batch]
        texts = [build_text(x, router.text_fields) for x in inputs]
        for x, text, heads in zip(inputs, texts, router.predict(texts, top_k=3)):
            rows.append(
                {
                    "id": uuid.uuid4().hex,
                    "request_id": None,
                    "inputs": x,
                    "outputs": heads,
                    "input_hash": hashlib.sha256(text.encode()).hexdigest(),
                    "latency_ms": 1.0,
                    "requires_review": any(h.get("requires_review") for h in heads.values()),
                    "model_version": router.model_version,
                    "created_at": utcnow(),
                }
            )
        service.store.write(rows, [])
        rows = []


def time_pages(client, reps: int) -> dict[str, float]:
    import re

    def median_ms(path: str) -> float:
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            r = client.get(path, follow_redirects=False)
            times.append((time.perf_counter() - t) * 1000)
            assert r.status_code in (200, 303), (path, r.status_code)
        return statistics.median(times)

    queue = client.get("/ui/queue").text
    pages = max(int(x) for x in re.findall(r"page=(\d+)", queue) or ["1"])
    first = re.search(r'data-href="(/ui/review/[0-9a-f]+)"', queue).group(1)
    return {
        "queue page 1": median_ms("/ui/queue"),
        "queue last page": median_ms(f"/ui/queue?page={pages}"),
        "queue, filtered (language=de, queue label)": median_ms(
            "/ui/queue?language=de&head=queue&label=Technical+Support"
        ),
        "review page": median_ms(first),
        "next ticket (redirect)": median_ms(f"/ui/review/next?after={first.rsplit('/', 1)[1]}"),
        "overview": median_ms("/ui/overview"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 10_000])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--legacy", action="store_true", help="also time the queries as before the stored priority")
    args = parser.parse_args()
    from fastapi.testclient import TestClient

    from triagekit.data import write_synth
    from triagekit.serve import ServeSettings, create_app, reviewstore

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        router = train_router(work)
        write_synth(2000, work / "more.jsonl", seed=7)
        tickets = [json.loads(line) for line in (work / "more.jsonl").read_text().splitlines()]
        results, modes = {}, [("before", True), ("after", False)] if args.legacy else [("", False)]
        for n in args.sizes:
            app = create_app(router, ServeSettings(db=f"sqlite:///{work / f'log{n}.db'}"))
            with TestClient(app) as c:
                fill(app.state.service, n, tickets)
                login = c.get("/ui/login").text
                token = login.split('name="csrf_token" value="')[1].split('"')[0]
                c.post("/ui/login", data={"name": "bench", "csrf_token": token})
                for mode, legacy in modes:
                    reviewstore.LEGACY_QUERIES = legacy
                    results[(n, mode)] = time_pages(c, args.reps)
                reviewstore.LEGACY_QUERIES = False
        print_table(results)


def print_table(
    results: dict[tuple[int, str], dict[str, float]], label: str = "page (median ms)", digits: int = 1
) -> None:
    """One row per measured name, one column per (queue size, before/after); ``benchmarks/review_queue_sql.py``
    prints its table with it too."""
    names = list(next(iter(results.values())))
    print(f"{label:44s}" + "".join(f"{f'{n:,} waiting {mode}':>24s}" for n, mode in results))
    for name in names:
        print(f"{name:44s}" + "".join(f"{r[name]:24.{digits}f}" for r in results.values()))


if __name__ == "__main__":
    main()
