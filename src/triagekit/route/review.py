"""The review operating point: which tickets go to a human, chosen by what a support team can handle.

Two ways to choose it, both fitted on validation:

- a **review budget** (``review_budget: 0.3``): at most 30 % of tickets are flagged. Each review head's
  confidence is turned into its rank among the validation tickets, a ticket's doubt is its lowest rank over the
  review heads, and the least certain tickets up to the budget are flagged. This becomes one confidence threshold
  per head (the same rank quantile for every head), so serving needs nothing but the thresholds.
- a **target precision** per head (``review_budget: null``, ``target_precision: 0.9``): the lowest threshold whose
  auto-routed predictions reach the target. A head that cannot reach it at any threshold gets no threshold (it
  never flags) and a plain warning with the best point it can reach, instead of sending every ticket to review.

``review_heads`` limits the heads whose doubt flags the ticket; the others keep their own per-head flag.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from triagekit.route.calibration import selective_curve, threshold_for_precision
from triagekit.route.heads import HeadSpec

__all__ = [
    "decision_confidence",
    "budget_thresholds",
    "precision_threshold",
    "ticket_flags",
    "review_summary",
    "check_review_heads",
    "check_budget",
    "unreachable_message",
    "fit_operating_point",
]


def check_budget(budget: float | None) -> None:
    """A review budget must be a share of tickets in (0, 1]."""
    if budget is not None and not 0 < budget <= 1:
        raise ValueError(f"review budget must be in (0, 1] (0.3 = review at most 30 % of tickets), got {budget}")


def check_review_heads(review_heads: Sequence[str] | None, heads: Sequence[HeadSpec]) -> list[str]:
    """The review heads, all heads when None; an unknown name is an error that lists the known ones."""
    names = [h.name for h in heads]
    if review_heads is None:
        return names
    unknown = [n for n in review_heads if n not in names]
    if unknown:
        raise ValueError(f"review_heads {unknown} are not heads of this router; its heads: {', '.join(names)}")
    if not review_heads:
        raise ValueError("review_heads is empty: name at least one head, or null for every head")
    return list(review_heads)


def decision_confidence(probs: np.ndarray, multilabel: bool) -> np.ndarray:
    """Confidence of the decision that would be applied: the top class, or the least certain tag of a tag set."""
    if multilabel:
        if probs.shape[1] == 0:
            return np.ones(len(probs))
        return np.maximum(probs, 1.0 - probs).min(axis=1)
    return probs.max(axis=1) if len(probs) else np.zeros(0)


def _flags_at(conf: Mapping[str, np.ndarray], q: float) -> tuple[np.ndarray, dict[str, float]]:
    thresholds = {h: float(np.quantile(c, q)) for h, c in conf.items()}
    flags = np.zeros(len(next(iter(conf.values()))), dtype=bool)
    for h, c in conf.items():
        flags |= c < thresholds[h]
    return flags, thresholds


def budget_thresholds(conf: Mapping[str, np.ndarray], budget: float) -> dict[str, float]:
    """Per review head, the confidence threshold such that at most ``budget`` of these tickets are flagged.

    Args:
        conf: Per review head, the validation confidences (one per ticket, same ticket order for every head).
        budget: Share of tickets that may be flagged, in (0, 1].

    Returns:
        ``{head: threshold}``; a ticket is flagged when any review head's confidence is below its threshold.
    """
    check_budget(budget)
    if not conf or len(next(iter(conf.values()))) == 0:
        return {h: 0.0 for h in conf}
    lo, hi = 0.0, 1.0  # rank quantile q: flagged share grows with q
    if _flags_at(conf, hi)[0].mean() <= budget:
        return _flags_at(conf, hi)[1]
    for _ in range(40):
        mid = (lo + hi) / 2
        if _flags_at(conf, mid)[0].mean() <= budget:
            lo = mid
        else:
            hi = mid
    return _flags_at(conf, lo)[1]


def precision_threshold(conf: np.ndarray, correct: np.ndarray, target: float) -> tuple[float | None, dict]:
    """The lowest threshold reaching ``target`` precision, and the curve's best point when none does.

    Returns:
        ``(threshold or None, info)``; ``info`` has ``reachable`` and, when not, ``best_precision`` and its
        ``best_coverage`` (over points that auto-route at least 10 % of the tickets, when there are such points).
    """
    thr = threshold_for_precision(conf, correct, target) if len(conf) else None
    if thr is not None:
        return thr, {"reachable": True}
    curve = selective_curve(conf, correct)
    if len(curve["accuracy"]) == 0:
        return None, {"reachable": False, "best_precision": None, "best_coverage": None}
    ok = np.flatnonzero(curve["coverage"] >= 0.1)
    ok = ok if ok.size else np.arange(len(curve["accuracy"]))
    i = ok[np.argmax(curve["accuracy"][ok])]
    return None, {
        "reachable": False,
        "best_precision": float(curve["accuracy"][i]),
        "best_coverage": float(curve["coverage"][i]),
        "best_threshold": float(curve["threshold"][i]),
    }


def unreachable_message(head: str, target: float, info: Mapping) -> str:
    """The plain warning for a head that cannot reach its target precision."""
    if info.get("best_precision") is None:
        return f"head {head!r}: no validation tickets to fit a review threshold on; it will not flag tickets"
    return (
        f"head {head!r} cannot reach {100 * target:.0f} % precision at any threshold on validation; best "
        f"reachable: {100 * info['best_precision']:.1f} % precision auto-routing {100 * info['best_coverage']:.0f} "
        f"% of tickets. It will not flag tickets (set a lower target_precision, or use review_budget)"
    )


def ticket_flags(
    conf: Mapping[str, np.ndarray], thresholds: Mapping[str, float | None], review_heads: Sequence[str]
) -> np.ndarray:
    """True for tickets where any review head's confidence is below its threshold (heads without one never flag)."""
    n = len(next(iter(conf.values()))) if conf else 0
    flags = np.zeros(n, dtype=bool)
    for h in review_heads:
        if thresholds.get(h) is not None and h in conf:
            flags |= conf[h] < float(thresholds[h])
    return flags


