"""The stored review state (``review_priority``, ``awaiting_review``): same order as the JSON it replaces, kept with
every feedback write and undo, filled in for a log written before it existed, and served by the queue's index."""

from __future__ import annotations

import os
import random
from datetime import datetime, timedelta, timezone

import pytest
from conftest import DBS
from sqlalchemy import MetaData, Table, event, insert, select, text

from triagekit.serve import reviewstore
from triagekit.serve.db import PredictionStore, backfill_review_state, feedback, predictions
from triagekit.serve.reviewstore import Heads, QueueFilter

HEADS = Heads(["queue", "priority"], ["tags"])
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(params=DBS)
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'log.db'}"
    pytest.importorskip("psycopg")
    pg = os.environ["TRIAGEKIT_TEST_PG_URL"]
    store = PredictionStore(pg)
    with store.engine.begin() as conn:  # a clean slate: also the old-style table a test below makes
        conn.execute(text("DROP TABLE IF EXISTS review_actions, feedback, predictions CASCADE"))
    store.dispose()
    return pg


def _row(i: int, queue: float, priority: float | None, review: bool = True, lang: str = "en") -> dict:
    outputs = {"queue": {"label": "Billing", "confidence": queue, "requires_review": review}}
    if priority is not None:
        outputs["priority"] = {"label": "high", "confidence": priority, "requires_review": False}
    outputs["tags"] = {"labels": ["a"], "scores": {"a": 0.01}, "requires_review": False}  # lower, but multi-label
    return {
        "id": f"p{i:04d}",
        "request_id": f"T-{i}",
        "input_hash": "0" * 64,
        "inputs": {"subject": f"s{i}", "body": "b", "language": lang},
        "outputs": outputs,
        "requires_review": review,
        "latency_ms": 1.0,
        "model_version": "m1",
        "created_at": T0 + timedelta(seconds=i % 7),  # ties on created_at: id breaks them
    }


def _all_ids(engine, f: QueueFilter | None = None) -> list[str]:
    return [r["prediction_id"] for r in reviewstore.queue_page(engine, f or QueueFilter(), HEADS, 0, 10_000)]


def _walk(engine, backwards: bool = False) -> list[str]:
    out, pid = [], None
    while True:
        pid = reviewstore.neighbour(engine, QueueFilter(), HEADS, pid, backwards)
        if pid is None:
            return out
        out.append(pid)


@pytest.fixture
def legacy(monkeypatch):
    def run(fn, *args):
        monkeypatch.setattr(reviewstore, "LEGACY_QUERIES", True)
        try:
            return fn(*args)
        finally:
            monkeypatch.setattr(reviewstore, "LEGACY_QUERIES", False)

    return run


def test_stored_priority_is_the_json_order(url, legacy):
    rng = random.Random(3)
    # Rounded confidences give many ties on the priority, so created_at and id decide too.
    rows = [_row(i, round(rng.random(), 1), round(rng.random(), 1) if i % 5 else None, i % 4 != 0) for i in range(120)]
    store = PredictionStore(url)
    try:
        store.create()
        store.write(rows, [])
        with store.engine.connect() as conn:
            stored = dict(conn.execute(select(predictions.c.id, predictions.c.review_priority)).all())
        for r in rows:
            confs = [r["outputs"]["queue"]["confidence"]] + (
                [r["outputs"]["priority"]["confidence"]] if "priority" in r["outputs"] else []
            )
            assert stored[r["id"]] == pytest.approx(min(confs))
        order = _all_ids(store.engine)
        assert len(order) == sum(r["requires_review"] for r in rows) == 90
        assert order == legacy(_all_ids, store.engine)
        assert _walk(store.engine) == order and _walk(store.engine, backwards=True) == order[::-1]
        f = QueueFilter(head="queue", label="Billing", language="en")
        assert _all_ids(store.engine, f) == legacy(_all_ids, store.engine, f) == order
        assert reviewstore.queue_count(store.engine, QueueFilter(), HEADS) == 90
        page = reviewstore.queue_page(store.engine, QueueFilter(), HEADS, 25, 25)
        assert [r["prediction_id"] for r in page] == order[25:50]
    finally:
        store.dispose()


def _old_style_table(engine) -> Table:
    """The predictions table as logged before the review state was stored (no columns, no index for it)."""
    old = MetaData()
    keep = [c.copy() for c in predictions.columns if c.name not in ("review_priority", "awaiting_review")]
    table = Table("predictions", old, *keep)
    Table(feedback.name, old, *[c.copy() for c in feedback.columns])
    old.create_all(engine)
    return table


