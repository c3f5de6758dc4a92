"""The throughput settings of ``triagekit serve``: the hybrid's two halves side by side, length-sorted forward passes
(``model_batch``), several model calls at once (``inference_workers``), orjson bodies (``fast_json``) and uvicorn's
loop and parser choices; each must give the same answers as the path it speeds up."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from triagekit.route.heads import HeadSpec
from triagekit.route.hybrid import PARALLEL_ENV, HybridBackend

TICKETS = [
    {"subject": "Invoice charged twice", "body": "My card was billed twice for the May invoice."},
    {"subject": "VPN down", "body": "Cannot connect to the VPN since this morning's update, error 809 each time."},
    {"text": "The printer on floor 3 is offline again"},
    {"subject": "Return", "body": "The size is wrong. " * 12},
]


class _Slow:
    """A backend that records which thread ran it and when, and takes ``seconds``."""

    def __init__(self, heads, seconds, log):
        self.heads, self.seconds, self.log = heads, seconds, log

    def logits(self, texts, batch_size=64, heads=None):
        start = time.perf_counter()
        time.sleep(self.seconds)
        self.log.append((threading.current_thread().name, start, time.perf_counter()))
        return {
            h.name: np.full((len(texts), len(h.labels)), 0.25) for h in self.heads if heads is None or h.name in heads
        }


@pytest.mark.parametrize("parallel", ["1", "0"])
def test_hybrid_halves_run_side_by_side_unless_told_not_to(parallel, monkeypatch):
    monkeypatch.setenv(PARALLEL_ENV, parallel)
    heads = [HeadSpec("queue", ["a", "b"]), HeadSpec("tags", ["x", "y"], multilabel=True)]
    neural_log, lexical_log = [], []
    hybrid = HybridBackend(_Slow(heads, 0.2, neural_log), _Slow(heads, 0.2, lexical_log), {"queue": 1.0, "tags": 1.0})
    out = hybrid.logits(["t1", "t2"])
    (n_thread, n_start, n_end), (l_thread, l_start, l_end) = neural_log[0], lexical_log[0]
    overlap = min(n_end, l_end) - max(n_start, l_start)
    if parallel == "1":
        assert l_thread.startswith("triagekit-lexical") and l_thread != n_thread and overlap > 0.1
    else:
        assert l_thread == n_thread and overlap <= 0
    np.testing.assert_allclose(out["tags"], np.full((2, 2), 0.5))  # the same pooled logits either way


def test_batcher_with_two_workers_overlaps_calls_and_drains_on_stop():
    from triagekit.serve.batcher import BatcherClosed, MicroBatcher

    running, peak, lock = [0], [0], threading.Lock()

    def slow_double(items):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.1)
        with lock:
            running[0] -= 1
        return [2 * x for x in items]

    async def scenario(workers):
        b = MicroBatcher(slow_double, max_batch=4, max_wait_ms=5, workers=workers)
        await b.start()
        answers = await asyncio.gather(*(b.submit(i) for i in range(16)))
        queued = [asyncio.create_task(b.submit(i)) for i in range(7)]
        await asyncio.sleep(0)  # all seven are queued before the stop
        await asyncio.wait_for(b.stop(), 10)  # every gathering task stops (none waits forever on the queue)
        with pytest.raises(BatcherClosed):
            await b.submit(1)
        return [r for r, _ in answers], [t.result()[0] for t in queued]

    peak[0] = 0
    answers, drained = asyncio.run(scenario(2))
    assert answers == [2 * i for i in range(16)] and drained == [2 * i for i in range(7)]
    assert peak[0] == 2  # two model calls ran at once
    peak[0] = 0
    answers, _ = asyncio.run(scenario(1))
    assert answers == [2 * i for i in range(16)] and peak[0] == 1  # one worker: calls never overlap


def test_settings_check_loop_and_parser_and_uvicorn_gets_them(monkeypatch):
    import importlib.util

    from triagekit.serve import ServeSettings
    from triagekit.serve.app import _uvicorn_choices

    with pytest.raises(ValueError, match="loop must be one of"):
        ServeSettings(loop="trio")
    with pytest.raises(ValueError, match="http one of"):
        ServeSettings(http="h2")
    with pytest.raises(ValueError, match="model_batch"):
        ServeSettings(model_batch=0)
    assert _uvicorn_choices(ServeSettings(loop="asyncio", http="h11")) == {"loop": "asyncio", "http": "h11"}
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "uvloop" else real(name))
    with pytest.raises(SystemExit, match="uvloop is not installed"):
        _uvicorn_choices(ServeSettings(loop="uvloop"))
    assert _uvicorn_choices(ServeSettings())["loop"] == "auto"  # auto falls back to asyncio inside uvicorn


def test_serve_command_passes_the_speed_settings(tiny_router, monkeypatch):
    import triagekit.serve.app as serve_app
    from triagekit.cli import main

    seen = {}
    monkeypatch.setattr(serve_app, "run_server", lambda model, settings, log_level: seen.update(s=settings))
    flags = ["--loop", "asyncio", "--http", "h11", "--no-fast-json", "--model-batch", "64", "--inference-workers", "2"]
    assert main(["serve", str(tiny_router), *flags]) == 0
    s = seen["s"]
    assert (s.loop, s.http, s.fast_json, s.model_batch, s.inference_workers) == ("asyncio", "h11", False, 64, 2)
    assert main(["serve", str(tiny_router)]) == 0
    s = seen["s"]
    assert (s.loop, s.http, s.fast_json, s.model_batch, s.inference_workers) == ("auto", "auto", True, 4, 1)


pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")


async def _answers(app, payloads, batch):
    import httpx

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            singles = await asyncio.gather(*(client.post("/predict", json=p) for p in payloads))
            batched = await client.post("/predict_batch", json={"items": batch, "top_k": 1})
    return singles, batched


def _stable(body):
    """A response body without what differs from call to call (ids made per prediction, timings)."""
    if "items" in body:
        return {**body, "items": [_stable(i) for i in body["items"]]}
    same = body.get("id") == body["prediction_id"]  # no client id: the prediction id stands in
    return {
        **{k: v for k, v in body.items() if k not in ("prediction_id", "inference_ms")},
        **({"id": "="} if same else {}),
    }


def _assert_close(a, b, where="body"):
    """Equal structures, floats within 1e-4 (padding to another width moves the encoder's output a little)."""
    if isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, abs=1e-4), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_close(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_fast_path_gives_the_same_bodies_as_the_older_one(tiny_hybrid_router, copy_router, tmp_path):
    """orjson bodies vs response-model validation, 2 workers and forward passes of 2 vs one padded batch: the same
    answers, content type, and every prediction logged."""
    from triagekit.serve import ServeSettings, create_app
    from triagekit.serve.db import PredictionStore, predictions

    run = copy_router(tiny_hybrid_router, tmp_path / "router")
    payloads = [{**TICKETS[i % len(TICKETS)], "id": f"T-{i}", "top_k": 2} for i in range(12)]
    bodies = {}
    for name, kw in {
        "fast": dict(fast_json=True, model_batch=2, inference_workers=2, threads=1),
        "older": dict(fast_json=False, model_batch=64),
    }.items():
        url = f"sqlite:///{tmp_path / name}.db"
        app = create_app(run, ServeSettings(db=url, max_batch=8, max_wait_ms=20, **kw))
        singles, batched = asyncio.run(_answers(app, payloads, TICKETS))
        assert all(r.status_code == 200 for r in singles) and batched.status_code == 200, batched.text
        assert {r.headers["content-type"] for r in singles} == {"application/json"}
        bodies[name] = ([_stable(r.json()) for r in singles], _stable(batched.json()))
        store = PredictionStore(url)
        try:
            assert store.count(predictions) == len(payloads) + len(TICKETS)
        finally:
            store.dispose()
    _assert_close(bodies["fast"], bodies["older"])
    assert bodies["fast"][0][0]["id"] == "T-0" and "requires_review" in bodies["fast"][0][0]
