"""Which model files the service runs: the directory as it is, or an ONNX export of a run made on first start.

``triagekit serve RUN --backend onnx`` exports the run once to ``RUN/onnx-int8/`` (one ONNX graph, dynamic int8,
run by onnxruntime) and serves that; later starts reuse it while the run is unchanged. A stamp of the run's
``router.json`` and weight files is kept beside the export, so retraining or recalibrating the run (``triagekit
eval`` rewrites the review thresholds) makes the next start export again instead of serving stale numbers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["BACKENDS", "resolve_model_dir", "onnx_dir", "STAMP_FILE"]

log = logging.getLogger("triagekit.serve")

BACKENDS = ("auto", "onnx", "onnx-fp32")
"""``auto``: serve the directory as it is (PyTorch for a run, onnxruntime for an ONNX export); ``onnx``: the int8
ONNX export of the run (the fast path on CPU); ``onnx-fp32``: the float32 export (PyTorch's numbers to 1e-4)."""
STAMP_FILE = "source.json"


def onnx_dir(run_dir: str | Path, backend: str) -> Path:
    """Where ``--backend onnx`` / ``onnx-fp32`` keeps the export of ``run_dir``."""
    return Path(run_dir) / ("onnx-int8" if backend == "onnx" else "onnx-fp32")


def resolve_model_dir(model_dir: str | Path, backend: str = "auto") -> Path:
    """The directory to ``Router.load`` for ``backend``, exporting the run first when its export is missing or stale.

    Args:
        model_dir: a run or export directory (``router.json``).
        backend: one of ``BACKENDS``.

    Raises:
        ValueError: unknown backend, or a run that cannot be exported (e.g. a TF-IDF run).
        FileNotFoundError: ``model_dir`` has no ``router.json``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    model_dir = Path(model_dir)
    if backend == "auto":
        return model_dir
    info_file = model_dir / "router.json"
    if not info_file.exists():
        raise FileNotFoundError(f"{model_dir} is not a triagekit model directory (no router.json)")
    kind = json.loads(info_file.read_text()).get("backend")
    if kind == "onnx":  # already an ONNX export: serve it as it is
        return model_dir
    if kind != "encoder":
        raise ValueError(
            f"--backend {backend} needs an encoder run to export; {model_dir} is a {kind!r} model "
            f"(serve it with --backend auto)"
        )
    out = onnx_dir(model_dir, backend)
    stamp = _source_stamp(model_dir)
    with _lock(model_dir / f".{out.name}.lock"):  # several workers or servers may start at once
        if _read_stamp(out) == stamp:
            return out
        log.warning("exporting %s to ONNX (%s) in %s; later starts reuse it", model_dir, backend, out)
        from triagekit.exporters.onnx import export_onnx

        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            export_onnx(model_dir, tmp, quantize="int8" if backend == "onnx" else None)
            (tmp / STAMP_FILE).write_text(json.dumps(stamp, indent=2))
            shutil.rmtree(out, ignore_errors=True)
            os.replace(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _source_stamp(run_dir: Path) -> dict:
    """What the export was made from: the run's router.json and the size and time of every weight file."""
    info_bytes = (run_dir / "router.json").read_bytes()
    info = json.loads(info_bytes)
    digest = hashlib.sha256(info_bytes)
    for sub in sorted({info.get("model_dir", "."), "lexical"}):
        root = run_dir / sub
        if not root.is_dir():
            continue
        # The run folder itself (model_dir ".") also holds checkpoints/ and tb/, which change nothing served.
        files = sorted(p for p in root.rglob("*") if p.is_file() and not _ignored(p.relative_to(run_dir)))
        for p in files:
            st = p.stat()
            digest.update(f"{p.relative_to(run_dir)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    from triagekit import __version__

    return {"run": str(run_dir.resolve()), "sha256": digest.hexdigest(), "triagekit": __version__}


def _ignored(rel: Path) -> bool:
    top = rel.parts[0]
    return (
        top in ("checkpoints", "tb", "eval")
        or top.startswith(("onnx-", ".onnx-"))
        or rel.suffix in (".db", ".db-wal", ".db-shm", ".lock", ".jsonl")
        or rel.name == "reference.json"
    )


def _read_stamp(out: Path) -> dict | None:
    try:
        return json.loads((out / STAMP_FILE).read_text()) if (out / "router.json").exists() else None
    except (OSError, ValueError):
        return None


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not on POSIX: no cross-process lock
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
