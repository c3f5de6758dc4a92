"""Promotion and rollback without downtime: 16 concurrent clients on `triagekit serve registry:router@production`
while the alias is promoted and rolled back 5 times (each followed by ``POST /admin/reload``).

Reports failed requests (any non-200 or transport error), the p50/p99 latency of requests in the steady phase and
of requests that overlapped a switch (from the reload call to its answer), and how long each reload took.

Usage (under the shared lock, the server and the clients share the same cores)::

    flock /tmp/triagekit-cpu.lock python benchmarks/hot_reload.py            # TF-IDF router on synthetic tickets
    flock /tmp/triagekit-cpu.lock python benchmarks/hot_reload.py --run RUN  # any run or export directory
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
KEY = "bench-admin-key"
TICKETS = [
    "My invoice was charged twice this month",
    "VPN keeps disconnecting after the update",
    "How do I reset my password?",
    "The app crashes when I upload a file",
    "Please cancel my subscription",
    "Our dashboard shows a 502 error since this morning",
    "I need a refund for order 1234",
]


def _port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _make_run(work: Path) -> Path:
    from triagekit.cli import main

    main(["data", "synth", "--n", "2000", "--out", str(work / "tickets.jsonl")])
    main(
        [
            "data",
            "prepare",
            "--input",
            str(work / "tickets.jsonl"),
            "--out",
            str(work / "data"),
            "--labels",
            "queue,priority,type",
        ]
    )
    assert (
        main(
            [
                "train",
                "--data",
                str(work / "data"),
                "--output",
                str(work / "run"),
                "--backbone",
                "tfidf",
                "--labels",
                "queue,priority,type",
            ]
        )
        == 0
    )
    return work / "run"


async def _client(http, url: str, stop: asyncio.Event, out: list, i: int) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        start = time.perf_counter()
        try:
            r = await http.post(url, json={"text": TICKETS[(i + n) % len(TICKETS)]}, headers={"X-API-Key": KEY})
            ok, version = r.status_code == 200, r.json().get("model_version") if r.status_code == 200 else r.text
        except Exception as exc:  # a transport error is a failed request too
            ok, version = False, repr(exc)
        out.append((start, time.perf_counter(), ok, version))


async def _drive(base: str, reg, args) -> dict:
    import httpx

    stop, results, switches = asyncio.Event(), [], []
    limits = httpx.Limits(max_connections=args.clients + 4)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        tasks = [asyncio.create_task(_client(http, base + "/predict", stop, results, i)) for i in range(args.clients)]
        await asyncio.sleep(args.steady)
        steady_end = time.perf_counter()
        for cycle in range(args.cycles):
            for action in ("promote", "rollback"):
                if action == "promote":
                    await asyncio.to_thread(reg.promote, "router", 2, "production")
                else:
                    await asyncio.to_thread(reg.rollback, "router", "production")
                t0 = time.perf_counter()
                r = await http.post(base + "/admin/reload", headers={"X-API-Key": KEY})
                switches.append(
                    {
                        "cycle": cycle,
                        "action": action,
                        "start": t0,
                        "end": time.perf_counter(),
                        "status": r.status_code,
                        **r.json(),
                    }
                )
                await asyncio.sleep(args.pause)
        stop.set()
        await asyncio.gather(*tasks)
    return {"results": results, "switches": switches, "steady_end": steady_end}


def _summary(run: dict, args) -> dict:
    res, sw = run["results"], run["switches"]
    lat = lambda rows: np.array([(e - s) * 1000 for s, e, ok, _ in rows if ok])  # noqa: E731
    steady = [r for r in res if r[1] <= run["steady_end"]]
    during = [r for r in res if any(r[0] <= w["end"] and r[1] >= w["start"] for w in sw)]
    failed = [r for r in res if not r[2]]
    pct = lambda a, q: round(float(np.percentile(a, q)), 1) if len(a) else None  # noqa: E731
    return {
        "clients": args.clients,
        "switches": len(sw),
        "requests": len(res),
        "failed": len(failed),
        "failed_examples": [f[3] for f in failed[:5]],
        "steady": {"n": len(steady), "p50_ms": pct(lat(steady), 50), "p99_ms": pct(lat(steady), 99)},
        "during_switch": {"n": len(during), "p50_ms": pct(lat(during), 50), "p99_ms": pct(lat(during), 99)},
        "reload_seconds": [round(w["end"] - w["start"], 3) for w in sw],
        "reload_status": [w["status"] for w in sw],
        "versions_served": sorted({r[3] for r in res if r[2]}),
    }


def main(argv: list[str] | None = None) -> int:
    from triagekit.core.registry import Registry

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", default=None, help="run or export directory (default: a TF-IDF router on synthetic data)")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--cycles", type=int, default=5, help="promote + rollback pairs")
    p.add_argument("--steady", type=float, default=10.0, help="seconds of steady load before the first switch")
    p.add_argument("--pause", type=float, default=2.0, help="seconds between switches")
    p.add_argument("--threads", type=int, default=1, help="serve --threads")
    p.add_argument("--out", default=str(ROOT / "results" / "hot_reload.json"))
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="triagekit-hot-"))
    run = Path(args.run) if args.run else _make_run(work)
    reg = Registry(work / "registry", create=True)
    reg.register(run, "router")
    reg.register(run, "router")
    reg.promote("router", 1, "production")
    port = _port()
    env = {**os.environ, "BENCH_KEY": KEY, "PYTHONPATH": str(ROOT / "src")}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "triagekit",
            "serve",
            f"registry:{reg.root}/router@production",
            "--port",
            str(port),
            "--api-key-env",
            "BENCH_KEY",
            "--threads",
            str(args.threads),
            "--db",
            f"sqlite:///{work / 'log.db'}",
            "--log-level",
            "warning",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                if httpx.get(base + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        summary = _summary(asyncio.run(_drive(base, reg, args)), args)
    finally:
        server.terminate()
        server.wait(timeout=60)
    summary["model"] = str(run)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0 if summary["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
