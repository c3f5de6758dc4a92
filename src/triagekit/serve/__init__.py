"""The routing service: ``triagekit serve DIR`` (FastAPI + uvicorn), its prediction log, feedback and drift.

Needs the ``serve`` extra (``pip install 'triagekit[serve]'``). Importing this package is cheap and never fails;
the service modules are loaded on first use, with a clear message when the extra is missing.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

__all__ = ["create_app", "ServeSettings", "run_server", "require_serve_extra"]


def require_serve_extra(*modules: str) -> None:
    """Raise a RuntimeError naming the missing packages of the ``serve`` extra."""
    missing = [
        m
        for m in modules or ("fastapi", "uvicorn", "sqlalchemy", "prometheus_client", "orjson")
        if find_spec(m) is None
    ]
    if missing:
        raise RuntimeError(f"this needs {', '.join(missing)}: pip install 'triagekit[serve]'")


def __getattr__(name: str) -> Any:
    if name in ("create_app", "run_server"):
        require_serve_extra()
        from triagekit.serve import app

        return getattr(app, name)
    if name == "ServeSettings":
        from triagekit.serve.settings import ServeSettings

        return ServeSettings
    raise AttributeError(f"module 'triagekit.serve' has no attribute {name!r}")
