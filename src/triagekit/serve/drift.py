"""Prediction drift: population stability index (PSI) of each head's predicted labels, confidences and, for a
head with an out-of-scope detector, of its out-of-scope flag (with the rate in the window and in the reference).

PSI = sum_i (c_i - r_i) * ln(c_i / r_i) over the bins of a reference (r) and a current (c) distribution, both
normalised, empty bins floored at ``EPS``. Rule of thumb: < 0.1 stable, 0.1-0.2 moderate, >= 0.2 significant.
The reference is the model's predictions on its validation split; the current window is the latest predictions.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "psi",
    "distribution",
    "drift_report",
    "DriftMonitor",
    "load_or_build_reference",
    "read_predictions",
    "prediction_heads",
    "plot_drift",
    "REFERENCE_FILE",
    "BINS",
]

REFERENCE_FILE = "reference.json"
BINS = 10
EPS = 1e-4
NO_TAG = "(none)"
"""Bin of a multi-label head's predictions with no tag at all."""


def psi(reference: Sequence[float], current: Sequence[float], eps: float = EPS) -> float:
    """PSI between two histograms over the same bins (counts or fractions); 0 for identical distributions."""
    r, c = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    if r.shape != c.shape:
        raise ValueError(f"histograms differ in length: {r.shape} vs {c.shape}")
    if r.sum() <= 0 or c.sum() <= 0:
        raise ValueError("a histogram is empty")
    r, c = np.clip(r / r.sum(), eps, None), np.clip(c / c.sum(), eps, None)
    return float(np.sum((c - r) * np.log(c / r)))


def _head_values(result: Mapping[str, Any]) -> tuple[list[str], float]:
    """(predicted labels, confidence) of one head's output; a multi-label head's confidence is its top score."""
    if "label" in result:
        return [str(result["label"])], float(result.get("confidence") or 0.0)
    tags = [str(t) for t in result.get("labels") or []] or [NO_TAG]
    scores = result.get("scores") or {}
    return tags, float(max(scores.values(), default=0.0))


def prediction_heads(record: Mapping[str, Any]) -> list[str]:
    """Head names of a prediction record (``triagekit route predict`` line or a service output)."""
    return [k for k, v in record.items() if isinstance(v, Mapping) and ("label" in v or "labels" in v)]


def distribution(
    outputs: Iterable[Mapping[str, Any]], heads: Sequence[str] | None = None, bins: int = BINS
) -> dict[str, dict[str, Any]]:
    """Per head: label counts, a ``bins``-bin confidence histogram on [0, 1] and the number of predictions."""
    labels: dict[str, Counter] = {}
    conf: dict[str, list[float]] = {}
    oos: dict[str, list[int]] = {}
    for out in outputs:
        for head in heads if heads is not None else prediction_heads(out):
            result = out.get(head)
            if not isinstance(result, Mapping):
                continue
            tags, c = _head_values(result)
            labels.setdefault(head, Counter()).update(tags)
            conf.setdefault(head, []).append(c)
            if "out_of_scope" in result:  # [in scope, out of scope] counts of a head with a detector
                oos.setdefault(head, [0, 0])[bool(result["out_of_scope"])] += 1
    return {
        h: {
            "labels": dict(sorted(labels[h].items())),
            "n": len(conf[h]),
            "confidence": np.histogram(np.clip(conf[h], 0.0, 1.0), bins=bins, range=(0.0, 1.0))[0].tolist(),
            **({"out_of_scope": oos[h]} if h in oos else {}),
        }
        for h in labels
    }


def _oos_drift(ref: Mapping[str, Any], cur: Mapping[str, Any]) -> dict[str, Any]:
    """The out-of-scope rate of the window beside the reference's, and the PSI of the two (flagged or not): a
    growing share of tickets that fit no class is drift the label PSI can miss (they still get some label)."""
    r, c = ref.get("out_of_scope"), cur.get("out_of_scope")
    if not r or not c or not sum(c) or not sum(r):
        return {}
    return {
        "oos_rate": round(c[1] / sum(c), 6),
        "oos_rate_reference": round(r[1] / sum(r), 6),
        "psi_oos": round(psi(r, c), 6),
    }


def drift_report(
    reference: Mapping[str, Mapping[str, Any]],
    current: Mapping[str, Mapping[str, Any]],
    threshold: float = 0.2,
    min_samples: int = 100,
) -> dict[str, Any]:
    """Compare two ``distribution`` results head by head.

    A head is ``insufficient_data`` when either side has fewer than ``min_samples`` predictions (its PSI is still
    given when both have some), ``alert`` when the label or the confidence PSI reaches ``threshold``, else ``ok``.
    """
    heads: dict[str, dict[str, Any]] = {}
    for head, ref in reference.items():
        cur = current.get(head) or {"labels": {}, "confidence": [], "n": 0}
        out: dict[str, Any] = {"psi_label": None, "psi_confidence": None, "n": int(cur["n"])}
        if cur["n"] > 0 and ref["n"] > 0:
            keys = sorted(set(ref["labels"]) | set(cur["labels"]))
            out["psi_label"] = round(
                psi([ref["labels"].get(k, 0) for k in keys], [cur["labels"].get(k, 0) for k in keys]), 6
            )
            out["psi_confidence"] = round(psi(ref["confidence"], cur["confidence"]), 6)
            out.update(_oos_drift(ref, cur))
        if cur["n"] < min_samples or ref["n"] < min_samples:
            out["status"] = "insufficient_data"
        else:
            worst = max(out["psi_label"], out["psi_confidence"], out.get("psi_oos", 0.0))
            out["status"] = "alert" if worst >= threshold else "ok"
        heads[head] = out
    statuses = {h["status"] for h in heads.values()}
    status = (
        "alert"
        if "alert" in statuses
        else "insufficient_data"
        if "insufficient_data" in statuses or not heads
        else "ok"
    )
    return {"status": status, "threshold": threshold, "heads": heads}


