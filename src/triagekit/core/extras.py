"""Optional extras: one flag each, imported where used, with a clear install hint when missing."""

from __future__ import annotations

import importlib.util

__all__ = ["require", "available"]


def available(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    return importlib.util.find_spec(module) is not None


def require(*modules: str, extra: str = "export") -> None:
    """Fail early with an install hint when an optional dependency is missing.

    Raises:
        RuntimeError: naming the missing modules and the ``pip install 'triagekit[extra]'`` that brings them.
    """
    missing = [m for m in modules if not available(m)]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not installed: `pip install 'triagekit[{extra}]'`")
