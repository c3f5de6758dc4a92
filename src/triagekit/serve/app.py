"""The FastAPI app: ``create_app(model_dir, settings)`` and ``run_server`` (uvicorn)."""

from __future__ import annotations

import hmac
import os
from pathlib import Path
from typing import Annotated, Optional, Union

import orjson
from fastapi import Depends, FastAPI, HTTPException, Query, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader

from triagekit.serve.guards import GuardMiddleware, install_error_handlers
from triagekit.serve.schemas import (
    DriftResponse,
    ErrorResponse,
    FeedbackRequest,
    FeedbackResponse,
    Health,
    Overview,
    PredictBatchRequest,
    PredictBatchResponse,
    PredictResponse,
    Ready,
    ReviewResponse,
    Ticket,
)
from triagekit.serve.service import Service
from triagekit.serve.settings import MODEL_DIR_ENV, SETTINGS_ENV, ServeSettings

__all__ = ["create_app", "create_app_from_env", "run_server"]

API_KEY_HEADER = "X-API-Key"
# Module level: with postponed annotations, FastAPI resolves the dependency's annotation from these globals.
_KEY_HEADER = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="required when the server has a key")

DESCRIPTION = """Route support tickets with a trained triagekit router (one classifier head per label field).

Every prediction is logged; predictions below a head's review threshold wait in `GET /review` until someone posts
`POST /feedback`, and `triagekit feedback export` turns the corrections into training rows. `GET /drift` compares
the latest predictions with the validation-set predictions (PSI). When the server was started with
`--api-key-env`, all endpoints except `/health`, `/healthz`, `/ready` and `/metrics` need the `X-API-Key` header.
With several replicas on one database, `/drift`, `/review` and `/overview` are computed from the shared log (the
same on every replica, at most `shared_cache_s` old); `/metrics` is per process.
`POST /admin/reload` swaps in what a `registry:NAME@alias` points at now without a restart (needs the key)."""


def _errors(*codes: int) -> dict[int | str, dict]:
    return {code: {"model": ErrorResponse} for code in codes}


def create_app(model_dir: str | Path, settings: ServeSettings | None = None) -> FastAPI:
    """A routing service for the model in ``model_dir``; the model loads when the app starts (lifespan).

    Raises:
        ValueError: when ``settings.api_key_env`` names an unset variable (the service refuses to run open).
    """
    from triagekit import __version__

    settings = settings or ServeSettings()
    api_key = settings.api_key()
    service = Service(model_dir, settings)
    answers = None
    if settings.answer_model:  # POST /generate with an answer model beside the router
        from triagekit.serve.generate import AnswerService, chain_lifespans

        answers = AnswerService(
            settings.answer_model,
            settings.guardrails,
            settings.device,
            settings.max_new_tokens,
            settings.max_text_chars,
        )
    triage = None
    if settings.triage_model:  # POST /triage with a triage model beside the router
        from triagekit.serve.triage import TriageService

        triage = TriageService(
            settings.triage_model, settings.device, settings.max_text_chars, router=settings.triage_router
        )
    app = FastAPI(
        title="triagekit router",
        version=__version__,
        description=DESCRIPTION,
        lifespan=chain_lifespans(service.lifespan, answers.lifespan) if answers else service.lifespan,
    )
    if triage is not None:
        from triagekit.serve.generate import chain_lifespans

        app.router.lifespan_context = chain_lifespans(app.router.lifespan_context, triage.lifespan)
    app.state.service = service
    install_error_handlers(app)
    app.add_middleware(GuardMiddleware, max_body_bytes=settings.max_body_bytes, metrics=service.metrics)

    async def require_key(key: Annotated[Optional[str], Security(_KEY_HEADER)] = None) -> None:
        if api_key is None:
            return
        # Header values arrive latin-1 decoded; compare bytes in constant time.
        if key is None or not hmac.compare_digest(key.encode("latin-1", "replace"), api_key.encode("utf-8")):
            raise HTTPException(
                401,
                f"missing or wrong API key (send it in the {API_KEY_HEADER} header)",
                headers={"WWW-Authenticate": "APIKey"},
            )

    guarded = [Depends(require_key)]
    respond = _orjson_response if settings.fast_json else _as_is

    @app.get("/health", response_model=Health, tags=["ops"], summary="Liveness: the process answers")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/healthz", response_model=Health, tags=["ops"], summary="Liveness, under the name many tools probe")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get(
        "/ready",
        response_model=Ready,
        tags=["ops"],
        responses={503: {"model": Ready}},
        summary="Readiness: 200 once the model is loaded and the database reachable, 503 with the reason",
    )
    async def ready():
        reason = service.not_ready_reason()
        if reason is not None:
            return JSONResponse(status_code=503, content={"status": "not_ready", "reason": reason})
        return {"status": "ready", "model_version": service.router.model_version}

    @app.get(
        "/metrics",
        tags=["ops"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}},
    )
    async def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        if service.drift is not None and service.db_ready:
            await service.drift_report()  # refresh the drift gauges at scrape time
        return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/predict",
        response_model=PredictResponse,
        response_model_exclude_none=True,
        tags=["routing"],
        dependencies=guarded,
        responses=_errors(401, 413, 422, 503),
        summary="Route one ticket",
    )
    async def predict(ticket: Ticket):
        return respond((await service.predict([ticket]))[0])

    @app.post(
        "/predict_batch",
        response_model=PredictBatchResponse,
        response_model_exclude_none=True,
        tags=["routing"],
        dependencies=guarded,
        responses=_errors(401, 413, 422, 503),
        summary='Route several tickets in one request: {"items": [...]} or a bare JSON array of tickets',
    )
    async def predict_batch(request: Union[PredictBatchRequest, list[Ticket]]):
        if isinstance(request, list):  # the bare-array shape other routing services document
            if not request:
                raise HTTPException(422, "empty batch: give at least one ticket")
            request = PredictBatchRequest.model_construct(items=request, top_k=None)
        if len(request.items) > settings.max_batch_items:
            raise HTTPException(
                413, f"too many items: {len(request.items)}, the limit is {settings.max_batch_items} per request"
            )
        items = await service.predict(request.items, default_top_k=request.top_k, batch=True)
        version = items[0]["model_version"] if items else service.router.model_version
        return respond({"items": items, "model_version": version})

    @app.get(
        "/review",
        response_model=ReviewResponse,
        tags=["feedback"],
        dependencies=guarded,
        responses=_errors(401, 422),
        summary="Predictions waiting for a human (requires_review, no feedback)",
    )
    async def review(limit: Annotated[int, Query(ge=1, le=1000, description="Most items to return")] = 50) -> dict:
        items = await service.review_queue(limit)
        return {"items": items, "count": len(items)}

    @app.post(
        "/feedback",
        response_model=FeedbackResponse,
        tags=["feedback"],
        dependencies=guarded,
        responses=_errors(401, 404, 413, 422, 503),
        summary="Record the correct label of one head",
    )
    async def feedback(body: FeedbackRequest) -> dict:
        label = service.check_label(body.head, body.correct_label)
        await service.add_feedback(body.prediction_id, body.head, label)
        return {"prediction_id": body.prediction_id, "head": body.head, "correct_label": label, "recorded": True}

    @app.post(
        "/admin/reload",
        tags=["ops"],
        dependencies=guarded,
        responses={**_errors(401, 403), 409: {}},
        summary="Load what the served path or registry alias points at now and swap it in without downtime",
    )
    async def admin_reload(
        force: Annotated[bool, Query(description="reload even when the version is unchanged")] = False,
    ):
        if api_key is None:
            raise HTTPException(
                403,
                "POST /admin/reload needs the server to run with --api-key-env (an admin "
                "endpoint is never open); or use --watch SECONDS to follow the alias",
            )
        result = await service.reload(force=force)
        # 409: the new version did not load; the old one is still serving (the body says which, and why).
        return JSONResponse(status_code=409 if result["status"] == "failed" else 200, content=result)

    @app.get(
        "/drift",
        response_model=DriftResponse,
        tags=["monitoring"],
        dependencies=guarded,
        responses=_errors(401, 503),
        summary="PSI of recent predictions against the reference distribution",
    )
    async def drift() -> dict:
        return await service.drift_report()

    @app.get(
        "/overview",
        response_model=Overview,
        tags=["monitoring"],
        dependencies=guarded,
        responses=_errors(401, 503),
        summary="Counts over the shared prediction log",
    )
    async def overview() -> dict:
        return await service.overview()

    if answers is not None:
        from triagekit.serve.generate import add_generate_route

        add_generate_route(app, answers, guarded)
    if triage is not None:
        from triagekit.serve.triage import add_triage_route

        add_triage_route(app, triage, guarded)

    from triagekit.serve.ui import mount_ui

    mount_ui(app, service, api_key)  # the /ui review page (same port; its own login, see serve/ui.py)

    return app


