"""The CLI end to end: synth -> prepare -> train -> eval -> predict, asserting on the files and numbers written;
the old spellings (hidden aliases with a note) and a start-up that imports none of the heavy libraries."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from triagekit.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_encoder):
    root = tmp_path_factory.mktemp("cli")
    assert main(["data", "synth", "--n", "500", "--out", str(root / "t.jsonl"), "--seed", "3"]) == 0
    assert (
        main(
            [
                "data",
                "prepare",
                "--input",
                str(root / "t.jsonl"),
                "--out",
                str(root / "data"),
                "--multilabel",
                "tags",
                "--redact-pii",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "route",
                "train",
                "--data",
                str(root / "data"),
                "--labels",
                "queue,priority,type",
                "--multilabel",
                "tags",
                "--output",
                str(root / "run"),
                "--backbone",
                str(tiny_encoder),
                "--epochs",
                "2",
                "--set",
                "lr=1e-3",
                "--set",
                "head_lr=1e-2",
                "--set",
                "max_length=64",
                # the default preset is a hybrid; its 4-head TF-IDF half would add minutes on 2 cores here
                "--set",
                "hybrid=false",
            ]
        )
        == 0
    )
    return root


def test_eval_writes_metrics_report_and_plots(run_dir):
    assert (
        main(
            [
                "route",
                "eval",
                str(run_dir / "run"),
                "--data",
                str(run_dir / "data"),
                "--critical",
                "priority=high",
                "--target-precision",
                "0.8",
            ]
        )
        == 0
    )
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
    assert (
        main(
            [
                "eval",
                str(run_dir / "run"),
                "--data",
                str(run_dir / "data"),
                "--review-budget",
                "0.4",
                "--review-heads",
                "queue,type",
                "--no-baseline",
                "--out",
                str(run_dir / "eval-budget"),
            ]
        )
        == 0
    )
    metrics = json.loads((run_dir / "eval-budget" / "metrics.json").read_text())
    review = metrics["review"]
    assert review["budget"] == 0.4 and review["review_heads"] == ["queue", "type"]
    assert 0.4 <= review["auto_routed"] <= 0.8  # at most 40 % flagged on val; the test share is close to it
    assert metrics["heads"]["queue"]["review_rule"] == "review_budget"
    assert metrics["heads"]["priority"]["review_rule"] == "target_precision"
    assert "auto-routed" in capsys.readouterr().err.replace("\n", " ")
    info = json.loads((run_dir / "run" / "router.json").read_text())
    assert info["review"]["budget"] == 0.4 and info["review"]["heads"] == ["queue", "type"]
    assert (
        main(
            [
                "eval",
                str(run_dir / "run"),
                "--data",
                str(run_dir / "data"),
                "--review-budget",
                "1.5",
                "--no-baseline",
                "--out",
                str(run_dir / "eval-bad"),
            ]
        )
        == 2
    )
    assert "review budget must be in (0, 1]" in capsys.readouterr().err.replace("\n", " ")


def test_predict_file_streams_jsonl(run_dir):
    bad = run_dir / "in.jsonl"
    rows = [
        json.dumps({"id": "a1", "subject": "Invoice wrong", "body": "charged twice"}),
        "{not json",
        json.dumps({"id": "a3", "subject": "", "body": ""}),
        json.dumps({"subject": "Laptop broken", "body": "screen flickers"}),
    ]
    bad.write_text("\n".join(rows) + "\n")
    out = run_dir / "pred.jsonl"
    assert main(["route", "predict", str(run_dir / "run"), "--input", str(bad), "--output", str(out)]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["id"] for x in lines] == ["a1", "in-4"]
    for line in lines:
        assert {"label", "confidence", "top_k", "requires_review"} <= set(line["queue"])
        assert isinstance(line["requires_review"], bool)
    rejected = [json.loads(x) for x in (run_dir / "pred.jsonl.rejected.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejected] == [2, 3]


def test_predict_text_and_interactive(run_dir, capsys, monkeypatch):
    assert main(["route", "predict", str(run_dir / "run"), "--text", "my VPN keeps dropping"]) == 0
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
    assert main(["route", "predict", str(run_dir / "nope")]) == 2
    assert main(["route", "predict", str(run_dir / "run"), "--text", "  "]) == 2
    assert "no text after cleaning" in capsys.readouterr().err
    assert main(["train", "--data", str(run_dir / "data"), "--output", str(run_dir / "x"), "--set", "lr"]) == 2


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("data", "train", "eval", "predict", "demo"):
        assert command in out
    for command in ("route", "triage", "answer", "serve", "feedback", "drift", "export", "generate", "dpo"):
        assert command in out
    for hidden in ("eval-answers", "answers", "--task"):  # old spellings are aliases, not shown
        assert hidden not in out


# every old spelling, the usage line its help must show, and the note it prints
OLD_SPELLINGS = [
    (["train"], "triagekit route train", "'triagekit train' is now 'triagekit route train'"),
    (["train", "--task", "router"], "triagekit route train", "'triagekit train --task router' is now"),
    (["train", "--task", "answer"], "triagekit answer train", "'triagekit train --task answer' is now"),
    (["train", "--task=answer-dpo"], "triagekit answer dpo", "'triagekit train --task answer-dpo' is now"),
    (["train", "--task", "triage"], "triagekit triage train", "'triagekit train --task triage' is now"),
    (["eval", "RUN"], "triagekit route eval", "'triagekit eval' is now 'triagekit route eval'"),
    (["predict", "RUN"], "triagekit route predict", "'triagekit predict' is now 'triagekit route predict'"),
    (["export", "RUN"], "triagekit route export", "'triagekit export' is now 'triagekit route export'"),
    (["triage", "RUN"], "triagekit triage run", "'triagekit triage' is now 'triagekit triage run'"),
    (["triage", "RUN", "--eval"], "triagekit triage eval", "'triagekit triage --eval' is now 'triagekit triage eval'"),
    (["data", "synth", "--task", "triage"], "triagekit triage synth", "is now 'triagekit triage synth'"),
    (["data", "synth", "--task", "router"], "triagekit data synth", "is now 'triagekit data synth'"),
    (["answers", "prepare"], "triagekit answer prepare", "'triagekit answers prepare' is now"),
    (["answers", "synth"], "triagekit answer synth", "'triagekit answers synth' is now 'triagekit answer synth'"),
    (["generate", "RUN"], "triagekit answer generate", "'triagekit generate' is now 'triagekit answer generate'"),
    (["eval-answers", "RUN"], "triagekit answer eval", "'triagekit eval-answers' is now 'triagekit answer eval'"),
]


@pytest.mark.parametrize("old, usage, note", OLD_SPELLINGS, ids=[" ".join(o[0]) for o in OLD_SPELLINGS])
def test_old_spelling_is_an_alias_with_a_note(old, usage, note, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*old, "--help"])
    assert exit_.value.code == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"usage: {usage} ")
    assert err.startswith("note: ") and note in err and len(err.strip().splitlines()) == 1


def test_new_spellings_print_no_note_and_unknown_old_ones_fail(capsys):
    for argv in (["triage", "run", "--help"], ["triage", "--help"], ["data", "synth", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        assert "note:" not in capsys.readouterr().err, argv
    assert main(["train", "--task", "nope", "--data", "x", "--output", "y"]) == 2
    assert "'triagekit train --task nope' is not a command" in capsys.readouterr().err.replace("\n", " ")
    with pytest.raises(SystemExit):  # the new grammar has no --task: argparse refuses it
        main(["route", "train", "--task", "answer", "--data", "x", "--output", "y"])


def test_start_up_imports_no_heavy_library():
    """`triagekit --help` and `route train --help` must stay fast (benchmarks/cli_startup.py has the figures)."""
    heavy = [
        "torch",
        "transformers",
        "sklearn",
        "numpy",
        "pandas",
        "rich",
        "pydantic",
        "fastapi",
        "sqlalchemy",
        "onnx",
        "onnxruntime",
        "peft",
        "xgrammar",
        "yaml",
        "scipy",
    ]
    code = (
        "import sys\nfrom triagekit.cli import main\nfor argv in (['--help'], ['route', 'train', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_demo_steps_use_the_new_spelling(tmp_path, capsys):
    from triagekit.cli import ALIASES, TABLE
    from triagekit.core.cli import build_parser, resolve
    from triagekit.demo import demo_steps

    parser = build_parser(TABLE)
    for name, argv in demo_steps(tmp_path, 100, "demo.yaml"):
        assert resolve(argv, TABLE, ALIASES) == argv, name
        assert callable(parser.parse_args(argv).func), name
    assert "note:" not in capsys.readouterr().err


def test_table_merge_and_option_aliases():
    from triagekit.core.cli import Alias, Group, Verb, merge, resolve

    def verb(help_):
        return Verb(lambda args: 0, lambda p: None, help_)

    table = merge({"g": Group("a group", {"x": verb("x")})}, {"g": Group("", {"y": verb("y")}), "z": verb("z")})
    assert list(table) == ["g", "z"] and list(table["g"].verbs) == ["x", "y"] and table["g"].help == "a group"
    with pytest.raises(ValueError, match="'x' is defined twice"):
        merge(table["g"].verbs, {"x": verb("again")})
    aliases = [
        Alias("old", "g x", option="--kind=a", default=True),
        Alias("old", "g y", option="--kind=b"),
        Alias("z", "g y", option="--flag"),
    ]
    assert resolve(["old", "1", "--kind=b", "2"], table, aliases) == ["g", "y", "1", "2"]
    assert resolve(["old", "--kind", "a", "1"], table, aliases) == ["g", "x", "1"]
    assert resolve(["old", "1"], table, aliases) == ["g", "x", "1"]
    assert resolve(["z", "--flag", "1"], table, aliases) == ["g", "y", "1"]
    assert resolve(["z", "1"], table, aliases) == ["z", "1"]  # a current verb without the old flag stays
    assert resolve(["g", "x", "--kind", "b"], table, aliases) == ["g", "x", "--kind", "b"]
    with pytest.raises(ValueError, match="'triagekit old --kind c' is not a command"):
        resolve(["old", "--kind", "c"], table, aliases)


def test_error_messages_are_printed_as_text_not_markup(tmp_path, capsys):
    # Paths and library errors contain "[...]" (gloo's "[/.../pair.cc:553]"); as rich markup they crashed the
    # error report itself.
    run = tmp_path / "no[/such]run"
    assert main(["route", "predict", str(run), "--text", "vpn down"]) == 2
    captured = capsys.readouterr()
    assert "no[/such]run" in captured.out + captured.err


def test_demo_next_steps_are_commands_the_cli_parses(tmp_path):
    from triagekit.cli import ALIASES, TABLE
    from triagekit.core.cli import build_parser, resolve
    from triagekit.demo import next_steps

    parser = build_parser(TABLE)
    steps = next_steps(tmp_path)
    assert {argv[0] for _, argv in steps} >= {"route", "serve", "triage", "answer"}
    for what, argv in steps:
        assert resolve(argv, TABLE, ALIASES) == argv, what
        assert callable(parser.parse_args(argv).func), what


def test_readme_commands_use_the_current_spelling():
    import re
    import shlex

    from triagekit.cli import ALIASES, TABLE
    from triagekit.core.cli import resolve

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    commands = [
        line for block in blocks for line in block.replace("\\\n", " ").splitlines() if line.startswith("triagekit ")
    ]
    assert len(commands) >= 10
    for line in commands:
        argv = shlex.split(line, comments=True)[1:]
        assert resolve(argv, TABLE, ALIASES) == argv, line
