"""The prediction log: SQLAlchemy tables and the few queries the service and ``triagekit feedback`` need.

SQLite (one file next to the model, WAL mode so readers never wait for the writer) by default; PostgreSQL with a
``postgresql+psycopg://`` URL. All calls here are blocking: the service runs them on worker threads.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    case,
    create_engine,
    event,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.engine import Engine, make_url

__all__ = [
    "PredictionStore",
    "predictions",
    "feedback",
    "metadata",
    "make_engine",
    "export_feedback",
    "utcnow",
    "review_priority",
    "mark_answered",
    "waiting",
    "stored_language",
    "backfill_review_state",
]

metadata = MetaData()

predictions = Table(
    "predictions",
    metadata,
    Column("id", String(64), primary_key=True, comment="prediction id (uuid4 hex) returned to the client"),
    Column("request_id", String(200), nullable=True, comment="the client's own ticket id, if given"),
    Column("input_hash", String(64), nullable=False, index=True, comment="sha256 of the model input text"),
    Column("inputs", JSON, nullable=False, comment="the text fields as received"),
    Column("outputs", JSON, nullable=False, comment="per-head predictions as returned"),
    Column("requires_review", Boolean, nullable=False, index=True),
    Column("latency_ms", Float, nullable=False, comment="time in the service, queueing included"),
    Column("model_version", String(200), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    # The review queue's state, stored so that the queue is one index range instead of a JSON sort and a NOT EXISTS
    # per waiting row. Nullable so that an existing log gains them (migrate.py); start-up backfills the NULLs.
    Column(
        "review_priority",
        Float,
        nullable=True,
        comment="queue order: the lowest confidence over the single-label heads (1.0 without any)",
    ),
    Column(
        "awaiting_review",
        Boolean,
        nullable=True,
        comment="requires_review and no feedback row yet; kept in the transaction of every feedback write and undo",
    ),
    Column("language", String(200), nullable=True, comment="inputs.language (the queue's filter and its menu)"),
    # The queue's WHERE and ORDER BY in one index: a page or a keyset step reads only the rows it returns.
    Index("ix_predictions_review_queue", "awaiting_review", "review_priority", "created_at", "id"),
    # The filter menus (languages, model versions among the waiting tickets) from index entries, not row JSON.
    Index("ix_predictions_review_language", "awaiting_review", "language"),
    Index("ix_predictions_review_version", "awaiting_review", "model_version"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("prediction_id", String(64), ForeignKey("predictions.id"), nullable=False, index=True),
    Column("head", String(200), nullable=False),
    Column("correct_label", JSON, nullable=False, comment="a label, or a list of tags for a multi-label head"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("reviewer", String(200), nullable=True, comment="who reviewed it on the /ui page (NULL: POST /feedback)"),
    Column("note", Text, nullable=True, comment="the reviewer's optional note"),
)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def review_priority(outputs: dict[str, Any]) -> float:
    """The queue order of a prediction: the lowest confidence over its single-label heads (1.0 without any).

    Multi-label heads carry ``scores``, not ``confidence``, so they do not count (as in the service's selection).
    """
    confs = [float(v["confidence"]) for v in (outputs or {}).values() if isinstance(v, dict) and "confidence" in v]
    return min(confs, default=1.0)


def mark_answered(conn: Any, prediction_ids: list[str]) -> None:
    """Take predictions out of the queue: they have feedback now (run it before inserting the feedback rows, in the
    same transaction; on PostgreSQL the row lock orders it against an undo of the same ticket)."""
    for start in range(0, len(prediction_ids), 500):  # bounded IN lists
        chunk = prediction_ids[start : start + 500]
        conn.execute(update(predictions).where(predictions.c.id.in_(chunk)).values(awaiting_review=False))


def waiting():
    """The queue: predictions that require review and have no feedback row (the stored flag, indexed)."""
    return predictions.c.awaiting_review == true()


def stored_language(inputs: dict[str, Any]) -> str | None:
    """``inputs.language`` as the ``language`` column holds it (a string of at most 200 characters, or NULL)."""
    lang = (inputs or {}).get("language")
    return str(lang)[:200] if lang not in (None, "") else None


def _with_review_state(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    if out.get("review_priority") is None:
        out["review_priority"] = review_priority(out.get("outputs") or {})
    if out.get("language") is None:
        out["language"] = stored_language(out.get("inputs") or {})
    if out.get("awaiting_review") is None:
        out["awaiting_review"] = bool(out.get("requires_review"))
    return out


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL mode and a busy timeout on every connection."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001 - SQLAlchemy's listener signature
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers don't block the writer and vice versa
            cur.execute("PRAGMA busy_timeout=30000")  # several uvicorn workers share one file
            cur.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint; safe with WAL
            cur.close()

        return engine
    # A bounded connect: an unreachable (blackholed) server fails in seconds, not after the OS's TCP timeout, so
    # start-up is not held up and /ready can say why while the service retries.
    args = {"connect_timeout": 10} if parsed.get_backend_name() == "postgresql" else {}
    return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8, connect_args=args)


def _iso(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:  # SQLite hands back naive datetimes; they were written as UTC
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()


class PredictionStore:
    """Blocking access to the prediction log."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)

    def create(self) -> None:
        """Create the tables that are missing (connects: raises when the database is unreachable)."""
        from triagekit.serve.migrate import add_missing_columns, add_missing_indexes

        metadata.create_all(self.engine)
        add_missing_columns(self.engine, metadata)  # logs written before a table gained a column
        add_missing_indexes(self.engine, metadata)
        backfill_review_state(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    def write(self, prediction_rows: list[dict[str, Any]], feedback_rows: list[dict[str, Any]]) -> None:
        """Insert both lists in one transaction (predictions first: feedback refers to them)."""
        with self.engine.begin() as conn:
            if prediction_rows:
                conn.execute(insert(predictions), [_with_review_state(r) for r in prediction_rows])
            if feedback_rows:
                mark_answered(conn, sorted({r["prediction_id"] for r in feedback_rows}))
                conn.execute(insert(feedback), feedback_rows)

    def prediction_exists(self, prediction_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(predictions.c.id).where(predictions.c.id == prediction_id)).first() is not None

    def count(self, table: Table) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def review_queue(self, limit: int = 50) -> list[dict[str, Any]]:
        """Oldest predictions that need a human and have no feedback yet."""
        query = select(predictions).where(waiting()).order_by(predictions.c.created_at, predictions.c.id).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {
                "prediction_id": r["id"],
                "id": r["request_id"],
                "created_at": _iso(r["created_at"]),
                "inputs": r["inputs"],
                "heads": r["outputs"],
                "model_version": r["model_version"],
            }
            for r in rows
        ]

    def recent_outputs(self, model_version: str, limit: int) -> list[dict[str, Any]]:
        """Outputs of the latest ``limit`` predictions of ``model_version``, oldest first: the drift window, the same
        for every replica that shares the log."""
        query = (
            select(predictions.c.outputs)
            .where(predictions.c.model_version == model_version)
            .order_by(predictions.c.created_at.desc(), predictions.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(query)][::-1]

    def overview(self) -> dict[str, int]:
        """Counts over the whole log: predictions, those that required review, those still waiting (no feedback),
        feedback rows. One round trip; every replica sharing the log gets the same numbers."""
        query = select(
            select(func.count()).select_from(predictions).scalar_subquery(),
            select(func.count()).select_from(predictions).where(predictions.c.requires_review).scalar_subquery(),
            select(func.count()).select_from(predictions).where(waiting()).scalar_subquery(),
            select(func.count()).select_from(feedback).scalar_subquery(),
        )
        with self.engine.connect() as conn:
            total, review, awaiting, fb = conn.execute(query).one()
        return {
            "predictions": int(total),
            "requires_review": int(review),
            "awaiting_review": int(awaiting),
            "feedback": int(fb),
        }

    def corrected_examples(self) -> Iterator[dict[str, Any]]:
        """One training row per prediction with feedback: its text fields and the latest correction per head."""
        query = (
            select(
                predictions.c.id,
                predictions.c.request_id,
                predictions.c.inputs,
                predictions.c.model_version,
                feedback.c.head,
                feedback.c.correct_label,
            )
            .join(feedback, feedback.c.prediction_id == predictions.c.id)
            .order_by(predictions.c.created_at, predictions.c.id, feedback.c.id)
        )
        current: dict[str, Any] | None = None
        with self.engine.connect() as conn:
            for r in conn.execution_options(yield_per=1000).execute(query).mappings():
                if current is None or current["prediction_id"] != r["id"]:
                    if current is not None:
                        yield current
                    current = {
                        "id": r["request_id"] if r["request_id"] is not None else r["id"],
                        "prediction_id": r["id"],
                        **r["inputs"],
                        "model_version": r["model_version"],
                    }
                current[r["head"]] = r["correct_label"]  # later feedback on the same head wins
        if current is not None:
            yield current


def export_feedback(url: str, out: str | Path) -> int:
    """Write the corrected examples of the log at ``url`` to ``out`` (JSONL); returns the number of rows."""
    store = PredictionStore(url)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    try:
        store.create()
        with out.open("w") as f:
            for row in store.corrected_examples():
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
    finally:
        store.dispose()
    return n


def backfill_review_state(engine: Engine, batch: int = 5000) -> int:
    """Fill ``review_priority``, ``language`` and ``awaiting_review`` of predictions logged before they were stored.

    Idempotent (touches only NULLs; a log written by this version has none), so every replica may run it at start-up.
    The flag is one UPDATE from the rule itself (requires review, no feedback row); the priority is computed in
    Python by ``review_priority``, the function that writes new rows, so old and new rows sort alike.

    Returns:
        The number of priorities filled.
    """
    answered = select(feedback.c.id).where(feedback.c.prediction_id == predictions.c.id).exists()
    with engine.begin() as conn:
        conn.execute(
            update(predictions)
            .where(predictions.c.awaiting_review.is_(None))
            .values(awaiting_review=case((and_(predictions.c.requires_review, ~answered), True), else_=False))
        )
    filled = 0
    cols = (predictions.c.id, predictions.c.inputs, predictions.c.outputs)
    query = select(*cols).where(predictions.c.review_priority.is_(None)).limit(batch)
    stmt = (
        update(predictions)
        .where(predictions.c.id == bindparam("pid"), predictions.c.review_priority.is_(None))
        .values(review_priority=bindparam("priority"), language=bindparam("lang"))
    )
    while True:
        with engine.begin() as conn:
            rows = conn.execute(query).all()
            if rows:
                values = [
                    {"pid": pid, "priority": review_priority(out or {}), "lang": stored_language(inputs or {})}
                    for pid, inputs, out in rows
                ]
                conn.execute(stmt, values)
        filled += len(rows)
        if len(rows) < batch:
            return filled
