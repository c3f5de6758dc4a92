"""The figures of the ``/ui/overview`` page: reviews done, model-reviewer agreement, queue size over time, drift.

Each is one small function over the prediction log (or the service's drift report), so a deployment that keeps
these elsewhere points the page at another function. All DB calls are blocking.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any, Optional, Sequence

from sqlalchemy import case, func, select
from sqlalchemy.engine import Engine

from triagekit.serve.db import feedback, predictions, utcnow

__all__ = ["reviewed_since", "agreement", "queue_size_series", "drift_status", "day_starts"]


def day_starts(now: Optional[datetime] = None) -> tuple[datetime, datetime]:
    """Start of today and of this week (Monday), UTC."""
    now = now or utcnow()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return today, today - timedelta(days=today.weekday())


def reviewed_since(engine: Engine, since: datetime) -> int:
    """Tickets that got their feedback at or after ``since``."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count(func.distinct(feedback.c.prediction_id))).where(feedback.c.created_at >= since)
            ).scalar_one()
        )


def agreement(
    engine: Engine, single: Sequence[str], multi: Sequence[str], since: datetime, limit: int = 50_000
) -> dict[str, Any]:
    """How often reviewers kept the model's answer, per head and per (head, predicted label), since ``since``.

    Returns:
        ``{"heads": {head: {"n", "agreed", "rate"}}, "labels": [{"head", "label", "n", "agreed", "rate",
        "corrected_to"}]}``, labels sorted by the number of corrections (the classes the model gets wrong most).
    """
    paths = {h: predictions.c.outputs[(h, "label")].as_string() for h in single}
    paths.update({h: predictions.c.outputs[(h, "labels")] for h in multi})
    heads = list(paths)
    query = (
        select(feedback.c.head, feedback.c.correct_label, *[paths[h].label(f"p{i}") for i, h in enumerate(heads)])
        .join(predictions, predictions.c.id == feedback.c.prediction_id)
        .where(feedback.c.created_at >= since)
        .order_by(feedback.c.id.desc())
        .limit(limit)
    )
    per_head: dict[str, Counter] = defaultdict(Counter)
    per_label: dict[tuple[str, str], Counter] = defaultdict(Counter)
    corrected: dict[tuple[str, str], Counter] = defaultdict(Counter)
    with engine.connect() as conn:
        for row in conn.execute(query):
            head, correct = row[0], row[1]
            if head not in paths:
                continue
            predicted = row[2 + heads.index(head)]
            if head in multi:
                agreed = set(predicted or []) == set(correct if isinstance(correct, list) else [correct])
                predicted = ", ".join(sorted(predicted or [])) or "(none)"
            else:
                agreed = predicted == correct
            per_head[head].update(n=1, agreed=int(agreed))
            per_label[(head, str(predicted))].update(n=1, agreed=int(agreed))
            if not agreed:
                shown = ", ".join(correct) if isinstance(correct, list) else str(correct)
                corrected[(head, str(predicted))][shown or "(none)"] += 1
    labels = [
        {
            "head": h,
            "label": lab,
            "n": c["n"],
            "agreed": c["agreed"],
            "rate": c["agreed"] / c["n"],
            "corrected_to": corrected[(h, lab)].most_common(1)[0][0] if corrected[(h, lab)] else None,
        }
        for (h, lab), c in per_label.items()
    ]
    labels.sort(key=lambda x: (-(x["n"] - x["agreed"]), x["rate"], x["head"], x["label"]))
    return {
        "heads": {
            h: {
                "n": per_head[h]["n"],
                "agreed": per_head[h]["agreed"],
                "rate": per_head[h]["agreed"] / per_head[h]["n"] if per_head[h]["n"] else None,
            }
            for h in heads
        },
        "labels": labels,
    }


def queue_size_series(engine: Engine, times: Sequence[datetime]) -> list[tuple[datetime, int]]:
    """How many tickets waited for review at each of ``times``: predictions needing review made by then, minus
    those whose first feedback came by then. Two scans of the log, whatever the number of points."""
    made = select(*[func.sum(case((predictions.c.created_at <= t, 1), else_=0)) for t in times]).where(
        predictions.c.requires_review
    )
    first = (
        select(func.min(feedback.c.created_at).label("at"))
        .join(predictions, predictions.c.id == feedback.c.prediction_id)
        .where(predictions.c.requires_review)
        .group_by(feedback.c.prediction_id)
        .subquery()
    )
    answered = select(*[func.sum(case((first.c.at <= t, 1), else_=0)) for t in times])
    with engine.connect() as conn:
        a = conn.execute(made).one()
        b = conn.execute(answered).one()
    return [(t, int(x or 0) - int(y or 0)) for t, x, y in zip(times, a, b)]


async def drift_status(service) -> dict[str, Any]:
    """The service's drift report (``GET /drift``, computed from the shared log), or ``insufficient_data`` with the
    reason while there is none."""
    from fastapi import HTTPException

    try:
        return await service.drift_report()
    except HTTPException as exc:
        return {"status": "insufficient_data", "reason": str(exc.detail), "heads": {}, "n": 0}
