"""``triagekit serve``, ``triagekit feedback export`` and ``triagekit drift``: their options and the plain functions
they run (see ``triagekit.core.cli`` for the table format). Importing this module needs none of the ``serve``
extra: FastAPI, SQLAlchemy and rich load inside the verbs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from triagekit.core.cli import Group, Verb, console
from triagekit.core.dburl import db_url  # re-exported: the rule is shared with `route retrain --feedback`

__all__ = ["COMMANDS", "cmd_serve", "cmd_feedback_export", "cmd_drift", "db_url"]


def cmd_serve(args: argparse.Namespace) -> int:
    from triagekit.serve import require_serve_extra
    from triagekit.serve.settings import ServeSettings

    require_serve_extra()
    from triagekit.serve.app import run_server

    settings = ServeSettings(
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop=args.loop,
        http=args.http,
        fast_json=args.fast_json,
        db=args.db,
        api_key_env=args.api_key_env,
        batching=args.batching,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        model_batch=args.model_batch,
        inference_workers=args.inference_workers,
        max_batch_items=args.max_batch_items,
        max_body_bytes=args.max_body_bytes,
        max_text_chars=args.max_text_chars,
        drift_window=args.drift_window,
        drift_threshold=args.drift_threshold,
        drift_min_samples=min(args.drift_min_samples, args.drift_window),
        device=args.device,
        threads=args.threads,
        backend=args.backend,
        answer_model=args.answer_model,
        guardrails=args.guardrails,
        max_new_tokens=args.max_new_tokens,
        watch_seconds=args.watch,
    )
    settings.triage_model = args.triage_model
    settings.triage_router = args.triage_router
    settings.api_key()  # fail before binding the port when the key variable is unset
    run_server(args.model, settings, log_level=args.log_level)
    return 0


def cmd_feedback_export(args: argparse.Namespace) -> int:
    from triagekit.serve import require_serve_extra

    require_serve_extra("sqlalchemy")
    from sqlalchemy.exc import SQLAlchemyError

    from triagekit.serve.db import export_feedback

    try:
        n = export_feedback(db_url(args.db), args.out)
    except SQLAlchemyError as exc:
        raise RuntimeError(f"database error: {exc}") from None
    console().print(f"{n} corrected examples -> {args.out}")
    return 0


def cmd_drift(args: argparse.Namespace) -> int:
    from rich.table import Table

    from triagekit.serve.drift import distribution, drift_report, plot_drift, prediction_heads, read_predictions

    ref_rows, cur_rows = read_predictions(args.reference), read_predictions(args.current)
    if not ref_rows or not cur_rows:
        raise ValueError(f"{args.reference if not ref_rows else args.current} has no predictions")
    heads = prediction_heads(ref_rows[0])
    if not heads:
        raise ValueError(
            f"{args.reference}: no head predictions in the first line (expected `triagekit route predict` output)"
        )
    reference, current = distribution(ref_rows, heads, args.bins), distribution(cur_rows, heads, args.bins)
    report = drift_report(reference, current, args.threshold, args.min_samples)
    report.update(n_reference=len(ref_rows), n_current=len(cur_rows))
    plot = Path(args.plot) if args.plot else Path(args.current).with_suffix(".drift.png")
    plot_drift(reference, current, report, plot)
    if args.json:
        print(json.dumps({**report, "plot": str(plot)}, indent=2))
    else:
        table = Table(
            title=f"drift: {len(cur_rows)} current vs {len(ref_rows)} reference predictions "
            f"(alert at PSI >= {args.threshold})"
        )
        for col in ("head", "PSI labels", "PSI confidence", "status"):
            table.add_column(col, justify="left" if col in ("head", "status") else "right")
        for head, r in report["heads"].items():
            color = {"ok": "green", "alert": "red"}.get(r["status"], "yellow")
            table.add_row(head, _fmt(r["psi_label"]), _fmt(r["psi_confidence"]), f"[{color}]{r['status']}")
        from rich.console import Console

        Console().print(table)
        console().print(f"overall: {report['status']}; plot: {plot}")
    return 1 if args.fail_on_alert and report["status"] == "alert" else 0


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


# ---------------------------------------------------------------------------------------------------------------
# options and the command table
def _serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="run or export directory (router.json), or registry:NAME@alias")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--db",
        default=None,
        help="SQLAlchemy URL of the prediction log (default sqlite:///DIR/"
        "predictions.db; PostgreSQL: postgresql+psycopg://...)",
    )
    p.add_argument(
        "--api-key-env",
        default=None,
        metavar="NAME",
        help="require header X-API-Key equal to this environment variable",
    )
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (each loads the model)")
    p.add_argument(
        "--loop",
        default="auto",
        choices=["auto", "uvloop", "asyncio"],
        help="event loop (auto: uvloop when installed)",
    )
    p.add_argument(
        "--http",
        default="auto",
        choices=["auto", "httptools", "h11"],
        help="HTTP/1.1 parser (auto: httptools when installed)",
    )
    p.add_argument(
        "--fast-json",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="orjson prediction bodies (--no-fast-json: validate each body against its response model first)",
    )
    p.add_argument("--max-batch", type=int, default=32, help="most inputs per model call")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a batch waits to fill up")
    p.add_argument(
        "--inference-workers",
        type=int,
        default=1,
        help="model calls that may run at once (2 with --threads 1 fills 2 cores best)",
    )
    p.add_argument(
        "--model-batch",
        type=int,
        default=4,
        help="most inputs per forward pass (a micro-batch runs length-sorted in chunks of this size)",
    )
    p.add_argument(
        "--batching",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="micro-batch concurrent requests (--no-batching: one model call per request)",
    )
    p.add_argument("--max-batch-items", type=int, default=64, help="most items in one POST /predict_batch")
    p.add_argument("--max-body-bytes", type=int, default=1_000_000)
    p.add_argument("--max-text-chars", type=int, default=20_000)
    p.add_argument("--drift-window", type=int, default=1000, help="recent predictions compared for drift")
    p.add_argument("--drift-threshold", type=float, default=0.2, help="PSI alert threshold")
    p.add_argument("--drift-min-samples", type=int, default=100)
    p.add_argument("--device", default=None)
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads for inference (default: one per core; 1 is often faster on shared cores)",
    )
    p.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "onnx", "onnx-fp32"],
        help="auto: the directory as it is (PyTorch for a run); onnx: the run's int8 ONNX graph on "
        "onnxruntime, the fast path on CPU (exported into DIR/onnx-int8 on first start, reused "
        "while the run is unchanged); onnx-fp32: the float32 graph",
    )
    p.add_argument(
        "--answer-model",
        default=None,
        metavar="DIR",
        help="also serve POST /generate with this answer model (an `answer train` run, or smollm2)",
    )
    p.add_argument("--guardrails", default=None, help="YAML guardrail rules for /generate (default: built-in)")
    p.add_argument("--max-new-tokens", type=int, default=512, help="most tokens a /generate client may ask for")
    p.add_argument(
        "--triage-model",
        default=None,
        metavar="DIR",
        help="also serve POST /triage with this triage model (a `triage train` run, or smollm2)",
    )
    p.add_argument(
        "--watch",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="poll a registry alias this often and hot-reload when it moves (default 0: only on POST /admin/reload)",
    )
    p.add_argument(
        "--triage-router",
        default=None,
        metavar="DIR",
        help="router run that fills the triage schema's enum fields (router-guided POST /triage)",
    )
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])


def _feedback_export_arguments(e: argparse.ArgumentParser) -> None:
    e.add_argument("--db", required=True, help="SQLAlchemy URL, SQLite file, or model dir with predictions.db")
    e.add_argument("--out", required=True, help="output .jsonl, ready for `triagekit route train --data`")


def _drift_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reference", required=True, help="predictions JSONL of the reference period")
    p.add_argument("--current", required=True, help="predictions JSONL of the period to check")
    p.add_argument("--threshold", type=float, default=0.2, help="PSI at or above which a head is in alert")
    p.add_argument("--min-samples", type=int, default=100, help="fewer predictions give insufficient_data")
    p.add_argument("--bins", type=int, default=10, help="confidence histogram bins")
    p.add_argument("--plot", default=None, help="PNG to write (default: CURRENT.drift.png)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--fail-on-alert", action="store_true", help="exit 1 when any head is in alert")


COMMANDS = {
    "serve": Verb(
        cmd_serve,
        _serve_arguments,
        "serve a router over HTTP, with optional /triage and /generate models (needs the serve extra)",
    ),
    "feedback": Group(
        "work with the feedback collected by the service",
        {
            "export": Verb(
                cmd_feedback_export,
                _feedback_export_arguments,
                "write corrected examples (text fields + corrected labels) as JSONL",
            ),
        },
    ),
    "drift": Verb(
        cmd_drift, _drift_arguments, "PSI drift report between two prediction files (triagekit route predict --output)"
    ),
}
