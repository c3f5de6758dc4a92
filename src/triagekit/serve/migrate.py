"""Bring an existing prediction log up to the tables' current columns and indexes (``create_all`` only makes missing
tables), and fill the stored review state of rows logged before it was stored.

Only nullable columns are ever added, so rows written before keep their meaning (NULL: "not recorded then").
"""

from __future__ import annotations

from sqlalchemy import MetaData, and_, bindparam, case, inspect, select, text, update
from sqlalchemy.engine import Engine

__all__ = ["add_missing_columns", "add_missing_indexes", "backfill_review_state"]


def add_missing_columns(engine: Engine, metadata: MetaData) -> list[str]:
    """``ALTER TABLE ... ADD COLUMN`` for every nullable column of ``metadata`` that the database lacks.

    Returns:
        The ``table.column`` names that were added.

    Raises:
        RuntimeError: a missing column is NOT NULL (it cannot be added to a table with rows; migrate by hand).
    """
    inspector = inspect(engine)
    existing_tables = set(inspector.get_table_names())
    added = []
    for table in metadata.sorted_tables:
        if table.name not in existing_tables:
            continue
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            if not column.nullable:
                raise RuntimeError(
                    f"table {table.name} lacks the NOT NULL column {column.name}: migrate the "
                    f"database by hand or start with a new one"
                )
            kind = column.type.compile(dialect=engine.dialect)
            prep = engine.dialect.identifier_preparer
            with engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE {prep.quote(table.name)} ADD COLUMN {prep.quote(column.name)} {kind}"))
            added.append(f"{table.name}.{column.name}")
    return added


def add_missing_indexes(engine: Engine, metadata: MetaData) -> list[str]:
    """``CREATE INDEX`` for every index of ``metadata`` on an existing table that lacks it (``create_all`` makes
    indexes only with their table). Returns the index names created."""
    inspector = inspect(engine)
    existing_tables = set(inspector.get_table_names())
    created = []
    for table in metadata.sorted_tables:
        if table.name not in existing_tables:
            continue
        have = {ix["name"] for ix in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in have:
                index.create(engine, checkfirst=True)  # checkfirst: another replica may have made it meanwhile
                created.append(index.name)
    return created


def backfill_review_state(engine: Engine, batch: int = 5000) -> int:
    """Fill ``review_priority``, ``language`` and ``awaiting_review`` of predictions logged before they were stored.

    Idempotent (touches only NULLs; a log written by this version has none), so every replica may run it at start-up.
    The flag is one UPDATE from the rule itself (requires review, no feedback row); the priority is computed in
    Python by ``review_priority``, the function that writes new rows, so old and new rows sort alike.

    Returns:
        The number of priorities filled.
    """
    from triagekit.serve.db import feedback, predictions, review_priority, stored_language

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
