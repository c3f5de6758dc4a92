"""Answer data: the unified schema, loaders for tickets / dialogs / Q&A pairs with malformed rows reported by file and
line, PII redaction, dedup, stratified splits, and the shipped synthetic suite."""

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from triagekit.answer import AnswerExample, load_examples, load_split, prepare_answers, synth_answer_examples
from triagekit.answer.schema import to_messages

SUITE = Path(__file__).resolve().parents[1] / "suites" / "answers-synth-100.jsonl"


def test_schema_validates_and_normalises():
    ex = AnswerExample.model_validate(
        {
            "id": 7,
            "inputs": {"question": "  VPN down  "},
            "outputs": {"answer": "Hi"},
            "meta": {"tags": "vpn|login|vpn", "timestamp": "2024-01-02 10:00"},
        }
    )
    assert ex.id == "7" and ex.inputs.question == "VPN down" and ex.meta.tags == ["vpn", "login"]
    assert ex.meta.timestamp == "2024-01-02T10:00:00" and ex.inputs.context is None
    assert to_messages(ex, system="Be brief.")[0] == {"role": "system", "content": "Be brief."}
    for bad, match in [
        ({"inputs": {"question": " "}, "outputs": {"answer": "x"}}, "question is empty"),
        ({"inputs": {"question": "q"}, "outputs": {"answer": 3}}, "answer must be a string"),
        ({"inputs": {"question": "q"}, "outputs": {"answer": "a"}, "meta": {"timestamp": "soon"}}, "not a date"),
        ({"inputs": {"question": "q", "extra": 1}, "outputs": {"answer": "a"}}, "extra"),
    ]:
        with pytest.raises(ValidationError, match=match):
            AnswerExample.model_validate({"id": "x", **bad})


def test_ticket_csv_loader_reports_malformed_rows(tmp_path):
    path = tmp_path / "tickets.csv"
    path.write_text(
        "subject,body,answer,language,tag_1,tag_2\n"
        "VPN down,It drops every 10 min,Please reinstall the client.,en,VPN,Network\n"
        "No answer,Body here,,en,VPN,\n"
        "too,many,fields,en,a,b,c\n"
        ",,An answer without a question,en,,\n"
        "Invoice,Charged twice,We refunded the charge.,de,Billing,\n"
    )
    examples, errors = load_examples(path)
    assert [e.inputs.question for e in examples] == ["VPN down\n\nIt drops every 10 min", "Invoice\n\nCharged twice"]
    assert examples[0].meta.tags == ["VPN", "Network"] and examples[0].meta.language == "en"
    assert examples[0].meta.source == "tickets.csv" and examples[0].id == "tickets-2"
    assert [(e.line, e.file) for e in errors] == [(3, str(path)), (4, str(path)), (5, str(path))]
    assert "answer column 'answer'" in errors[0].reason and "expected 6 fields" in errors[1].reason
    assert "no question" in errors[2].reason


