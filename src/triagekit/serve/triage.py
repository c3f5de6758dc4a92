"""``POST /triage``: a raw IT ticket in, a schema-valid triage record out (``triagekit serve ... --triage-model``).

The model loads at startup in a worker thread (``/triage`` answers 503 until it is ready, or says why it failed);
grammar-constrained generation runs off the event loop, one request at a time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from triagekit.serve.lazy import LazyModel
from triagekit.serve.schemas import ClientId, ErrorResponse, Text

__all__ = ["TriageRequest", "TriageResponse", "TriageService", "add_triage_route"]


class TriageRequest(BaseModel):
    """One raw ticket: ``text``, or ``subject`` and/or ``body``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"id": "T-7", "text": "vpn drops every 10 min since update, cant work!!"}]},
    )
    id: Optional[ClientId] = Field(None, description="Your ticket id, echoed back.")
    text: Optional[Text] = Field(None, description="The whole ticket as one string.")
    subject: Optional[Text] = None
    body: Optional[Text] = None
    constrained: bool = Field(
        True,
        description="Grammar-constrained decoding (false: free generation, which may "
        "produce invalid JSON; for comparison).",
    )


class TriageResponse(BaseModel):
    id: Optional[ClientId] = None
    triage: Optional[dict[str, Any]] = Field(None, description="The record (null when the output did not parse).")
    valid: bool = Field(..., description="The record parses and validates against the schema.")
    errors: list[str] = Field(default_factory=list, description="Schema errors (empty when valid).")
    meta: Optional[dict[str, Any]] = Field(
        None,
        description="Router-guided triage: per routed field its source "
        "(router, llm_topk, llm), the router's confidence, "
        "top-k and requires_review.",
    )
    model: str = Field(..., description="The triage model's name.")
    latency_ms: float = Field(..., description="Server-side time for this request.")


class TriageService(LazyModel):
    """The triage model of one app and its lifespan."""

    kind = "triage model"

    def __init__(
        self,
        model_dir: str | Path,
        device: str | None,
        max_chars: int,
        schema: str | None = None,
        router: str | Path | None = None,
    ):
        super().__init__(model_dir, device)
        self.max_chars, self.schema, self.router = max_chars, schema, router

    def _load(self):
        from triagekit.triage import Triager

        triager = Triager.load(self.model_dir, schema=self.schema, device=self.device, router=self.router)
        triager.constraint()  # compile the grammar now, not on the first request
        return triager

    async def triage(self, req: TriageRequest) -> dict[str, Any]:
        start = time.perf_counter()
        model = self.require()
        text = (req.text or "\n".join(t for t in (req.subject, req.body) if t)).strip()
        if not text:
            raise HTTPException(422, "give the ticket as 'text', or 'subject' and/or 'body'")
        if len(text) > self.max_chars:
            raise HTTPException(422, f"ticket too long: {len(text)} characters, the limit is {self.max_chars}")
        if model.guide is not None and not req.constrained:
            raise HTTPException(422, "this service fills enum fields with its router: free generation is off")
        out = (await self.call(model.triage, [text], constrained=req.constrained, batch_size=1))[0]
        return {
            "id": req.id,
            "triage": out["triage"],
            "valid": out["valid"],
            "errors": out["errors"],
            "meta": out.get("_meta"),
            "model": model.model_version,
            "latency_ms": round((time.perf_counter() - start) * 1000, 3),
        }


def add_triage_route(app: FastAPI, service: TriageService, dependencies: list) -> None:
    """Register ``POST /triage`` on ``app``."""
    errors = {code: {"model": ErrorResponse} for code in (401, 413, 422, 503)}

    @app.post(
        "/triage",
        response_model=TriageResponse,
        tags=["triage"],
        dependencies=dependencies,
        responses=errors,
        summary="Structure one raw IT ticket as schema-valid JSON",
    )
    async def triage(body: TriageRequest) -> dict:
        return await service.triage(body)
