"""The review queue as the ``/ui`` page sees it: filtered, ordered, paged in SQL; saving, skipping and undoing.

A ticket waits while its prediction ``requires_review`` and has no feedback row (the rule of ``GET /review``), so
saving one here removes it from the queue for every replica at once. The order is the service's selection
strategy: least confident first (the lowest confidence over the single-label heads), then oldest. Both are stored
with the prediction (``awaiting_review``, kept in the transaction of every feedback write and undo, and
``review_priority``) under one index in queue order, so a page or a next/previous step reads only the index entries
it skips and the rows it shows, and an unfiltered count is an index range. The filters (JSON paths that SQLAlchemy
renders for SQLite and PostgreSQL alike) are tested on the waiting rows only, in index order.

Every action a reviewer takes (save, skip) is a ``review_actions`` row; undo deletes the feedback rows the action
wrote and marks it undone, so the feedback table holds exactly what stands. All calls are blocking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timezone
from typing import Any, Optional, Sequence

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Engine

from triagekit.serve.db import feedback, mark_answered, metadata, predictions, utcnow, waiting

__all__ = [
    "review_actions",
    "QueueFilter",
    "AlreadyReviewed",
    "queue_page",
    "queue_count",
    "queue_facets",
    "neighbour",
    "get_prediction",
    "reviewed_by",
    "save_review",
    "record_skip",
    "undo_last",
    "last_action",
]

review_actions = Table(
    "review_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("reviewer", String(200), nullable=False, index=True),
    Column("action", String(20), nullable=False, comment="save or skip"),
    Column("prediction_id", String(64), nullable=False),
    Column("feedback_ids", JSON, nullable=True, comment="the feedback rows a save wrote (undo deletes them)"),
    Column("note", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("undone_at", DateTime(timezone=True), nullable=True),
)


class AlreadyReviewed(Exception):
    """The ticket got feedback in the meantime (another reviewer, another tab, or the API)."""


@dataclass(frozen=True)
class QueueFilter:
    """What the queue page is narrowed to; empty strings mean "any"."""

    head: str = ""
    label: str = ""
    language: str = ""
    model_version: str = ""

    def params(self) -> dict[str, str]:
        return {
            k: v
            for k, v in (
                ("head", self.head),
                ("label", self.label),
                ("language", self.language),
                ("model_version", self.model_version),
            )
            if v
        }


@dataclass(frozen=True)
class Heads:
    """The model's heads as the queries need them."""

    single: Sequence[str]
    multi: Sequence[str] = field(default_factory=tuple)

    @property
    def all(self) -> list[str]:
        return list(self.single) + list(self.multi)


#: Benchmark only (``benchmarks/ui_queue.py --legacy``): the queries as before the review state was stored, the
#: order from the ``outputs`` JSON per row and the waiting test a NOT EXISTS per row, to measure what it saves.
LEGACY_QUERIES = False


def _waiting():
    if LEGACY_QUERIES:
        answered = select(feedback.c.id).where(feedback.c.prediction_id == predictions.c.id).exists()
        return and_(predictions.c.requires_review, ~answered)
    return waiting()


def _order(engine: Engine, heads: Heads) -> tuple:
    """The queue order, ``(priority, created_at, id)`` ascending: least confident first, then oldest (the stored
    ``review_priority``, which the index ``ix_predictions_review_queue`` holds in this order)."""
    key = _json_priority(engine, heads) if LEGACY_QUERIES else predictions.c.review_priority
    return key, predictions.c.created_at, predictions.c.id


def _language():
    return predictions.c.inputs["language"].as_string() if LEGACY_QUERIES else predictions.c.language


def _json_priority(engine: Engine, heads: Heads):
    confs = [func.coalesce(predictions.c.outputs[(h, "confidence")].as_float(), 1.0) for h in heads.single]
    if len(confs) < 2:
        return confs[0] if confs else literal(1.0)
    # SQLite's min() with several arguments is the scalar minimum; PostgreSQL calls it least().
    return (func.least if engine.dialect.name == "postgresql" else func.min)(*confs)


