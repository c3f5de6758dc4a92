"""``Service``: the model, micro-batcher, prediction log and drift monitor of one running app, and its lifespan."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
import uuid
from collections import deque
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

from fastapi import HTTPException

from triagekit.data.text import build_text
from triagekit.serve.backends import resolve_model_dir
from triagekit.serve.batcher import BatcherClosed, MicroBatcher
from triagekit.serve.cache import TTLCache
from triagekit.serve.db import PredictionStore, utcnow
from triagekit.serve.drift import DriftMonitor, load_or_build_reference
from triagekit.serve.metrics import ServeMetrics
from triagekit.serve.schemas import Ticket
from triagekit.serve.settings import ServeSettings
from triagekit.serve.writer import LogWriter

__all__ = ["Service"]

log = logging.getLogger("triagekit.serve")

DEFAULT_TOP_K = 3


class Service:
    """Everything one app instance holds; built by ``create_app``, started and stopped by its lifespan."""

    def __init__(self, model_dir: str | Path, settings: ServeSettings):
        self.model_ref = str(model_dir)
        """What to serve: a run or export directory, or ``registry:NAME@alias`` (re-resolved on every reload)."""
        self.model_dir, self.settings = Path(model_dir), settings
        self.metrics = ServeMetrics()
        self.router = None
        self.load_error: str | None = None
        self.last_reload: dict[str, Any] | None = None
        self._reload_lock: asyncio.Lock | None = None
        self._watcher: asyncio.Task | None = None
        self.store: PredictionStore | None = None
        self.writer: LogWriter | None = None
        self.batcher: MicroBatcher | None = None
        self.drift: DriftMonitor | None = None
        self.batch_sizes: deque[int] = deque(maxlen=10_000)
        """Sizes of this process's recent model calls (the histogram has the same, bucketed): per process, like the
        Prometheus metrics; what must agree across replicas comes from the shared log through ``cache``."""
        self.cache = TTLCache(settings.shared_cache_s)
        self.db_ready = False
        self.db_error: str | None = None
        self._db_task: asyncio.Task | None = None

    # -- lifespan ------------------------------------------------------------------------------------------------
    @asynccontextmanager
    async def lifespan(self, _app) -> AsyncIterator[None]:
        s = self.settings
        self.store = PredictionStore(s.db_url(self.model_ref))
        # Unreachable: keep serving /health and say why in /ready while retrying in the background.
        if not await self._try_db(1, min(1.0, s.db_retry_max_s)):
            self._db_task = asyncio.create_task(self._connect_db(), name="triagekit-db-connect")
        await self._load_model()
        self.batcher = MicroBatcher(
            self._predict_batch,
            s.max_batch,
            s.max_wait_ms,
            s.batching,
            self._on_batch,
            initializer=self._set_threads,
            workers=s.inference_workers,
        )
        self.writer = LogWriter(self.store, s.log_flush_ms, on_write=self._on_write)
        await self.batcher.start()
        await self.writer.start()
        self.metrics.log_pending.set_function(lambda: self.writer.pending if self.writer else 0)
        if s.watch_seconds:
            self._watcher = asyncio.create_task(self._watch(s.watch_seconds))
        try:
            yield
        finally:
            if self._watcher is not None:
                self._watcher.cancel()
            # Order matters: answer every queued request (which logs it), then write out the log.
            if self._db_task is not None:
                self._db_task.cancel()
            await self.batcher.stop()
            await self.writer.stop()
            self.store.dispose()
            log.info("shut down cleanly; prediction log flushed")

    async def _try_db(self, attempt: int, retry_in: float | None) -> bool:
        """One attempt to reach the log and create its tables; on failure, say why in ``db_error`` (``/ready``)."""
        try:
            await asyncio.to_thread(self.store.create)
        except Exception as exc:
            where = self.store.engine.url.render_as_string(hide_password=True)
            error = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            then = f"retrying in {retry_in:g} s" if retry_in else "retrying with backoff"
            self.db_error = f"database unreachable ({where}): {type(exc).__name__}: {error} (attempt {attempt}, {then})"
            log.warning("%s", self.db_error)
            return False
        self.db_ready, self.db_error = True, None
        if attempt > 1:
            log.info("database reachable after %d attempts", attempt)
        return True

    async def _connect_db(self) -> None:
        """Retry the database with exponential backoff (1 s, 2 s, 4 s ... up to ``db_retry_max_s``) until it answers;
        the process stays up meanwhile, so an orchestrator sees a live pod that is not ready, with the reason."""
        delay, attempt = min(1.0, self.settings.db_retry_max_s), 1
        while True:
            await asyncio.sleep(delay)
            attempt += 1
            delay = min(delay * 2, self.settings.db_retry_max_s)
            if await self._try_db(attempt, delay):
                return

    def _set_threads(self) -> None:
        if self.settings.threads:
            import torch

            torch.set_num_threads(self.settings.threads)

    async def _load_model(self) -> None:
        self._set_threads()
        if self.settings.threads:  # onnxruntime's intra-op threads too (--backend onnx, or an export dir)
            os.environ.setdefault("TRIAGEKIT_ORT_THREADS", str(self.settings.threads))
        # A server shares its cores with its own event loop (and often with other processes): onnxruntime threads
        # that spin between calls starve them. Single-client p50 through HTTP on 2 cores with two other busy
        # processes: 28.6 ms spinning vs 10.9 ms not. TRIAGEKIT_ORT_SPINNING=1 turns it back on.
        os.environ.setdefault("TRIAGEKIT_ORT_SPINNING", "0")
        try:
            self.router, self.drift = await self._build()
        except Exception as exc:  # the service still answers /health and says why in /ready
            self.router, self.load_error = None, f"{type(exc).__name__}: {exc}"
            log.error("model failed to load from %s: %s", self.model_ref, self.load_error)
            return
        self.metrics.model_loaded.set(1)

    async def _build(self):
        """Load, warm and attach a drift monitor to the model ``model_ref`` points at now (beside any served one)."""
        from triagekit.route.router import Router, registered_as, resolve_model_path

        files, registered = await asyncio.to_thread(resolve_model_path, self.model_ref)  # checksums verified
        # --backend onnx: the run's ONNX export, made here on first start (the drift reference stays the run's).
        path = await asyncio.to_thread(resolve_model_dir, files, self.settings.backend)
        router = await asyncio.to_thread(Router.load, path, self.settings.device)
        if registered is not None:
            router.meta.update(registered_as(files, registered, router.meta))
        await asyncio.to_thread(router.predict, ["warm-up ticket"], 1)  # first request pays no setup
        s = self.settings
        drift = DriftMonitor([h.name for h in router.heads], s.drift_window, s.drift_threshold, s.drift_min_samples)
        try:
            ref, source = await asyncio.to_thread(load_or_build_reference, router, files)
            drift.set_reference(ref, source if ref else None, None if ref else source)
        except Exception as exc:
            drift.set_reference(None, None, f"reference distribution failed: {type(exc).__name__}: {exc}")
        return router, drift

    # -- hot reload ----------------------------------------------------------------------------------------------
    def _target_version(self) -> str | None:
        """``NAME@vK`` the registry alias points at now (None for a plain directory: always reload it)."""
        from triagekit.core.registry import Registry, is_registry_ref, parse_ref

        if not is_registry_ref(self.model_ref):
            return None
        ref = parse_ref(self.model_ref)
        return f"{ref.name}@v{Registry(ref.root).get(ref.name, ref.selector)['version']}"

    async def reload(self, force: bool = False) -> dict[str, Any]:
        """Load what ``model_ref`` points at beside the served model, then swap it in; requests already in flight
        finish on the model they started with. A model that fails to load is not swapped in: the old one keeps
        serving and the answer (and the log, and ``triagekit_model_reloads{result="failed"}``) says why.

        Returns:
            ``{"status": "reloaded" | "unchanged" | "failed", "model_version", "previous_version", "error"?}``
        """
        self._reload_lock = self._reload_lock or asyncio.Lock()
        async with self._reload_lock:  # one reload at a time; a second waits and then usually finds "unchanged"
            old = self.router
            previous = old.model_version if old is not None else None
            started = time.perf_counter()
            try:
                target = await asyncio.to_thread(self._target_version)
                if not force and old is not None and target is not None and target == previous:
                    return self._reloaded("unchanged", previous, previous, started)
                router, drift = await self._build()
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.error("reload of %s failed, still serving %s: %s", self.model_ref, previous, error)
                return self._reloaded("failed", previous, previous, started, error)
            # The swap: two assignments with no await between them, so no request sees one without the other.
            self.router, self.drift, self.load_error = router, drift, None
            self.metrics.model_loaded.set(1)
            log.info("now serving %s (was %s)", router.model_version, previous)
            return self._reloaded("reloaded", router.model_version, previous, started)

    def _reloaded(
        self, status: str, version: str | None, previous: str | None, started: float, error: str | None = None
    ) -> dict[str, Any]:
        self.metrics.reloads.labels(status).inc()
        self.last_reload = {
            "status": status,
            "model_version": version,
            "previous_version": previous,
            "seconds": round(time.perf_counter() - started, 3),
            "at": utcnow().isoformat(),
            **({"error": error} if error else {}),
        }
        return self.last_reload

    async def _watch(self, seconds: float) -> None:
        """Poll the alias every ``seconds`` and reload when it moved (each worker process watches on its own)."""
        while True:
            await asyncio.sleep(seconds)
            try:
                target = await asyncio.to_thread(self._target_version)
            except Exception as exc:  # a registry briefly unreadable: keep serving, try again next tick
                log.warning("watching %s: %s", self.model_ref, exc)
                continue
            current = self.router.model_version if self.router is not None else None
            if target is None or target != current:
                if (
                    self.last_reload
                    and self.last_reload.get("status") == "failed"
                    and target is not None
                    and self.last_reload.get("target") == target
                ):
                    continue  # this version already failed to load; wait for the alias to move again
                result = await self.reload()
                if result["status"] == "failed":
                    result["target"] = target

    # -- callbacks -----------------------------------------------------------------------------------------------
    def _on_batch(self, size: int, seconds: float) -> None:
        self.batch_sizes.append(size)
        self.metrics.batch_size.observe(size)
        self.metrics.inference.observe(seconds)

    def _on_write(self, predictions: int, feedback: int, dropped: int) -> None:
        if predictions or feedback:
            self.cache.invalidate()  # this replica reads its own writes at once
        self.metrics.log_rows.labels("predictions").inc(predictions)
        self.metrics.log_rows.labels("feedback").inc(feedback)
        if dropped:
            self.metrics.log_dropped.inc(dropped)

    # -- prediction ----------------------------------------------------------------------------------------------
    def require_router(self):
        if self.router is None:
            reason = f"model failed to load: {self.load_error}" if self.load_error else "model is still loading"
            raise HTTPException(503, reason)
        return self.router

    def require_db(self) -> None:
        if not self.db_ready:
            raise HTTPException(503, f"prediction log unavailable: {self.db_error or 'connecting'}")

    def not_ready_reason(self) -> str | None:
        """Why ``/ready`` is 503 (model and database), or None when the service can route and log."""
        reasons = []
        if self.router is None:
            reasons.append(f"model failed to load: {self.load_error}" if self.load_error else "model is loading")
        if not self.db_ready:
            reasons.append(self.db_error or "connecting to the database")
        return "; ".join(reasons) or None

    def _predict_batch(self, items: list[tuple[str, int, Any]]) -> list[dict[str, Any]]:
        """Worker thread: one ``router.predict`` per model in the batch (two only while a reload swaps models:
        each request runs on the model it started with), then each item's own ``top_k``."""
        results: list[dict[str, Any] | None] = [None] * len(items)
        groups: dict[int, list[int]] = {}
        for i, (_, _, router) in enumerate(items):
            groups.setdefault(id(router), []).append(i)
        for idx in groups.values():
            router = items[idx[0]][2]
            k = max(items[i][1] for i in idx)
            texts = [items[i][0] for i in idx]
            for i, r in zip(idx, router.predict(texts, top_k=k, batch_size=self.settings.model_batch)):
                results[i] = _truncate(r, items[i][1]) if items[i][1] < k else r
        return results

    def _prepare(
        self, router, ticket: Ticket, default_top_k: int | None, where: str
    ) -> tuple[str, int, dict[str, str]]:
        s = self.settings
        fields = ticket.fields()
        # "language" is kept beside the text fields (not part of the model input) for the review page's filter.
        inputs = {k: v for k, v in fields.items() if k in router.text_fields or k in ("text", "language")}
        text = build_text(inputs, router.text_fields)
        if not text.strip():
            raise HTTPException(
                422,
                f"{where}empty ticket: give {' and/or '.join(router.text_fields)} (or text) with some non-blank text",
            )
        if len(text) > s.max_text_chars:
            raise HTTPException(
                422, f"{where}ticket text too long: {len(text)} characters, the limit is {s.max_text_chars}"
            )
        top_k = ticket.top_k or default_top_k or DEFAULT_TOP_K
        if top_k > s.max_top_k:
            raise HTTPException(422, f"{where}top_k {top_k} is above the limit {s.max_top_k}")
        return text, top_k, inputs

    async def predict(
        self, tickets: Sequence[Ticket], default_top_k: int | None = None, batch: bool = False
    ) -> list[dict[str, Any]]:
        """Route ``tickets`` (each goes through the micro-batcher), log them and return the response bodies."""
        router = self.require_router()
        self.require_db()  # a prediction that cannot be logged is refused, not lost
        start = time.perf_counter()
        prepared = [
            self._prepare(router, t, default_top_k, f"items[{i}]: " if batch else "") for i, t in enumerate(tickets)
        ]
        try:
            answers = await asyncio.gather(*(self.batcher.submit((text, k, router)) for text, k, _ in prepared))
        except BatcherClosed as exc:
            raise HTTPException(503, str(exc)) from None
        latency_ms = (time.perf_counter() - start) * 1000
        out = []
        for ticket, (text, _, inputs), (heads, inference_ms) in zip(tickets, prepared, answers):
            pid = uuid.uuid4().hex
            review = (
                router.needs_review(heads)
                if hasattr(router, "needs_review")
                else any(bool(v.get("requires_review")) for v in heads.values())
            )
            self.writer.add_prediction(
                {
                    "id": pid,
                    "request_id": None if ticket.id is None else str(ticket.id)[:200],
                    "input_hash": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                    "inputs": inputs,
                    "outputs": heads,
                    "requires_review": review,
                    "latency_ms": round(latency_ms, 3),
                    "model_version": router.model_version,
                    "created_at": utcnow(),
                }
            )
            self.metrics.observe_prediction(heads, review)
            out.append(
                {
                    "id": ticket.id if ticket.id is not None else pid,
                    "prediction_id": pid,
                    "heads": heads,
                    "requires_review": review,
                    "model_version": router.model_version,
                    "inference_ms": round(inference_ms, 3),
                }
            )
        return out

    # -- feedback --------------------------------------------------------------------------------------------
    def check_label(self, head_name: str, label: str | list[str]) -> str | list[str]:
        """The correction normalised for storage; 422 for an unknown head or label."""
        router = self.require_router()
        self.require_db()
        heads = {h.name: h for h in router.heads}
        head = heads.get(head_name)
        if head is None:
            raise HTTPException(422, f"unknown head {head_name!r}; this model's heads are {sorted(heads)}")
        if head.multilabel:
            labels = [label] if isinstance(label, str) else list(dict.fromkeys(label))
            unknown = [x for x in labels if x not in head.labels]
            if unknown:
                raise HTTPException(422, f"unknown tags {unknown} for head {head.name!r}; known: {_few(head.labels)}")
            return labels
        if not isinstance(label, str):
            raise HTTPException(422, f"head {head.name!r} takes one label, not a list")
        if label not in head.labels:
            raise HTTPException(422, f"unknown label {label!r} for head {head.name!r}; known: {_few(head.labels)}")
        return label

    async def add_feedback(self, prediction_id: str, head: str, label: str | list[str]) -> None:
        if prediction_id in self.writer.pending_ids:  # predicted a moment ago and not yet written
            await self.writer.flush()
        exists = await asyncio.to_thread(self.store.prediction_exists, prediction_id)
        if not exists:  # another worker or replica may have made it and not flushed it yet (flush_ms)
            await asyncio.sleep(2 * self.settings.log_flush_ms / 1000)
            exists = await asyncio.to_thread(self.store.prediction_exists, prediction_id)
        if not exists:
            raise HTTPException(404, f"unknown prediction_id {prediction_id!r}")
        try:
            await self.writer.add_feedback(
                {"prediction_id": prediction_id, "head": head, "correct_label": label, "created_at": utcnow()}
            )
        except Exception as exc:
            log.error("storing feedback for %s failed: %s", prediction_id, exc)
            raise HTTPException(503, "could not store the feedback right now; please retry") from None
        self.metrics.feedback.labels(head).inc()

    # -- views of the shared log (the same on every replica) --------------------------------------------------
    async def review_queue(self, limit: int) -> list[dict[str, Any]]:
        """The oldest predictions that wait for a human, from the shared log (cached ``shared_cache_s``)."""
        self.require_db()
        await self.writer.flush()  # include what was predicted here a moment ago
        return await self.cache.get(("review", limit), lambda: self.store.review_queue(limit))

    async def drift_report(self) -> dict[str, Any]:
        """PSI of the latest ``drift_window`` logged predictions of this model version (all replicas' together)."""
        router = self.require_router()
        self.require_db()
        await self.writer.flush()
        version, window = router.model_version, self.settings.drift_window
        report = await self.cache.get(
            ("drift", version, window), lambda: self.drift.report(self.store.recent_outputs(version, window))
        )
        self.metrics.observe_drift(report)
        return report

    async def overview(self) -> dict[str, Any]:
        """Counts over the shared log (predictions, requiring review, still waiting, feedback)."""
        self.require_db()
        await self.writer.flush()
        counts = await self.cache.get(("overview",), self.store.overview)
        return {**counts, "model_version": self.router.model_version if self.router is not None else None}


def _truncate(result: dict[str, Any], k: int) -> dict[str, Any]:
    out = {}
    for head, r in result.items():
        if "top_k" in r:
            r = {**r, "top_k": r["top_k"][:k]}
        elif "scores" in r:
            keep = max(k, len(r.get("labels") or []))
            r = {**r, "scores": dict(list(r["scores"].items())[:keep])}
        out[head] = r
    return out


def _few(labels: list[str], n: int = 20) -> str:
    return str(labels[:n]) + (f" and {len(labels) - n} more" if len(labels) > n else "")
