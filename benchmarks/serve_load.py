"""Load test of ``triagekit serve``: latency percentiles and throughput with micro-batching on vs off.

Starts the server with uvicorn in a subprocess on 127.0.0.1 (a free port), drives ``POST /predict`` with 1, 8, 32
and 64 concurrent keep-alive clients for a fixed time each, and prints p50/p95/p99 latency, requests/s, mean batch
size, the server's own ``inference_ms`` (p50) and errors per mode, for each ``--backends`` (PyTorch as the run is,
and its int8 ONNX export); then the throughput ratio at 32 clients (target >= 2x) and p50 at 1 client (target
<= 25 ms). The load generator runs on the same cores as the server, so its own CPU time per request is printed too
(one event loop, raw keep-alive HTTP/1.1, no client library); cores are usually shared, so the load average before
and after is printed with the table.

Usage:
    python benchmarks/serve_load.py --run demo/router        # an existing run (fast)
    python benchmarks/serve_load.py                          # trains the default MiniLM router first (1 epoch)
    python benchmarks/serve_load.py --run R --backends onnx  # only the ONNX int8 fast path
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]


def train_default(work: Path, n: int, config: str) -> Path:
    """The default MiniLM router (``config``) on ``n`` synthetic tickets, one epoch."""
    from triagekit.data import prepare, write_synth
    from triagekit.route.config import load_config
    from triagekit.route.train import train

    write_synth(n, work / "tickets.jsonl", seed=0)
    prepare(
        work / "tickets.jsonl",
        work / "data",
        text_fields=["subject", "body"],
        label_fields=["queue", "priority", "type"],
        multilabel_fields=["tags"],
        seed=0,
    )
    cfg = load_config(config, epochs=1, labels=["queue", "priority", "type"], multilabel=["tags"])
    train(cfg, work / "data", work / "router", overwrite=True)
    return work / "router"


def tickets_for(run: Path, n: int = 500) -> list[dict]:
    """Typical tickets: the run's test split when it has one, else synthetic ones."""
    meta = json.loads((run / "router.json").read_text()).get("meta", {})
    test = Path(meta.get("data_dir", "")) / "test.jsonl"
    if test.exists():
        rows = [json.loads(line) for line in test.read_text().splitlines() if line.strip()]
    else:
        from triagekit.data import synth_tickets

        rows = list(synth_tickets(n, seed=3))
    return [{"subject": r.get("subject", ""), "body": r.get("body", "")} for r in rows[:n]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def db_path(work: Path, backend: str, batching: bool) -> Path:
    return work / f"predictions-{backend}-{'on' if batching else 'off'}.db"


def start_server(run: Path, work: Path, backend: str, batching: bool, args) -> tuple[subprocess.Popen, int]:
    port = free_port()
    db = db_path(work, backend, batching)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "triagekit",
        "serve",
        str(run),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--db",
        f"sqlite:///{db}",
        "--log-level",
        "warning",
        "--max-batch",
        str(args.max_batch),
        "--max-wait-ms",
        str(args.max_wait_ms),
        "--batching" if batching else "--no-batching",
        "--backend",
        backend,
    ]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(work / "server.log", "a"))
    deadline = time.monotonic() + 600  # --backend onnx exports the run on its first start
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {work / 'server.log'}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
                if r.status == 200:
                    return proc, port
        except OSError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise RuntimeError("server did not become ready in 600 s")


def logged_rows(db: Path) -> int:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM predictions").fetchone()[0]


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()  # SIGTERM: graceful shutdown (drains the batcher, flushes the log)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


INFERENCE_MS = re.compile(rb'"inference_ms":\s*([0-9.eE+-]+)')


async def _request(reader, writer, body: bytes) -> tuple[int, bytes]:
    """One keep-alive HTTP/1.1 POST /predict; returns the status code and the body."""
    writer.write(
        b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
    return status, await reader.readexactly(length)


async def _client(
    port: int, bodies: list[bytes], until: float, latencies: list[float], inference: list[float], errors: list[str]
):
    rng = random.Random(len(latencies))
    reader = writer = None
    while time.perf_counter() < until:
        body = bodies[rng.randrange(len(bodies))]
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            start = time.perf_counter()
            status, answer = await asyncio.wait_for(_request(reader, writer, body), timeout=30)
            if status == 200:
                latencies.append(time.perf_counter() - start)
                # The server's model-call time for this request (a regex, not a JSON parse: cheap for the client).
                found = INFERENCE_MS.search(answer)
                if found:
                    inference.append(float(found.group(1)))
            else:
                errors.append(f"HTTP {status}")
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, AttributeError) as exc:
            errors.append(type(exc).__name__)
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