def _orjson_response(body: dict) -> Response:
    """The service's own body, encoded by orjson. The service builds it from validated input and the model's
    output, so validating it again against the response model only costs time (~35 us a body against ~2 us for
    the encoding, measured on a 4-head prediction); ``--no-fast-json`` keeps that check."""
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


def _as_is(body: dict) -> dict:
    return body  # FastAPI validates it against the route's response model and encodes it with pydantic-core


def create_app_from_env() -> FastAPI:
    """App factory for uvicorn worker processes: the model dir and settings come from the environment."""
    return create_app(os.environ[MODEL_DIR_ENV], ServeSettings.from_env())


def run_server(model_dir: str | Path, settings: ServeSettings, log_level: str = "info") -> None:
    """Serve until interrupted; SIGINT/SIGTERM shut down gracefully (queued requests answered, log flushed)."""
    import uvicorn

    from triagekit.core.registry import is_registry_ref

    registry = is_registry_ref(str(model_dir))
    if not registry and not (Path(model_dir) / "router.json").exists():
        # Still serve (/health answers, /ready says why), but say it loudly at the start.
        print(f"warning: {model_dir} has no router.json; /ready will report 503")
    if settings.workers > 1:
        os.environ[MODEL_DIR_ENV] = str(model_dir) if registry else str(Path(model_dir).resolve())
        os.environ[SETTINGS_ENV] = settings.to_json()
        uvicorn.run(
            "triagekit.serve.app:create_app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=log_level,
            timeout_graceful_shutdown=30,
            **_uvicorn_choices(settings),
        )
    else:
        uvicorn.run(
            create_app(model_dir, settings),
            host=settings.host,
            port=settings.port,
            log_level=log_level,
            timeout_graceful_shutdown=30,
            **_uvicorn_choices(settings),
        )


def _uvicorn_choices(settings: ServeSettings) -> dict[str, str]:
    """uvicorn's ``loop`` and ``http``: uvloop and httptools when installed (``auto``), unless told otherwise.

    An explicit choice that is not installed fails here with what to install, not deep inside uvicorn."""
    import importlib.util

    for name, module in ((settings.loop, "uvloop"), (settings.http, "httptools")):
        if name == module and importlib.util.find_spec(module) is None:
            raise SystemExit(f"{module} is not installed: pip install 'triagekit[serve]' (or choose auto)")
    return {"loop": settings.loop, "http": settings.http}
