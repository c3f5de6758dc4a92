"""Out-of-scope detection: a score per single-label head that says "this ticket is none of my classes".

Every detector is fitted on the known classes only (training features and labels; the threshold on validation),
so no out-of-scope example is needed. Higher scores mean "further from what the head was trained on":

- ``msp``: 1 - the maximum calibrated softmax probability (Hendrycks & Gimpel, 2017), the baseline and what the
  review threshold already looks at;
- ``energy``: ``-logsumexp(logits)`` (Liu et al., 2020, "Energy-based Out-of-distribution Detection");
- ``mahalanobis``: the smallest Mahalanobis distance of the pooled feature vector to a class mean under one shared
  covariance fitted on the training features (Lee et al., 2018; Podolskiy et al., 2021 found it the strongest
  detector on intent data such as Banking77 / CLINC150); the covariance is Ledoit-Wolf shrunk, so a head with few
  examples per feature dimension still gets an invertible estimate;
- ``knn``: the cosine distance of the L2-normalised feature vector to its k-th nearest training example (Sun et
  al., 2022, "Out-of-distribution detection with deep nearest neighbors").

The threshold of a head is the ``1 - target_rejection`` quantile of its validation scores, so about
``target_rejection`` of in-scope tickets are flagged. The fitted statistics live in ``oos.npz`` beside
``router.json``, which stores the detector, thresholds and the rates measured on validation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = [
    "DETECTORS",
    "FEATURE_DETECTORS",
    "FEATURES",
    "OOS_FILE",
    "OutOfScope",
    "fit_scorer",
    "fit_out_of_scope",
    "fit_run",
    "resolve_detector",
    "score",
    "threshold_for",
    "auroc",
    "out_of_scope_report",
]

DETECTORS = ("mahalanobis", "knn", "energy", "msp", "none")
FEATURE_DETECTORS = ("mahalanobis", "knn")
FEATURES = "__features__"
"""The key of the pooled feature vectors in a backend's ``outputs`` (no head can be named so: it has ``__``)."""
OOS_FILE = "oos.npz"
DEFAULT_NEURAL_DETECTOR = "msp"
"""What ``ood_detector: auto`` picks for a neural run, by this project's measurement: on the open-intent protocol
(Banking77, 75 % known, 3 class splits, the fine-tuned default router) maximum softmax probability beat Mahalanobis,
kNN and energy at every in-scope rejection rate (macro-F1 over n + 1 at 5 %: 87.3 vs 87.0 / 86.8 / 84.5; AUROC 87.7
vs 87.3 / 86.5 / 86.2; docs/benchmarks.md, open-intent detection), and it needs no pass over the training rows.
The literature's pick on fine-tuned features (Podolskiy et al., 2021) is Mahalanobis, one setting away."""
KNN_K = 10
"""k of the kNN detector: Sun et al. use k=50 on 50k ImageNet-scale banks and report a flat optimum; with a few
hundred examples per class a smaller k keeps the neighbourhood inside one class."""


