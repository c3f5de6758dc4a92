"""Confidence calibration: temperature scaling, calibration error and review thresholds.

All functions take plain numpy arrays so they work for any backend (transformer, TF-IDF, exported model).
Single-label heads use ``probs`` of shape (n, c) and integer ``y`` of shape (n,); multi-label heads use
``probs`` and a 0/1 ``y`` of the same shape (n, c), each (sample, class) pair being one binary decision.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit

__all__ = [
    "softmax",
    "sigmoid",
    "fit_temperature",
    "expected_calibration_error",
    "reliability_bins",
    "selective_curve",
    "threshold_for_precision",
]

T_MIN, T_MAX = 0.05, 20.0


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature``, shifted by the row max so large logits cannot overflow."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(logits, temperature: float = 1.0) -> np.ndarray:
    """Element-wise sigmoid of ``logits / temperature`` (scipy's expit: no overflow, accurate tails)."""
    return expit(np.asarray(logits, dtype=np.float64) / temperature)


def _softmax_nll(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(y)), y]))


def _bce(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    # -log sigmoid(z) = logaddexp(0, -z) and -log(1 - sigmoid(z)) = logaddexp(0, z): stable for any z.
    return float(np.mean(y * np.logaddexp(0.0, -z) + (1.0 - y) * np.logaddexp(0.0, z)))


def fit_temperature(logits, y, multilabel: bool = False) -> float:
    """The temperature T minimising the validation NLL of ``softmax(logits / T)`` (BCE of the sigmoid if multi-label).

    The search is over log T (bounded, T in [0.05, 20]) since NLL is much better behaved in log space.

    Args:
        logits: Raw logits, shape (n, c).
        y: Integer class ids of shape (n,), or a 0/1 matrix of shape (n, c) when ``multilabel``.
        multilabel: Use binary cross-entropy over all (sample, class) pairs instead of softmax NLL.

    Returns:
        The fitted temperature; 1.0 when the data cannot identify one (no rows, fewer than two classes in the
        logits, or a single observed class / only one value of y), where fitting would just run to a bound.
    """
    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y)
    if logits.ndim != 2 or logits.shape[0] == 0 or len(np.unique(y)) < 2:
        return 1.0
    if multilabel:
        y = y.astype(np.float64)
        loss = _bce
    else:
        if logits.shape[1] < 2:
            return 1.0
        y = y.astype(np.int64)
        loss = _softmax_nll
    res = minimize_scalar(
        lambda log_t: loss(logits, y, float(np.exp(log_t))),
        bounds=(np.log(T_MIN), np.log(T_MAX)),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(res.x)) if res.success else 1.0


def _top_label(probs, y) -> tuple[np.ndarray, np.ndarray]:
    """Confidence and correctness of each decision: top-label for (n, c) + (n,), per pair for (n, c) + (n, c)."""
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y)
    if y.ndim == 2:
        p = probs.ravel()
        pred = p >= 0.5
        return np.where(pred, p, 1.0 - p), pred == y.ravel().astype(bool)
    if len(probs) == 0:
        return np.zeros(0), np.zeros(0, dtype=bool)
    return probs.max(axis=1), probs.argmax(axis=1) == y


def reliability_bins(probs, y, n_bins: int = 15) -> dict[str, np.ndarray]:
    """Accuracy and mean confidence per equal-width confidence bin (the data behind a reliability diagram).

    Args:
        probs: Probabilities, shape (n, c).
        y: Integer class ids (n,) for a single-label head, or a 0/1 matrix (n, c) for a multi-label head.
        n_bins: Number of equal-width bins over [0, 1].

    Returns:
        ``bin_edges`` (n_bins + 1,), and per bin ``accuracy``, ``confidence`` (NaN for empty bins) and ``count``.
    """
    conf, correct = _top_label(probs, y)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Right-closed bins, with a confidence of exactly 0 put in the first bin.
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(idx, weights=correct.astype(np.float64), minlength=n_bins) / count
        confidence = np.bincount(idx, weights=conf, minlength=n_bins) / count
    return {"bin_edges": edges, "accuracy": accuracy, "confidence": confidence, "count": count}


def expected_calibration_error(probs, y, n_bins: int = 15) -> float:
    """Top-label expected calibration error: sum over bins of (bin share) * |accuracy - mean confidence|.

    For a multi-label head (``y`` of shape (n, c)) each (sample, class) pair is one binary decision whose
    confidence is ``max(p, 1 - p)``.

    Args:
        probs: Probabilities, shape (n, c).
        y: Integer class ids (n,) or a 0/1 matrix (n, c).
        n_bins: Number of equal-width bins.

    Returns:
        ECE in [0, 1]; 0.0 for empty input.
    """
    bins = reliability_bins(probs, y, n_bins)
    total = bins["count"].sum()
    if total == 0:
        return 0.0
    gap = np.nan_to_num(np.abs(bins["accuracy"] - bins["confidence"]))
    return float(np.sum(bins["count"] / total * gap))


def selective_curve(confidence, correct) -> dict[str, np.ndarray]:
    """Accuracy against coverage when only predictions with ``confidence >= threshold`` are accepted.

    One point per distinct confidence value (ties are accepted or rejected together, so only those operating
    points are reachable), sorted by decreasing threshold, i.e. increasing coverage.

    Args:
        confidence: Confidence of each prediction, shape (n,).
        correct: Whether each prediction is right, shape (n,).

    Returns:
        ``coverage`` (share accepted), ``accuracy`` (of the accepted) and ``threshold`` arrays of equal length.
    """
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=np.float64)
    if conf.size == 0:
        return {"coverage": np.zeros(0), "accuracy": np.zeros(0), "threshold": np.zeros(0)}
    order = np.argsort(-conf, kind="stable")
    conf, ok = conf[order], ok[order]
    accepted = np.arange(1, len(conf) + 1)
    # The last index of each run of equal confidences is the point where the whole tie group is accepted.
    last = np.r_[conf[1:] != conf[:-1], True]
    return {
        "coverage": accepted[last] / len(conf),
        "accuracy": np.cumsum(ok)[last] / accepted[last],
        "threshold": conf[last],
    }


def threshold_for_precision(confidence, correct, target: float) -> float | None:
    """The lowest confidence threshold whose accepted predictions reach ``target`` precision.

    "Precision" here is the accuracy of the accepted predictions: of the tickets routed automatically
    (confidence >= t), the share routed correctly. The rest go to human review. Lower thresholds accept more,
    so the smallest qualifying t gives the largest coverage.

    Args:
        confidence: Confidence of each prediction, shape (n,).
        correct: Whether each prediction is right, shape (n,).
        target: Required accuracy of the accepted predictions, e.g. 0.9.

    Returns:
        The threshold (one of the observed confidences), or None if no non-empty accepted set reaches ``target``.
    """
    curve = selective_curve(confidence, correct)
    ok = np.flatnonzero(curve["accuracy"] >= target - 1e-12)
    if ok.size == 0:
        return None
    return float(curve["threshold"][ok[-1]])