def _where(f: QueueFilter, heads: Heads) -> list:
    out = [_waiting()]
    if f.head:
        out.append(predictions.c.outputs[(f.head, "requires_review")].as_boolean().is_(True))
    if f.label:
        label_heads = [f.head] if f.head else list(heads.single)
        out.append(or_(*[predictions.c.outputs[(h, "label")].as_string() == f.label for h in label_heads]))
    if f.language:
        out.append(_language() == f.language)
    if f.model_version:
        out.append(predictions.c.model_version == f.model_version)
    return out


def _row(r: Any) -> dict[str, Any]:
    created = r["created_at"]
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    return {
        "prediction_id": r["id"],
        "id": r["request_id"],
        "created_at": created,
        "inputs": r["inputs"] or {},
        "heads": r["outputs"] or {},
        "model_version": r["model_version"],
        "language": (r["inputs"] or {}).get("language") or "",
    }


def queue_count(engine: Engine, f: QueueFilter, heads: Heads) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(predictions).where(*_where(f, heads))).scalar_one())


def queue_page(engine: Engine, f: QueueFilter, heads: Heads, offset: int, limit: int) -> list[dict[str, Any]]:
    """One page of the waiting tickets in queue order."""
    # Skip over the narrow index entries only, then fetch the page's full rows (a deep page of 10,000 waiting tickets
    # took 73 ms sorting whole rows and 20 ms this way even before the order was indexed; SQLite, 2 shared cores).
    ids = select(predictions.c.id).where(*_where(f, heads)).order_by(*_order(engine, heads)).offset(offset).limit(limit)
    with engine.connect() as conn:
        order = list(conn.execute(ids).scalars())
        rows = {r["id"]: r for r in conn.execute(select(predictions).where(predictions.c.id.in_(order))).mappings()}
    return [_row(rows[i]) for i in order if i in rows]


def queue_facets(engine: Engine, limit: int = 100) -> dict[str, list[str]]:
    """The languages and model versions present among the waiting tickets (for the filter menus)."""
    lang = _language()
    with engine.connect() as conn:
        langs = conn.execute(select(lang).where(_waiting(), lang.is_not(None)).distinct().limit(limit)).scalars()
        versions = conn.execute(select(predictions.c.model_version).where(_waiting()).distinct().limit(limit)).scalars()
        return {"languages": sorted(x for x in langs if x), "model_versions": sorted(versions)}


def neighbour(
    engine: Engine, f: QueueFilter, heads: Heads, after: Optional[str], backwards: bool = False
) -> Optional[str]:
    """The waiting ticket after (or before) ``after`` in queue order (keyset); the first one when ``after`` is None.

    ``after`` itself may have left the queue already (just saved): its place in the order is still known.
    """
    cols = _order(engine, heads)
    where = _where(f, heads)
    with engine.connect() as conn:
        if after is not None:
            pos = conn.execute(select(*cols).where(predictions.c.id == after)).first()
            if pos is not None:
                where.append(tuple_(*cols) < tuple_(*pos) if backwards else tuple_(*cols) > tuple_(*pos))
        order = [c.desc() for c in cols] if backwards else list(cols)
        return conn.execute(select(predictions.c.id).where(*where).order_by(*order).limit(1)).scalar()


def get_prediction(engine: Engine, prediction_id: str) -> Optional[dict[str, Any]]:
    with engine.connect() as conn:
        r = conn.execute(select(predictions).where(predictions.c.id == prediction_id)).mappings().first()
    return None if r is None else {**_row(r), "requires_review": bool(r["requires_review"])}


def reviewed_by(engine: Engine, prediction_id: str) -> Optional[dict[str, Any]]:
    """Who gave feedback on ``prediction_id`` first, and when (None while it has none)."""
    with engine.connect() as conn:
        r = conn.execute(
            select(feedback.c.reviewer, feedback.c.created_at)
            .where(feedback.c.prediction_id == prediction_id)
            .order_by(feedback.c.id)
            .limit(1)
        ).first()
    return None if r is None else {"reviewer": r[0] or "the API", "created_at": r[1]}


