"""Bring an existing prediction log up to the tables' current columns and indexes (``create_all`` only makes missing
tables), and fill the stored review state of rows logged before it was stored.

Only nullable columns are ever added, so rows written before keep their meaning (NULL: "not recorded then").
"""

from __future__ import annotations

from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Engine

__all__ = ["add_missing_columns", "add_missing_indexes"]


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
