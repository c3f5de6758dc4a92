"""Prometheus metrics of the routing service, in a registry of its own (several apps can live in one process)."""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["ServeMetrics"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServeMetrics:
    """Request counts and latencies per endpoint, batch sizes, predictions per head/label, reviews, feedback,
    prediction-log writes and drift gauges."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "triagekit_requests",
            "HTTP requests by endpoint, method and status code",
            ["endpoint", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "triagekit_request_duration_seconds",
            "HTTP request latency by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "triagekit_batch_size", "Inputs per model call (micro-batch size)", buckets=BATCH_BUCKETS, registry=r
        )
        self.inference = Histogram(
            "triagekit_inference_duration_seconds", "Duration of one model call", buckets=LATENCY_BUCKETS, registry=r
        )
        self.predictions = Counter("triagekit_predictions", "Predicted labels by head", ["head", "label"], registry=r)
        self.review = Counter("triagekit_review_required", "Predictions sent to human review", registry=r)
        self.feedback = Counter("triagekit_feedback", "Feedback rows stored, by head", ["head"], registry=r)
        self.log_rows = Counter("triagekit_log_rows_written", "Prediction-log rows written", ["table"], registry=r)
        self.log_dropped = Counter(
            "triagekit_log_rows_dropped", "Prediction-log rows given up after retries", registry=r
        )
        self.log_pending = Gauge("triagekit_log_rows_pending", "Prediction-log rows waiting to be written", registry=r)
        self.model_loaded = Gauge("triagekit_model_loaded", "1 when the model is loaded and serving", registry=r)
        self.reloads = Counter(
            "triagekit_model_reloads", "Model reloads by result (reloaded, unchanged, failed)", ["result"], registry=r
        )
        self.drift_psi = Gauge(
            "triagekit_drift_psi", "PSI of the recent window against the reference", ["head", "kind"], registry=r
        )
        self.drift_alert = Gauge(
            "triagekit_drift_alert", "1 when the head's drift status is alert", ["head"], registry=r
        )
        self.out_of_scope = Counter(
            "triagekit_out_of_scope", "Predictions a head's detector flagged as out of scope", ["head"], registry=r
        )
        self.oos_rate = Gauge(
            "triagekit_drift_out_of_scope_rate",
            "Share of the drift window flagged out of scope, by head (window) and in the reference (reference)",
            ["head", "window"],
            registry=r,
        )
        self.drift_window = Gauge("triagekit_drift_window_predictions", "Predictions in the drift window", registry=r)

    def observe_prediction(self, heads: Mapping[str, Mapping[str, Any]], review: bool) -> None:
        for head, result in heads.items():
            for label in [result["label"]] if "label" in result else result.get("labels") or ["(none)"]:
                self.predictions.labels(head, label).inc()
            if result.get("out_of_scope"):
                self.out_of_scope.labels(head).inc()
        if review:
            self.review.inc()

    def observe_drift(self, report: Mapping[str, Any]) -> None:
        self.drift_window.set(report.get("n", 0))
        for head, r in report.get("heads", {}).items():
            for kind in ("label", "confidence", "oos"):
                value = r.get(f"psi_{kind}")
                if value is not None or kind != "oos":  # heads without a detector have no oos series
                    self.drift_psi.labels(head, kind).set(float("nan") if value is None else value)
            if r.get("oos_rate") is not None:
                self.oos_rate.labels(head, "window").set(r["oos_rate"])
                self.oos_rate.labels(head, "reference").set(r["oos_rate_reference"])
            self.drift_alert.labels(head).set(1.0 if r.get("status") == "alert" else 0.0)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
