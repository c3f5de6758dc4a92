"""``TTLCache``: results of blocking queries on the shared prediction log, kept a few seconds.

Every replica answers ``/drift``, ``/review`` and ``/overview`` from the shared log; the cache bounds how often one
replica runs those queries (a dashboard polling three endpoints costs one query each per ``ttl``), and concurrent
misses for one key share one query. A replica's own writes invalidate it (read-your-writes on one replica); another
replica's writes show up within ``ttl`` seconds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Hashable

__all__ = ["TTLCache"]


class TTLCache:
    """Keep each key's value ``ttl`` seconds (``ttl`` <= 0: no caching)."""

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._generation = 0

    def invalidate(self) -> None:
        """Forget everything (and any query in flight will not be stored)."""
        self._entries.clear()
        self._generation += 1

    def _fresh(self, key: Hashable) -> tuple[bool, Any]:
        hit = self._entries.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return True, hit[1]
        return False, None

    async def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The cached value of ``key``, or ``compute()`` run on a worker thread (blocking database calls)."""
        if self.ttl <= 0:
            return await asyncio.to_thread(compute)
        ok, value = self._fresh(key)
        if ok:
            return value
        async with self._locks.setdefault(key, asyncio.Lock()):
            ok, value = self._fresh(key)
            if ok:
                return value
            generation, started = self._generation, time.monotonic()
            value = await asyncio.to_thread(compute)
            if generation == self._generation:
                self._entries[key] = (started, value)
            return value
