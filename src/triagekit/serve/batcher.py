"""Micro-batching: concurrent requests are gathered for a few milliseconds and run as one model call.

The model runs on a dedicated worker thread, so inference never blocks the event loop; calls never overlap
(PyTorch and onnxruntime already spread one call over the cores) unless ``workers`` > 1, when one batch gathers and
runs while another runs (with one intra-op thread per call, the cheaper way to fill 2 cores). The first request of
a batch waits at most ``max_wait_ms`` for company; requests that queued while the worker was busy go into the next call without waiting at all. The wait is
only paid when it can pay off: when no two requests have been in flight together for ``RECENT_S`` seconds (a lone
client), a request runs at once, so single-request latency is that of ``--no-batching``.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

__all__ = ["MicroBatcher", "BatcherClosed", "RECENT_S"]

RECENT_S = 1.0
"""How long one moment of concurrency keeps the batcher waiting for company."""


class BatcherClosed(RuntimeError):
    """Raised by ``submit`` once shutdown has begun."""


@dataclass
class _Job:
    item: Any
    future: asyncio.Future
    enqueued: float = field(default_factory=time.monotonic)


class MicroBatcher:
    """Run ``fn(items) -> results`` (same length and order) on batches gathered from concurrent ``submit`` calls.

    Args:
        fn: the batch function; runs on the worker thread.
        max_batch: most items per call.
        max_wait_ms: longest a batch's first item waits for more to arrive.
        enabled: False runs each item alone (still on the worker thread).
        on_batch: called on the event loop after each call with (batch size, seconds the call took).
        initializer: run once on each worker thread (e.g. to set torch's thread count there).
        workers: model calls that may run at once, each on its own thread (a batch is gathered while another
            runs); 1 keeps calls from ever overlapping.
    """

    def __init__(
        self,
        fn: Callable[[list[Any]], Sequence[Any]],
        max_batch: int = 32,
        max_wait_ms: float = 5.0,
        enabled: bool = True,
        on_batch: Callable[[int, float], None] | None = None,
        initializer: Callable[[], None] | None = None,
        workers: int = 1,
    ):
        self.fn, self.max_batch, self.max_wait = fn, max(1, int(max_batch)), max(0.0, max_wait_ms) / 1000
        self.enabled, self.on_batch = enabled, on_batch
        self.workers = max(1, int(workers))
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="triagekit-infer", initializer=initializer)
        self._queue: asyncio.Queue[_Job | None] | None = None
        self._tasks: list[asyncio.Task] = []
        self._closed = False
        self._inflight = 0
        self._last_concurrent = float("-inf")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        if self.enabled:
            self._tasks = [asyncio.create_task(self._run(), name=f"triagekit-batcher-{i}") for i in range(self.workers)]

    async def submit(self, item: Any) -> tuple[Any, float]:
        """The result for ``item`` and the milliseconds of the model call that produced it."""
        if self._closed or self._queue is None:
            raise BatcherClosed("the service is shutting down")
        loop = asyncio.get_running_loop()
        if not self.enabled:
            results, seconds = await loop.run_in_executor(self._executor, self._call, [item])
            self._report(1, seconds)
            return results[0], seconds * 1000
        job = _Job(item, loop.create_future())
        self._inflight += 1
        if self._inflight > 1:
            self._last_concurrent = job.enqueued
        self._queue.put_nowait(job)
        try:
            return await job.future
        finally:
            self._inflight -= 1

    async def stop(self) -> None:
        """Stop taking work, finish everything already queued, then release the worker thread."""
        self._closed = True
        if self._tasks and self._queue is not None:
            for _ in self._tasks:
                self._queue.put_nowait(None)  # one stop sentinel per gathering task
            await asyncio.gather(*self._tasks)
        self._executor.shutdown(wait=True)

    # -- internals --------------------------------------------------------------------------------------------
    def _call(self, items: list[Any]) -> tuple[Sequence[Any], float]:
        start = time.perf_counter()
        results = self.fn(items)
        if len(results) != len(items):
            raise RuntimeError(f"batch function returned {len(results)} results for {len(items)} items")
        return results, time.perf_counter() - start

    def _report(self, size: int, seconds: float) -> None:
        if self.on_batch is not None:
            self.on_batch(size, seconds)

    async def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        """``first`` plus whatever arrives before its deadline (or until full); True when the stop sentinel came."""
        assert self._queue is not None
        batch, deadline = [first], first.enqueued + self.max_wait
        while len(batch) < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                now = time.monotonic()
                timeout = deadline - now
                if timeout <= 0 or now - self._last_concurrent > RECENT_S:  # nobody to wait for
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), timeout)
                except asyncio.TimeoutError:
                    break
            if job is None:
                return batch, True
            batch.append(job)
        return batch, False

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch, stopping = await self._gather(first)
            batch = [j for j in batch if not j.future.done()]  # a client that went away was cancelled
            if not batch:
                continue
            try:
                results, seconds = await loop.run_in_executor(self._executor, self._call, [j.item for j in batch])
            except Exception as exc:  # one bad batch fails its requests, not the batcher
                for j in batch:
                    if not j.future.done():
                        j.future.set_exception(exc)
                continue
            self._report(len(batch), seconds)
            for j, r in zip(batch, results):
                if not j.future.done():
                    j.future.set_result((r, seconds * 1000))
        # Anything submitted between the sentinel and now is still answered (drain); the other tasks' sentinels
        # go back so that each of them stops too.
        rest = []
        while not self._queue.empty():
            rest.append(self._queue.get_nowait())
        for _ in range(sum(job is None for job in rest)):
            self._queue.put_nowait(None)
        for job in rest:
            if job is not None and not job.future.done():
                try:
                    results, seconds = await loop.run_in_executor(self._executor, self._call, [job.item])
                    job.future.set_result((results[0], seconds * 1000))
                except Exception as exc:
                    job.future.set_exception(exc)
