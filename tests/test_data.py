"""Reading, validating and preparing ticket files: every row is accounted for, in every format."""

import csv
import json

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triagekit.data import (
    Record,
    RowError,
    iter_records,
    load_prepared,
    load_records,
    prepare,
    read_jsonl,
    split_rows,
    validate_record,
)

ROWS = [
    {
        "id": "a1",
        "subject": "Printer broken",
        "body": "The printer on floor 2 jams.",
        "queue": "IT",
        "tags": ["hw", "print"],
    },
    {
        "id": "a2",
        "subject": "Refund",
        "body": "I want my money back, order #12345.",
        "queue": "Billing",
        "tags": ["refund"],
    },
    {"id": "a3", "subject": "Umlaut äöü", "body": 'Zeile mit, Komma und "Zitat"', "queue": "Billing", "tags": []},
]


def _write_jsonl(path, lines):
    path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines), encoding="utf-8")
    return path


def _write_csv(path, rows, delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter=delimiter)
        w.writeheader()
        w.writerows({**r, "tags": "|".join(r["tags"])} for r in rows)
    return path


def _rejected(out_dir):
    return {e["line"]: e for e in read_jsonl(out_dir / "rejected.jsonl")}


def test_unknown_suffix_and_missing_file(tmp_path):
    (tmp_path / "x.xlsx").write_text("nope")
    with pytest.raises(ValueError, match=r"\.csv.*\.parquet"):
        iter_records(tmp_path / "x.xlsx")
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        iter_records(tmp_path / "missing.csv")


def test_all_formats_read_the_same_rows(tmp_path):
    files = [
        _write_csv(tmp_path / "t.csv", ROWS),
        _write_csv(tmp_path / "t.tsv", ROWS, delimiter="\t"),
        _write_jsonl(tmp_path / "t.jsonl", ROWS),
        _write_jsonl(tmp_path / "t.ndjson", ROWS),
    ]
    (tmp_path / "t.json").write_text(json.dumps(ROWS))
    (tmp_path / "w.json").write_text(json.dumps({"version": 1, "data": ROWS}))
    pd.DataFrame(ROWS).to_parquet(tmp_path / "t.parquet")
    files += [tmp_path / "t.json", tmp_path / "w.json", tmp_path / "t.parquet"]
    expected = [{**r, "body": r["body"].strip()} for r in ROWS]
    for f in files:
        rows, errors = load_records(f, ["subject", "body"], ["queue"], ["tags"])
        assert errors == [], f
        assert [{k: r[k] for k in ROWS[0]} for r in rows] == expected, f


