"""Synthetic tickets and data cards."""

import io
import json
import time
from collections import Counter
from datetime import datetime

from rich.console import Console

from triagekit.data import data_card, load_records, prepare, render_card, stats, synth_tickets, write_synth

FIELDS = ["id", "subject", "body", "queue", "priority", "type", "language", "created_at", "tags"]


def test_synth_reproducible_and_fast(tmp_path):
    start = time.perf_counter()
    tickets = synth_tickets(2000, seed=7)
    assert time.perf_counter() - start < 1.0
    for suffix in ("jsonl", "csv"):
        a, b, c = (write_synth(300, tmp_path / f"{n}.{suffix}", seed=s) for n, s in (("a", 1), ("b", 1), ("c", 2)))
        assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    assert synth_tickets(2000, seed=7) == tickets


def test_synth_field_sanity():
    tickets = synth_tickets(2000, seed=0)
    assert all(list(t) == FIELDS for t in tickets)
    assert len({t["id"] for t in tickets}) == 2000
    assert all(20 <= len(t["body"].split()) <= 120 for t in tickets)
    assert all(1 <= len(t["tags"]) <= 3 and len(set(t["tags"])) == len(t["tags"]) for t in tickets)
    queues, langs = Counter(t["queue"] for t in tickets), Counter(t["language"] for t in tickets)
    assert len(queues) == 8 and min(queues.values()) > 50
    assert 0.74 < langs["en"] / 2000 < 0.86 and 0.08 < langs["de"] / 2000 < 0.16 and 0.05 < langs["es"] / 2000 < 0.11
    assert set(Counter(t["priority"] for t in tickets)) == {"low", "medium", "high"}
    assert set(Counter(t["type"] for t in tickets)) == {"Incident", "Request", "Problem", "Change"}
    times = [datetime.fromisoformat(t["created_at"].replace("Z", "+00:00")) for t in tickets]
    assert (max(times) - min(times)).days > 300


def test_synth_csv_round_trips_through_validation(tmp_path):
    path = write_synth(200, tmp_path / "s.csv", seed=3)
    rows, errors = load_records(path, ["subject", "body"], ["queue", "priority"], ["tags"], "created_at")
    assert errors == [] and [r["tags"] for r in rows] == [t["tags"] for t in synth_tickets(200, seed=3)]


def test_data_card_content():
    splits = {
        "train": [
            {"subject": "a b", "body": "c", "queue": "x", "language": "en", "tags": ["t1", "t2"]},
            {"subject": "d", "queue": "y", "language": "de", "tags": []},
        ],
        "test": [{"text": "one two three", "queue": "x", "language": "en", "tags": ["t1"]}],
    }
    card = data_card(splits, ["subject", "body"], ["queue"], ["tags"], conflicting_duplicates=4)
    assert card["rows"] == 3 and card["splits"] == {"train": 2, "test": 1}
    assert card["labels"]["queue"] == {"train": {"x": 1, "y": 1}, "test": {"x": 1}}
    assert card["multilabels"]["tags"]["train"] == {"tags": {"t1": 1, "t2": 1}, "rows_without_tags": 1}
    assert card["languages"] == {"en": 2, "de": 1}
    assert card["text_length"]["test"]["words"] == {"p5": 3, "p50": 3, "p95": 3, "max": 3}
    assert card["text_length"]["train"]["chars"]["max"] == len("a b\nc")
    assert card["conflicting_duplicates"] == 4
    json.dumps(card)
    assert "language" not in json.dumps(data_card({"all": [{"text": "x"}]}, ["text"]))


def test_stats_on_raw_file_and_prepared_dir(tmp_path):
    path = write_synth(120, tmp_path / "s.jsonl", seed=5)
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"subject": "", "body": "", "queue": "IT"}\nnot json\n')
    card = stats(path)
    assert card["inferred"]["text_fields"] == ["subject", "body"]
    assert set(card["inferred"]["label_fields"]) == {"queue", "priority", "type"}
    assert card["inferred"]["multilabel_fields"] == ["tags"]
    assert card["rows"] == 120 and card["rejected"] == 2
    assert [e["line"] for e in card["rejected_examples"]] == [121, 122]
    assert card["rejected_examples"][1]["reason"].startswith("invalid JSON")
    prepare(path, tmp_path / "out", label_fields=["queue"], multilabel_fields=["tags"])
    dir_card = stats(tmp_path / "out")
    assert dir_card["rows"] == 120 and dir_card["rejected"] == 2 and set(dir_card["splits"]) == {"train", "val", "test"}
    console = Console(file=io.StringIO(), width=120)
    console.print(render_card(card))
    console.print(render_card(dir_card))
    text = console.file.getvalue()
    assert "Label 'queue'" in text and "Technical Support" in text and "invalid JSON" in text