def _softmax(z: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(z, np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def fit_scorer(
    detector: str, features: np.ndarray | None, labels: np.ndarray, n_classes: int, k: int = KNN_K
) -> dict[str, np.ndarray]:
    """The statistics ``detector`` needs, fitted on training ``features`` (n, d) and class ids ``labels`` (n,).

    Raises:
        ValueError: an unknown detector, or a feature detector without features (a TF-IDF run: use msp or energy).
    """
    if detector not in DETECTORS:
        raise ValueError(f"ood_detector must be one of {DETECTORS}, got {detector!r}")
    if detector not in FEATURE_DETECTORS:
        return {}
    if features is None:
        raise ValueError(
            f"ood_detector {detector!r} needs the router's pooled features, which this backend does not give "
            "(TF-IDF runs have none): use ood_detector: energy or msp"
        )
    x = np.asarray(features, np.float64)
    if detector == "knn":
        return {"bank": _normalise(x), "k": np.asarray(min(k, len(x)))}
    from sklearn.covariance import LedoitWolf

    present = np.unique(labels)
    means = np.zeros((n_classes, x.shape[1]))
    for c in present:
        means[c] = x[labels == c].mean(axis=0)
    centred = x - means[labels]
    precision = LedoitWolf(assume_centered=True).fit(centred).precision_
    return {"means": means[present].astype(np.float32), "precision": precision.astype(np.float32)}


def score(
    detector: str,
    stats: Mapping[str, np.ndarray],
    logits: np.ndarray,
    features: np.ndarray | None = None,
    temperature: float = 1.0,
) -> np.ndarray:
    """Out-of-scope score of each row (higher: less like the training data); non-finite inputs score +inf."""
    logits = np.asarray(logits, np.float64)
    if detector == "msp":
        out = 1.0 - _softmax(logits, temperature).max(axis=1)
    elif detector == "energy":
        m = logits.max(axis=1)
        out = -(m + np.log(np.exp(logits - m[:, None]).sum(axis=1)))
    elif detector == "mahalanobis":
        out = _mahalanobis(np.asarray(features, np.float64), stats["means"], stats["precision"])
    elif detector == "knn":
        out = _knn(_normalise(features), stats["bank"], int(stats["k"]))
    else:
        raise ValueError(f"no out-of-scope score for detector {detector!r}")
    return np.where(np.isfinite(out), out, np.inf)


def _mahalanobis(x: np.ndarray, means: np.ndarray, precision: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """min_c (x - mu_c)^T P (x - mu_c), expanded as x'Px - 2 x'P mu_c + mu_c'P mu_c to stay one matrix product."""
    means, precision = means.astype(np.float64), precision.astype(np.float64)
    pm = means @ precision  # (C, d)
    mpm = np.einsum("cd,cd->c", pm, means)
    out = np.empty(len(x))
    for s in range(0, len(x), chunk):
        xs = x[s : s + chunk]
        xpx = np.einsum("nd,de,ne->n", xs, precision, xs)
        out[s : s + chunk] = (xpx[:, None] - 2 * xs @ pm.T + mpm[None, :]).min(axis=1)
    return np.maximum(out, 0.0)


def _knn(x: np.ndarray, bank: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    out = np.empty(len(x))
    for s in range(0, len(x), chunk):
        sims = x[s : s + chunk] @ bank.T
        kth = np.partition(-sims, k - 1, axis=1)[:, k - 1]
        out[s : s + chunk] = 1.0 + kth  # 1 - cosine similarity of the k-th neighbour
    return out


def threshold_for(val_scores: np.ndarray, target_rejection: float) -> float:
    """The score above which ``target_rejection`` of the in-scope validation tickets lie."""
    finite = val_scores[np.isfinite(val_scores)]
    if not len(finite):
        return float("inf")
    return float(np.quantile(finite, 1.0 - target_rejection, method="higher"))


def auroc(in_scores: np.ndarray, out_scores: np.ndarray) -> float:
    """Area under the ROC curve of telling out-of-scope (positive) from in-scope tickets by the score."""
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.zeros(len(in_scores)), np.ones(len(out_scores))]
    s = np.nan_to_num(np.r_[in_scores, out_scores], posinf=1e300)
    return float(roc_auc_score(y, s))


class OutOfScope:
    """The fitted detector of every single-label head of a run: ``flags(logits, features)``, ``save``, ``load``."""

    def __init__(self, detector: str, heads: Mapping[str, Mapping[str, Any]], stats: Mapping[str, Mapping]):
        self.detector, self.heads, self.stats = detector, {k: dict(v) for k, v in heads.items()}, dict(stats)

    @property
    def needs_features(self) -> bool:
        return self.detector in FEATURE_DETECTORS

    def info(self, target_rejection: float) -> dict[str, Any]:
        """What ``router.json["oos"]`` stores."""
        return {"detector": self.detector, "target_rejection": target_rejection, "file": OOS_FILE, "heads": self.heads}

    def save(self, path: str | Path) -> None:
        arrays = {f"{h}.{k}": v for h, stats in self.stats.items() for k, v in stats.items()}
        np.savez(Path(path) / OOS_FILE, **arrays)

    @classmethod
    def load(cls, path: str | Path, info: Mapping[str, Any]) -> "OutOfScope":
        stats: dict[str, dict[str, np.ndarray]] = {h: {} for h in info["heads"]}
        file = Path(path) / info.get("file", OOS_FILE)
        if info["detector"] in FEATURE_DETECTORS:
            if not file.exists():
                raise FileNotFoundError(f"{file} is missing: copy it from the run directory or re-export the run")
            with np.load(file) as z:
                for key in z.files:
                    head, name = key.rsplit(".", 1)
                    if head in stats:
                        stats[head][name] = z[key]
        return cls(info["detector"], info["heads"], stats)

    def scores(
        self, head: str, logits: np.ndarray, features: np.ndarray | None, temperature: float = 1.0
    ) -> np.ndarray:
        return score(self.detector, self.stats.get(head, {}), logits, features, temperature)

    def flags(
        self, head: str, logits: np.ndarray, features: np.ndarray | None, temperature: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, out_of_scope)`` of each row for ``head``."""
        s = self.scores(head, logits, features, temperature)
        return s, s > float(self.heads[head]["threshold"])


def fit_out_of_scope(
    detector: str,
    heads: Sequence,
    train: Mapping[str, np.ndarray],
    train_targets: Mapping[str, np.ndarray],
    val: Mapping[str, np.ndarray],
    val_targets: Mapping[str, np.ndarray],
    temperatures: Mapping[str, float],
    target_rejection: float = 0.05,
) -> OutOfScope:
    """Fit ``detector`` per single-label head on training outputs, its threshold on validation outputs.

    Args:
        train, val: backend outputs (logits per head with the prior correction applied, and ``FEATURES``).
        train_targets, val_targets: class id per row and head (-1: no label for that head).
        temperatures: each head's calibrated temperature (used by ``msp``).
    """
    heads_info, stats = {}, {}
    for h in heads:
        if h.multilabel:
            continue
        y = np.asarray(train_targets[h.name])
        keep = y >= 0
        feats = train.get(FEATURES)
        stats[h.name] = fit_scorer(detector, None if feats is None else feats[keep], y[keep], len(h.labels))
        vy = np.asarray(val_targets[h.name])
        vkeep = vy >= 0
        vfeats = val.get(FEATURES)
        t = temperatures.get(h.name, 1.0)
        s = score(detector, stats[h.name], val[h.name][vkeep], None if vfeats is None else vfeats[vkeep], t)
        threshold = threshold_for(s, target_rejection)
        heads_info[h.name] = {
            "threshold": threshold,
            "val_rejection": float(np.mean(s > threshold)) if len(s) else 0.0,
            "fitted_on": {"train": int(keep.sum()), "val": int(vkeep.sum())},
        }
    return OutOfScope(detector, heads_info, stats)


def resolve_detector(detector: str, has_features: bool) -> str:
    """``auto``: the detector that won the open-intent benchmark for a neural run (one whose backend gives
    features), else ``energy`` (TF-IDF runs); an explicit choice is checked."""
    if detector == "auto":
        return DEFAULT_NEURAL_DETECTOR if has_features else "energy"
    if detector not in DETECTORS:
        raise ValueError(f"ood_detector must be auto or one of {DETECTORS}, got {detector!r}")
    return detector


def fit_run(
    router, path: str | Path, splits: Mapping[str, Sequence[dict]], detector: str = "auto", target_rejection=0.05
) -> OutOfScope | None:
    """Fit the out-of-scope detector of a saved run on its training rows (statistics) and validation rows
    (thresholds), and store it in ``path`` (``oos.npz`` and ``router.json["oos"]``).

    Returns:
        The detector, or None when ``detector`` is ``none`` or there is no validation split to set thresholds on.
    """
    from triagekit.route.heads import row_targets

    if not splits.get("val") or not splits.get("train"):
        return None
    val = router.outputs(splits["val"])
    detector = resolve_detector(detector, FEATURES in val)
    if detector == "none":
        return None
    train = router.outputs(splits["train"]) if detector in FEATURE_DETECTORS else {}
    temps = {h.name: router._temperature(h.name) for h in router.heads}
    oos = fit_out_of_scope(
        detector,
        router.heads,
        train,
        row_targets(splits["train"], router.heads),
        val,
        row_targets(splits["val"], router.heads),
        temps,
        target_rejection,
    )
    router.set_out_of_scope(path, oos, target_rejection)
    return oos


def out_of_scope_report(router, rows: Sequence[Mapping], outputs: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Per head with a detector: the share of ``rows`` flagged and, among the labelled rows, the share of in-scope
    tickets flagged and (when some labels are outside the trained classes) the open-class recall and AUROC."""
    from triagekit.route.heads import row_labels

    out = {}
    for name, (scores, flags) in router.out_of_scope(outputs).items():
        head = next(h for h in router.heads if h.name == name)
        known = set(head.labels)
        gold = [row_labels(r, head) for r in rows]
        in_scope = np.array([g is not None and g != "" and g in known for g in gold], bool)
        unseen = np.array([g is not None and g != "" and g not in known for g in gold], bool)
        m: dict[str, Any] = {
            "detector": router.oos.detector,
            "threshold": router.oos.heads[name]["threshold"],
            "oos_rate": float(flags.mean()) if len(flags) else 0.0,
            "in_scope_flagged": float(flags[in_scope].mean()) if in_scope.any() else None,
            "n_unseen_labels": int(unseen.sum()),
            "unseen_labels": sorted({g for g, u in zip(gold, unseen) if u}),
        }
        if unseen.any():
            m["open_recall"] = float(flags[unseen].mean())
            if in_scope.any():
                m["auroc"] = auroc(scores[in_scope], scores[unseen])
        out[name] = m
    return out
