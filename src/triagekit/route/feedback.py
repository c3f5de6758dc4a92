"""Reviewers' corrections from the prediction log, checked against a router's heads and merged per ticket.

The log is read by reflecting its two tables (``predictions``, ``feedback``) with SQLAlchemy, so the router needs
none of the service's code. Every feedback row is accounted for: used, overridden by a later correction of the
same ticket and head (a *conflict* when the labels differ: the latest wins), or rejected with a reason (unknown
prediction, unknown head, malformed label, no text). Labels the router does not know are *new labels*: the
retrain grows the head by them, or refuses, as asked.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from triagekit.core.dburl import db_url as feedback_url
from triagekit.data.text import build_text
from triagekit.route.heads import HeadSpec

__all__ = ["Corrections", "read_feedback", "merge_corrections", "feedback_url", "ticket_key"]


def read_feedback(url: str) -> list[dict[str, Any]]:
    """Every feedback row with its prediction's inputs (``None`` when the prediction is not in the log)."""
    from sqlalchemy import MetaData, create_engine, select
    from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

    engine = create_engine(url)
    try:
        meta = MetaData()
        try:
            meta.reflect(engine, only=["predictions", "feedback"])
        except (NoSuchTableError, SQLAlchemyError) as exc:
            raise ValueError(
                f"{url} is not a triagekit prediction log (no predictions/feedback tables): {exc}"
            ) from None
        p, f = meta.tables["predictions"], meta.tables["feedback"]
        query = (
            select(f.c.id, f.c.prediction_id, f.c.head, f.c.correct_label, f.c.created_at, p.c.inputs, p.c.outputs)
            .select_from(f.outerjoin(p, p.c.id == f.c.prediction_id))
            .order_by(f.c.created_at, f.c.id)
        )
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]
    finally:
        engine.dispose()


def ticket_key(row: Mapping[str, Any], text_fields: Sequence[str]) -> str:
    """What makes two rows the same ticket: the model input text (as the service hashes it)."""
    return hashlib.sha256(build_text(row, text_fields).encode("utf-8")).hexdigest()


@dataclass
class Corrections:
    """Corrected tickets (``key -> {"inputs", "labels": {head: label}, "predicted": {head: label}}``) and counts."""

    tickets: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)
    new_labels: dict[str, set[str]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "tickets": len(self.tickets),
            **dict(self.counts),
            "new_labels": {h: sorted(v) for h, v in self.new_labels.items()},
        }


def _normalise(label: Any, head: HeadSpec) -> Any:
    """The label as the head stores it, or None when it is malformed."""
    if head.multilabel:
        values = [label] if isinstance(label, str) else label
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            return None
        return sorted(set(values))
    return label if isinstance(label, str) and label.strip() else None


def merge_corrections(
    rows: Sequence[Mapping[str, Any]], heads: Sequence[HeadSpec], text_fields: Sequence[str]
) -> Corrections:
    """Check and merge raw feedback rows (oldest first): the latest correction of a ticket's head wins."""
    by_name = {h.name: h for h in heads}
    out = Corrections()
    for r in rows:
        out.counts["feedback_rows"] += 1
        head = by_name.get(r.get("head"))
        inputs = r.get("inputs")
        if not isinstance(inputs, Mapping):
            out.counts["rejected_unknown_prediction"] += 1
            continue
        if head is None:
            out.counts["rejected_unknown_head"] += 1
            continue
        label = _normalise(r.get("correct_label"), head)
        if label is None:
            out.counts["rejected_bad_label"] += 1
            continue
        if not build_text(inputs, text_fields).strip():
            out.counts["rejected_no_text"] += 1
            continue
        unknown = [x for x in (label if head.multilabel else [label]) if x not in head.labels]
        if unknown:
            out.new_labels.setdefault(head.name, set()).update(unknown)
            out.counts["new_label_rows"] += 1
        key = ticket_key(inputs, text_fields)
        ticket = out.tickets.setdefault(key, {"inputs": dict(inputs), "labels": {}, "predicted": {}})
        previous = ticket["labels"].get(head.name)
        if previous is not None:
            out.counts["superseded"] += 1
            if previous != label:
                out.counts["conflicts"] += 1
        ticket["labels"][head.name] = label
        predicted = (r.get("outputs") or {}).get(head.name) or {}
        ticket["predicted"][head.name] = predicted.get("label", predicted.get("labels"))
        out.counts["used"] += 1
    out.counts["used"] -= out.counts["superseded"]
    return out
