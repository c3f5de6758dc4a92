"""The routing service in-process (TestClient / ASGI) and on a real uvicorn server on 127.0.0.1: endpoints, every
error path, micro-batching, the prediction log, feedback export, drift, an OpenAPI fuzz run (no 5xx), PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")
pytest.importorskip("prometheus_client")
httpx = pytest.importorskip("httpx")

from conftest import HEAD_RESULT_KEYS  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from triagekit.cli import main  # noqa: E402
from triagekit.serve import ServeSettings, create_app  # noqa: E402
from triagekit.serve.db import PredictionStore, feedback, predictions  # noqa: E402
from triagekit.serve.drift import DriftMonitor, distribution, drift_report, psi  # noqa: E402

try:
    import schemathesis  # noqa: E402
    from hypothesis import HealthCheck, settings  # noqa: E402
    from schemathesis.checks import not_a_server_error  # noqa: E402
except ImportError:  # pragma: no cover - the test extra brings it
    schemathesis = None

TICKETS = [
    {"subject": "Invoice charged twice", "body": "My card was billed twice for the May invoice."},
    {"subject": "VPN down", "body": "Cannot connect to the VPN since this morning's update."},
    {"text": "The printer on floor 3 is offline again"},
    {"subject": "Return a jacket", "body": "The size is wrong, I would like an exchange."},
]
KEY_ENV = "TRIAGEKIT_TEST_API_KEY"


@pytest.fixture(scope="module")
def router_dir(tiny_router, copy_router, tmp_path_factory):
    """The session's tiny router, copied (the service writes its drift reference beside it); priority's review
    threshold is raised so every prediction needs review."""
    out = copy_router(tiny_router, tmp_path_factory.mktemp("serve") / "router")
    info = json.loads((out / "router.json").read_text())
    info["calibration"].setdefault("priority", {})["review_threshold"] = 0.999
    (out / "router.json").write_text(json.dumps(info, indent=2))
    return out


def sqlite_url(tmp_path, name="log.db"):
    return f"sqlite:///{tmp_path / name}"


def make_app(router_dir, tmp_path, **kw):
    return create_app(router_dir, ServeSettings(db=sqlite_url(tmp_path), **kw))


def count(url, table):
    store = PredictionStore(url)
    try:
        return store.count(table)
    finally:
        store.dispose()


# ---------------------------------------------------------------------------------------------------------------
# endpoints, auth, logging
def test_endpoints_auth_and_prediction_log(router_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "s3cret-key")
    app = make_app(router_dir, tmp_path, api_key_env=KEY_ENV)
    key = {"X-API-Key": "s3cret-key"}
    with TestClient(app) as c:
        assert c.get("/health").json() == {"status": "ok"}
        ready = c.get("/ready")
        assert ready.status_code == 200 and ready.json()["model_version"]
        assert c.get("/metrics").status_code == 200  # ops endpoints stay open
        wrong = ["wrong", "s3cret-kez", "ünïcode".encode("latin-1")]
        for headers in [{}] + [{"X-API-Key": k} for k in wrong]:
            r = c.post("/predict", json=TICKETS[0], headers=headers)
            assert r.status_code == 401 and "X-API-Key" in r.json()["detail"]
        for path in ("/review", "/drift"):
            assert c.get(path).status_code == 401
        r = c.post("/feedback", json={"prediction_id": "x", "head": "queue", "correct_label": "x"})
        assert r.status_code == 401

        r = c.post("/predict", json={**TICKETS[0], "id": "T-1", "top_k": 2}, headers=key)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["id"] == "T-1" and len(body["prediction_id"]) == 32
        assert set(body["heads"]) == {"queue", "priority", "type", "tags"}
        queue = body["heads"]["queue"]
        # the router has an out-of-scope detector (the default), so each single-label head also says why it needs
        # review and whether the ticket fits none of its classes
        assert set(queue) == HEAD_RESULT_KEYS and len(queue["top_k"]) == 2
        assert isinstance(queue["out_of_scope"], bool) and set(queue["review_reasons"]) <= {
            "low_confidence",
            "out_of_scope",
        }
        assert isinstance(body["heads"]["tags"]["labels"], list)
        assert body["requires_review"] is True and body["heads"]["priority"]["requires_review"] is True
        assert body["model_version"] == ready.json()["model_version"] and body["inference_ms"] > 0

        r = c.post("/predict_batch", json={"items": TICKETS[1:], "top_k": 1}, headers=key)
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert len(items) == 3 and all(len(i["heads"]["queue"]["top_k"]) == 1 for i in items)
        assert items[0]["id"] == items[0]["prediction_id"]  # no client id: the prediction id stands in

        metrics = c.get("/metrics").text
        assert 'triagekit_requests_total{endpoint="/predict",method="POST",status="200"} 1.0' in metrics
        assert 'triagekit_requests_total{endpoint="/predict",method="POST",status="401"} 4.0' in metrics
        assert "triagekit_request_duration_seconds_bucket" in metrics and "triagekit_batch_size_count" in metrics
        assert 'triagekit_predictions_total{head="queue"' in metrics
        assert "triagekit_review_required_total 4.0" in metrics and "triagekit_drift_psi" in metrics
        schema = c.get("/openapi.json").json()
        assert {"/health", "/ready", "/metrics", "/predict", "/predict_batch", "/review", "/feedback", "/drift"} <= set(
            schema["paths"]
        )
    # Shutdown flushed the log: every prediction is there, with its input hash and outputs.
    store = PredictionStore(sqlite_url(tmp_path))
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(predictions.select().order_by(predictions.c.created_at)).mappings().all()
    finally:
        store.dispose()
    assert len(rows) == 4
    first = next(r for r in rows if r["request_id"] == "T-1")
    text = TICKETS[0]["subject"] + "\n" + TICKETS[0]["body"]
    assert first["input_hash"] == hashlib.sha256(text.encode()).hexdigest()
    assert first["inputs"] == TICKETS[0] and first["outputs"]["queue"]["label"] == queue["label"]
    assert first["latency_ms"] > 0 and first["model_version"] == body["model_version"] and first["created_at"]


def test_api_key_variable_must_be_set(router_dir, tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(ValueError, match=KEY_ENV):
        make_app(router_dir, tmp_path, api_key_env=KEY_ENV)


JSON = {"content-type": "application/json"}
BAD_INPUTS = [  # (method, path, kwargs, status, part of the message)
    ("post", "/predict", dict(json={"subject": "", "body": "   "}), 422, "empty ticket"),
    ("post", "/predict", dict(json={}), 422, "empty ticket"),
    ("post", "/predict", dict(json={"text": "x" * 3001}), 422, "too long"),
    ("post", "/predict", dict(content=b"{" + b'"text": "' + b"x" * 6000 + b'"}', headers=JSON), 413, "too large"),
    ("post", "/predict", dict(content=b'{"text": "unclosed', headers=JSON), 422, "malformed JSON"),
    ("post", "/predict", dict(content=b"", headers=JSON), 422, ""),
    ("post", "/predict", dict(json=["a list"]), 422, ""),
    ("post", "/predict", dict(json={"subject": 5}), 422, "string"),
    ("post", "/predict", dict(json={"text": "ok", "top_k": 10**30}), 422, "top_k"),
    ("post", "/predict", dict(json={"text": "ok", "top_k": 0}), 422, "top_k"),
    ("post", "/predict", dict(json={"text": "ok", "top_k": 999}), 422, "above the limit"),
    ("post", "/predict", dict(json={"text": "ok", "id": {"nested": 1}}), 422, "id"),
    ("post", "/predict", dict(json={"text": "ok", "id": True}), 422, "id"),
    ("post", "/predict", dict(content=b'{"text": "ok"}', headers={"content-type": "text/plain"}), 422, "JSON object"),
    ("post", "/predict", dict(content=b"[" * 2400 + b"]" * 2400, headers=JSON), 400, "nested"),
    ("post", "/predict", dict(json={"text": "ok", "customer": 42}), 422, "must be strings"),
    ("post", "/predict", dict(content=b'{"text": "\\ud800 lone surrogate"}', headers=JSON), 422, "surrogate"),
    ("post", "/predict", dict(content=b'{"\\udc00": "x", "text": "ok"}', headers=JSON), 422, ""),
    ("post", "/predict", dict(content=b'{"text": "\xff\xfe broken utf-8"}', headers=JSON), 400, "UTF-8"),
    ("post", "/predict", dict(content=b'{"text": "ok", "id": 1' + b"0" * 4400 + b"}", headers=JSON), 400, "JSON"),
    ("post", "/predict", dict(content=b'{"text": "ok", "id": NaN}', headers=JSON), 422, "integer"),
    ("post", "/predict", dict(content=b'{"text": "ok"}', headers={**JSON, "content-length": "abc"}), 400, "Length"),
    ("post", "/predict_batch", dict(json={"items": []}), 422, "at least 1"),
    ("post", "/predict_batch", dict(json={"items": [{"text": "ok"}] * 6}), 413, "too many items"),
    ("post", "/predict_batch", dict(json={"items": [{"text": "ok"}, {"text": " "}]}), 422, "items[1]: empty"),
    ("get", "/review?limit=0", {}, 422, "limit"),
    ("get", "/review?limit=abc", {}, 422, "limit"),
    ("post", "/feedback", dict(json={"prediction_id": "p"}), 422, "head"),
    ("post", "/feedback", dict(json={"prediction_id": "", "head": "queue", "correct_label": "x"}), 422, ""),
    ("get", "/no-such-endpoint", {}, 404, ""),
    ("delete", "/predict", {}, 405, ""),
]


def test_every_bad_input_is_a_clear_4xx(router_dir, tmp_path):
    app = make_app(router_dir, tmp_path, max_text_chars=3000, max_body_bytes=5000, max_batch_items=5)
    with TestClient(app) as c:
        for method, path, kwargs, status, message in BAD_INPUTS:
            r = getattr(c, method)(path, **kwargs)
            assert r.status_code == status, (path, kwargs, r.status_code, r.text)
            assert message in json.dumps(r.json()["detail"], ensure_ascii=False), (path, r.text)
        # NUL characters are dropped (PostgreSQL text cannot hold them), unicode text is fine.
        r = c.post("/predict", json={"text": "Drucker\x00 kaputt 🙃 — naïve", "id": 7})
        assert r.status_code == 200 and r.json()["id"] == 7


def test_model_that_fails_to_load_still_answers_health(tmp_path):
    (tmp_path / "model").mkdir()
    app = create_app(tmp_path / "model", ServeSettings(db=sqlite_url(tmp_path)))
    with TestClient(app) as c:
        assert c.get("/health").status_code == 200
        r = c.get("/ready")
        assert r.status_code == 503 and "router.json" in r.json()["reason"]
        r = c.post("/predict", json=TICKETS[0])
        assert r.status_code == 503 and "failed to load" in r.json()["detail"]
        assert c.post("/predict_batch", json={"items": TICKETS}).status_code == 503
        assert (
            c.post("/feedback", json={"prediction_id": "a", "head": "queue", "correct_label": "b"}).status_code == 503
        )
        assert c.get("/drift").status_code == 503
        assert c.get("/review").json() == {"items": [], "count": 0}
        assert "triagekit_model_loaded 0.0" in c.get("/metrics").text


def test_healthz_bare_array_batch_and_overview(router_dir, tmp_path):
    with TestClient(make_app(router_dir, tmp_path)) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        r = c.post("/predict_batch", json=[{**t, "id": f"B-{i}"} for i, t in enumerate(TICKETS)])
        assert r.status_code == 200, r.text
        assert [i["id"] for i in r.json()["items"]] == ["B-0", "B-1", "B-2", "B-3"]
        assert c.post("/predict_batch", json=[]).status_code == 422
        assert c.post("/predict_batch", json=[{"subject": 3}]).status_code == 422
        assert c.post("/predict_batch", json=[{"text": "x"}] * 65).status_code == 413
        assert c.post("/predict_batch", json={"items": TICKETS[:1]}).status_code == 200
        pid = r.json()["items"][0]["prediction_id"]
        label = c.app.state.service.router.heads[0].labels[0]
        c.post("/feedback", json={"prediction_id": pid, "head": "queue", "correct_label": label})
        overview = c.get("/overview").json()
        assert overview == {
            "predictions": 5,
            "requires_review": 5,
            "awaiting_review": 4,
            "feedback": 1,
            "model_version": r.json()["model_version"],
        }


def test_unreachable_database_is_retried_and_reported(router_dir, tmp_path, monkeypatch):
    # A closed port: the connection is refused at once; the password never appears in the reason.
    url = "postgresql+psycopg://u:hunter2@127.0.0.1:9/x"
    pytest.importorskip("psycopg")
    with TestClient(create_app(router_dir, ServeSettings(db=url, db_retry_max_s=0.2))) as c:
        assert c.get("/health").status_code == 200
        r = c.get("/ready")
        reason = r.json()["reason"]
        assert r.status_code == 503 and "database unreachable" in reason and "hunter2" not in reason
        assert "127.0.0.1:9" in reason and "attempt" in reason
        r = c.post("/predict", json=TICKETS[0])
        assert r.status_code == 503 and "prediction log unavailable" in r.json()["detail"]
        assert c.get("/review").status_code == 503 and c.get("/drift").status_code == 503

    # Recovery: the database answers on the third attempt; /ready turns 200 and predictions are logged.
    real, calls = PredictionStore.create, []

    def flaky(self):
        calls.append(1)
        if len(calls) < 3:
            raise OSError("connection refused")
        real(self)

    monkeypatch.setattr(PredictionStore, "create", flaky)
    with TestClient(make_app(router_dir, tmp_path, db_retry_max_s=0.2)) as c:
        assert "attempt" in c.get("/ready").json()["reason"]
        for _ in range(100):
            if c.get("/ready").status_code == 200:
                break
            time.sleep(0.05)
        assert c.get("/ready").status_code == 200 and len(calls) == 3
        assert c.post("/predict", json=TICKETS[0]).status_code == 200
    assert count(sqlite_url(tmp_path), predictions) == 1


# ---------------------------------------------------------------------------------------------------------------
# review queue, feedback, export
def test_review_feedback_and_export(router_dir, tmp_path):
    app = make_app(router_dir, tmp_path)
    with TestClient(app) as c:
        made = [c.post("/predict", json={**t, "id": f"T-{i}"}).json() for i, t in enumerate(TICKETS[:3])]
        review = c.get("/review", params={"limit": 10}).json()
        assert review["count"] == 3 and [i["prediction_id"] for i in review["items"]] == [
            m["prediction_id"] for m in made
        ]
        assert review["items"][0]["inputs"] == TICKETS[0] and "queue" in review["items"][0]["heads"]
        assert c.get("/review", params={"limit": 1}).json()["count"] == 1

        router = app.state.service.router
        queues = router.heads[0].labels
        tags = next(h for h in router.heads if h.name == "tags").labels
        pid = made[0]["prediction_id"]

        def post(**kw):
            return c.post("/feedback", json={"prediction_id": pid, "head": "queue", "correct_label": queues[0], **kw})

        r = post(prediction_id="0" * 32)
        assert r.status_code == 404 and "unknown prediction_id" in r.json()["detail"]
        r = post(head="colour")
        assert r.status_code == 422 and "unknown head" in r.json()["detail"]
        r = post(correct_label="Not A Queue")
        assert r.status_code == 422 and "unknown label" in r.json()["detail"]
        assert post(correct_label=[queues[0]]).status_code == 422  # a single-label head takes one label
        assert post(head="tags", correct_label=["no-such-tag"]).status_code == 422
        assert post(correct_label=queues[1]).status_code == 200
        r = post(correct_label=queues[0])  # a second answer for the same head wins in the export
        assert r.status_code == 200 and r.json() == {
            "prediction_id": pid,
            "head": "queue",
            "correct_label": queues[0],
            "recorded": True,
        }
        assert post(head="tags", correct_label=tags[:2]).json()["correct_label"] == tags[:2]
        left = c.get("/review").json()
        assert left["count"] == 2 and pid not in {i["prediction_id"] for i in left["items"]}
        assert 'triagekit_feedback_total{head="queue"} 2.0' in c.get("/metrics").text

    out = tmp_path / "corrected.jsonl"
    assert main(["feedback", "export", "--db", sqlite_url(tmp_path), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [
        {
            "id": "T-0",
            "prediction_id": pid,
            **TICKETS[0],
            "model_version": made[0]["model_version"],
            "queue": queues[0],
            "tags": tags[:2],
        }
    ]
    # A model dir (its predictions.db) or a SQLite file path are accepted too; a missing log is a clear error.
    assert main(["feedback", "export", "--db", str(tmp_path / "log.db"), "--out", str(out)]) == 0
    assert main(["feedback", "export", "--db", str(tmp_path / "nope.db"), "--out", str(out)]) == 2


# ---------------------------------------------------------------------------------------------------------------
# micro-batching
def test_batcher_waits_only_with_company_and_drains_on_stop():
    from triagekit.serve.batcher import BatcherClosed, MicroBatcher

    calls = []

    def double(items):
        calls.append(len(items))
        if "boom" in items:
            raise RuntimeError("boom")
        return [2 * x for x in items]

    async def scenario():
        b = MicroBatcher(double, max_batch=8, max_wait_ms=300)
        await b.start()
        start = time.perf_counter()
        assert [(await b.submit(i))[0] for i in range(3)] == [0, 2, 4]
        lone = time.perf_counter() - start
        together = await asyncio.gather(*(b.submit(i) for i in range(20)))
        with pytest.raises(RuntimeError, match="boom"):
            await b.submit("boom")
        queued = [asyncio.create_task(b.submit(i)) for i in range(5)]
        await asyncio.sleep(0)  # all five are queued before the stop
        await b.stop()
        with pytest.raises(BatcherClosed):
            await b.submit(1)
        return lone, [r for r, _ in together], [t.result()[0] for t in queued]

    lone, together, drained = asyncio.run(scenario())
    assert lone < 0.3  # a lone client never sits out the 300 ms wait
    assert together == [2 * i for i in range(20)] and calls[3:6] == [8, 8, 4]
    assert drained == [0, 2, 4, 6, 8]


async def _fire(app, payloads):
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            responses = await asyncio.gather(*(client.post("/predict", json=p) for p in payloads))
    return responses


def test_micro_batching_batches_concurrent_requests(router_dir, tmp_path):
    payloads = [{**TICKETS[i % len(TICKETS)], "id": i} for i in range(24)]
    app = make_app(router_dir, tmp_path, max_batch=16, max_wait_ms=50)
    batched = asyncio.run(_fire(app, payloads))
    assert all(r.status_code == 200 for r in batched)
    sizes = list(app.state.service.batch_sizes)
    assert sum(sizes) == 24 and max(sizes) > 1 and max(sizes) <= 16, sizes
    assert count(sqlite_url(tmp_path), predictions) == 24  # the lifespan exit drained and flushed everything

    app = create_app(router_dir, ServeSettings(db=sqlite_url(tmp_path, "single.db"), batching=False))
    single = asyncio.run(_fire(app, payloads))
    assert list(app.state.service.batch_sizes) == [1] * 24
    for a, b in zip(batched, single):  # a batch gives the same answers as one at a time
        qa, qb = a.json()["heads"]["queue"], b.json()["heads"]["queue"]
        assert qa["label"] == qb["label"] and qa["confidence"] == pytest.approx(qb["confidence"], abs=1e-4)
        assert a.json()["id"] == b.json()["id"]


# ---------------------------------------------------------------------------------------------------------------
# a real server: 1,000 feedback posts from 16 parallel clients
def _start_server(app):
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=10))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_thousand_concurrent_feedback_posts_all_stored(router_dir, tmp_path):
    app = make_app(router_dir, tmp_path)
    server, thread, base = _start_server(app)
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            made = client.post("/predict_batch", json={"items": [TICKETS[i % 4] for i in range(50)]}).json()["items"]
        labels = app.state.service.router.heads[0].labels
        jobs = [
            {"prediction_id": made[i % 50]["prediction_id"], "head": "queue", "correct_label": labels[i % 3]}
            for i in range(1000)
        ]

        def worker(chunk):
            with httpx.Client(base_url=base, timeout=30) as client:
                return [client.post("/feedback", json=job).status_code for job in chunk]

        with ThreadPoolExecutor(16) as pool:
            codes = [code for part in pool.map(worker, [jobs[i::16] for i in range(16)]) for code in part]
        assert codes == [200] * 1000
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert count(sqlite_url(tmp_path), feedback) == 1000


# ---------------------------------------------------------------------------------------------------------------
# drift
def test_psi_on_hand_made_distributions():
    assert psi([10, 20, 30, 40], [10, 20, 30, 40]) == pytest.approx(0, abs=1e-9)
    assert psi([0.1, 0.2, 0.3, 0.4], [1, 2, 3, 4]) == pytest.approx(0, abs=1e-9)  # counts or shares alike
    assert psi([25, 25, 25, 25], [26, 24, 25, 25]) < 0.01
    assert psi([25, 25, 25, 25], [70, 10, 10, 10]) > 0.2
    assert psi([50, 50, 0], [0, 50, 50]) > 1  # empty bins are floored, not infinite
    with pytest.raises(ValueError):
        psi([1, 2], [1, 2, 3])

    def outputs(labels, conf):
        return [
            {"queue": {"label": lab, "confidence": c}, "tags": {"labels": [lab] if c > 0.5 else [], "scores": {lab: c}}}
            for lab, c in zip(labels, conf)
        ]

    ref = distribution(outputs(["a", "b"] * 100, [0.95, 0.65] * 100))
    assert ref["queue"]["labels"] == {"a": 100, "b": 100} and ref["queue"]["n"] == 200
    assert ref["queue"]["confidence"][9] == 100 and ref["queue"]["confidence"][6] == 100
    assert ref["tags"]["labels"] == {"a": 100, "b": 100}
    same = drift_report(ref, distribution(outputs(["b", "a"] * 100, [0.65, 0.95] * 100)))
    assert same["status"] == "ok" and same["heads"]["queue"]["psi_label"] == pytest.approx(0, abs=1e-9)
    shifted = drift_report(ref, distribution(outputs(["a"] * 180 + ["b"] * 20, [0.3] * 200)))
    assert shifted["status"] == "alert" and shifted["heads"]["queue"]["psi_label"] > 0.2
    assert shifted["heads"]["queue"]["psi_confidence"] > 0.2
    few = drift_report(ref, distribution(outputs(["a"] * 10, [0.9] * 10)))
    assert few["status"] == "insufficient_data" and few["heads"]["queue"]["psi_label"] is not None

    monitor = DriftMonitor(["queue", "tags"], window=100, min_samples=50)
    assert monitor.report()["status"] == "insufficient_data" and monitor.report()["reason"]
    monitor.set_reference({"heads": ref}, "hand-made")
    report = monitor.report(outputs(["b"] * 50 + ["a"] * 250, [0.95] * 300))
    assert report["n"] == 100 and report["status"] == "alert"  # the window keeps only the latest 100
    assert report["heads"]["queue"]["n"] == 100


def test_ttl_cache_shares_misses_expires_and_invalidates():
    from triagekit.serve.cache import TTLCache

    calls = []

    def compute():
        calls.append(1)
        time.sleep(0.05)
        return len(calls)

    async def scenario():
        cache = TTLCache(0.3)
        together = await asyncio.gather(*(cache.get("k", compute) for _ in range(5)))
        cached = await cache.get("k", compute)
        cache.invalidate()
        after_invalidate = await cache.get("k", compute)
        await asyncio.sleep(0.35)
        expired = await cache.get("k", compute)
        # An invalidation while a query runs: its (possibly stale) result is returned but not kept.
        task = asyncio.create_task(cache.get("j", compute))
        await asyncio.sleep(0.01)
        cache.invalidate()
        await task
        return together, cached, after_invalidate, expired, await cache.get("j", compute)

    together, cached, after_invalidate, expired, j = asyncio.run(scenario())
    assert together == [1] * 5 and cached == 1  # five concurrent misses ran one query
    assert after_invalidate == 2 and expired == 3 and j == 5
    assert asyncio.run(TTLCache(0).get("k", lambda: "fresh")) == "fresh"


def test_drift_endpoint_uses_and_writes_the_reference(router_dir, tmp_path):
    app = make_app(router_dir, tmp_path, drift_window=50, drift_min_samples=5)
    with TestClient(app) as c:
        assert (router_dir / "reference.json").exists()  # computed from the run's val.jsonl at startup
        ref = json.loads((router_dir / "reference.json").read_text())
        assert ref["n"] > 0 and set(ref["heads"]) == {"queue", "priority", "type", "tags"}
        assert len(ref["heads"]["queue"]["confidence"]) == 10
        r = c.get("/drift").json()
        assert r["status"] == "insufficient_data" and r["n"] == 0 and r["window"] == 50
        c.post("/predict_batch", json={"items": TICKETS * 2})
        r = c.get("/drift").json()
        assert r["n"] == 8 and r["status"] in ("ok", "alert") and r["reference"].endswith("reference.json")
        assert all(h["psi_label"] is not None and h["psi_confidence"] >= 0 for h in r["heads"].values())
        assert 'triagekit_drift_psi{head="queue",kind="label"}' in c.get("/metrics").text
    with TestClient(make_app(router_dir, tmp_path, drift_window=50, drift_min_samples=5)) as c:
        assert c.get("/drift").json()["n"] == 8  # the window is refilled from the log after a restart


def test_drift_command_on_prediction_files(tmp_path, capsys):
    def write(path, labels, conf):
        lines = [
            {
                "id": i,
                "queue": {"label": lab, "confidence": c, "top_k": [], "requires_review": False},
                "requires_review": False,
                "model_version": "m",
            }
            for i, (lab, c) in enumerate(zip(labels, conf))
        ]
        path.write_text("".join(json.dumps(x) + "\n" for x in lines))

    write(tmp_path / "ref.jsonl", ["a", "b", "c", "d"] * 50, [0.9, 0.7, 0.5, 0.8] * 50)
    write(tmp_path / "same.jsonl", ["b", "a", "d", "c"] * 50, [0.7, 0.9, 0.8, 0.5] * 50)
    write(tmp_path / "cur.jsonl", ["a"] * 150 + ["b"] * 50, [0.35] * 200)
    args = ["drift", "--reference", str(tmp_path / "ref.jsonl"), "--json"]
    assert main(args + ["--current", str(tmp_path / "same.jsonl")]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "ok"
    assert (
        main(args + ["--current", str(tmp_path / "cur.jsonl"), "--plot", str(tmp_path / "d.png"), "--fail-on-alert"])
        == 1
    )
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "alert" and report["heads"]["queue"]["psi_label"] > 0.2
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["drift", "--reference", str(tmp_path / "ref.jsonl"), "--current", str(tmp_path / "cur.jsonl")]) == 0
    assert "alert" in capsys.readouterr().out and (tmp_path / "cur.drift.png").exists()


def test_serve_command_builds_settings(router_dir, monkeypatch):
    import triagekit.serve.app as serve_app

    seen = {}
    monkeypatch.setattr(serve_app, "run_server", lambda model, settings, log_level: seen.update(s=settings, m=model))
    assert (
        main(
            [
                "serve",
                str(router_dir),
                "--no-batching",
                "--max-batch",
                "8",
                "--max-wait-ms",
                "2",
                "--port",
                "9999",
                "--db",
                "sqlite:///x.db",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    s = seen["s"]
    assert (s.batching, s.max_batch, s.max_wait_ms, s.port, s.db, s.host, s.threads) == (
        False,
        8,
        2.0,
        9999,
        "sqlite:///x.db",
        "127.0.0.1",
        1,
    )
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert main(["serve", str(router_dir), "--api-key-env", KEY_ENV]) == 2  # refuses to run without its key
    with pytest.raises(ValueError, match="drift_min_samples"):
        ServeSettings(drift_window=10, drift_min_samples=20)


# ---------------------------------------------------------------------------------------------------------------
# OpenAPI fuzzing: no input may produce a 5xx
@pytest.fixture(scope="module")
def fuzz_app(router_dir, tmp_path_factory):
    """An app whose lifespan schemathesis starts on first call; shut down here so its log is flushed."""
    db = tmp_path_factory.mktemp("fuzz") / "log.db"
    app = create_app(router_dir, ServeSettings(db=f"sqlite:///{db}", max_body_bytes=20_000, max_text_chars=2_000))
    yield app
    from schemathesis.python.asgi import shutdown_lifespans

    shutdown_lifespans()


if schemathesis is not None:
    # The schema is generated without starting anything; the calls go to the module's trained app.
    schema = schemathesis.openapi.from_dict(create_app("unused-model-dir").openapi())

    @pytest.mark.slow  # OpenAPI fuzzing
    @schema.parametrize()
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def test_openapi_fuzz_never_5xx(case, fuzz_app):
        case.call_and_validate(app=fuzz_app, checks=[not_a_server_error])


# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL (scripts/ci_postgres.sh starts a throwaway cluster and prints the URL)
@pytest.mark.skipif(not os.environ.get("TRIAGEKIT_TEST_PG_URL"), reason="TRIAGEKIT_TEST_PG_URL not set")
def test_postgres_predict_feedback_export(router_dir, tmp_path):
    pytest.importorskip("psycopg")
    from triagekit.serve.db import metadata

    url = os.environ["TRIAGEKIT_TEST_PG_URL"]
    store = PredictionStore(url)
    metadata.drop_all(store.engine)  # a clean slate on every run
    store.dispose()
    app = create_app(router_dir, ServeSettings(db=url))
    with TestClient(app) as c:
        made = c.post("/predict_batch", json={"items": [{**t, "id": f"P-{i}"} for i, t in enumerate(TICKETS)]})
        made = made.json()["items"]
        assert c.get("/review").json()["count"] == 4
        labels = app.state.service.router.heads[0].labels
        r = c.post(
            "/feedback", json={"prediction_id": made[1]["prediction_id"], "head": "queue", "correct_label": labels[-1]}
        )
        assert r.status_code == 200, r.text
        assert (
            c.post(
                "/feedback", json={"prediction_id": "f" * 32, "head": "queue", "correct_label": labels[0]}
            ).status_code
            == 404
        )
        assert c.post("/predict", json={"text": "nul\x00 byte and ünïcode ✓"}).status_code == 200
    assert count(url, predictions) == 5 and count(url, feedback) == 1
    out = tmp_path / "pg.jsonl"
    assert main(["feedback", "export", "--db", url, "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [
        {
            "id": "P-1",
            "prediction_id": made[1]["prediction_id"],
            **TICKETS[1],
            "model_version": made[1]["model_version"],
            "queue": labels[-1],
        }
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_process(router_dir, url, port):
    import subprocess
    import sys

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [
        sys.executable,
        "-m",
        "triagekit",
        "serve",
        str(router_dir),
        "--db",
        url,
        "--port",
        str(port),
        "--drift-window",
        "60",
        "--drift-min-samples",
        "5",
        "--threads",
        "1",
        "--log-level",
        "warning",
    ]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_ready(base, proc, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{base} exited with {proc.returncode}: {proc.stdout.read()[-3000:]}")
        try:
            if httpx.get(base + "/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{base} not ready after {timeout} s")


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("TRIAGEKIT_TEST_PG_URL"), reason="TRIAGEKIT_TEST_PG_URL not set")
def test_two_replicas_on_one_postgres_agree_and_sigterm_loses_nothing(router_dir):
    """Two `triagekit serve` processes on one PostgreSQL log: requests spread over both; /drift, /review and
    /overview agree; feedback posted to one is seen by the other; SIGTERM to one loses no logged prediction."""
    pytest.importorskip("psycopg")
    import signal

    from triagekit.serve.db import metadata

    url = os.environ["TRIAGEKIT_TEST_PG_URL"]
    store = PredictionStore(url)
    metadata.drop_all(store.engine)
    store.dispose()
    ports = [_free_port(), _free_port()]
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    procs = [_serve_process(router_dir, url, p) for p in ports]
    try:
        for base, proc in zip(bases, procs):
            _wait_ready(base, proc)
        made = [
            httpx.post(bases[i % 2] + "/predict", json={**TICKETS[i % 4], "id": f"R-{i}"}, timeout=30).json()
            for i in range(20)
        ]
        batch = httpx.post(bases[1] + "/predict_batch", json=TICKETS, timeout=30)
        assert batch.status_code == 200 and len(made) == 20
        time.sleep(2.5)  # the other replica's log flush (50 ms) and its cached views (shared_cache_s = 2 s)

        def views(base):
            return {
                path: httpx.get(base + path, params={"limit": 100} if path == "/review" else None, timeout=30).json()
                for path in ("/drift", "/review", "/overview")
            }

        a, b = views(bases[0]), views(bases[1])
        assert a == b
        assert a["/drift"]["n"] == 24 and a["/drift"]["status"] in ("ok", "alert")
        assert a["/review"]["count"] == 24 and a["/overview"]["predictions"] == 24
        assert {i["prediction_id"] for i in a["/review"]["items"]} == {m["prediction_id"] for m in made} | {
            i["prediction_id"] for i in batch.json()["items"]
        }

        # Feedback on replica 0 about a prediction replica 1 made: replica 0 sees it at once, replica 1 within 2 s.
        label = a["/review"]["items"][0]["heads"]["queue"]["label"]
        r = httpx.post(
            bases[0] + "/feedback",
            timeout=30,
            json={"prediction_id": made[1]["prediction_id"], "head": "queue", "correct_label": label},
        )
        assert r.status_code == 200, r.text
        assert views(bases[0])["/review"]["count"] == 23
        time.sleep(2.2)
        b = views(bases[1])
        assert b["/review"]["count"] == 23 and b["/overview"]["feedback"] == 1
        assert made[1]["prediction_id"] not in {i["prediction_id"] for i in b["/review"]["items"]}

        # SIGTERM to replica 1 while requests are in flight: every prediction it answered is in the log.
        def one(i):
            try:
                r = httpx.post(bases[1] + "/predict", json={**TICKETS[i % 4], "id": f"S-{i}"}, timeout=30)
            except httpx.HTTPError:
                return None  # refused once the server stopped accepting: not answered, so not owed to the log
            return r.json()["prediction_id"] if r.status_code == 200 else None

        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(one, i) for i in range(60)]
            while sum(f.done() for f in futures) < 10:
                time.sleep(0.01)
            procs[1].send_signal(signal.SIGTERM)
            answered = [pid for pid in (f.result() for f in futures) if pid]
        # uvicorn shuts down gracefully, then re-raises the captured SIGTERM: exit status -15 is the normal end.
        assert procs[1].wait(60) in (0, -signal.SIGTERM), procs[1].stdout.read()[-3000:]
        assert len(answered) >= 10
        store = PredictionStore(url)
        try:
            with store.engine.connect() as conn:
                logged = {r[0] for r in conn.execute(predictions.select().with_only_columns(predictions.c.id))}
        finally:
            store.dispose()
        assert set(answered) <= logged and len(logged) == 24 + len(answered)
        time.sleep(2.1)  # replica 0 wrote nothing since: its cached overview ages out
        assert httpx.get(bases[0] + "/overview", timeout=30).json()["predictions"] == 24 + len(answered)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
