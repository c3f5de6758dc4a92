"""The ``serve``, ``feedback`` and ``drift`` commands: their parsers (for the command table in ``triagekit.cli``)
and the plain functions they run. Importing this module needs none of the ``serve`` extra."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["cmd_serve", "cmd_feedback_export", "cmd_drift", "_add_serve", "_add_feedback", "_add_drift", "db_url"]


def _console():
    from rich.console import Console

    return Console(stderr=True)


def db_url(value: str) -> str:
    """A SQLAlchemy URL from a URL, a SQLite file or a model directory (its ``predictions.db``)."""
    if "://" in value:
        return value
    path = Path(value)
    if path.is_dir():
        path = path / "predictions.db"
    if not path.exists():
        raise FileNotFoundError(f"no prediction log at {path}")
    return f"sqlite:///{path.resolve()}"


def cmd_serve(args: argparse.Namespace) -> int:
    from triagekit.serve import require_serve_extra
    from triagekit.serve.settings import ServeSettings

    require_serve_extra()
    from triagekit.serve.app import run_server

    settings = ServeSettings(
        host=args.host, port=args.port, workers=args.workers, db=args.db, api_key_env=args.api_key_env,
        batching=args.batching, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
        max_batch_items=args.max_batch_items, max_body_bytes=args.max_body_bytes, max_text_chars=args.max_text_chars,
        drift_window=args.drift_window, drift_threshold=args.drift_threshold,
        drift_min_samples=min(args.drift_min_samples, args.drift_window), device=args.device,
        threads=args.threads, backend=args.backend, answer_model=args.answer_model, guardrails=args.guardrails,
        max_new_tokens=args.max_new_tokens)
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
    _console().print(f"{n} corrected examples -> {args.out}")
    return 0


def cmd_drift(args: argparse.Namespace) -> int:
    from rich.table import Table

    from triagekit.serve.drift import distribution, drift_report, plot_drift, prediction_heads, read_predictions

    ref_rows, cur_rows = read_predictions(args.reference), read_predictions(args.current)
    if not ref_rows or not cur_rows:
        raise ValueError(f"{args.reference if not ref_rows else args.current} has no predictions")
    heads = prediction_heads(ref_rows[0])
    if not heads:
        raise ValueError(f"{args.reference}: no head predictions in the first line (expected `triagekit predict` "
                         f"output)")
    reference, current = distribution(ref_rows, heads, args.bins), distribution(cur_rows, heads, args.bins)
    report = drift_report(reference, current, args.threshold, args.min_samples)
    report.update(n_reference=len(ref_rows), n_current=len(cur_rows))
    plot = Path(args.plot) if args.plot else Path(args.current).with_suffix(".drift.png")
    plot_drift(reference, current, report, plot)
    if args.json:
        print(json.dumps({**report, "plot": str(plot)}, indent=2))
    else:
        table = Table(title=f"drift: {len(cur_rows)} current vs {len(ref_rows)} reference predictions "
                            f"(alert at PSI >= {args.threshold})")
        for col in ("head", "PSI labels", "PSI confidence", "status"):
            table.add_column(col, justify="left" if col in ("head", "status") else "right")
        for head, r in report["heads"].items():
            color = {"ok": "green", "alert": "red"}.get(r["status"], "yellow")
            table.add_row(head, _fmt(r["psi_label"]), _fmt(r["psi_confidence"]), f"[{color}]{r['status']}")
        from rich.console import Console

        Console().print(table)
        _console().print(f"overall: {report['status']}; plot: {plot}")
    return 1 if args.fail_on_alert and report["status"] == "alert" else 0


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


# ---------------------------------------------------------------------------------------------------------------
# parsers for the command table
def _add_serve(sub) -> None:
    p = sub.add_parser("serve", help="serve a trained router over HTTP (needs the serve extra)")
    p.add_argument("model", help="run or export directory (router.json)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--db", default=None, help="SQLAlchemy URL of the prediction log (default sqlite:///DIR/"
                                              "predictions.db; PostgreSQL: postgresql+psycopg://...)")
    p.add_argument("--api-key-env", default=None, metavar="NAME",
                   help="require header X-API-Key equal to this environment variable")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (each loads the model)")
    p.add_argument("--max-batch", type=int, default=32, help="most inputs per model call")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a batch waits to fill up")
    p.add_argument("--batching", action=argparse.BooleanOptionalAction, default=True,
                   help="micro-batch concurrent requests (--no-batching: one model call per request)")
    p.add_argument("--max-batch-items", type=int, default=64, help="most items in one POST /predict_batch")
    p.add_argument("--max-body-bytes", type=int, default=1_000_000)
    p.add_argument("--max-text-chars", type=int, default=20_000)
    p.add_argument("--drift-window", type=int, default=1000, help="recent predictions compared for drift")
    p.add_argument("--drift-threshold", type=float, default=0.2, help="PSI alert threshold")
    p.add_argument("--drift-min-samples", type=int, default=100)
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads for inference (default: one per core; 1 is often faster on shared cores)")
    p.add_argument("--backend", default="auto", choices=["auto", "onnx", "onnx-fp32"],
                   help="auto: the directory as it is (PyTorch for a run); onnx: the run's int8 ONNX graph on "
                        "onnxruntime, the fast path on CPU (exported into DIR/onnx-int8 on first start, reused "
                        "while the run is unchanged); onnx-fp32: the float32 graph")
    p.add_argument("--answer-model", default=None, metavar="DIR",
                   help="also serve POST /generate with this answer model (train --task answer run, or smollm2)")
    p.add_argument("--guardrails", default=None, help="YAML guardrail rules for /generate (default: built-in)")
    p.add_argument("--max-new-tokens", type=int, default=512, help="most tokens a /generate client may ask for")
    p.add_argument("--triage-model", default=None, metavar="DIR",
                   help="also serve POST /triage with this triage model (train --task triage run, or smollm2)")
    p.add_argument("--triage-router", default=None, metavar="DIR",
                   help="router run that fills the triage schema's enum fields (router-guided POST /triage)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=cmd_serve)


def _add_feedback(sub) -> None:
    p = sub.add_parser("feedback", help="work with the feedback collected by the service")
    fsub = p.add_subparsers(dest="feedback_command", required=True)
    e = fsub.add_parser("export", help="write corrected examples (text fields + corrected labels) as JSONL")
    e.add_argument("--db", required=True, help="SQLAlchemy URL, SQLite file, or model dir with predictions.db")
    e.add_argument("--out", required=True, help="output .jsonl, ready for `triagekit train --data`")
    e.set_defaults(func=cmd_feedback_export)


def _add_drift(sub) -> None:
    p = sub.add_parser("drift", help="PSI drift report between two prediction files (triagekit predict --output)")
    p.add_argument("--reference", required=True, help="predictions JSONL of the reference period")
    p.add_argument("--current", required=True, help="predictions JSONL of the period to check")
    p.add_argument("--threshold", type=float, default=0.2, help="PSI at or above which a head is in alert")
    p.add_argument("--min-samples", type=int, default=100, help="fewer predictions give insufficient_data")
    p.add_argument("--bins", type=int, default=10, help="confidence histogram bins")
    p.add_argument("--plot", default=None, help="PNG to write (default: CURRENT.drift.png)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--fail-on-alert", action="store_true", help="exit 1 when any head is in alert")
    p.set_defaults(func=cmd_drift)