def review_summary(flags: np.ndarray, correct: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    """Share auto-routed and, per head, the accuracy of the auto-routed tickets vs the flagged ones.

    Args:
        flags: Per ticket, whether it goes to review.
        correct: Per head, ``(row indices with a gold label, whether the prediction is right)``.
    """
    out: dict = {"n": int(len(flags)), "auto_routed": float(1 - flags.mean()) if len(flags) else 0.0, "heads": {}}
    all_ok = np.ones(len(flags), dtype=bool)
    labelled = np.ones(len(flags), dtype=bool)
    for h, (keep, ok) in correct.items():
        auto = ~flags[keep]
        out["heads"][h] = {
            "auto_accuracy": float(ok[auto].mean()) if auto.any() else None,
            "review_accuracy": float(ok[~auto].mean()) if (~auto).any() else None,
        }
        mask = np.zeros(len(flags), dtype=bool)
        mask[keep] = True
        labelled &= mask
        full = np.zeros(len(flags), dtype=bool)
        full[keep] = ok
        all_ok &= full
    auto = ~flags & labelled
    rest = flags & labelled
    out["all_heads_auto_accuracy"] = float(all_ok[auto].mean()) if auto.any() else None
    out["all_heads_review_accuracy"] = float(all_ok[rest].mean()) if rest.any() else None
    return out


def fit_operating_point(
    conf: Mapping[str, np.ndarray],
    correct: Mapping[str, tuple[np.ndarray, np.ndarray]],
    review_heads: Sequence[str],
    budget: float | None,
    target: float,
) -> dict[str, dict]:
    """Per head ``{"review_threshold", "rule", "precision_target"}`` fitted on validation.

    Args:
        conf: Per head, the confidence of every validation ticket (same ticket order for every head).
        correct: Per head, ``(indices of tickets with a gold label, whether the prediction is right)``.
        review_heads: Heads whose doubt flags the ticket; with a budget they share it, the others keep their
            target-precision threshold for their own per-head flag.
        budget: Share of tickets that may be flagged, or None for per-head target precision.
        target: The target precision.
    """
    out = {}
    for h, c in conf.items():
        keep, ok = correct[h]
        thr, info = precision_threshold(c[keep], ok, target)
        out[h] = {"review_threshold": thr, "rule": "target_precision", "precision_target": {"target": target, **info}}
    if budget is not None:
        shared = budget_thresholds({h: conf[h] for h in review_heads if h in conf}, budget)
        for h, thr in shared.items():
            out[h].update(review_threshold=thr, rule="review_budget", review_budget=budget)
    return out
