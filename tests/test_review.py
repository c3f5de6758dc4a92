"""The review operating point: a budget shared by the review heads, review_heads, unreachable targets."""

import numpy as np
import pytest

from triagekit.route.config import TrainConfig
from triagekit.route.heads import HeadSpec
from triagekit.route.review import (
    budget_thresholds,
    check_review_heads,
    fit_operating_point,
    precision_threshold,
    review_summary,
    ticket_flags,
)


def test_budget_flags_at_most_that_share_on_the_fitting_data():
    rng = np.random.default_rng(0)
    conf = {"queue": rng.random(500), "priority": rng.random(500) ** 0.3}
    for budget in (0.1, 0.3, 0.5, 1.0):
        thr = budget_thresholds(conf, budget)
        share = ticket_flags(conf, thr, ["queue", "priority"]).mean()
        assert share <= budget + 1e-9 and share >= budget - 0.02, (budget, share)


def test_review_heads_limit_the_ticket_flag():
    conf = {"queue": np.array([0.1, 0.9, 0.9]), "priority": np.array([0.9, 0.1, 0.9])}
    thr = {"queue": 0.5, "priority": 0.5}
    assert ticket_flags(conf, thr, ["queue", "priority"]).tolist() == [True, True, False]
    assert ticket_flags(conf, thr, ["queue"]).tolist() == [True, False, False]
    assert ticket_flags(conf, {"queue": None, "priority": 0.5}, ["queue", "priority"]).tolist() == [False, True, False]


def test_unreachable_target_reports_the_best_point_and_does_not_flag():
    conf = np.linspace(0.3, 0.9, 100)
    correct = np.arange(100) % 2 == 0  # 50 % right at every confidence
    thr, info = precision_threshold(conf, correct, 0.9)
    assert thr is None and info["reachable"] is False
    assert 0.4 < info["best_precision"] < 0.7 and info["best_coverage"] >= 0.1
    points = fit_operating_point({"priority": conf}, {"priority": (np.arange(100), correct)}, ["priority"], None, 0.9)
    assert points["priority"]["review_threshold"] is None


def test_budget_overrides_only_the_review_heads():
    conf = {"a": np.linspace(0, 1, 50), "b": np.linspace(0, 1, 50)}
    correct = {k: (np.arange(50), np.ones(50, bool)) for k in conf}
    points = fit_operating_point(conf, correct, ["a"], 0.2, 0.9)
    assert points["a"]["rule"] == "review_budget" and points["b"]["rule"] == "target_precision"


def test_summary_compares_auto_routed_and_flagged():
    flags = np.array([True, False, False, True])
    s = review_summary(flags, {"q": (np.arange(4), np.array([False, True, True, True]))})
    assert s["auto_routed"] == 0.5 and s["heads"]["q"] == {"auto_accuracy": 1.0, "review_accuracy": 0.5}


@pytest.mark.parametrize("budget", [0.0, -0.1, 1.5])
def test_budget_outside_the_unit_interval_is_refused(budget):
    with pytest.raises(ValueError, match=r"review_budget must be in \(0, 1\]"):
        TrainConfig(review_budget=budget)
    with pytest.raises(ValueError, match=r"must be in \(0, 1\]"):
        budget_thresholds({"a": np.ones(3)}, budget)


def test_unknown_review_head_is_a_clear_error():
    heads = [HeadSpec("queue", ["a", "b"]), HeadSpec("type", ["x", "y"])]
    assert check_review_heads(None, heads) == ["queue", "type"]
    with pytest.raises(ValueError, match=r"\['prio'\] are not heads"):
        check_review_heads(["prio"], heads)


def test_trained_router_flags_by_budget_and_review_heads(tmp_path, prepared):
    """End to end on TF-IDF: the default budget of 30 % holds on the test split within sampling noise, the report
    prints both accuracies, and review_heads drives the ticket-level flag of predict."""
    from rich.console import Console

    from triagekit.data import load_prepared
    from triagekit.route.evaluate import evaluate
    from triagekit.route.predict import prediction_lines
    from triagekit.route.router import Router
    from triagekit.route.train import train

    cfg = TrainConfig(backbone="tfidf", labels=["queue", "type"], multilabel=[], tfidf_C=10.0, review_heads=["queue"])
    assert cfg.review_budget == 0.3
    train(cfg, prepared, tmp_path / "run", console=Console(quiet=True))
    router = Router.load(tmp_path / "run")
    assert router.review == {"budget": 0.3, "heads": ["queue"], "target_precision": 0.9}
    test = load_prepared(prepared)["test"]
    m = evaluate(
        router,
        test,
        tmp_path / "eval",
        val_rows=load_prepared(prepared)["val"],
        plots=False,
        review_budget=0.3,
        review_heads=["queue"],
    )
    assert m["review"]["review_heads"] == ["queue"] and 0.5 <= m["review"]["auto_routed"] <= 0.95
    assert "auto-routed" in (tmp_path / "eval" / "report.md").read_text()
    lines = prediction_lines(router, test, list(range(len(test))))
    assert all(line["requires_review"] == line["queue"]["requires_review"] for line in lines)
