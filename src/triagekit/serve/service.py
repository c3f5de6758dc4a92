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
        self.model_dir, self.settings = Path(model_dir), settings
        self.metrics = ServeMetrics()
        self.router = None
        self.load_error: str | None = None
        self.store: PredictionStore | None = None
        self.writer: LogWriter | None = None
        self.batcher: MicroBatcher | None = None
        self.drift: DriftMonitor | None = None
        self.batch_sizes: deque[int] = deque(maxlen=10_000)
        """Sizes of recent model calls (the histogram has the same, bucketed)."""

    # -- lifespan ------------------------------------------------------------------------------------------------
    @asynccontextmanager
    async def lifespan(self, _app) -> AsyncIterator[None]:
        s = self.settings
        self.store = PredictionStore(s.db_url(self.model_dir))
        await asyncio.to_thread(self.store.create)
        await self._load_model()
        self.batcher = MicroBatcher(self._predict_batch, s.max_batch, s.max_wait_ms, s.batching, self._on_batch,
                                    initializer=self._set_threads)
        self.writer = LogWriter(self.store, s.log_flush_ms, on_write=self._on_write)
        await self.batcher.start()
        await self.writer.start()
        self.metrics.log_pending.set_function(lambda: self.writer.pending if self.writer else 0)
        try:
            yield
        finally:
            # Order matters: answer every queued request (which logs it), then write out the log.
            await self.batcher.stop()
            await self.writer.stop()
            self.store.dispose()
            log.info("shut down cleanly; prediction log flushed")

    def _set_threads(self) -> None:
        if self.settings.threads:
            import torch

            torch.set_num_threads(self.settings.threads)

    async def _load_model(self) -> None:
        from triagekit.route.router import Router

        self._set_threads()
        if self.settings.threads:  # onnxruntime's intra-op threads too (--backend onnx, or an export dir)
            os.environ.setdefault("TRIAGEKIT_ORT_THREADS", str(self.settings.threads))
        # A server shares its cores with its own event loop (and often with other processes): onnxruntime threads
        # that spin between calls starve them. Single-client p50 through HTTP on 2 cores with two other busy
        # processes: 28.6 ms spinning vs 10.9 ms not. TRIAGEKIT_ORT_SPINNING=1 turns it back on.
        os.environ.setdefault("TRIAGEKIT_ORT_SPINNING", "0")
        try:
            # --backend onnx: the run's ONNX export, made here on first start (the drift reference stays the run's).
            path = await asyncio.to_thread(resolve_model_dir, self.model_dir, self.settings.backend)
            self.router = await asyncio.to_thread(Router.load, path, self.settings.device)
            await asyncio.to_thread(self.router.predict, ["warm-up ticket"], 1)  # first request pays no setup
        except Exception as exc:  # the service still answers /health and says why in /ready
            self.router, self.load_error = None, f"{type(exc).__name__}: {exc}"
            log.error("model failed to load from %s: %s", self.model_dir, self.load_error)
            return
        self.metrics.model_loaded.set(1)
        s = self.settings
        self.drift = DriftMonitor([h.name for h in self.router.heads], s.drift_window, s.drift_threshold,
                                  s.drift_min_samples)
        try:
            ref, source = await asyncio.to_thread(load_or_build_reference, self.router, self.model_dir)
            self.drift.set_reference(ref, source if ref else None, None if ref else source)
        except Exception as exc:
            self.drift.set_reference(None, None, f"reference distribution failed: {type(exc).__name__}: {exc}")
        for outputs in await asyncio.to_thread(self.store.recent_outputs, self.router.model_version, s.drift_window):
            self.drift.add(outputs)  # the window survives restarts

    # -- callbacks -----------------------------------------------------------------------------------------------
    def _on_batch(self, size: int, seconds: float) -> None:
        self.batch_sizes.append(size)
        self.metrics.batch_size.observe(size)
        self.metrics.inference.observe(seconds)

    def _on_write(self, predictions: int, feedback: int, dropped: int) -> None:
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

    def _predict_batch(self, items: list[tuple[str, int]]) -> list[dict[str, Any]]:
        """Worker thread: one ``router.predict`` for the whole batch, then each item's own ``top_k``."""
        k = max(top_k for _, top_k in items)
        results = self.router.predict([text for text, _ in items], top_k=k)
        return [_truncate(r, top_k) if top_k < k else r for r, (_, top_k) in zip(results, items)]

    def _prepare(self, ticket: Ticket, default_top_k: int | None, where: str) -> tuple[str, int, dict[str, str]]:
        router, s = self.router, self.settings
        fields = ticket.fields()
        # "language" is kept beside the text fields (not part of the model input) for the review page's filter.
        inputs = {k: v for k, v in fields.items() if k in router.text_fields or k in ("text", "language")}
        text = build_text(inputs, router.text_fields)
        if not text.strip():
            raise HTTPException(422, f"{where}empty ticket: give {' and/or '.join(router.text_fields)} "
                                     f"(or text) with some non-blank text")
        if len(text) > s.max_text_chars:
            raise HTTPException(422, f"{where}ticket text too long: {len(text)} characters, the limit is "
                                     f"{s.max_text_chars}")
        top_k = ticket.top_k or default_top_k or DEFAULT_TOP_K
        if top_k > s.max_top_k:
            raise HTTPException(422, f"{where}top_k {top_k} is above the limit {s.max_top_k}")
        return text, top_k, inputs

    async def predict(self, tickets: Sequence[Ticket], default_top_k: int | None = None,
                      batch: bool = False) -> list[dict[str, Any]]:
        """Route ``tickets`` (each goes through the micro-batcher), log them and return the response bodies."""
        router = self.require_router()
        start = time.perf_counter()
        prepared = [self._prepare(t, default_top_k, f"items[{i}]: " if batch else "") for i, t in enumerate(tickets)]
        try:
            answers = await asyncio.gather(*(self.batcher.submit((text, k)) for text, k, _ in prepared))
        except BatcherClosed as exc:
            raise HTTPException(503, str(exc)) from None
        latency_ms = (time.perf_counter() - start) * 1000
        out = []
        for ticket, (text, _, inputs), (heads, inference_ms) in zip(tickets, prepared, answers):
            pid = uuid.uuid4().hex
            review = any(bool(v.get("requires_review")) for v in heads.values())
            self.writer.add_prediction({
                "id": pid, "request_id": None if ticket.id is None else str(ticket.id)[:200],
                "input_hash": hashlib.sha256(text.encode("utf-8")).hexdigest(), "inputs": inputs, "outputs": heads,
                "requires_review": review, "latency_ms": round(latency_ms, 3), "model_version": router.model_version,
                "created_at": utcnow()})
            self.drift.add(heads)
            self.metrics.observe_prediction(heads, review)
            out.append({"id": ticket.id if ticket.id is not None else pid, "prediction_id": pid, "heads": heads,
                        "requires_review": review, "model_version": router.model_version,
                        "inference_ms": round(inference_ms, 3)})
        return out

    # -- feedback --------------------------------------------------------------------------------------------
    def check_label(self, head_name: str, label: str | list[str]) -> str | list[str]:
        """The correction normalised for storage; 422 for an unknown head or label."""
        router = self.require_router()
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
        if not exists and self.settings.workers > 1:  # another worker may not have flushed it yet
            await asyncio.sleep(2 * self.settings.log_flush_ms / 1000)
            exists = await asyncio.to_thread(self.store.prediction_exists, prediction_id)
        if not exists:
            raise HTTPException(404, f"unknown prediction_id {prediction_id!r}")
        try:
            await self.writer.add_feedback({"prediction_id": prediction_id, "head": head, "correct_label": label,
                                            "created_at": utcnow()})
        except Exception as exc:
            log.error("storing feedback for %s failed: %s", prediction_id, exc)
            raise HTTPException(503, "could not store the feedback right now; please retry") from None
        self.metrics.feedback.labels(head).inc()

    async def review_queue(self, limit: int) -> list[dict[str, Any]]:
        await self.writer.flush()  # include what was predicted a moment ago
        return await asyncio.to_thread(self.store.review_queue, limit)

    def drift_report(self) -> dict[str, Any]:
        self.require_router()
        report = self.drift.report()
        self.metrics.observe_drift(report)
        return report


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
