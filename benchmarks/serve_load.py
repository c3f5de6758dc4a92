"""Load test of ``triagekit serve``: today's serving path and the fast one side by side, in one run.

Starts the server with uvicorn in a subprocess on 127.0.0.1 (a free port), drives ``POST /predict`` with 1, 8, 32
and 64 concurrent keep-alive clients for a fixed time each, and prints p50/p95/p99 latency, requests/s, mean batch
size, server and client CPU per request and errors per row, for each ``--paths`` (``before``: asyncio loop, h11
parser, response-model validation of every body, one padded forward pass per micro-batch, TF-IDF half after the
encoder; ``after``: uvloop, httptools, orjson bodies, length-sorted passes of 4, TF-IDF half beside the encoder;
``after-2x1``: the same with two model calls at once on one thread each), ``--backends`` and ``--batching`` mode;
then the ratios to ``before`` and the goals (>= 300 req/s at 32 clients with 0 errors, p50 <= 5 ms at 1 client).

The load generator runs on the same 2 cores as the server, so its CPU time per request is printed too: ``wrk``
(C, ``apt-get install wrk``) when it is on PATH, else a Python generator (one event loop, raw keep-alive HTTP/1.1).
Cores are usually shared, so the load average before and after is printed with the table.

Usage:
    python benchmarks/serve_load.py --run demo/router        # an existing run (fast)
    python benchmarks/serve_load.py                          # trains the default MiniLM router first (1 epoch)
    python benchmarks/serve_load.py --run R --clients 1,32 --batching on   # the goal rows only
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import shutil
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


PATHS = {
    # Today's path before issue 17's changes: the stdlib event loop, the pure-Python h11 parser, FastAPI validating
    # every prediction body against its response model, a micro-batch run as one batch padded to its longest
    # ticket, and the hybrid's TF-IDF half computed after the encoder.
    "before": (
        ["--loop", "asyncio", "--http", "h11", "--no-fast-json", "--model-batch", "64"],
        {"TRIAGEKIT_HYBRID_PARALLEL": "0"},
    ),
    # uvloop, httptools, orjson bodies, length-sorted forward passes of 4, the TF-IDF half beside the encoder.
    "after": (
        ["--loop", "uvloop", "--http", "httptools", "--fast-json", "--model-batch", "4"],
        {"TRIAGEKIT_HYBRID_PARALLEL": "1"},
    ),
    # The same, with two model calls at once on one intra-op thread each.
    "after-2x1": (
        ["--loop", "uvloop", "--http", "httptools", "--fast-json", "--model-batch", "4"]
        + ["--inference-workers", "2", "--threads", "1"],
        {"TRIAGEKIT_HYBRID_PARALLEL": "1"},
    ),
}


def db_path(work: Path, path: str, backend: str, batching: bool) -> Path:
    return work / f"predictions-{path}-{backend}-{'on' if batching else 'off'}.db"


def start_server(run: Path, work: Path, path: str, backend: str, batching: bool, args) -> tuple[subprocess.Popen, int]:
    port = free_port()
    db = db_path(work, path, backend, batching)
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
        *PATHS[path][0],
    ]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    env = {**os.environ, **PATHS[path][1]}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(work / "server.log", "a"), env=env)
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


WRK_SCRIPT = r"""
-- POST /predict with the tickets of BODIES (one JSON body a line), in turn; prints one JSON summary line.
local bodies, i = {}, 0
for line in io.lines(os.getenv("TRIAGEKIT_WRK_BODIES")) do bodies[#bodies + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
function request()
  i = i % #bodies + 1
  return wrk.format(nil, "/predict", nil, bodies[i])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'TRIAGEKIT {"requests": %d, "seconds": %f, "p50": %f, "p95": %f, "p99": %f, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def drive_wrk(port: int, work: Path, clients: int, seconds: float) -> dict:
    """One level with ``wrk`` (one thread: its event loop needs a fraction of a core even at 32 connections)."""
    script = work / "predict.lua"
    script.write_text(WRK_SCRIPT)
    env = {**os.environ, "TRIAGEKIT_WRK_BODIES": str(work / "bodies.jsonl")}
    before, usage = scrape_batches(port), resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = ["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "30s", "-s", str(script)]
    out = subprocess.run([*cmd, f"http://127.0.0.1:{port}"], env=env, capture_output=True, text=True, check=True)
    after, used = scrape_batches(port), resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in out.stdout.splitlines() if x.startswith("TRIAGEKIT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")
    w = json.loads(line.split(" ", 1)[1])
    kinds = {k: w[k] for k in ("connect", "read", "write", "status", "timeout") if w[k]}
    answered = w["requests"] - w["status"]
    calls = after[1] - before[1]
    cpu = (used.ru_utime + used.ru_stime) - (usage.ru_utime + usage.ru_stime)
    return {
        "clients": clients,
        "requests": answered,
        "rps": answered / w["seconds"],
        "p50": w["p50"],
        "p95": w["p95"],
        "p99": w["p99"],
        "errors": sum(kinds.values()),
        "error_kinds": sorted(f"{k} {v}" for k, v in kinds.items()),
        "mean_batch": (after[0] - before[0]) / calls if calls else float("nan"),
        "inference_p50": float("nan"),
        "client_cpu_ms": 1000 * cpu / max(w["requests"], 1),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and all its threads so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    generator: str, server: int, port: int, bodies: list[bytes], work: Path, clients: int, seconds: float
) -> dict:
    """One concurrency level; ``server_cpu_ms`` is the server's CPU per answered request. CPU time, unlike
    latency, barely depends on what else runs on the cores, so it says what the path costs on a shared machine."""
    start = cpu_seconds(server)
    if generator == "wrk":
        r = drive_wrk(port, work, clients, seconds)
    else:
        r = asyncio.run(drive(port, bodies, clients, seconds))
    return {**r, "server_cpu_ms": 1000 * (cpu_seconds(server) - start) / max(r["requests"], 1)}


def parse_args() -> argparse.Namespace:
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
        default="onnx",
        help="serve --backend values to compare: onnx (int8 export, made in RUN/onnx-int8 on first start), "
        "onnx-fp32, auto (the run as it is: PyTorch)",
    )
    p.add_argument("--paths", default="before,after,after-2x1", help=f"serving paths to compare: {', '.join(PATHS)}")
    p.add_argument("--batching", default="on,off", help="micro-batching modes: on, off or both")
    p.add_argument(
        "--generator",
        default="auto",
        choices=["auto", "wrk", "python"],
        help="load generator (auto: wrk when on PATH, else the Python one)",
    )
    return p.parse_args()


def run_all(args, run: Path, work: Path, bodies: list[bytes], generator: str) -> tuple[list[dict], dict]:
    """Every (path, backend, batching) server in turn, each driven at every concurrency level."""
    levels = [int(c) for c in args.clients.split(",")]
    results, logged = [], {}
    for path in _names(args.paths, PATHS):
        for backend in _names(args.backends):
            for batching in [m == "on" for m in _names(args.batching, ("on", "off"))]:
                proc, port = start_server(run, work, path, backend, batching, args)
                answered = in_flight = 0
                try:
                    answered += measure(generator, proc.pid, port, bodies, work, 4, 2.0)["requests"]  # warm-up
                    in_flight += 4
                    time.sleep(1.5)  # past the batcher's memory of concurrency (RECENT_S), so 1 client runs alone
                    for clients in levels:
                        r = measure(generator, proc.pid, port, bodies, work, clients, args.seconds)
                        answered, in_flight = answered + r["requests"], in_flight + clients
                        mode = "on" if batching else "off"
                        results.append({"path": path, "backend": backend, "batching": mode, **r})
                        print(
                            f"  {path} {backend} batching {mode:<3} {clients:>3} clients: {r['rps']:7.1f} req/s "
                            f"p50 {r['p50']:6.1f} ms, {r['errors']} errors",
                            file=sys.stderr,
                            flush=True,
                        )
                finally:
                    stop_server(proc)
                # wrk stops at its deadline with up to one request per connection in flight: the server still
                # answers and logs those, so the log may hold up to that many rows more than wrk counted.
                slack = in_flight if generator == "wrk" else 0
                logged[(path, backend, batching)] = (
                    answered,
                    logged_rows(db_path(work, path, backend, batching)),
                    slack,
                )
    return results, logged


def _names(text: str, known=None) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [x for x in names if known is not None and x not in known]
    if unknown:
        raise SystemExit(f"unknown {unknown}; choose from {list(known)}")
    return names


def print_table(results: list[dict]) -> None:
    header = (
        f"{'path':<10}{'backend':<10}{'batching':<9}{'clients':>8}{'requests':>10}{'req/s':>9}{'p50 ms':>9}"
        f"{'p95 ms':>9}{'p99 ms':>9}{'infer p50':>10}{'batch':>7}{'server cpu':>11}{'client cpu':>11}{'errors':>8}"
    )
    print(header + "\n" + "-" * len(header))
    for r in results:
        print(
            f"{r['path']:<10}{r['backend']:<10}{r['batching']:<9}{r['clients']:>8}{r['requests']:>10}{r['rps']:>9.1f}"
            f"{r['p50']:>9.2f}{r['p95']:>9.1f}{r['p99']:>9.1f}{r['inference_p50']:>10.1f}{r['mean_batch']:>7.1f}"
            f"{r['server_cpu_ms']:>11.2f}{r['client_cpu_ms']:>11.3f}{r['errors']:>8}"
        )
    print(
        "(infer p50: the server's inference_ms, the model call a request rode in (Python generator only); server / "
        "client cpu: CPU ms per request of the server and of the load generator, which share the same cores)"
    )


def print_verdict(results: list[dict], logged: dict) -> int:
    """Ratios after/before and on/off, the goals, the prediction-log check; the number of errors."""
    by = {(r["path"], r["backend"], r["batching"], r["clients"]): r for r in results}
    print()
    for path, backend, batching, clients in sorted(by):
        r = by[(path, backend, batching, clients)]
        before = by.get(("before", backend, batching, clients))
        if path != "before" and before is not None:
            print(
                f"{path}/before, {backend} batching {batching}, {clients:>2} clients: "
                f"{r['rps'] / max(before['rps'], 1e-9):.2f}x req/s, p50 {r['p50']:.2f} vs {before['p50']:.2f} ms"
            )
    for (path, backend, batching, clients), r in sorted(by.items()):
        if batching == "on" and clients == 32:
            ok = r["rps"] >= 300 and r["errors"] == 0
            print(
                f"{path} {backend}: {r['rps']:.1f} req/s at 32 clients, {r['errors']} errors (goal >= 300, 0): "
                f"{'met' if ok else 'NOT met'}"
            )
        if batching == "on" and clients == 1:
            print(
                f"{path} {backend}: p50 {r['p50']:.2f} ms at 1 client (goal <= 5 ms): "
                f"{'met' if r['p50'] <= 5 else 'NOT met'}"
            )
    mismatches = 0
    for (path, backend, batching), (answered, rows, slack) in logged.items():
        ok = answered <= rows <= answered + slack
        mismatches += not ok
        extra = f" (+ up to {slack} left in flight when the generator stopped)" if slack else ""
        print(
            f"prediction log, {path} {backend} batching {'on' if batching else 'off'}: {rows} rows for {answered} "
            f"answered requests{extra} after SIGTERM ({'nothing lost' if ok else 'MISMATCH'})"
        )
    errors = sum(r["errors"] for r in results) + mismatches
    print(f"errors: {errors}" + (f" ({sorted({k for r in results for k in r['error_kinds']})})" if errors else ""))
    return errors


def main() -> int:
    args = parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    run = Path(args.run) if args.run else train_default(work, args.n, args.config)
    if args.train_only:
        print(f"trained: {run}")
        return 0
    bodies = [json.dumps(t).encode() for t in tickets_for(run)]
    (work / "bodies.jsonl").write_bytes(b"\n".join(bodies) + b"\n")
    generator = args.generator if args.generator != "auto" else ("wrk" if shutil.which("wrk") else "python")
    load_before = os.getloadavg()
    results, logged = run_all(args, run, work, bodies, generator)
    load_after = os.getloadavg()
    print(
        f"\nserve load test: {run} ({len(bodies)} distinct tickets), {args.seconds:.0f} s per level, "
        f"max_batch {args.max_batch}, max_wait {args.max_wait_ms} ms, torch threads {args.threads or 'default'}, "
        f"{os.cpu_count()} CPUs, load generator {generator}"
    )
    print(
        f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
        f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}\n"
    )
    print_table(results)
    errors = print_verdict(results, logged)
    (work / "serve_load.json").write_text(
        json.dumps(
            {
                "run": str(run),
                "generator": generator,
                "results": results,
                "load_before": load_before,
                "load_after": load_after,
            },
            indent=2,
        )
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
