"""What stands between the network and the handlers: body-size limit, per-endpoint metrics, error handlers.

The rule is that no user input produces a 5xx: malformed JSON, wrong types, huge numbers and odd unicode all get
a 4xx with a message that says what was wrong.
"""

from __future__ import annotations

import json
import logging
import re
import time
from itertools import accumulate
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["GuardMiddleware", "install_error_handlers", "safe_text"]

log = logging.getLogger("triagekit.serve")

BODY_METHODS = {"POST", "PUT", "PATCH"}
MAX_JSON_DEPTH = 64  # the deepest body this API takes is 4 levels; anything deeper is refused before parsing
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKETS = bytes(range(256)).translate(None, b"[]{}")


def json_depth(body: bytes) -> int:
    """How deeply ``body``'s arrays and objects nest (brackets inside strings do not count).

    Checked before parsing so the answer to a deep body is the same 400 whatever the interpreter's recursion
    limit happens to be (it differs with what else was imported)."""
    brackets = _JSON_STRING.sub(b"", body).translate(None, _BRACKETS)
    if not brackets:
        return 0
    return max(accumulate(1 if b in b"[{" else -1 for b in brackets))


def safe_text(value: Any) -> str:
    """``value`` as a string that can always be encoded as UTF-8 (lone surrogates escaped)."""
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


class GuardMiddleware:
    """Pure ASGI middleware: rejects bodies over ``max_body_bytes`` with 413, and records each request's count
    and latency under its route template (never the raw path, so random URLs cannot blow up the label set)."""

    def __init__(self, app, max_body_bytes: int, metrics) -> None:
        self.app, self.max_body_bytes, self.metrics = app, max_body_bytes, metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]

        async def send_recording(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            if scope["method"] in BODY_METHODS:
                receive = await self._buffered(scope, receive, send_recording)
                if receive is None:
                    return
            await self.app(scope, receive, send_recording)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "other"
            self.metrics.requests.labels(endpoint, scope["method"], str(status[0])).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)

    async def _buffered(self, scope, receive, send):
        """Read the whole body (bounded) and return a ``receive`` that replays it; None when 413/400 was sent."""
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _reply(send, 400, "invalid Content-Length header")
                return None
            if declared > self.max_body_bytes:
                await _reply(
                    send, 413, f"request body too large: {declared} bytes, the limit is {self.max_body_bytes} bytes"
                )
                return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_body_bytes:
                await _reply(send, 413, f"request body too large: more than {self.max_body_bytes} bytes")
                return None
            chunks.append(body)
            if not message.get("more_body", False):
                break
        body, sent = b"".join(chunks), False
        try:  # every body this API takes is JSON, which is UTF-8; say so instead of a vague parse error
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            await _reply(send, 400, f"request body is not valid UTF-8 (bad byte at offset {exc.start})")
            return None
        content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
        if b"json" in content_type and json_depth(body) > MAX_JSON_DEPTH:
            await _reply(send, 400, f"request body is JSON nested too deeply (more than {MAX_JSON_DEPTH} levels)")
            return None

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay


async def _reply(send, status: int, detail: str) -> None:
    payload = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _clean_error(e: dict[str, Any]) -> dict[str, Any]:
    # Drop pydantic's union-member tags ("constrained-int", "function-after[...]"): they name no input field.
    loc = [
        x if isinstance(x, int) else safe_text(x)
        for x in e.get("loc", ())
        if not (isinstance(x, str) and ("[" in x or x.startswith(("constrained-", "function-"))))
    ]
    msg = safe_text(e.get("msg", "invalid value"))
    if e.get("type") == "json_invalid":
        ctx = e.get("ctx") or {}
        msg = f"malformed JSON: {safe_text(ctx.get('error', msg))}"
    if loc == ["body"] and e.get("type") in ("model_attributes_type", "model_type", "dict_type"):
        msg += "; send a JSON object with Content-Type: application/json"
    return {"loc": loc, "msg": msg, "type": safe_text(e.get("type", "value_error"))}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": [_clean_error(e) for e in exc.errors()]})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, (list, dict)) else safe_text(exc.detail)
        if exc.status_code == 400 and detail == "There was an error parsing the body":  # FastAPI's catch-all
            detail = "could not parse the request body as JSON (nested too deeply, or a number too long to read)"
        return JSONResponse(status_code=exc.status_code, content={"detail": detail}, headers=exc.headers)

    @app.exception_handler(UnicodeError)
    async def _unicode(_request: Request, exc: UnicodeError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"detail": f"request is not valid UTF-8: {safe_text(exc)}"})

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={"detail": f"internal error ({type(exc).__name__})"})
