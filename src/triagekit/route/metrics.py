"""Classification metrics per head, computed from probabilities so top-k and thresholds come for free.

Every function indexes classes by position in ``labels`` (the head's class list), so classes absent from a
test set still get a row in the confusion matrix and per-class tables instead of shifting the others.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    hamming_loss,
    precision_recall_fscore_support,
)

__all__ = ["head_metrics", "multilabel_metrics", "group_metrics", "critical_recall", "top_k_accuracy"]


def top_k_accuracy(y_true, probs, k: int) -> float:
    """Share of samples whose true class is among the ``k`` most probable (k capped at the number of classes)."""
    y_true = np.asarray(y_true)
    probs = np.asarray(probs)
    if len(y_true) == 0:
        return 0.0
    k = max(1, min(int(k), probs.shape[1]))
    top = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    return float(np.mean(np.any(top == y_true[:, None], axis=1)))


def _per_class(y_true, y_pred, labels: Sequence[str]) -> dict[str, dict[str, float]]:
    if len(y_true) == 0:  # sklearn refuses empty input; a head whose test rows were all unknown has none
        return {lab: {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0} for lab in labels}
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(len(labels))), zero_division=0, average=None
    )
    return {
        lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, lab in enumerate(labels)
    }


def _macro_f1(y_true, y_pred) -> float:
    # Averaged over the classes seen in y_true or y_pred (sklearn's default): a class absent from the test set
    # and never predicted has no defined F1, and counting it as 0 would penalise a test split for being small.
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0)) if len(y_true) else 0.0


def head_metrics(y_true, probs, labels: Sequence[str], ks: Sequence[int] = (1, 2, 3)) -> dict:
    """Metrics of a single-label head.

    Args:
        y_true: Gold class ids, shape (n,), indexing ``labels``.
        probs: Class probabilities, shape (n, len(labels)); the prediction is the argmax.
        labels: Class names of the head.
        ks: The k of the top-k accuracies; keys are ``str(k)`` and k is capped at the number of classes.

    Returns:
        ``accuracy``, ``macro_f1``, ``weighted_f1``, ``top_k_accuracy``, ``per_class``, ``confusion_matrix``
        (rows gold, columns predicted, in ``labels`` order), ``classification_report`` (text) and ``n``.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64).reshape(len(y_true), len(labels))
    y_pred = probs.argmax(axis=1)
    idx = list(range(len(labels)))
    out = {
        "n": len(y_true),
        "top_k_accuracy": {str(k): top_k_accuracy(y_true, probs, k) for k in ks},
        "per_class": _per_class(y_true, y_pred, labels),
    }
    if len(y_true) == 0:
        cm = [[0] * len(labels) for _ in labels]
        return {**out, "accuracy": 0.0, "macro_f1": 0.0, "weighted_f1": 0.0, "confusion_matrix": cm,
                "classification_report": ""}  # fmt: skip
    report = classification_report(y_true, y_pred, labels=idx, target_names=list(labels), zero_division=0, digits=3)
    return {
        **out,
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": _macro_f1(y_true, y_pred),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=idx, average="weighted", zero_division=0)),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=idx).tolist(),
        "classification_report": report,
    }


