"""A model served beside the router: loaded at startup in a worker thread, called off the event loop one request
at a time (a CPU model gains nothing from overlapping calls). Until it is ready, or when it failed to load, its
endpoint answers 503 with the reason while the rest of the service keeps running."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from fastapi import HTTPException

__all__ = ["LazyModel"]

log = logging.getLogger("triagekit.serve")


class LazyModel:
    """Subclasses set ``kind`` (for messages) and implement ``_load``."""

    kind = "model"

    def __init__(self, model_dir: str | Path, device: str | None):
        self.model_dir, self.device = str(model_dir), device
        self.model = None
        self.load_error: str | None = None
        self._lock = asyncio.Lock()

    def _load(self) -> Any:
        raise NotImplementedError

    @asynccontextmanager
    async def lifespan(self, _app) -> AsyncIterator[None]:
        try:
            self.model = await asyncio.to_thread(self._load)
        except Exception as exc:  # the rest of the service keeps running; the endpoint says why it cannot
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.error("%s failed to load from %s: %s", self.kind, self.model_dir, self.load_error)
        yield

    def require(self) -> Any:
        """The loaded model, or a 503 saying why there is none."""
        if self.model is None:
            raise HTTPException(
                503,
                f"{self.kind} failed to load: {self.load_error}"
                if self.load_error
                else f"{self.kind} is still loading",
            )
        return self.model

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in a worker thread, one call at a time."""
        async with self._lock:
            return await asyncio.to_thread(fn, *args, **kwargs)