def test_dialog_and_qa_jsonl_loaders(tmp_path):
    path = tmp_path / "mixed.jsonl"
    rows = [
        {
            "id": "d1",
            "messages": [
                {"role": "system", "content": "You are support."},
                {"role": "user", "content": "My VPN fails."},
                {"role": "assistant", "content": "Which OS?"},
                {"role": "user", "content": "Windows 11."},
                {"role": "assistant", "content": "Update the client to 5.2."},
            ],
            "tags": ["vpn"],
        },
        {"id": "q1", "question": "How do I reset my password?", "answer": "Use the reset link.", "source": "faq"},
        {"id": "p1", "prompt": "Refund?", "chosen": "Sure, refunded.", "rejected": "No."},
        {"id": "u1", "inputs": {"question": "Hi"}, "outputs": {"answer": "Hello"}, "meta": {"tags": ["x"]}},
        {"id": "bad1", "messages": [{"role": "user", "content": "Only a question"}]},
        {"id": "bad2", "messages": [{"role": "robot", "content": "?"}, {"role": "assistant", "content": "!"}]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n[1, 2]\n")
    examples, errors = load_examples(path)
    by_id = {e.id: e for e in examples}
    assert by_id["d1"].inputs.question == "Windows 11." and by_id["d1"].outputs.answer == "Update the client to 5.2."
    assert by_id["d1"].inputs.context == "System: You are support.\nCustomer: My VPN fails.\nAgent: Which OS?"
    assert by_id["q1"].meta.source == "faq" and by_id["p1"].outputs.rejected == "No."
    assert by_id["u1"].meta.source == "mixed.jsonl" and by_id["u1"].meta.tags == ["x"]
    assert [e.line for e in errors] == [5, 6, 7, 8]
    assert "last message must be the assistant" in errors[0].reason and "role in" in errors[1].reason
    assert "invalid JSON" in errors[2].reason and "expected a JSON object" in errors[3].reason


def test_prepare_redacts_dedups_filters_and_splits(tmp_path):
    rows = []
    for i in range(60):
        tag = ["VPN", "Billing", "Login"][i % 3]
        rows.append(
            {
                "id": f"t{i}",
                "subject": f"Issue {i}",
                "body": f"Problem {i}, mail me at user{i}@example.com",
                "answer": f"Fixed case {i}.",
                "language": "en" if i % 10 else "de",
                "tags": [tag],
            }
        )
    rows.append({**rows[1], "id": "dup"})
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"id": "x", "subject": "no answer"}\n')
    out = tmp_path / "prep"
    s = prepare_answers(path, out, language="en", redact_pii=True, seed=0)
    assert (s.total, s.rejected, s.filtered, s.duplicates) == (62, 1, 6, 1)
    assert s.kept == 54 == sum(s.splits.values()) and s.pii == {"EMAIL": 55}
    train, test = load_split(out, "train"), load_split(out, "test")
    assert all("[EMAIL]" in e.inputs.question for e in train)
    assert {e.meta.tags[0] for e in test} == {"VPN", "Billing", "Login"}  # stratified by first tag
    assert not {e.id for e in train} & {e.id for e in test}
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    assert rejected[0]["line"] == 62 and "answer column" in rejected[0]["reason"]
    assert json.loads((out / "prepare.json").read_text())["task"] == "answer"
    with pytest.raises(ValueError, match="malformed"):
        load_split(path)


def test_grounded_only_moves_training_replies_with_unsupported_claims_and_keeps_val_and_test(tmp_path):
    rows = [
        {
            "id": f"t{i}",
            "subject": f"Printer {i} jams",
            "body": "The office printer jams on every page.",
            "answer": (
                "Please install FixPrint 9 from printfix.io."
                if i % 4 == 0
                else "Please open the printer tray and remove the jammed page."
            ),
            "tags": ["Hardware"],
        }
        for i in range(40)
    ]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    plain = prepare_answers(path, tmp_path / "plain", seed=1)
    s = prepare_answers(path, tmp_path / "grounded", grounded_only=True, seed=1)
    ungrounded = [json.loads(line) for line in (tmp_path / "grounded" / "ungrounded.jsonl").read_text().splitlines()]
    assert s.ungrounded == len(ungrounded) > 0 and s.kept + s.ungrounded == plain.kept == 40
    assert all(r["row"]["id"] in {f"t{i}" for i in range(0, 40, 4)} for r in ungrounded)
    assert "url:printfix.io" in ungrounded[0]["unsupported"] and "name:FixPrint" in ungrounded[0]["unsupported"]
    train = load_split(tmp_path / "grounded", "train")
    assert train and not any("FixPrint" in e.outputs.answer for e in train)
    for split in ("val", "test"):  # evaluation splits are the same with or without the filter
        assert load_split(tmp_path / "grounded", split) == load_split(tmp_path / "plain", split)
    assert not (tmp_path / "plain" / "ungrounded.jsonl").exists()


def test_shipped_suite_is_the_seeded_synthetic_suite():
    examples = synth_answer_examples(100)
    assert SUITE.read_text(encoding="utf-8") == "".join(
        json.dumps(e.to_row(), ensure_ascii=False) + "\n" for e in examples
    )
    assert len({e.id for e in examples}) == 100 and all(e.meta.language == "en" for e in examples)
    loaded = load_split(SUITE)
    assert len(loaded) == 100 and loaded[0] == examples[0]


@pytest.mark.parametrize(
    "path", sorted((SUITE.parents[1] / "src" / "triagekit" / "presets" / "answer").glob("*.yaml")), ids=lambda p: p.name
)
def test_every_answer_preset_loads(path):
    from triagekit.answer.guardrails import Guardrails
    from triagekit.sft import SFTConfig, load_sft_config

    if path.name == "guardrails.yaml":
        assert Guardrails.load(path).rules
    else:
        assert isinstance(load_sft_config(path), SFTConfig)


def test_cli_prepare_and_synth(tmp_path, capsys):
    from triagekit.cli import main

    assert main(["answer", "synth", "--out", str(tmp_path / "suite.jsonl")]) == 0
    assert (tmp_path / "suite.jsonl").read_text(encoding="utf-8") == SUITE.read_text(encoding="utf-8")
    assert (
        main(
            [
                "answer",
                "prepare",
                "--input",
                str(tmp_path / "suite.jsonl"),
                "--out",
                str(tmp_path / "prep"),
                "--stratify",
                "source",
                "--limit",
                "50",
                "--redact-pii",
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "prep" / "prepare.json").read_text())["summary"]
    assert summary["kept"] == 50 and summary["filtered"] == 50 and sum(summary["splits"].values()) == 50
    assert (
        main(
            [
                "answers",
                "prepare",
                "--input",
                str(tmp_path / "suite.jsonl"),
                "--out",
                str(tmp_path / "g"),
                "--grounded-only",
            ]
        )
        == 0
    )
    grounded = json.loads((tmp_path / "g" / "prepare.json").read_text())
    assert grounded["grounded_only"] and grounded["summary"]["kept"] + grounded["summary"]["ungrounded"] == 100
    assert main(["answer", "prepare", "--input", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "x")]) == 2
    assert "no such file" in capsys.readouterr().err
