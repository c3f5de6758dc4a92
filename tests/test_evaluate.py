"""evaluate() end to end: a random fake router and a real TF-IDF backend on small synthetic tickets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from triagekit.route.evaluate import evaluate, gold_labels
from triagekit.route.heads import HeadSpec, heads_from_rows
from triagekit.route.tfidf import TfidfBackend

KEYWORDS = {
    "billing": ["invoice", "refund", "charge", "payment", "billed"],
    "tech": ["error", "crash", "login", "bug", "timeout"],
    "security": ["phishing", "breach", "password", "hacked", "suspicious"],
}
FILLER = {"en": ["please", "help", "my", "account", "today", "thanks"], "de": ["bitte", "hilfe", "mein", "konto"]}
TAGS = {"mobile": "app", "vpn": "vpn"}


def _ticket(rng: np.random.Generator, i: int) -> dict:
    queue = list(KEYWORDS)[i % 3]
    lang = "en" if i % 4 else "de"
    words = list(rng.choice(KEYWORDS[queue], 3)) + list(rng.choice(FILLER[lang], 3))
    urgent = rng.random() < 0.4
    tags = [tag for tag in TAGS if rng.random() < 0.3]
    words += (["urgent", "asap"] if urgent else []) + [TAGS[t] for t in tags]
    rng.shuffle(words)
    return {
        "subject": " ".join(words[:3]),
        "body": " ".join(words[3:]),
        "queue": queue,
        "priority": "high" if urgent else "low",
        "tags": tags,
        "language": lang,
    }


def _rows(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [_ticket(rng, i) for i in range(n)]


@pytest.fixture(scope="module")
def data():
    train, val, test = _rows(150, 0), _rows(60, 1), _rows(60, 2)
    heads = heads_from_rows(train, ["queue", "priority"], ["tags"])
    return train, val, test, heads


@pytest.fixture(scope="module")
def tfidf(data):
    train, _, _, heads = data
    return TfidfBackend().fit(train, heads, ["subject", "body"], seed=0, C=10.0)


class FakeRouter:
    """Random logits: the router protocol with no skill, for checking plumbing and chance-level numbers."""

    def __init__(self, heads: list[HeadSpec], seed: int = 0) -> None:
        self.heads = heads
        self.text_fields = ["subject", "body"]
        self.rng = np.random.default_rng(seed)
        self.calls = 0

    def logits(self, inputs, batch_size: int = 64) -> dict[str, np.ndarray]:
        self.calls += 1
        return {h.name: self.rng.normal(size=(len(inputs), len(h.labels))) for h in self.heads}


def test_tfidf_end_to_end(tmp_path, data, tfidf):
    _, val, test, heads = data
    # One row with an unknown queue and one with no queue: counted and skipped, never a crash.
    test = test + [{**test[0], "queue": "legal"}, {**test[1], "queue": None}]
    m = evaluate(tfidf, test, tmp_path, val_rows=val, critical={"queue": ["security"], "priority": ["high"]})

    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == m
    assert m["n_test"] == 62
    assert set(m["heads"]) == {"queue", "priority", "tags"}
    q = m["heads"]["queue"]
    for key in ("accuracy", "macro_f1", "weighted_f1", "ece", "ece_before", "temperature", "top_k_accuracy",
                "review_threshold", "coverage_at_threshold", "accuracy_at_threshold", "threshold_source",
                "per_class", "confusion_matrix", "classification_report", "per_language", "critical_recall",
                "plots"):  # fmt: skip
        assert key in q, key
    assert q["unknown_labels"] == 2 and q["n"] == 60
    assert q["accuracy"] >= 0.95 and q["macro_f1"] >= 0.95
    assert q["top_k_accuracy"]["3"] == 1.0
    assert q["threshold_source"] == "val" and q["review_threshold"] is not None
    assert q["accuracy_at_threshold"] >= 0.9 and q["coverage_at_threshold"] > 0.5
    assert q["critical_recall"]["security"] >= 0.9
    assert set(q["per_language"]) == {"en", "de"}
    assert m["heads"]["priority"]["accuracy"] >= 0.9
    assert m["calibration"]["queue"] == {"temperature": q["temperature"], "review_threshold": q["review_threshold"]}

    for h in m["heads"].values():
        for rel in h["plots"].values():
            assert (tmp_path / rel).stat().st_size > 1000
    assert set(q["plots"]) == {"reliability", "coverage", "confusion"}
    report = (tmp_path / "report.md").read_text()
    assert "## Summary" in report and "`queue`" in report and "security" in report
    assert "![queue confusion](plots/queue_confusion.png)" in report
    assert "```" in report and "precision" in report


def test_fake_router_with_tfidf_baseline(tmp_path, data, tfidf):
    _, val, test, heads = data
    router = FakeRouter(heads)
    m = evaluate(router, test, tmp_path, val_rows=val, baseline=tfidf, plots=False)
    assert router.calls == 2  # test and val logits, each computed once for all heads
    q, bq = m["heads"]["queue"], m["baseline"]["heads"]["queue"]
    assert q["accuracy"] < 0.6 and bq["accuracy"] >= 0.95
    # Random logits: calibration should flatten them (T > 1) and not leave ECE worse than before.
    assert q["temperature"] > 1.0 and q["ece"] <= q["ece_before"] + 0.02
    assert "plots" not in q and "plots" not in bq
    assert not (tmp_path / "plots").exists()
    assert set(m["baseline"]["heads"]) == {"queue", "priority", "tags"}
    report = (tmp_path / "report.md").read_text()
    assert "TF-IDF acc (Δ)" in report


def test_without_val_threshold_comes_from_test(tmp_path, data, tfidf):
    _, _, test, _ = data
    m = evaluate(tfidf, test, tmp_path, plots=False)
    q = m["heads"]["queue"]
    assert q["temperature"] == 1.0 and q["ece"] == q["ece_before"]
    assert q["threshold_source"] == "test"


def test_unreachable_target_gives_no_threshold(tmp_path, data):
    _, val, test, heads = data

    class AlwaysWrong(FakeRouter):
        def logits(self, inputs, batch_size=64):
            out = super().logits(inputs, batch_size)
            labels = heads[0].labels
            wrong = [(labels.index(r["queue"]) + 1) % len(labels) for r in inputs]
            out["queue"][np.arange(len(inputs)), wrong] += 10.0
            return out

    m = evaluate(AlwaysWrong(heads), test, tmp_path, val_rows=val, target_precision=0.9, plots=False)
    q = m["heads"]["queue"]
    assert q["accuracy"] == 0.0
    assert q["review_threshold"] is None and m["calibration"]["queue"]["review_threshold"] is None
    # The head cannot reach its target: it stops flagging (instead of flagging every ticket) and says so plainly.
    assert q["coverage_at_threshold"] == 1.0 and q["accuracy_at_threshold"] == 0.0
    assert q["precision_target"]["reachable"] is False and q["precision_target"]["best_precision"] == 0.0
    report = (tmp_path / "report.md").read_text()
    assert "none (does not flag)" in report and "cannot reach 90 % precision" in report
    assert any("'queue' cannot reach" in w for w in m["review"]["warnings"])


def test_multilabel_head(tmp_path, data, tfidf):
    _, val, test, _ = data
    m = evaluate(tfidf, test, tmp_path, val_rows=val)
    t = m["heads"]["tags"]
    assert t["multilabel"] is True
    for key in ("micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss", "per_class", "ece"):
        assert key in t
    assert t["micro_f1"] >= 0.9 and t["subset_accuracy"] >= 0.8 and t["hamming_loss"] <= 0.1
    assert set(t["plots"]) == {"reliability", "coverage"}
    assert set(t["per_class"]) == {"mobile", "vpn"}


def test_gold_labels_skips_unknown_and_malformed():
    head = HeadSpec("tags", ["a", "b"], multilabel=True)
    rows = [{"tags": ["a"]}, {"tags": []}, {"tags": ["z"]}, {"tags": None}, {"tags": float("nan")}, {"tags": 3}]
    keep, y, unknown = gold_labels(rows, head)
    assert keep.tolist() == [0, 1] and unknown == 4
    assert y.tolist() == [[1, 0], [0, 0]]


def test_tfidf_save_load_round_trip(tmp_path, data, tfidf):
    _, _, test, _ = data
    path = tfidf.save(tmp_path / "model")
    assert path.name == "tfidf.joblib"
    loaded = TfidfBackend.load(tmp_path / "model")
    assert [h.to_dict() for h in loaded.heads] == [h.to_dict() for h in tfidf.heads]
    assert loaded.text_fields == tfidf.text_fields
    a, b = tfidf.logits(test), loaded.logits(test)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_tfidf_columns_follow_head_labels_with_unseen_class(data):
    train, _, test, _ = data
    heads = [HeadSpec("queue", ["archive", "billing", "security", "tech"]),
             HeadSpec("tags", ["mobile", "never", "vpn"], multilabel=True)]  # fmt: skip
    backend = TfidfBackend().fit(train, heads, ["subject", "body"])
    out = backend.logits(test[:5] + ["refund for my invoice please"])
    assert out["queue"].shape == (6, 4) and out["tags"].shape == (6, 3)
    assert np.all(out["queue"][:, 0] <= -1e3)  # "archive" never seen in training
    assert np.all(out["tags"][:, 1] < -10)  # tag "never" never seen: probability ~0
    assert out["queue"][-1].argmax() == 1
    probs = np.exp(out["queue"][:, 1:])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)  # softmax(log proba) == proba
