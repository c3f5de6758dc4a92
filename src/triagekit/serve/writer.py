"""Write-behind queue for the prediction log: rows are written in batches, on one thread, off the event loop.

Predictions are fire-and-forget for the request (written within ``flush_ms``); feedback waits for its commit so a
200 means the row is stored. ``stop()`` flushes everything still pending, which is how a graceful shutdown loses
nothing.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

__all__ = ["LogWriter"]

log = logging.getLogger("triagekit.serve")

MAX_ATTEMPTS = 3


class LogWriter:
    """Batch rows for ``store.write(prediction_rows, feedback_rows)``.

    Args:
        store: a ``PredictionStore`` (or anything with the same ``write``).
        flush_ms: pending predictions are written at least this often.
        max_rows: a flush starts early once this many predictions are pending.
        on_write: called on the event loop with (predictions written, feedback written, rows dropped).
    """

    def __init__(
        self,
        store: Any,
        flush_ms: float = 50.0,
        max_rows: int = 1000,
        on_write: Callable[[int, int, int], None] | None = None,
    ):
        self.store, self.flush_s, self.max_rows, self.on_write = store, flush_ms / 1000, max_rows, on_write
        self.pending_ids: set[str] = set()
        self._preds: list[tuple[dict[str, Any], int]] = []
        self._feedback: list[tuple[dict[str, Any], asyncio.Future]] = []
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="triagekit-dblog")
        self._wake: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._task: asyncio.Task | None = None
        self._closed = False

    async def start(self) -> None:
        self._wake, self._lock = asyncio.Event(), asyncio.Lock()
        self._task = asyncio.create_task(self._run(), name="triagekit-log-writer")

    @property
    def pending(self) -> int:
        return len(self._preds) + len(self._feedback)

    def add_prediction(self, row: dict[str, Any]) -> None:
        self._preds.append((row, 0))
        self.pending_ids.add(row["id"])
        if len(self._preds) >= self.max_rows and self._wake is not None:
            self._wake.set()

    async def add_feedback(self, row: dict[str, Any]) -> None:
        """Queue a feedback row and wait until it is committed (raises if it could not be written)."""
        if self._closed or self._wake is None:
            raise RuntimeError("the prediction log is closed")
        future = asyncio.get_running_loop().create_future()
        self._feedback.append((row, future))
        self._wake.set()
        await future

    async def flush(self) -> None:
        """Write everything pending now."""
        assert self._lock is not None
        async with self._lock:
            await self._write_pending()

    async def stop(self) -> None:
        """Stop the timer and write what is left (retrying failed rows a few times)."""
        self._closed = True
        if self._task is not None and self._wake is not None:
            self._wake.set()  # the loop finishes its current write and exits; cancelling could orphan a batch
            await self._task
        for _ in range(MAX_ATTEMPTS + 1):
            if not self.pending:
                break
            await self.flush()
        self._executor.shutdown(wait=True)

    # -- internals --------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._wake is not None
        while not self._closed:
            try:
                await asyncio.wait_for(self._wake.wait(), self.flush_s)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # never let the writer die: the next tick retries
                log.exception("prediction log flush failed")

    async def _write_pending(self) -> None:
        preds, self._preds = self._preds, []
        feedback, self._feedback = self._feedback, []
        if not preds and not feedback:
            return
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(
                self._executor, self.store.write, [r for r, _ in preds], [r for r, _ in feedback]
            )
        except Exception:
            log.exception(
                "writing %d predictions / %d feedback rows failed; retrying row by row", len(preds), len(feedback)
            )
            await self._write_one_by_one(preds, feedback)
            return
        for row, _ in preds:
            self.pending_ids.discard(row["id"])
        for _, future in feedback:
            if not future.done():
                future.set_result(None)
        self._report(len(preds), len(feedback), 0)

    async def _write_one_by_one(self, preds, feedback) -> None:
        """One bad row must not sink its batch: write each alone; requeue failures, drop after MAX_ATTEMPTS."""
        loop = asyncio.get_running_loop()
        written = dropped = 0
        for row, attempts in preds:
            try:
                await loop.run_in_executor(self._executor, self.store.write, [row], [])
                written += 1
                self.pending_ids.discard(row["id"])
            except Exception as exc:
                if attempts + 1 >= MAX_ATTEMPTS:
                    log.error("dropping prediction %s after %d attempts: %s", row.get("id"), MAX_ATTEMPTS, exc)
                    self.pending_ids.discard(row["id"])
                    dropped += 1
                else:
                    self._preds.append((row, attempts + 1))
        fb_written = 0
        for row, future in feedback:
            try:
                await loop.run_in_executor(self._executor, self.store.write, [], [row])
                fb_written += 1
                if not future.done():
                    future.set_result(None)
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
        self._report(written, fb_written, dropped)

    def _report(self, preds: int, feedback: int, dropped: int) -> None:
        if self.on_write is not None:
            self.on_write(preds, feedback, dropped)