def scrape_batches(port: int) -> tuple[float, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    total = float(re.search(r"^triagekit_batch_size_sum (\S+)$", text, re.M).group(1))
    count = float(re.search(r"^triagekit_batch_size_count (\S+)$", text, re.M).group(1))
    return total, count


async def drive(port: int, bodies: list[bytes], clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    inference: list[float] = []
    errors: list[str] = []
    before = scrape_batches(port)
    start, cpu_start = time.perf_counter(), time.process_time()
    await asyncio.gather(
        *(_client(port, bodies, start + seconds, latencies, inference, errors) for _ in range(clients))
    )
    elapsed, client_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    after = scrape_batches(port)
    lat = sorted(latencies)
    inf = sorted(inference)

    def pct(p):
        return 1000 * lat[min(len(lat) - 1, int(p / 100 * len(lat)))] if lat else float("nan")

    calls = after[1] - before[1]
    return {
        "clients": clients,
        "requests": len(lat),
        "rps": len(lat) / elapsed,
        "p50": pct(50),
        "p95": pct(95),
        "p99": pct(99),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "mean_batch": (after[0] - before[0]) / calls if calls else float("nan"),
        "inference_p50": inf[len(inf) // 2] if inf else float("nan"),
        "client_cpu_ms": 1000 * client_cpu / max(len(lat) + len(errors), 1),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default=None, help="trained router dir (default: train one into --work)")
    p.add_argument("--work", default=str(ROOT / "runs" / "serve_load"))
    p.add_argument("--n", type=int, default=2000, help="synthetic tickets when training")
    p.add_argument("--config", default="minilm", help="config when training")
    p.add_argument("--train-only", action="store_true", help="train the router into --work and stop")
    p.add_argument("--clients", default="1,8,32,64")
    p.add_argument("--seconds", type=float, default=10.0, help="duration of each concurrency level")
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=None, help="torch threads in the server (default: torch's)")
    p.add_argument(
        "--backends",
        default="auto,onnx",
        help="serve --backend values to compare: auto (the run as it is: PyTorch), onnx (int8 export, "
        "made in RUN/onnx-int8 on first start), onnx-fp32",
    )
    args = p.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    run = Path(args.run) if args.run else train_default(work, args.n, args.config)
    if args.train_only:
        print(f"trained: {run}")
        return 0
    bodies = [json.dumps(t).encode() for t in tickets_for(run)]
    levels = [int(c) for c in args.clients.split(",")]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    load_before = os.getloadavg()
    results, logged = [], {}
    for backend in backends:
        for batching in (True, False):
            proc, port = start_server(run, work, backend, batching, args)
            answered = 0
            try:
                answered += asyncio.run(drive(port, bodies, 4, 2.0))["requests"]  # warm-up, not measured
                time.sleep(1.5)  # past the batcher's memory of concurrency (RECENT_S), so 1 client runs alone
                for clients in levels:
                    r = asyncio.run(drive(port, bodies, clients, args.seconds))
                    answered += r["requests"]
                    results.append({"backend": backend, "batching": "on" if batching else "off", **r})
                    print(
                        f"  {backend} batching {'on ' if batching else 'off'} {clients:>3} clients: "
                        f"{r['rps']:7.1f} req/s p50 {r['p50']:6.1f} ms",
                        file=sys.stderr,
                        flush=True,
                    )
            finally:
                stop_server(proc)
            logged[(backend, batching)] = (answered, logged_rows(db_path(work, backend, batching)))
    load_after = os.getloadavg()

    print(
        f"\nserve load test: {run} ({len(bodies)} distinct tickets), {args.seconds:.0f} s per level, "
        f"max_batch {args.max_batch}, max_wait {args.max_wait_ms} ms, torch threads {args.threads or 'default'}, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
        f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}\n"
    )
    header = (
        f"{'backend':<10}{'batching':<9}{'clients':>8}{'requests':>10}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'p99 ms':>9}{'infer p50':>10}{'batch':>7}{'client cpu':>11}{'errors':>8}"
    )
    print(header + "\n" + "-" * len(header))
    for r in results:
        print(
            f"{r['backend']:<10}{r['batching']:<9}{r['clients']:>8}{r['requests']:>10}{r['rps']:>9.1f}"
            f"{r['p50']:>9.1f}{r['p95']:>9.1f}{r['p99']:>9.1f}{r['inference_p50']:>10.1f}{r['mean_batch']:>7.1f}"
            f"{r['client_cpu_ms']:>11.2f}{r['errors']:>8}"
        )
    print(
        "(infer p50: the server's inference_ms, the model call a request rode in; client cpu: the load generator's "
        "CPU ms per request)"
    )
    by = {(r["backend"], r["batching"], r["clients"]): r for r in results}
    print()
    for backend in backends:
        if (backend, "on", 32) in by and (backend, "off", 32) in by:
            ratio = by[(backend, "on", 32)]["rps"] / max(by[(backend, "off", 32)]["rps"], 1e-9)
            print(f"{backend}: throughput ratio at 32 clients (on/off): {ratio:.2f}x (target >= 2x)")
        if (backend, "on", 1) in by:
            print(
                f"{backend}: p50 at 1 client: {by[(backend, 'on', 1)]['p50']:.1f} ms batching on, "
                f"{by.get((backend, 'off', 1), {}).get('p50', float('nan')):.1f} ms off (target <= 25 ms)"
            )
    for (backend, batching), (answered, rows) in logged.items():
        print(
            f"prediction log, {backend} batching {'on' if batching else 'off'}: {rows} rows for {answered} answered "
            f"requests after SIGTERM ({'nothing lost' if rows == answered else 'MISMATCH'})"
        )
    errors = sum(r["errors"] for r in results) + sum(a != n for a, n in logged.values())
    print(f"errors: {errors}" + (f" ({sorted({k for r in results for k in r['error_kinds']})})" if errors else ""))
    (work / "serve_load.json").write_text(
        json.dumps(
            {"run": str(run), "results": results, "load_before": load_before, "load_after": load_after}, indent=2
        )
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
