"""``POST /generate``: draft a support reply with an answer model (``triagekit serve ... --answer-model DIR``).

The model loads at startup in a worker thread (``/generate`` answers 503 until it is ready, or says why it
failed); generation runs off the event loop, one request at a time (a CPU model gains nothing from overlapping
calls). Guardrails run first: a refused request gets the rule's polite refusal and ``refused: true``.
"""

from __future__ import annotations

import time
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Optional

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from triagekit.serve.lazy import LazyModel
from triagekit.serve.schemas import ErrorResponse, Text

__all__ = ["GenerateRequest", "GenerateResponse", "AnswerService", "add_generate_route", "chain_lifespans"]


class GenerateRequest(BaseModel):
    """A customer's message to answer."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "prompt": "I was charged twice for my subscription this month.",
                    "max_new_tokens": 128,
                    "temperature": 0.0,
                }
            ]
        },
    )
    prompt: Text = Field(..., description="The customer's message (subject and body, or a question).")
    max_new_tokens: Optional[int] = Field(
        None, ge=1, description="Most tokens to generate (default 128, or the server's limit when lower)."
    )
    temperature: float = Field(0.0, ge=0.0, le=2.0, allow_inf_nan=False, description="0 = greedy decoding.")


class GenerateResponse(BaseModel):
    text: str = Field(..., description="The drafted reply (or the polite refusal).")
    latency_ms: float = Field(..., description="Server-side time for this request.")
    refused: bool = Field(False, description="True when a guardrail rule matched and the model was not called.")
    category: Optional[str] = Field(None, description="The matching rule's category (unsafe, out_of_scope, ...).")
    model: str = Field(..., description="The answer model's base or run name.")


class AnswerService(LazyModel):
    """The answer model of one app and its lifespan."""

    kind = "answer model"

    def __init__(
        self,
        model_dir: str | Path,
        guardrails: str | Path | None,
        device: str | None,
        max_new_tokens: int,
        max_chars: int,
    ):
        super().__init__(model_dir, device)
        self.guardrails_path, self.max_new_tokens, self.max_chars = guardrails, max_new_tokens, max_chars

    def _load(self):
        from triagekit.answer.guardrails import Guardrails
        from triagekit.answer.model import AnswerModel

        return AnswerModel.load(self.model_dir, guardrails=Guardrails.load(self.guardrails_path), device=self.device)

    async def generate(self, req: GenerateRequest) -> dict[str, Any]:
        start = time.perf_counter()
        model = self.require()
        prompt = req.prompt.strip()
        if not prompt:
            raise HTTPException(422, "prompt is empty")
        if len(prompt) > self.max_chars:
            raise HTTPException(422, f"prompt too long: {len(prompt)} characters, the limit is {self.max_chars}")
        max_new_tokens = min(128, self.max_new_tokens) if req.max_new_tokens is None else req.max_new_tokens
        if max_new_tokens > self.max_new_tokens:
            raise HTTPException(
                422, f"max_new_tokens {req.max_new_tokens} is above this server's limit {self.max_new_tokens}"
            )
        out = (
            await self.call(
                model.answer,
                [prompt],
                max_new_tokens=max_new_tokens,
                temperature=req.temperature,
                batch_size=1,
                seed=None,
            )
        )[0]
        return {
            "text": out["text"],
            "refused": out["refused"],
            "category": out["category"],
            "model": model.name,
            "latency_ms": round((time.perf_counter() - start) * 1000, 3),
        }


def add_generate_route(app: FastAPI, answers: AnswerService, dependencies: list) -> None:
    """Register ``POST /generate`` on ``app``."""
    errors = {code: {"model": ErrorResponse} for code in (401, 413, 422, 503)}

    @app.post(
        "/generate",
        response_model=GenerateResponse,
        tags=["answers"],
        dependencies=dependencies,
        responses=errors,
        summary="Draft a reply to a customer's message (guardrails first)",
    )
    async def generate(body: GenerateRequest) -> dict:
        return await answers.generate(body)


def chain_lifespans(*lifespans):
    """One lifespan that enters the given ones in order and leaves them in reverse."""

    @asynccontextmanager
    async def chained(app) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for lifespan in lifespans:
                await stack.enter_async_context(lifespan(app))
            yield

    return chained
