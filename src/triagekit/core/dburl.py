"""Where a prediction log is: one rule for the service's commands and the router's retrain."""

from __future__ import annotations

from pathlib import Path

__all__ = ["db_url"]


def db_url(value: str | Path) -> str:
    """A SQLAlchemy URL from a URL, a SQLite file or a model directory (its ``predictions.db``).

    Raises:
        FileNotFoundError: a path with no prediction log.
    """
    value = str(value)
    if "://" in value:
        return value
    path = Path(value)
    if path.is_dir():
        path = path / "predictions.db"
    if not path.exists():
        raise FileNotFoundError(
            f"no prediction log at {path}: give the service's --db URL, its SQLite file or the "
            f"folder holding predictions.db"
        )
    return f"sqlite:///{path.resolve()}"
