"""Data cards: what is in a data set (splits, classes, languages, text lengths), for any raw file or prepared dir."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

from triagekit.data.io import Record, iter_records, load_prepared
from triagekit.data.text import build_text
from triagekit.data.validate import validate_record

__all__ = ["data_card", "render_card", "stats", "infer_fields"]

TEXT_CANDIDATES = ("subject", "title", "body", "description", "text")
_NOT_LABELS = {"id", "language", "lang", "created_at", "updated_at", "timestamp", "date", "time", "answer"}


def _percentiles(values: Sequence[int]) -> dict[str, int]:
    import numpy as np

    if not values:
        return {"p5": 0, "p50": 0, "p95": 0, "max": 0}
    p5, p50, p95 = np.percentile(np.asarray(values), [5, 50, 95])
    return {"p5": int(round(p5)), "p50": int(round(p50)), "p95": int(round(p95)), "max": int(max(values))}


def _counts(values: Sequence[Any] | Counter) -> dict[str, int]:
    # most common first, ties by name, so cards diff cleanly between runs
    counter = values if isinstance(values, Counter) else Counter(values)
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0]))))


def data_card(
    splits: Mapping[str, Sequence[Mapping[str, Any]]],
    text_fields: Sequence[str],
    label_fields: Sequence[str] = (),
    multilabel_fields: Sequence[str] = (),
    language_field: str = "language",
    conflicting_duplicates: int | None = None,
) -> dict[str, Any]:
    """Summarise prepared splits.

    Args:
        splits: split name -> rows, e.g. ``{"train": [...], "val": [...], "test": [...]}``.
        text_fields: the fields joined into the model input (see :func:`triagekit.route.heads.build_text`).
        label_fields: single-label fields; class counts per split.
        multilabel_fields: tag fields; tag counts per split plus rows without any tag.
        language_field: column with a language code; counted over all rows if present.
        conflicting_duplicates: rows whose text also appears with other labels, if known.

    Returns:
        A JSON-serialisable dict: ``rows``, ``splits``, ``labels``, ``multilabels``, ``languages``, ``text_length``.
    """
    all_rows = [r for rows in splits.values() for r in rows]
    card: dict[str, Any] = {
        "rows": len(all_rows),
        "splits": {name: len(rows) for name, rows in splits.items()},
        "text_fields": list(text_fields),
        "labels": {f: {s: _counts([str(r.get(f)) for r in rows]) for s, rows in splits.items()} for f in label_fields},
        "multilabels": {f: _multilabel_counts(splits, f) for f in multilabel_fields},
    }
    if any(language_field in r for r in all_rows):
        card["languages"] = _counts([str(r.get(language_field)) for r in all_rows])
    card["text_length"] = {}
    for name, rows in splits.items():
        texts = [build_text(r, text_fields) for r in rows]
        card["text_length"][name] = {
            "chars": _percentiles([len(t) for t in texts]),
            "words": _percentiles([len(t.split()) for t in texts]),
        }
    if conflicting_duplicates is not None:
        card["conflicting_duplicates"] = conflicting_duplicates
    return card


def _multilabel_counts(splits: Mapping[str, Sequence[Mapping[str, Any]]], field: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, rows in splits.items():
        tags = [t for r in rows for t in (r.get(field) or [])]
        out[name] = {"tags": _counts(tags), "rows_without_tags": sum(1 for r in rows if not r.get(field))}
    return out


def render_card(card: Mapping[str, Any]):
    """A rich renderable (a group of tables) for a card from :func:`data_card` or :func:`stats`.

    Args:
        card: the card dict.
    """
    from rich.console import Group
    from rich.table import Table

    overview = Table(title="Data set", show_header=False)
    for key in ("file", "total", "rows", "rejected", "duplicates", "conflicting_duplicates"):
        if key in card:
            overview.add_row(key, str(card[key]))
    for name, n in card.get("splits", {}).items():
        overview.add_row(f"split {name}", str(n))
    parts: list[Any] = [overview]
    for field, per_split in card.get("labels", {}).items():
        parts.append(_class_table(f"Label '{field}'", per_split))
    for field, per_split in card.get("multilabels", {}).items():
        parts.append(_class_table(f"Tags '{field}'", {s: v["tags"] for s, v in per_split.items()}))
    if card.get("languages"):
        parts.append(_class_table("Languages", {"all": card["languages"]}))
    lengths = Table(title="Text length (chars / words)")
    for col in ("split", "p5", "p50", "p95", "max"):
        lengths.add_column(col, justify="left" if col == "split" else "right")
    for name, d in card.get("text_length", {}).items():
        lengths.add_row(name, *(f"{d['chars'][k]} / {d['words'][k]}" for k in ("p5", "p50", "p95", "max")))
    parts.append(lengths)
    for warning in card.get("warnings", []):
        overview.add_row("[yellow]warning", warning)
    if card.get("rejected_examples"):
        bad = Table(title="First rejected rows")
        for col in ("line", "reason"):
            bad.add_column(col)
        for e in card["rejected_examples"]:
            bad.add_row(str(e["line"]), e["reason"])
        parts.append(bad)
    return Group(*parts)


def _class_table(title: str, per_split: Mapping[str, Mapping[str, int]], limit: int = 30):
    from rich.table import Table

    table = Table(title=title)
    table.add_column("class")
    for name in per_split:
        table.add_column(name, justify="right")
    classes = list(_counts(sum((Counter(counts) for counts in per_split.values()), Counter())))
    for c in classes[:limit]:
        table.add_row(c, *(str(per_split[s].get(c, 0)) for s in per_split))
    if len(classes) > limit:
        table.add_row(f"... {len(classes) - limit} more", *("" for _ in per_split))
    return table


def infer_fields(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Guess text, label and multi-label fields of raw rows.

    Text: the usual names (subject/title/body/description/text). Multi-label: ``tags`` or ``tag_1..``.
    Labels: other string columns with 2..100 distinct short values that repeat.

    Args:
        rows: parsed rows (Record.data).
    """
    columns = list(dict.fromkeys(k for r in rows for k in r))
    text = [c for c in TEXT_CANDIDATES if c in columns]
    numbered = [c for c in columns if re.fullmatch(r"tags?_\d+", c)]
    multi = ["tags"] if "tags" in columns or numbered else []
    labels = []
    for c in columns:
        if c in text or c in numbered or c in multi or c.lower() in _NOT_LABELS or c.lower().endswith("_id"):
            continue
        values = [r[c] for r in rows if r.get(c) is not None]
        if not values or not all(isinstance(v, str) for v in values):
            continue
        distinct = set(values)
        if 2 <= len(distinct) <= 100 and len(distinct) < len(values) and max(map(len, distinct)) <= 60:
            labels.append(c)
    return {"text_fields": text, "label_fields": labels, "multilabel_fields": multi}