def test_old_log_rows_join_the_queue_in_place(url, legacy):
    store = PredictionStore(url)
    try:
        table = _old_style_table(store.engine)
        old = [_row(i, c, None, lang="de" if i == 1 else "en") for i, c in enumerate([0.9, 0.2, 0.6, 0.4])]
        old.append(_row(4, 0.1, None, review=False))
        answer = {"prediction_id": "p0003", "head": "queue", "correct_label": "X", "created_at": T0}
        with store.engine.begin() as conn:
            conn.execute(insert(table), old)
            conn.execute(insert(feedback), [answer])
        store.create()  # what start-up does: add the columns and the index, fill them in
        assert backfill_review_state(store.engine) == 0  # idempotent: nothing left to fill
        with store.engine.connect() as conn:
            cols = (
                predictions.c.id,
                predictions.c.review_priority,
                predictions.c.awaiting_review,
                predictions.c.language,
            )
            state = {r[0]: tuple(r[1:]) for r in conn.execute(select(*cols))}
        assert state == {
            "p0000": (0.9, True, "en"),
            "p0001": (0.2, True, "de"),
            "p0002": (0.6, True, "en"),
            "p0003": (0.4, False, "en"),  # has feedback
            "p0004": (0.1, False, "en"),  # never required review
        }
        store.write([_row(10, 0.5, 0.3), _row(11, 0.95, None)], [])
        order = _all_ids(store.engine)
        assert order == ["p0001", "p0010", "p0002", "p0000", "p0011"] == legacy(_all_ids, store.engine)
        assert _walk(store.engine) == order
        assert reviewstore.queue_count(store.engine, QueueFilter(), HEADS) == 5
        assert _all_ids(store.engine, QueueFilter(language="de")) == ["p0001"]
        assert reviewstore.queue_facets(store.engine) == {"languages": ["de", "en"], "model_versions": ["m1"]}
    finally:
        store.dispose()


def test_waiting_flag_follows_feedback_from_every_path(url):
    store = PredictionStore(url)
    try:
        store.create()
        store.write([_row(i, 0.1 * (i + 1), None) for i in range(3)], [])
        engine = store.engine
        # POST /feedback goes through the log writer: the ticket leaves the queue.
        store.write([], [{"prediction_id": "p0000", "head": "queue", "correct_label": "X", "created_at": T0}])
        assert _all_ids(engine) == ["p0001", "p0002"]
        # A save on /ui and its undo.
        reviewstore.save_review(engine, "p0001", {"queue": "Billing"}, "ann", None)
        assert _all_ids(engine) == ["p0002"]
        reviewstore.undo_last(engine, "ann")
        assert _all_ids(engine) == ["p0001", "p0002"]
        # Undoing a save while the API's feedback on the same ticket stands: it stays answered.
        reviewstore.save_review(engine, "p0002", {"queue": "Billing"}, "ann", None)
        store.write([], [{"prediction_id": "p0002", "head": "priority", "correct_label": "low", "created_at": T0}])
        reviewstore.undo_last(engine, "ann")
        assert _all_ids(engine) == ["p0001"]
        assert store.overview()["awaiting_review"] == 1 and len(store.review_queue()) == 1
        # A skip changes nothing.
        reviewstore.record_skip(engine, "p0001", "ann")
        reviewstore.undo_last(engine, "ann")
        assert _all_ids(engine) == ["p0001"]
    finally:
        store.dispose()


def test_queue_is_served_by_its_index_on_sqlite(tmp_path):
    """No sort of the waiting rows: SQLite walks an index for the page, the steps, the count and the filter menus."""
    store = PredictionStore(f"sqlite:///{tmp_path / 'log.db'}")
    try:
        store.create()
        store.write([_row(i, 0.5, None) for i in range(50)], [])
        seen: list[tuple[str, tuple]] = []

        def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001 - SQLAlchemy's
            if statement.lstrip().upper().startswith("SELECT"):
                seen.append((statement, parameters))

        event.listen(store.engine, "before_cursor_execute", capture)
        reviewstore.queue_page(store.engine, QueueFilter(), HEADS, 25, 25)
        reviewstore.neighbour(store.engine, QueueFilter(), HEADS, "p0010")
        reviewstore.neighbour(store.engine, QueueFilter(), HEADS, "p0010", backwards=True)
        reviewstore.queue_count(store.engine, QueueFilter(), HEADS)
        reviewstore.queue_facets(store.engine)
        event.remove(store.engine, "before_cursor_execute", capture)
        queue = [(s, p) for s, p in seen if "ORDER BY" in s or "count(" in s or "DISTINCT" in s]
        assert len(queue) == 6, seen
        raw = store.engine.raw_connection()
        try:
            for statement, parameters in queue:
                plan = " | ".join(r[-1] for r in raw.execute(f"EXPLAIN QUERY PLAN {statement}", parameters))
                assert "ix_predictions_review_" in plan and "TEMP B-TREE" not in plan, (statement, plan)
        finally:
            raw.close()
    finally:
        store.dispose()