def test_csv_bom_multiline_cells_and_field_count(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(
        "\ufeffsubject,body,queue\n"
        'one,"first line\nsecond line\nthird",IT\n'
        "\n"
        "two,plain,Billing,EXTRA\n"
        'three,"a\n\nb",IT\n'
        "four,ok,IT\n".encode("utf-8")
    )
    items = list(iter_records(path))
    assert [(type(i).__name__, i.line) for i in items] == [
        ("Record", 2),
        ("RowError", 6),
        ("Record", 7),
        ("Record", 10),
    ]
    assert items[0].data == {"subject": "one", "body": "first line\nsecond line\nthird", "queue": "IT"}
    assert items[1].reason == "expected 3 fields, got 4" and items[1].raw == "two,plain,Billing,EXTRA"


def test_jsonl_errors_and_normalisation(tmp_path):
    path = _write_jsonl(
        tmp_path / "j.jsonl",
        [
            {"subject": "  padded  ", "body": "", "n": float("nan"), "x": None},
            "",
            '{"subject": "x" "body": 1}',
            "[1, 2]",
        ],
    )
    items = list(iter_records(path))
    assert isinstance(items[0], Record) and items[0].data == {"subject": "padded", "body": None, "n": None, "x": None}
    assert items[1].line == 3 and items[1].reason.startswith("invalid JSON: Expecting ',' delimiter at col")
    assert items[2].line == 4 and items[2].reason == "expected a JSON object, got array"
    assert items[2].to_dict() == {"file": str(path), "line": 4, "reason": items[2].reason, "raw": "[1, 2]"}


def test_validate_record_rules():
    def check(data, **kw):
        kw = {"text_fields": ["subject", "body"], "label_fields": ["queue"], **kw}
        return validate_record(Record("dir/in.csv", 7, data), **kw)

    row = check({"subject": "s", "body": None, "queue": 3.0, "extra": "kept"})
    assert row == {"subject": "s", "body": None, "queue": "3", "extra": "kept", "id": "in-7"}
    assert check({"id": 42, "subject": "s", "queue": "q"})["id"] == "42"
    assert check({"text": "fallback text", "queue": "q"})["text"] == "fallback text"
    assert check({"subject": None, "body": None, "queue": "q"}).reason == "missing text: subject and body are empty"
    assert check({"subject": "s", "queue": None}).reason == "missing label 'queue'"
    assert "got list" in check({"subject": "s", "queue": ["a", "b"]}).reason
    assert check({"subject": "x" * 30, "queue": "q"}, max_chars=20).reason.startswith("text too long")
    bad = check({"subject": "s", "queue": "q", "created_at": "yesterday-ish"}, time_field="created_at")
    assert isinstance(bad, RowError) and "bad timestamp" in bad.reason and bad.line == 7
    for ok in ("2024-01-15T10:30:00Z", "2024-01-15 10:30", "15.01.2024", "Jan 15, 2024"):
        assert isinstance(check({"subject": "s", "queue": "q", "created_at": ok}, time_field="created_at"), dict), ok


@pytest.mark.parametrize(
    "data, tags",
    [
        ({"tags": ["a", " b ", "a", None]}, ["a", "b"]),
        ({"tags": '["a", "b"]'}, ["a", "b"]),
        ({"tags": "a | b|c"}, ["a", "b", "c"]),
        ({"tags": "a;b"}, ["a", "b"]),
        ({"tags": "a, b"}, ["a", "b"]),
        ({"tag_1": "x", "tag_2": None, "tag_10": "z", "tag_3": "y"}, ["x", "y", "z"]),
        ({"tags_1": "x"}, ["x"]),
        ({}, []),
    ],
)
def test_multilabel_forms(data, tags):
    row = validate_record(Record("f.csv", 2, {"subject": "s", **data}), ["subject"], multilabel_fields=["tags"])
    assert row["tags"] == tags


def _bad_rows_file(tmp_path):
    good = {"subject": "Login fails", "body": "Cannot log in", "queue": "IT", "created_at": "2024-02-01T10:00:00"}
    return _write_jsonl(
        tmp_path / "bad.jsonl",
        [
            good,  # 1 ok
            '{"subject": "broken" "body": "x"}',  # 2 bad JSON
            '"just a string"',  # 3 not an object
            {"subject": "", "body": None, "queue": "IT"},  # 4 missing text
            {"subject": "s", "body": "b"},  # 5 missing label
            {"subject": "s", "body": "b", "queue": ["IT", "Billing"]},  # 6 list label
            {**good, "subject": "other", "created_at": "31/31/2024"},  # 7 bad timestamp
            {"subject": "long", "body": "x" * 20001, "queue": "IT"},  # 8 too long
            "",  # 9 blank: skipped, not counted
            good,  # 10 duplicate of line 1
            {**good, "queue": "Billing"},  # 11 same text, other label: conflict
        ],
    )


def test_prepare_accounts_for_every_bad_row(tmp_path):
    out = tmp_path / "out"
    s = prepare(_bad_rows_file(tmp_path), out, label_fields=["queue"], split="none")
    rejected = _rejected(out)
    assert {n: e["reason"].split(":")[0].split(" '")[0] for n, e in rejected.items()} == {
        2: "invalid JSON",
        3: "expected a JSON object, got string",
        4: "missing text",
        5: "missing label",
        6: "label",
        7: "bad timestamp",
        8: "text too long",
    }
    assert all(e["file"] == str(tmp_path / "bad.jsonl") and e["raw"] for e in rejected.values())
    assert (s.total, s.valid, s.rejected, s.duplicates) == (10, 2, 7, 1)
    assert s.valid + s.rejected + s.duplicates == s.total
    assert s.conflicting_duplicates == 2 and s.rejected_path == str(out / "rejected.jsonl")
    dup = read_jsonl(out / "duplicates.jsonl")
    assert [(d["line"], d["duplicate_of_line"], d["duplicate_of_id"]) for d in dup] == [(10, 1, "bad-1")]
    card = json.loads((out / "data_card.json").read_text())
    assert card["conflicting_duplicates"] == 2 and card["rejected"] == 7


def test_prepare_csv_field_count_and_all_rejected(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('subject,body,queue\nok,"multi\nline",IT\nbad,row,IT,x,y\n,,IT\n', encoding="utf-8")
    s = prepare(path, tmp_path / "o", label_fields=["queue"], split="none")
    assert _rejected(tmp_path / "o").keys() == {4, 5} and s.valid == 1
    assert _rejected(tmp_path / "o")[4]["reason"] == "expected 3 fields, got 5"
    path.write_text("subject,body,queue\n,,IT\nx,y\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"all 2 rows rejected; see .*rejected.jsonl"):
        prepare(path, tmp_path / "o2", label_fields=["queue"])
    assert len(read_jsonl(tmp_path / "o2" / "rejected.jsonl")) == 2


def _labelled(n_per_class, **extra):
    rows = []
    for label, n in n_per_class.items():
        rows += [{"id": f"{label}{i}", "subject": f"{label} {i}", "queue": label, **extra} for i in range(n)]
    return rows


def test_stratified_split_proportions_determinism_and_rare_classes():
    rows = _labelled({"a": 500, "b": 300, "c": 200, "rare": 2, "one": 1})
    warnings = []
    s1 = split_rows(rows, "queue", 0.1, 0.2, seed=1, warnings=warnings)
    assert {k: len(v) for k, v in s1.items()} == {"train": 703, "val": 100, "test": 200}
    for split, frac in (("val", 0.1), ("test", 0.2)):
        counts = pd.Series([r["queue"] for r in s1[split]]).value_counts()
        assert counts.to_dict() == {"a": 500 * frac, "b": 300 * frac, "c": 200 * frac}
    train_ids = {r["id"] for r in s1["train"]}
    assert {"rare0", "rare1", "one0"} <= train_ids
    assert "fewer than 3" in warnings[0] and "one" in warnings[0] and "rare" in warnings[0]
    assert split_rows(rows, "queue", 0.1, 0.2, seed=1) == s1
    assert split_rows(rows, "queue", 0.1, 0.2, seed=2)["test"] != s1["test"]


def test_temporal_and_none_splits():
    rows = [{"id": str(i), "subject": "s", "created_at": f"2024-01-{31 - i:02d}T00:00:00Z"} for i in range(30)]
    s = split_rows(rows, None, 0.1, 0.2, method="temporal", time_field="created_at")
    assert [len(s[k]) for k in ("train", "val", "test")] == [21, 3, 6]
    times = [r["created_at"] for k in ("train", "val", "test") for r in s[k]]
    assert times == sorted(times)
    assert split_rows(rows, "queue", method="none") == {"train": rows, "val": [], "test": []}
    with pytest.raises(ValueError, match="time_field"):
        split_rows(rows, None, method="temporal")


def test_prepare_writes_splits_card_and_args(tmp_path):
    rows = _labelled({"a": 40, "b": 30, "c": 2})
    for i, r in enumerate(rows):
        r.update(body=f"email me at user{i}@example.com", created_at=f"2024-03-{i % 28 + 1:02d}", tags=["t"])
    path = _write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out"
    s = prepare(path, out, label_fields=["queue"], multilabel_fields=["tags"], redact_pii=True, seed=3)
    splits = load_prepared(out)
    assert {k: len(v) for k, v in splits.items()} == s.splits and sum(s.splits.values()) == 72
    assert all(r["body"] == "email me at [EMAIL]" for r in splits["train"]) and s.pii == {"EMAIL": 72}
    assert s.rejected_path is None and any("fewer than 3" in w for w in s.warnings)
    args = json.loads((out / "prepare.json").read_text())
    assert args["label_fields"] == ["queue"] and args["multilabel_fields"] == ["tags"] and args["seed"] == 3
    card = json.loads((out / "data_card.json").read_text())
    assert card["labels"]["queue"]["train"]["c"] == 2
    # temporal split: oldest rows in train; re-running with split="none" removes the stale val/test files
    prepare(path, out, label_fields=["queue"], split="temporal")
    t = load_prepared(out)
    assert max(r["created_at"] for r in t["train"]) <= min(r["created_at"] for r in t["test"])
    prepare(path, out, label_fields=["queue"], split="none")
    assert list(load_prepared(out)) == ["train"]


cell = st.text(alphabet=st.sampled_from(list('ab ,;"\n\r\t|äß')), max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(cell, cell), min_size=1, max_size=8))
def test_csv_round_trip_keeps_values_and_start_lines(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("csv") / "p.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["subject", "body"])
        w.writerows(rows)
    items = list(iter_records(path))
    assert all(isinstance(i, Record) for i in items) and len(items) == len(rows)
    line = 2
    for item, (subject, body) in zip(items, rows):
        assert item.line == line
        assert item.data == {"subject": subject.strip() or None, "body": body.strip() or None}
        line += 1 + subject.count("\n") + body.count("\n")  # records end with \r\n; only \n counts as a line


def test_empty_field_rows_are_rejected_not_skipped(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("subject,body,queue\n,,\n\nok,b,IT\n", encoding="utf-8")
    s = prepare(path, tmp_path / "out", label_fields=["queue"], split="none")
    assert (s.total, s.valid, s.rejected) == (2, 1, 1)
    assert _rejected(tmp_path / "out")[2]["reason"] == "missing text: subject and body are empty"
    with pytest.raises(FileNotFoundError):
        prepare(tmp_path / "nope.csv", tmp_path / "never")
    assert not (tmp_path / "never").exists()