def stats(path: str | Path, examples: int = 5) -> dict[str, Any]:
    """The data card of a raw file (fields inferred) or of a prepared directory (fields from ``prepare.json``).

    Args:
        path: a file :func:`triagekit.data.io.iter_records` reads, or a directory written by ``prepare``.
        examples: how many rejected rows to include (line and reason).
    """

    p = Path(path)
    if p.is_dir():
        meta = json.loads((p / "prepare.json").read_text()) if (p / "prepare.json").exists() else {}
        splits = load_prepared(p)
        fields = {k: meta[k] for k in ("text_fields", "label_fields", "multilabel_fields") if k in meta}
        fields = fields or infer_fields(splits.get("train", []))
        card = data_card(splits, **fields)
        card.update(
            {
                "file": str(path),
                **{k: meta["summary"][k] for k in ("total", "rejected", "duplicates") if k in meta.get("summary", {})},
            }
        )
        return card
    items = list(iter_records(p))
    fields = infer_fields([i.data for i in items if isinstance(i, Record)])
    rows, errors = [], []
    for item in items:
        if isinstance(item, Record):
            item = validate_record(
                item, fields["text_fields"] or ["text"], fields["label_fields"], fields["multilabel_fields"]
            )
        (rows if isinstance(item, dict) else errors).append(item)
    card = {
        "file": str(path),
        "inferred": fields,
        **data_card({"all": rows}, fields["text_fields"], fields["label_fields"], fields["multilabel_fields"]),
        "rejected": len(errors),
    }
    card["rejected_examples"] = [{"line": e.line, "reason": e.reason} for e in errors[:examples]]
    return card