class DriftMonitor:
    """The reference distribution and the drift settings; ``report`` compares a window of predictions with it.

    The window itself comes from the shared prediction log (``PredictionStore.recent_outputs``), not from process
    memory, so every replica (and every worker process) that shares the log reports the same drift.
    """

    def __init__(self, heads: Sequence[str], window: int = 1000, threshold: float = 0.2, min_samples: int = 100):
        self.heads, self.window, self.threshold, self.min_samples = list(heads), window, threshold, min_samples
        self.reference: dict[str, Any] | None = None
        self.source: str | None = None
        self.reason: str | None = "no reference distribution"
        self.bins = BINS

    def set_reference(self, reference: Mapping[str, Any] | None, source: str | None, reason: str | None = None):
        self.reference, self.source, self.reason = (dict(reference) if reference else None), source, reason
        heads = (self.reference or {}).get("heads") or {}
        self.bins = len(next(iter(heads.values()))["confidence"]) if heads else BINS

    def report(self, recent: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
        """Drift of ``recent`` (outputs, oldest first; only the latest ``window`` count) against the reference."""
        recent = list(recent)[-self.window :]
        n = len(recent)
        if self.reference is None:
            return {
                "status": "insufficient_data",
                "n": n,
                "window": self.window,
                "threshold": self.threshold,
                "reference": None,
                "reason": self.reason,
                "heads": {},
            }
        current = distribution(recent, self.heads, bins=self.bins)
        report = drift_report(self.reference["heads"], current, self.threshold, self.min_samples)
        reason = (
            f"{n} predictions in the window, {self.min_samples} needed"
            if report["status"] == "insufficient_data"
            else None
        )
        return {**report, "n": n, "window": self.window, "reference": self.source, "reason": reason}


def read_predictions(path: str | Path) -> list[dict[str, Any]]:
    """The records of a prediction JSONL file (as written by ``triagekit route predict --output``)."""
    rows = []
    with Path(path).open(encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{i}: not JSON ({exc.msg})") from None
    return rows


def load_or_build_reference(router, model_dir: str | Path, max_rows: int = 5000) -> tuple[dict | None, str]:
    """The reference distribution of ``router``: ``reference.json`` in the model dir when it matches the model,
    else computed from predictions on the run's ``val.jsonl`` and written there for next time.

    Returns:
        (reference or None, its source, or the reason there is none)
    """
    file = Path(model_dir) / REFERENCE_FILE
    if file.exists():
        try:
            ref = json.loads(file.read_text())
        except (OSError, ValueError):
            ref = {"model_version": "unreadable"}  # recomputed below
        if ref.get("model_version") in (None, router.model_version):
            return ref, str(file)
    data_dir = router.meta.get("data_dir")
    val = Path(data_dir) / "val.jsonl" if data_dir else None
    if val is None or not val.exists():
        return None, f"no {REFERENCE_FILE} in {model_dir} and no validation split ({val}) to compute one"
    rows = read_predictions(val)[:max_rows]
    heads = [h.name for h in router.heads]
    outputs = router.predict(rows, top_k=1) if rows else []
    ref = {
        "model_version": router.model_version,
        "source": str(val),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "n": len(outputs),
        "heads": distribution(outputs, heads),
    }
    try:  # atomically: several worker processes may compute it at the same time
        tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(ref, indent=2))
        os.replace(tmp, file)
    except OSError:  # a read-only model dir still serves; the reference is recomputed next start
        pass
    return ref, str(val)


def plot_drift(
    reference: Mapping[str, Any], current: Mapping[str, Any], report: Mapping[str, Any], out: str | Path
) -> Path:
    """One row per head: label shares and confidence histograms, reference beside current."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heads = list(reference)
    fig, axes = plt.subplots(len(heads), 2, figsize=(12, 3.2 * max(1, len(heads))), squeeze=False)
    for row, head in enumerate(heads):
        ref, cur = reference[head], current.get(head) or {"labels": {}, "confidence": [0] * BINS, "n": 0}
        keys = sorted(set(ref["labels"]) | set(cur["labels"]))
        x = np.arange(len(keys))
        rl = np.array([ref["labels"].get(k, 0) for k in keys], float)
        cl = np.array([cur["labels"].get(k, 0) for k in keys], float)
        ax = axes[row][0]
        ax.bar(x - 0.2, rl / max(rl.sum(), 1), 0.4, label="reference")
        ax.bar(x + 0.2, cl / max(cl.sum(), 1), 0.4, label="current")
        ax.set_xticks(x, keys, rotation=30, ha="right", fontsize=7)
        r = report["heads"].get(head, {})
        ax.set_title(f"{head}: labels (PSI {_fmt(r.get('psi_label'))})", fontsize=9)
        ax.legend(fontsize=7)
        ax = axes[row][1]
        edges = np.linspace(0, 1, len(ref["confidence"]) + 1)[:-1]
        width = 1 / len(ref["confidence"])
        rc, cc = np.array(ref["confidence"], float), np.array(cur["confidence"], float)
        ax.bar(edges, rc / max(rc.sum(), 1), width * 0.45, align="edge", label="reference")
        ax.bar(edges + width * 0.45, cc / max(cc.sum(), 1), width * 0.45, align="edge", label="current")
        ax.set_title(
            f"{head}: confidence (PSI {_fmt(r.get('psi_confidence'))}); head status: {r.get('status', '-')}", fontsize=9
        )
        ax.set_xlim(0, 1)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"
