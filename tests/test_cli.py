"""The CLI end to end: synth -> prepare -> train -> eval -> predict, asserting on the files and numbers written."""

import json

import pytest

from triagekit.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_encoder):
    root = tmp_path_factory.mktemp("cli")
    assert main(["data", "synth", "--n", "500", "--out", str(root / "t.jsonl"), "--seed", "3"]) == 0
    assert main(["data", "prepare", "--input", str(root / "t.jsonl"), "--out", str(root / "data"),
                 "--multilabel", "tags", "--redact-pii"]) == 0
    assert main(["train", "--data", str(root / "data"), "--labels", "queue,priority,type", "--multilabel", "tags",
                 "--output", str(root / "run"), "--backbone", str(tiny_encoder), "--epochs", "2",
                 "--set", "lr=1e-3", "--set", "head_lr=1e-2", "--set", "max_length=64",
                 # the default preset is a hybrid; its 4-head TF-IDF half would add minutes on 2 cores here
                 "--set", "hybrid=false"]) == 0
    return root


def test_eval_writes_metrics_report_and_plots(run_dir):
    assert main(["eval", str(run_dir / "run"), "--data", str(run_dir / "data"), "--critical", "priority=high",
                 "--target-precision", "0.8"]) == 0
    metrics = json.loads((run_dir / "run" / "eval" / "metrics.json").read_text())
    for head in ("queue", "priority", "type"):
        m = metrics["heads"][head]
        for key in ("accuracy", "macro_f1", "weighted_f1", "ece", "top_k_accuracy"):
            assert key in m, (head, key)
        assert 0 <= m["accuracy"] <= 1
        assert m["top_k_accuracy"]["1"] <= m["top_k_accuracy"]["2"] <= m["top_k_accuracy"]["3"]
    assert "tags" in metrics["heads"]
    assert "critical_recall" in metrics["heads"]["priority"]
    assert "per_language" in metrics["heads"]["queue"]
    assert set(metrics["baseline"]["heads"]) >= {"queue", "priority", "type"}
    report = (run_dir / "run" / "eval" / "report.md").read_text()
    assert "TF-IDF" in report and ".png" in report
    assert list((run_dir / "run" / "eval").rglob("*.png"))
    # The review threshold fitted by eval is stored with the model for `requires_review`.
    info = json.loads((run_dir / "run" / "router.json").read_text())
    assert info["calibration"]["queue"]["temperature"] > 0


def test_eval_review_budget_and_heads(run_dir, capsys):
    assert main(["eval", str(run_dir / "run"), "--data", str(run_dir / "data"), "--review-budget", "0.4",
                 "--review-heads", "queue,type", "--no-baseline", "--out", str(run_dir / "eval-budget")]) == 0
    metrics = json.loads((run_dir / "eval-budget" / "metrics.json").read_text())
    review = metrics["review"]
    assert review["budget"] == 0.4 and review["review_heads"] == ["queue", "type"]
    assert 0.4 <= review["auto_routed"] <= 0.8  # at most 40 % flagged on val; the test share is close to it
    assert metrics["heads"]["queue"]["review_rule"] == "review_budget"
    assert metrics["heads"]["priority"]["review_rule"] == "target_precision"
    assert "auto-routed" in capsys.readouterr().err.replace("\n", " ")
    info = json.loads((run_dir / "run" / "router.json").read_text())
    assert info["review"]["budget"] == 0.4 and info["review"]["heads"] == ["queue", "type"]
    assert main(["eval", str(run_dir / "run"), "--data", str(run_dir / "data"), "--review-budget", "1.5",
                 "--no-baseline", "--out", str(run_dir / "eval-bad")]) == 2
    assert "review budget must be in (0, 1]" in capsys.readouterr().err.replace("\n", " ")


def test_predict_file_streams_jsonl(run_dir):
    bad = run_dir / "in.jsonl"
    rows = [json.dumps({"id": "a1", "subject": "Invoice wrong", "body": "charged twice"}),
            "{not json",
            json.dumps({"id": "a3", "subject": "", "body": ""}),
            json.dumps({"subject": "Laptop broken", "body": "screen flickers"})]
    bad.write_text("\n".join(rows) + "\n")
    out = run_dir / "pred.jsonl"
    assert main(["predict", str(run_dir / "run"), "--input", str(bad), "--output", str(out)]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["id"] for x in lines] == ["a1", "in-4"]
    for line in lines:
        assert {"label", "confidence", "top_k", "requires_review"} <= set(line["queue"])
        assert isinstance(line["requires_review"], bool)
    rejected = [json.loads(x) for x in (run_dir / "pred.jsonl.rejected.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejected] == [2, 3]


def test_predict_text_and_interactive(run_dir, capsys, monkeypatch):
    assert main(["predict", str(run_dir / "run"), "--text", "my VPN keeps dropping"]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["queue"]["label"]
    answers = iter(["printer jammed", ""])

    def fake_input(prompt=""):
        try:
            return next(answers)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr("builtins.input", fake_input)
    assert main(["predict", str(run_dir / "run")]) == 0
    assert "queue" in capsys.readouterr().out


def test_stats_and_errors(run_dir, capsys):
    assert main(["data", "stats", str(run_dir / "t.jsonl"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)
    assert main(["predict", str(run_dir / "nope")]) == 2
    assert main(["predict", str(run_dir / "run"), "--text", "  "]) == 2
    assert "no text after cleaning" in capsys.readouterr().err
    assert main(["train", "--data", str(run_dir / "data"), "--output", str(run_dir / "x"), "--set", "lr"]) == 2


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("data", "train", "eval", "predict", "demo"):
        assert command in out
