"""The metric the user picks: scores for early stopping and the post-hoc prior (logit) correction.

A classifier trained with plain cross-entropy on skewed data predicts the frequent classes too often: right for
accuracy, wrong for macro-F1, where a queue with 3 % of the tickets counts as much as one with 30 %. Subtracting
``tau * log(prior)`` from the logits (Menon et al., 2021, "Long-tail learning via logit adjustment") moves the
decision towards the rare classes; tau is fitted on validation for the chosen objective (0 = no change), and the
temperature is fitted afterwards on the corrected logits, so the reported calibration is that of what is served.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from triagekit.route.heads import HeadSpec

__all__ = ["OBJECTIVES", "score", "head_scores", "fit_prior_correction", "apply_bias", "TAUS"]

OBJECTIVES = ("macro_f1", "accuracy")
TAUS = np.round(np.arange(0.0, 1.51, 0.25), 2)
MIN_GAIN = 0.005
"""A tau must beat no correction by this much on validation: a few hundred tickets make smaller gains noise."""


def score(y: np.ndarray, pred: np.ndarray, objective: str) -> float:
    """Macro-F1 or accuracy of class ids ``pred`` against ``y`` (0 for no rows)."""
    from sklearn.metrics import f1_score

    if len(y) == 0:
        return 0.0
    if objective == "accuracy":
        return float(np.mean(pred == y))
    return float(f1_score(y, pred, average="macro", zero_division=0))


def head_scores(
    heads: list[HeadSpec],
    logits: Mapping[str, np.ndarray],
    targets: Mapping[str, np.ndarray],
    objective: str = "macro_f1",
) -> dict[str, float]:
    """Per head, the objective on rows with a label (multi-label heads: macro-F1 of the tag decisions)."""
    from sklearn.metrics import f1_score

    out = {}
    for h in heads:
        z, y = logits[h.name], targets[h.name]
        if h.multilabel:
            out[h.name] = float(f1_score(y, z > 0, average="macro", zero_division=0)) if len(y) else 0.0
        else:
            keep = y >= 0
            out[h.name] = score(y[keep], z[keep].argmax(1), objective)
    return out


def log_prior(train_targets: np.ndarray, n_classes: int) -> np.ndarray:
    """Log class frequencies of the training targets, add-one smoothed so an unseen class stays finite."""
    counts = np.bincount(train_targets[train_targets >= 0], minlength=n_classes).astype(np.float64) + 1.0
    return np.log(counts / counts.sum())


def fit_prior_correction(
    heads: list[HeadSpec],
    val_logits: Mapping[str, np.ndarray],
    val_targets: Mapping[str, np.ndarray],
    train_targets: Mapping[str, np.ndarray],
    objective: str = "macro_f1",
) -> dict[str, dict]:
    """Per single-label head, ``{"tau", "logit_bias", "val_before", "val_after"}``; ``logit_bias`` is added to the
    raw logits (``-tau * log prior``), None when tau is 0."""
    out = {}
    for h in heads:
        if h.multilabel:
            continue
        y = val_targets[h.name]
        keep = y >= 0
        if not keep.any():
            continue
        z, y = val_logits[h.name][keep], y[keep]
        prior = log_prior(train_targets[h.name], len(h.labels))
        base = score(y, z.argmax(1), objective)
        best_tau, best = 0.0, base
        for tau in TAUS[1:]:
            s = score(y, (z - tau * prior).argmax(1), objective)
            if s > best + 1e-9 and s >= base + MIN_GAIN:
                best_tau, best = float(tau), s
        out[h.name] = {
            "tau": best_tau,
            "logit_bias": (-best_tau * prior).tolist() if best_tau else None,
            "val_before": base,
            "val_after": best,
            "objective": objective,
        }
    return out


def apply_bias(logits: Mapping[str, np.ndarray], calibration: Mapping[str, Mapping]) -> dict[str, np.ndarray]:
    """``logits`` with each head's stored ``logit_bias`` added (heads without one unchanged)."""
    out = {}
    for name, z in logits.items():
        bias = (calibration.get(name) or {}).get("logit_bias")
        out[name] = z + np.asarray(bias, dtype=z.dtype) if bias is not None and z.shape[1] == len(bias) else z
    return out
