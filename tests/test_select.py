"""Selection strategies for the review queue and active learning."""

from __future__ import annotations

import json

import numpy as np
import pytest

from triagekit.route.select import STRATEGIES, order, probs_from_records, select, uncertainty

# Row 0: a coin toss between two labels; row 1: spread over three; row 2: sure.
P = {"queue": np.array([[0.5, 0.5, 0.0], [0.4, 0.3, 0.3], [0.98, 0.01, 0.01]])}


def test_strategies_rank_by_their_own_measure():
    assert list(select(P, 3, "least-confidence")) == [1, 0, 2]  # 1 - 0.4 > 1 - 0.5
    assert list(select(P, 3, "margin")) == [0, 1, 2]  # gap 0 < gap 0.1
    assert list(select(P, 3, "entropy")) == [1, 0, 2]  # three-way spread has the most entropy
    ent = uncertainty(P, "entropy")
    assert ent[1] == pytest.approx(-(0.4 * np.log(0.4) + 0.6 * np.log(0.3)) / np.log(3), rel=1e-6)
    assert list(select(P, 1, "margin")) == [0]


def test_several_heads_average_and_one_head_can_decide():
    probs = {**P, "priority": np.array([[0.99, 0.01], [0.99, 0.01], [0.5, 0.5]])}
    assert list(select(probs, 3, "margin", head="priority"))[0] == 2
    both = uncertainty(probs, "margin")
    assert both == pytest.approx((uncertainty(P, "margin") + uncertainty({"p": probs["priority"]}, "margin")) / 2)
    tags = {"tags": np.array([[0.99, 0.01], [0.55, 0.02]])}
    assert list(select(tags, 2, "least-confidence", multilabel=["tags"])) == [1, 0]


def test_random_is_reproducible_by_seed():
    probs = {"q": np.random.default_rng(0).dirichlet(np.ones(4), size=100)}
    a, b, c = (select(probs, 10, "random", seed=s) for s in (1, 1, 2))
    assert list(a) == list(b) and list(a) != list(c) and len(set(a)) == 10


def test_diverse_does_not_spend_a_batch_on_near_duplicates():
    rng = np.random.default_rng(0)
    # 12 near-identical, very uncertain tickets and 4 other groups of 3, slightly less uncertain: all 24 inside the
    # diverse strategy's candidate window (the 5 * n = 25 most uncertain); 40 sure tickets outside it.
    centres = rng.normal(size=(5, 16)) * 5
    emb = np.concatenate(
        [centres[0] + 0.01 * rng.normal(size=(12, 16))]
        + [c + 0.01 * rng.normal(size=(3, 16)) for c in centres[1:]]
        + [rng.normal(size=(40, 16))]
    )
    gaps = np.concatenate([np.full(12, 0.01), np.full(12, 0.1), np.full(40, 0.9)])
    p1 = (1 + gaps) / 2
    probs = {"q": np.stack([p1, 1 - p1], axis=1)}
    by_margin = select(probs, 5, "margin")
    assert all(i < 12 for i in by_margin)  # all five from the duplicate cluster
    diverse = select(probs, 5, "diverse", embeddings=emb, seed=0)
    groups = {0 if i < 12 else 1 + (i - 12) // 3 for i in diverse}
    assert len(diverse) == 5 and groups == {0, 1, 2, 3, 4}  # one per group
    assert diverse[0] < 12  # most uncertain first
    with pytest.raises(ValueError, match="needs embeddings"):
        select(probs, 5, "diverse")


def test_bad_strategy_and_empty_batch():
    with pytest.raises(ValueError, match="unknown selection strategy"):
        select(P, 1, "most-fun")
    assert len(select(P, 0, "margin")) == 0
    assert len(select(P, 10, "margin")) == 3
    from triagekit.route import commands

    assert set(STRATEGIES) == {"least-confidence", "margin", "entropy", "diverse", "random"}
    assert commands.STRATEGIES == STRATEGIES  # the CLI's choices


def _record(text: str, top: list[float]) -> dict:
    return {
        "prediction_id": text,
        "inputs": {"subject": text},
        "heads": {
            "queue": {
                "label": "a",
                "confidence": top[0],
                "top_k": [{"label": str(i), "p": p} for i, p in enumerate(top)],
            }
        },
    }


def test_order_on_review_queue_records():
    pool = [_record("sure thing", [0.9, 0.05]), _record("coin toss", [0.45, 0.44]), _record("spread", [0.3, 0.1])]
    probs, multilabel = probs_from_records(pool)
    assert multilabel == [] and probs["queue"].sum(axis=1) == pytest.approx([1, 1, 1])
    # the rest of the mass is spread so no unseen class outranks the k-th: 0.6 over six classes of 0.1
    assert probs["queue"][2].tolist()[:8] == pytest.approx([0.3, 0.1] + [0.1] * 6)
    assert [r["prediction_id"] for r in order(pool, "least-confidence")] == ["spread", "coin toss", "sure thing"]
    assert [r["prediction_id"] for r in order(pool, "margin")][0] == "coin toss"
    # diverse with TF-IDF of the inputs: the first batch of 2 is not two copies of the same complaint
    dupes = [_record("vpn down after update", [0.4, 0.39]) for _ in range(5)] + [
        _record("invoice charged twice", [0.5, 0.3])
    ]
    first = order(dupes, "diverse", batch=2)[:2]
    assert {r["inputs"]["subject"] for r in first} == {"vpn down after update", "invoice charged twice"}
    assert len(order(dupes, "diverse", batch=2)) == 6


def test_route_select_cli(prepared, tmp_path):
    from triagekit.cli import main

    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--data",
                str(prepared),
                "--output",
                str(run),
                "--backbone",
                "tfidf",
                "--labels",
                "queue,priority",
            ]
        )
        == 0
    )
    pool = tmp_path / "pool.jsonl"
    rows = [json.loads(line) for line in (prepared / "test.jsonl").read_text().splitlines()]
    pool.write_text(
        "".join(json.dumps({"subject": r["subject"], "body": r["body"]}) + "\n" for r in rows)
        + json.dumps({"subject": "", "body": ""})
        + "\n"
    )
    out = tmp_path / "batch.jsonl"
    assert (
        main(
            [
                "route",
                "select",
                "--run",
                str(run),
                "--pool",
                str(pool),
                "--n",
                "7",
                "--strategy",
                "margin",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 7 and [x["rank"] for x in lines] == list(range(1, 8))
    scores = [x["uncertainty"] for x in lines]
    assert scores == sorted(scores, reverse=True)
    assert lines[0]["prediction"]["queue"]["label"] and lines[0]["ticket"]["subject"]
    assert (
        main(
            [
                "route",
                "select",
                "--run",
                str(run),
                "--pool",
                str(pool),
                "--n",
                "5",
                "--strategy",
                "diverse",
                "--embed",
                "tfidf",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert len(out.read_text().splitlines()) == 5