def multilabel_metrics(y_true, probs, labels: Sequence[str], threshold: float = 0.5) -> dict:
    """Metrics of a multi-label head; a tag is predicted when its probability is >= ``threshold``.

    Args:
        y_true: Gold 0/1 matrix, shape (n, len(labels)).
        probs: Per-tag probabilities, same shape.
        labels: Tag names.
        threshold: Decision threshold applied to every tag.

    Returns:
        ``micro_f1``, ``macro_f1``, ``weighted_f1``, ``samples_f1``, ``subset_accuracy``, ``hamming_loss``,
        ``per_class`` and ``n``. ``samples_f1`` counts a sample with no gold and no predicted tag as right.
    """
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1, len(labels))
    y_pred = (np.asarray(probs, dtype=np.float64).reshape(y_true.shape) >= threshold).astype(np.int64)
    n = len(y_true)
    if n == 0:
        zero = dict.fromkeys(["micro_f1", "macro_f1", "weighted_f1", "samples_f1", "subset_accuracy"], 0.0)
        return {**zero, "hamming_loss": 0.0, "per_class": _per_class(y_true, y_pred, labels), "n": 0}
    # Macro over tags that occur in gold or predictions, for the same reason as _macro_f1.
    active = np.flatnonzero(y_true.any(axis=0) | y_pred.any(axis=0))
    macro = 1.0
    if active.size:
        macro = float(f1_score(y_true[:, active], y_pred[:, active], average="macro", zero_division=0))
    return {
        "n": n,
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "macro_f1": macro,
        "weighted_f1": float(f1_score(y_true, y_pred, average="weighted", zero_division=0)),
        "samples_f1": float(f1_score(y_true, y_pred, average="samples", zero_division=1.0)),
        "subset_accuracy": float(np.mean(np.all(y_true == y_pred, axis=1))),
        "hamming_loss": float(hamming_loss(y_true, y_pred)),
        "per_class": _per_class(y_true, y_pred, labels),
    }


def group_metrics(y_true, probs, groups: Sequence[str], threshold: float = 0.5) -> dict[str, dict]:
    """Metrics per group (e.g. per language), to spot subsets where the model is much worse.

    Args:
        y_true: Gold class ids (n,), or a 0/1 matrix (n, c) for a multi-label head.
        probs: Probabilities, shape (n, c).
        groups: Group name of each sample.
        threshold: Tag threshold for a multi-label head.

    Returns:
        ``{group: {"n", "accuracy", "macro_f1"}}`` sorted by group name; for a multi-label head ``accuracy`` is
        the subset accuracy and ``micro_f1`` is added.
    """
    y_true, probs, groups = np.asarray(y_true), np.asarray(probs), np.asarray(groups, dtype=object)
    out = {}
    for g in sorted(set(groups.tolist()), key=str):
        m = groups == g
        if y_true.ndim == 2:
            ml = multilabel_metrics(y_true[m], probs[m], [str(i) for i in range(y_true.shape[1])], threshold)
            out[str(g)] = {"n": ml["n"], "accuracy": ml["subset_accuracy"], "macro_f1": ml["macro_f1"],
                           "micro_f1": ml["micro_f1"]}  # fmt: skip
        else:
            pred = probs[m].argmax(axis=1)
            out[str(g)] = {"n": int(m.sum()), "accuracy": float(np.mean(pred == y_true[m])),
                           "macro_f1": _macro_f1(y_true[m], pred)}  # fmt: skip
    return out


def critical_recall(y_true, probs, labels: Sequence[str], critical: Sequence[str], threshold: float = 0.5) -> dict:
    """Recall of the classes that must not be missed (e.g. priority "urgent", queue "security").

    Args:
        y_true: Gold class ids (n,), or a 0/1 matrix (n, c) for a multi-label head.
        probs: Probabilities, shape (n, c).
        labels: Class names of the head.
        critical: The critical class names.
        threshold: Tag threshold for a multi-label head.

    Returns:
        ``{label: recall}``; None for a label unknown to the head or absent from ``y_true`` (recall undefined).
    """
    y_true, probs = np.asarray(y_true), np.asarray(probs)
    out: dict[str, float | None] = {}
    for lab in critical:
        if lab not in labels:
            out[lab] = None
            continue
        i = list(labels).index(lab)
        if y_true.ndim == 2:
            gold, hit = y_true[:, i] == 1, probs[:, i] >= threshold
        else:
            gold, hit = y_true == i, probs.argmax(axis=1) == i
        out[lab] = float(np.mean(hit[gold])) if gold.any() else None
    return out
