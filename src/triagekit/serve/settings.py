"""``ServeSettings``: everything ``triagekit serve`` can be told, as one typed, checked dataclass."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

__all__ = ["ServeSettings", "SETTINGS_ENV", "MODEL_DIR_ENV", "DB_URL_ENV", "env_or_file"]

SETTINGS_ENV = "TRIAGEKIT_SERVE_SETTINGS"
"""Environment variable carrying the settings as JSON to uvicorn worker processes (``--workers N``)."""
MODEL_DIR_ENV = "TRIAGEKIT_SERVE_MODEL_DIR"
LOOPS = ("auto", "uvloop", "asyncio")
HTTP_PARSERS = ("auto", "httptools", "h11")
DB_URL_ENV = "TRIAGEKIT_DB_URL"
"""Prediction log URL when ``--db`` is not given (the container image, compose and Kubernetes set it)."""


def env_or_file(name: str) -> str:
    """The value of environment variable ``name``, else the content of the file named by ``name``_FILE (how
    Kubernetes and Docker secrets are mounted: a file is not inherited by child processes or dumped with the
    environment), else ``""``."""
    value = os.environ.get(name, "")
    path = os.environ.get(f"{name}_FILE", "")
    if not value and path:
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"{name}_FILE={path}: cannot read it ({exc.strerror})") from None
    return value


@dataclass
class ServeSettings:
    """How the routing service runs; ``triagekit serve --help`` lists the same knobs."""

    host: str = "127.0.0.1"
    """Interface to bind; loopback by default so nothing is exposed by accident."""
    port: int = 8000
    """TCP port."""
    workers: int = 1
    """uvicorn worker processes; each loads its own copy of the model."""
    loop: str = "auto"
    """uvicorn's event loop: ``auto`` (uvloop when installed, as the ``serve`` extra does), ``uvloop`` or
    ``asyncio``."""
    http: str = "auto"
    """uvicorn's HTTP/1.1 parser: ``auto`` (httptools when installed, as the ``serve`` extra does), ``httptools``
    or ``h11``."""
    fast_json: bool = True
    """Answer ``/predict`` and ``/predict_batch`` with orjson-encoded bodies built by the service (the response
    models still document them); False validates each body against its response model first (the older path)."""
    db: str | None = None
    """SQLAlchemy URL of the prediction log; default ``$TRIAGEKIT_DB_URL``, else ``sqlite:///<model dir>/
    predictions.db``. Replicas that share one (PostgreSQL) log report the same drift, review queue and overview."""
    shared_cache_s: float = 2.0
    """How long a replica reuses its drift / review / overview query on the shared log (its own writes reset it)."""
    db_retry_max_s: float = 30.0
    """Longest wait between two attempts to reach an unreachable database at start (backoff doubles up to it)."""
    api_key_env: str | None = None
    """Name of an environment variable holding the API key; when set, ``X-API-Key`` is required."""
    batching: bool = True
    """Gather concurrent requests into one model call (micro-batching)."""
    max_batch: int = 32
    """Most inputs in one model call."""
    max_wait_ms: float = 5.0
    """Longest time the first request of a batch waits for company."""
    inference_workers: int = 1
    """Model calls that may run at once, each on its own thread; with ``threads`` 1, two of them keep 2 cores busy
    with less overhead than one call on two threads (docs/serving.md#throughput)."""
    model_batch: int = 4
    """Most inputs per forward pass: a micro-batch is sorted by token length and run in chunks of this size, so
    short tickets are not padded to the longest one (docs/serving.md#throughput: chunks of 4 cost 40 % of the CPU
    per ticket of one padded pass of 32)."""
    max_batch_items: int = 64
    """Most items in one ``POST /predict_batch`` (413 above)."""
    max_body_bytes: int = 1_000_000
    """Largest request body accepted (413 above)."""
    max_text_chars: int = 20_000
    """Longest ticket text (all text fields together) accepted (422 above)."""
    max_top_k: int = 20
    """Largest ``top_k`` a client may ask for."""
    drift_window: int = 1000
    """Number of most recent predictions compared with the reference distribution."""
    drift_threshold: float = 0.2
    """PSI at or above which a head's drift status is ``alert``."""
    drift_min_samples: int = 100
    """Fewer predictions in the window than this give status ``insufficient_data``."""
    log_flush_ms: float = 50.0
    """Pending prediction-log rows are written at least this often (one transaction per flush)."""
    device: str | None = None
    """Torch device for the model (default: cuda when available, else cpu)."""
    threads: int | None = None
    """Torch intra-op threads for inference (default: torch's, one per core); 1 is often faster on shared cores."""
    backend: str = "auto"
    """``auto`` serves the directory as it is; ``onnx`` / ``onnx-fp32`` serve the run's ONNX export (int8 / fp32),
    made in the run directory on first start (``triagekit.serve.backends``)."""
    answer_model: str | None = None
    """Run directory (or base name) of an answer model; enables ``POST /generate``."""
    guardrails: str | None = None
    """YAML guardrail rules for ``/generate`` (default: the built-in ones)."""
    max_new_tokens: int = 512
    """Largest ``max_new_tokens`` a ``/generate`` client may ask for."""
    triage_model: str | None = None
    """Run directory (or base name) of a triage model; enables ``POST /triage``."""
    watch_seconds: float = 0.0
    """Poll the served ``registry:NAME@alias`` this often and hot-reload when it moves (0: only on
    ``POST /admin/reload``)."""
    triage_router: str | None = None
    """Router run that fills the triage schema's enum fields (router-guided triage; heads map to fields by name)."""

    def __post_init__(self) -> None:
        for name in (
            "port",
            "workers",
            "max_batch",
            "model_batch",
            "inference_workers",
            "max_batch_items",
            "max_body_bytes",
            "max_text_chars",
            "max_top_k",
            "drift_window",
            "drift_min_samples",
            "max_new_tokens",
        ):
            if int(getattr(self, name)) < (0 if name == "port" else 1):
                raise ValueError(f"serve setting {name} must be positive, got {getattr(self, name)!r}")
        from triagekit.serve.backends import BACKENDS

        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.loop not in LOOPS or self.http not in HTTP_PARSERS:
            raise ValueError(
                f"loop must be one of {LOOPS} and http one of {HTTP_PARSERS}, got {self.loop!r}, {self.http!r}"
            )
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if self.watch_seconds < 0:
            raise ValueError(f"watch_seconds must be >= 0, got {self.watch_seconds}")
        if self.shared_cache_s < 0 or self.db_retry_max_s <= 0:
            raise ValueError("shared_cache_s must be >= 0 and db_retry_max_s > 0")
        if self.max_wait_ms < 0 or self.log_flush_ms <= 0:
            raise ValueError("max_wait_ms must be >= 0 and log_flush_ms > 0")
        if not 0 < self.drift_threshold:
            raise ValueError(f"drift_threshold must be > 0, got {self.drift_threshold}")
        if self.drift_min_samples > self.drift_window:
            raise ValueError(
                f"drift_min_samples ({self.drift_min_samples}) cannot exceed drift_window "
                f"({self.drift_window}): drift would never be reported"
            )

    def db_url(self, model_dir: str | Path) -> str:
        """``db``, or a SQLite file beside the model: in the run folder, or for ``registry:NAME@alias`` in the
        registry's ``NAME/`` folder (one log for all versions, so feedback outlives a promotion)."""
        if self.db or env_or_file(DB_URL_ENV):
            return self.db or env_or_file(DB_URL_ENV)
        from triagekit.core.registry import is_registry_ref, parse_ref

        if is_registry_ref(str(model_dir)):
            ref = parse_ref(str(model_dir))
            return f"sqlite:///{(ref.root / ref.name).resolve() / 'predictions.db'}"
        return f"sqlite:///{Path(model_dir).resolve() / 'predictions.db'}"

    def api_key(self) -> str | None:
        """The key to require, read from the named environment variable; fails closed when it is empty."""
        if not self.api_key_env:
            return None
        key = env_or_file(self.api_key_env)
        if not key:
            raise ValueError(
                f"--api-key-env {self.api_key_env}: that environment variable is not set or empty (nor "
                f"{self.api_key_env}_FILE, a file holding the key)"
            )
        return key

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ServeSettings":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(text).items() if k in known})

    @classmethod
    def from_env(cls) -> "ServeSettings":
        return cls.from_json(os.environ[SETTINGS_ENV]) if os.environ.get(SETTINGS_ENV) else cls()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