def save_review(engine: Engine, prediction_id: str, labels: dict[str, Any], reviewer: str, note: Optional[str]) -> int:
    """Write one feedback row per head (the rows ``POST /feedback`` writes, plus reviewer and note) and the action,
    in one transaction; returns the action id.

    Raises:
        AlreadyReviewed: the ticket has feedback already (nothing is written).
    """
    now = utcnow()
    with engine.begin() as conn:
        # Row lock on PostgreSQL, so two replicas cannot both save the same ticket; SQLite serialises writers.
        conn.execute(select(predictions.c.id).where(predictions.c.id == prediction_id).with_for_update()).first()
        if conn.execute(select(feedback.c.id).where(feedback.c.prediction_id == prediction_id).limit(1)).first():
            raise AlreadyReviewed(prediction_id)
        mark_answered(conn, [prediction_id])
        ids = []
        for head, label in labels.items():
            res = conn.execute(
                insert(feedback).values(
                    prediction_id=prediction_id,
                    head=head,
                    correct_label=label,
                    created_at=now,
                    reviewer=reviewer,
                    note=note,
                )
            )
            ids.append(int(res.inserted_primary_key[0]))
        res = conn.execute(
            insert(review_actions).values(
                reviewer=reviewer,
                action="save",
                prediction_id=prediction_id,
                feedback_ids=ids,
                note=note,
                created_at=now,
            )
        )
        return int(res.inserted_primary_key[0])


def record_skip(engine: Engine, prediction_id: str, reviewer: str) -> int:
    with engine.begin() as conn:
        res = conn.execute(
            insert(review_actions).values(
                reviewer=reviewer,
                action="skip",
                prediction_id=prediction_id,
                feedback_ids=None,
                note=None,
                created_at=utcnow(),
            )
        )
        return int(res.inserted_primary_key[0])


def last_action(engine: Engine, reviewer: str) -> Optional[dict[str, Any]]:
    """The reviewer's latest action that is not undone (what undo would take back)."""
    query = (
        select(review_actions)
        .where(review_actions.c.reviewer == reviewer, review_actions.c.undone_at.is_(None))
        .order_by(review_actions.c.id.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        r = conn.execute(query).mappings().first()
    return None if r is None else dict(r)


def _reopen(conn: Any, prediction_id: str, feedback_ids: list[int]) -> None:
    """Delete a save's feedback rows; the ticket waits again unless other feedback (say the API's) stands."""
    # The prediction's row lock first (PostgreSQL), as save_review and the log writer take it before inserting
    # feedback, so the flag below is computed after any concurrent feedback on this ticket has committed.
    conn.execute(select(predictions.c.id).where(predictions.c.id == prediction_id).with_for_update()).first()
    conn.execute(delete(feedback).where(feedback.c.id.in_(feedback_ids)))
    answered = select(feedback.c.id).where(feedback.c.prediction_id == prediction_id).exists()
    state = case((and_(predictions.c.requires_review, ~answered), True), else_=False)
    conn.execute(update(predictions).where(predictions.c.id == prediction_id).values(awaiting_review=state))


def undo_last(engine: Engine, reviewer: str) -> Optional[dict[str, Any]]:
    """Take back the reviewer's latest action: a save's feedback rows are deleted (the ticket waits again).

    Returns:
        The action undone, or None when there was nothing to undo.
    """
    with engine.begin() as conn:
        r = (
            conn.execute(
                select(review_actions)
                .where(review_actions.c.reviewer == reviewer, review_actions.c.undone_at.is_(None))
                .order_by(review_actions.c.id.desc())
                .limit(1)
                .with_for_update()
            )
            .mappings()
            .first()
        )
        if r is None:
            return None
        if r["feedback_ids"]:
            _reopen(conn, r["prediction_id"], list(r["feedback_ids"]))
        conn.execute(update(review_actions).where(review_actions.c.id == r["id"]).values(undone_at=utcnow()))
        return dict(r)
