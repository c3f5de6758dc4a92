"""Serving a registry alias: hot reload under load with 0 failed requests, refused bad versions, watch mode."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from triagekit.core.registry import Registry  # noqa: E402

KEY = "s3cret-admin"


@pytest.fixture(scope="module")
def registry(prepared, tmp_path_factory):
    from triagekit.cli import main

    base = tmp_path_factory.mktemp("hot")
    run = base / "run"
    assert (
        main(
            [
                "train",
                "--data",
                str(prepared),
                "--output",
                str(run),
                "--backbone",
                "tfidf",
                "--labels",
                "queue,priority",
            ]
        )
        == 0
    )
    reg = Registry(base / "reg", create=True)
    for _ in range(3):
        reg.register(run, "router")
    reg.promote("router", 1, "production")
    return reg


class Server:
    """A real uvicorn server in a thread (requests from several client threads at once, as in production)."""

    def __init__(self, ref: str, settings):
        import uvicorn

        from triagekit.serve import create_app

        self.app = create_app(ref, settings)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "Server":
        self.thread.start()
        deadline = time.time() + 300  # model load on 2 shared cores under load can take minutes
        while time.time() < deadline:
            try:
                if httpx.get(self.url("/ready"), timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _settings(tmp_path, **kw):
    from triagekit.serve import ServeSettings

    return ServeSettings(db=f"sqlite:///{tmp_path / 'log.db'}", threads=1, **kw)


def _load(server: Server, stop: threading.Event, results: list, errors: list) -> None:
    with httpx.Client(timeout=30) as client:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                r = client.post(
                    server.url("/predict"),
                    json={"subject": f"invoice {i}", "body": "charged twice"},
                    headers={"X-API-Key": KEY},
                )
                if r.status_code != 200:
                    errors.append((r.status_code, r.text))
                else:
                    results.append((time.perf_counter(), r.json()["model_version"]))
            except httpx.HTTPError as exc:
                errors.append(("transport", repr(exc)))


def test_hot_swap_under_load_has_no_failed_requests(registry, tmp_path, monkeypatch):
    monkeypatch.setenv("HOT_KEY", KEY)
    ref = f"registry:{registry.root}/router@production"
    with Server(ref, _settings(tmp_path, api_key_env="HOT_KEY")) as server:
        stop, results, errors = threading.Event(), [], []
        clients = [threading.Thread(target=_load, args=(server, stop, results, errors)) for _ in range(8)]
        for t in clients:
            t.start()
        switches = []
        try:
            for target in (2, 1, 2, 1):  # promote, roll back, promote, roll back
                time.sleep(0.3)
                if target == 2:
                    registry.promote("router", 2, "production")
                else:
                    registry.rollback("router", "production")
                r = httpx.post(server.url("/admin/reload"), headers={"X-API-Key": KEY}, timeout=60)
                assert r.status_code == 200, r.text
                body = r.json()
                assert body["status"] == "reloaded" and body["model_version"] == f"router@v{target}"
                switches.append((time.perf_counter(), body["model_version"]))
            time.sleep(0.3)
        finally:
            stop.set()
            for t in clients:
                t.join()
        assert errors == []
        assert len(results) > 50
        versions = {v for _, v in results}
        assert versions == {"router@v1", "router@v2"}
        # after each swap answered, new requests run on the new version (in-flight ones may still say the old)
        for (at, version), (_, nxt) in zip(switches, switches[1:] + [(None, None)]):
            later = [v for t, v in results if t > at + 0.1 and (nxt is None or t < at + 0.25)]
            assert later and set(later) == {version}
        unchanged = httpx.post(server.url("/admin/reload"), headers={"X-API-Key": KEY}, timeout=60).json()
        assert unchanged["status"] == "unchanged"
        metrics = httpx.get(server.url("/metrics")).text
        assert 'triagekit_model_reloads_total{result="reloaded"} 4.0' in metrics
        assert httpx.post(server.url("/admin/reload")).status_code == 401  # admin needs the key
    # the prediction log records which version answered each request
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{tmp_path / 'log.db'}")
    with engine.connect() as conn:
        logged = {r[0] for r in conn.execute(text("select distinct model_version from predictions"))}
    engine.dispose()
    assert logged == {"router@v1", "router@v2"}


def test_a_version_that_fails_to_load_is_not_swapped_in(registry, tmp_path, monkeypatch):
    monkeypatch.setenv("HOT_KEY", KEY)
    registry.promote("router", 1, "production")
    with Server(f"registry:{registry.root}/router@production", _settings(tmp_path, api_key_env="HOT_KEY")) as server:
        weights = registry.files_dir("router", 3) / "tfidf.joblib"
        good = weights.read_bytes()
        weights.write_bytes(good[:100])  # damaged after registration
        registry.promote("router", 3, "production")
        try:
            r = httpx.post(server.url("/admin/reload"), headers={"X-API-Key": KEY}, timeout=60)
            assert r.status_code == 409
            body = r.json()
            assert body["status"] == "failed" and body["model_version"] == "router@v1"
            assert "IntegrityError" in body["error"] and "sha256" in body["error"]
            ready = httpx.get(server.url("/ready"))
            assert ready.status_code == 200 and ready.json()["model_version"] == "router@v1"
            p = httpx.post(server.url("/predict"), json={"text": "vpn down"}, headers={"X-API-Key": KEY})
            assert p.status_code == 200 and p.json()["model_version"] == "router@v1"
            assert 'triagekit_model_reloads_total{result="failed"} 1.0' in httpx.get(server.url("/metrics")).text
        finally:
            weights.write_bytes(good)
            registry.promote("router", 1, "production")


def test_watch_follows_the_alias_and_reload_needs_a_key(registry, tmp_path):
    registry.promote("router", 1, "production")
    with Server(f"registry:{registry.root}/router@production", _settings(tmp_path, watch_seconds=0.2)) as server:
        assert httpx.post(server.url("/admin/reload")).status_code == 403  # no key configured: the endpoint is shut
        registry.promote("router", 2, "production")
        deadline = time.time() + 30
        while time.time() < deadline and httpx.get(server.url("/ready")).json()["model_version"] != "router@v2":
            time.sleep(0.1)
        assert httpx.get(server.url("/ready")).json()["model_version"] == "router@v2"
        body = httpx.post(server.url("/predict"), json={"text": "refund please"}).json()
        assert body["model_version"] == "router@v2"
    registry.promote("router", 1, "production")
    assert json.loads((registry.root / "router" / "aliases.json").read_text())["production"]["version"] == 1
