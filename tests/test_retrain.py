"""``triagekit route retrain``: corrections merged (conflicts, bad rows, new labels) and the gate both ways."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

pytest.importorskip("sqlalchemy")

from triagekit.cli import main  # noqa: E402
from triagekit.core.registry import Registry  # noqa: E402
from triagekit.data.io import read_jsonl, write_jsonl  # noqa: E402
from triagekit.route.retrain import EXIT_NO_FEEDBACK, EXIT_NOT_PROMOTED, gate  # noqa: E402


@pytest.fixture(scope="module")
def noisy(prepared, tmp_path_factory):
    """A base trained on data where every training ticket of one queue was filed under another (so the base does
    not even know that queue), registered as router@v1 (production)."""
    base = tmp_path_factory.mktemp("retrain")
    data = base / "data"
    shutil.copytree(prepared, data)
    train = read_jsonl(data / "train.jsonl")
    counts = Counter(r["queue"] for r in train)
    (lost, _), (other, _) = counts.most_common(2)
    mislabelled = [r for r in train if r["queue"] == lost]
    for split in ("train", "val"):
        rows = read_jsonl(data / f"{split}.jsonl")
        write_jsonl(
            data / f"{split}.jsonl", [{**r, "queue": other if r["queue"] == lost else r["queue"]} for r in rows]
        )
    run = base / "run"
    assert main(["train", "--data", str(data), "--output", str(run), "--backbone", "tfidf", "--labels", "queue"]) == 0
    reg = Registry(base / "reg", create=True)
    reg.register(run, "router")
    reg.promote("router", 1, "production")
    return {
        "reg": reg,
        "lost": lost,
        "other": other,
        "mislabelled": mislabelled,
        "base": base,
        "ref": f"registry:{base / 'reg'}/router@production",
    }


def _log(path, corrections, extra_feedback=()):
    """A prediction log with one prediction per (inputs, label) correction, oldest first."""
    from triagekit.serve.db import PredictionStore

    store = PredictionStore(f"sqlite:///{path}")
    store.create()
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    preds, fb = [], []
    for i, (inputs, labels) in enumerate(corrections):
        pid = f"p{i}"
        preds.append(
            {
                "id": pid,
                "request_id": None,
                "input_hash": "x",
                "inputs": inputs,
                "outputs": {"queue": {"label": "whatever", "confidence": 0.4}},
                "requires_review": True,
                "latency_ms": 1.0,
                "model_version": "router@v1",
                "created_at": t0,
            }
        )
        for j, label in enumerate(labels if isinstance(labels, list) else [labels]):
            fb.append(
                {
                    "prediction_id": pid,
                    "head": "queue",
                    "correct_label": label,
                    "created_at": t0 + timedelta(minutes=i * 10 + j),
                }
            )
    fb += list(extra_feedback)
    store.write(preds, fb)
    store.dispose()
    return path


def _args(noisy, out, log, *extra):
    return ["route", "retrain", "--base", noisy["ref"], "--feedback", str(log), "--output", str(out), *extra]


def test_corrections_fix_the_model_and_are_promoted(noisy, tmp_path):
    lost, other = noisy["lost"], noisy["other"]
    fixes = [({"subject": r["subject"], "body": r["body"]}, lost) for r in noisy["mislabelled"]]
    fixes[0] = (fixes[0][0], [other, lost])  # two reviewers disagree: the later one wins, one conflict counted
    t = datetime(2026, 2, 1, tzinfo=timezone.utc)
    bad = [
        {"prediction_id": "nope", "head": "queue", "correct_label": lost, "created_at": t},  # unknown prediction
        {"prediction_id": "p1", "head": "urgency", "correct_label": "high", "created_at": t},  # unknown head
        {"prediction_id": "p2", "head": "queue", "correct_label": ["a", "b"], "created_at": t},
    ]  # not one label
    log = _log(tmp_path / "log.db", fixes, bad)
    out = tmp_path / "cand"
    assert main(_args(noisy, out, log, "--promote-if-better")) == 0
    report = json.loads((out / "retrain_report.json").read_text())
    fb = report["feedback"]
    assert fb["conflicts"] == 1 and fb["rejected_unknown_prediction"] == 1
    assert fb["rejected_unknown_head"] == 1 and fb["rejected_bad_label"] == 1
    assert fb["new_labels"] == {"queue": [lost]}  # grown: the base did not know this queue
    assert fb["tickets"] == len(fixes)
    b, c = report["base"], report["candidate"]
    assert c["test"]["queue"]["macro_f1"] > b["test"]["queue"]["macro_f1"]
    assert c["corrections"]["queue"]["accuracy"] > b["corrections"]["queue"]["accuracy"]
    assert report["gate"]["passed"] and report["promoted"]["version"] == 2
    assert any(ch["head"] == "queue" and ch["old"] == other and ch["new"] == lost for ch in report["changed"])
    reg = noisy["reg"]
    assert reg.get("router", "production")["version"] == 2
    assert reg.get("router", "v2")["parent"] == "router@v1"
    assert lost in json.loads((out / "router.json").read_text())["heads"][0]["labels"]
    md = (out / "retrain_report.md").read_text()
    assert "Gate: **passed**" in md and "Held-out corrections" in md
    reg.promote("router", 1, "production")  # back to the noisy base for the next tests


def test_harmful_corrections_are_not_promoted(noisy, tmp_path):
    reg = noisy["reg"]
    reg.promote("router", 1, "production")
    train = read_jsonl(noisy["base"] / "data" / "train.jsonl")
    counts = Counter(r["queue"] for r in train if r["queue"] != noisy["other"])
    victim, wrong = [q for q, _ in counts.most_common(2)]
    # a careless reviewer files a whole queue under another one
    harm = [({"subject": r["subject"], "body": r["body"]}, wrong) for r in train if r["queue"] == victim]
    log = _log(tmp_path / "log.db", harm)
    out = tmp_path / "cand"
    before = reg.versions("router")
    assert main(_args(noisy, out, log, "--promote-if-better", "--max-regression", "0.5")) == EXIT_NOT_PROMOTED
    report = json.loads((out / "retrain_report.json").read_text())
    assert not report["gate"]["passed"] and "promoted" not in report
    assert any("queue: test macro-F1" in r for r in report["gate"]["reasons"])
    assert reg.versions("router") == before and reg.get("router", "production")["version"] == 1
    assert "Gate: **not passed**" in (out / "retrain_report.md").read_text()


def test_empty_feedback_exits_non_zero_without_training(noisy, tmp_path):
    log = _log(tmp_path / "log.db", [])
    out = tmp_path / "cand"
    assert main(_args(noisy, out, log)) == EXIT_NO_FEEDBACK
    assert not (out / "router.json").exists()
    # only bad rows: also nothing usable
    t = datetime(2026, 2, 1, tzinfo=timezone.utc)
    log2 = _log(
        tmp_path / "log2.db", [], [{"prediction_id": "nope", "head": "queue", "correct_label": "x", "created_at": t}]
    )
    assert main(_args(noisy, out, log2)) == EXIT_NO_FEEDBACK
    assert main(_args(noisy, out, tmp_path / "missing.db")) == 2  # not a log: a clear error


def test_new_labels_can_be_refused(noisy, tmp_path, capsys):
    log = _log(tmp_path / "log.db", [({"subject": "Payroll portal", "body": "my payslip is missing"}, "hr-payroll")])
    out = tmp_path / "cand"
    assert main(_args(noisy, out, log, "--new-labels", "refuse")) == 2
    err = capsys.readouterr().err
    assert "hr-payroll" in err and "--new-labels grow" in err
    assert not (out / "router.json").exists()


def test_gate_rules():
    base = {
        "test": {"queue": {"macro_f1": 0.80}, "priority": {"macro_f1": 0.60}},
        "corrections": {"queue": {"accuracy": 0.5}},
    }
    ok = {
        "test": {"queue": {"macro_f1": 0.796}, "priority": {"macro_f1": 0.62}},
        "corrections": {"queue": {"accuracy": 0.7}},
    }
    assert gate(base, ok, 0.5) == (True, [])
    worse = {**ok, "test": {"queue": {"macro_f1": 0.79}, "priority": {"macro_f1": 0.62}}}  # -1.0 point on queue
    passed, reasons = gate(base, worse, 0.5)
    assert not passed and reasons[0].startswith("queue: test macro-F1 80.00 -> 79.00")
    assert gate(base, worse, 1.5)[0]
    same_slice = {**ok, "corrections": {"queue": {"accuracy": 0.5}}}  # must be better, not equal
    assert not gate(base, same_slice, 0.5)[0]
    assert "no held-out corrections" in gate(base, {**ok, "corrections": {}}, 0.5)[1][0]
