"""Turn a raw ticket file into train/val/test JSONL plus a data card, accounting for every input row."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from triagekit.data.card import data_card
from triagekit.data.io import SPLITS, Record, RowError, iter_records, load_prepared, read_jsonl, write_jsonl
from triagekit.data.pii import redact, redact_row
from triagekit.data.text import build_text
from triagekit.data.validate import parse_time, validate_record

__all__ = ["PrepareSummary", "prepare", "split_rows", "read_jsonl", "write_jsonl", "load_prepared", "SPLITS"]


SPLIT_METHODS = ("stratified", "random", "temporal", "none")


@dataclass
class PrepareSummary:
    """What :func:`prepare` did; every input row is in exactly one of valid, rejected, duplicates."""

    input: str
    """The input file."""
    out_dir: str
    """Where the splits, card and reports were written."""
    total: int
    """Rows read (valid + rejected + duplicates)."""
    valid: int
    """Rows kept in the splits."""
    rejected: int
    """Rows that failed parsing or validation (see ``rejected.jsonl``)."""
    duplicates: int
    """Exact duplicates removed (see ``duplicates.jsonl``)."""
    splits: dict[str, int]
    """Rows per split."""
    pii: dict[str, int]
    """PII replacements by type (empty unless ``redact_pii``)."""
    rejected_path: str | None
    """``rejected.jsonl``, or None when no row was rejected."""
    conflicting_duplicates: int = 0
    """Kept rows whose text also occurs with different labels."""
    warnings: list[str] = field(default_factory=list)
    """Things worth a look, e.g. classes too rare to stratify."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _split_off(idx: list[int], labels: list[str] | None, fraction: float, seed: int, warnings: list[str]):
    """(kept, split off) index lists; stratified when labels are given, falling back to random if impossible."""
    from sklearn.model_selection import train_test_split

    if fraction <= 0 or len(idx) < 2:
        return idx, []
    try:
        return train_test_split(idx, test_size=fraction, random_state=seed, stratify=labels)
    except ValueError as e:
        if labels is None:
            warnings.append(f"too few rows to split off {fraction:.0%}: {e}")
            return idx, []
        warnings.append(f"stratified split impossible ({e}); split at random instead")
        return _split_off(idx, None, fraction, seed, warnings)


def split_rows(
    rows: Sequence[dict[str, Any]],
    label_field: str | None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    method: str = "stratified",
    time_field: str | None = None,
    warnings: list[str] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Split rows into train/val/test, deterministically for a seed.

    Args:
        rows: validated rows.
        label_field: the field to stratify on (``stratified``); None means a random split.
        val_fraction: share of rows for validation.
        test_fraction: share of rows for test.
        seed: random seed.
        method: ``stratified`` (classes with < 3 rows go to train), ``random``, ``temporal`` (oldest rows train,
            newest test, by ``time_field``) or ``none`` (all rows train).
        time_field: the timestamp column for ``temporal``.
        warnings: if given, messages about rare classes and fallbacks are appended here.

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``; rows keep file order (time order for ``temporal``).
    """
    warnings = [] if warnings is None else warnings
    _check_split_args(method, val_fraction, test_fraction, time_field)
    if method == "none":
        return {"train": list(rows), "val": [], "test": []}
    if method == "temporal":
        return _temporal(rows, time_field, val_fraction, test_fraction)
    idx, labels, train = list(range(len(rows))), None, []
    if method == "stratified" and label_field:
        all_labels = [str(r.get(label_field)) for r in rows]
        counts = Counter(all_labels)
        if rare := sorted(c for c, n in counts.items() if n < 3):
            warnings.append(
                f"{len(rare)} class(es) of '{label_field}' have fewer than 3 rows and go to train only: "
                + ", ".join(rare[:20])
                + (" ..." if len(rare) > 20 else "")
            )
        train = [i for i in idx if counts[all_labels[i]] < 3]
        idx = [i for i in idx if counts[all_labels[i]] >= 3]
        labels = [all_labels[i] for i in idx]
    rest, test = _split_off(idx, labels, test_fraction, seed, warnings)
    rest_labels = None if labels is None else [str(rows[i].get(label_field)) for i in rest]
    rest, val = _split_off(rest, rest_labels, val_fraction / (1 - test_fraction), seed, warnings)
    return {name: [rows[i] for i in sorted(part)] for name, part in zip(SPLITS, (train + rest, val, test))}


def _check_split_args(method: str, val_fraction: float, test_fraction: float, time_field: str | None) -> None:
    if method not in SPLIT_METHODS:
        raise ValueError(f"unknown split method {method!r}; choose one of {', '.join(SPLIT_METHODS)}")
    if min(val_fraction, test_fraction) < 0 or val_fraction + test_fraction >= 1:
        raise ValueError(f"val_fraction + test_fraction must be in [0, 1), got {val_fraction} + {test_fraction}")
    if method == "temporal" and not time_field:
        raise ValueError("split='temporal' needs a time_field")


def _temporal(rows: Sequence[dict[str, Any]], time_field: str, val_fraction: float, test_fraction: float):
    missing = [r.get("id") for r in rows if r.get(time_field) is None]
    if missing:
        raise ValueError(f"split='temporal': {len(missing)} rows have no '{time_field}' (first: {missing[0]})")
    ordered = sorted(rows, key=lambda r: parse_time(r[time_field]))  # stable: ties keep file order
    n_test, n_val = round(len(rows) * test_fraction), round(len(rows) * val_fraction)
    n_train = len(rows) - n_val - n_test
    return {"train": ordered[:n_train], "val": ordered[n_train : n_train + n_val], "test": ordered[n_train + n_val :]}


def _fields(value: str | Sequence[str] | None) -> tuple[str, ...]:
    # CLI users pass "subject,body"; Python users pass a tuple
    if not value:
        return ()
    return tuple(v.strip() for v in value.split(",")) if isinstance(value, str) else tuple(value)


def _dedup(rows: list[dict], lines: list[int], text_fields, label_fields, multilabel_fields, dedup: bool):
    """(kept rows, duplicate reports, conflicting count). Duplicates: same text and same labels."""
    kept, dups, first, label_sets = [], [], {}, {}
    for row, line in zip(rows, lines):
        text = build_text(row, text_fields)
        labels = tuple(row.get(f) for f in label_fields) + tuple(tuple(sorted(row[f])) for f in multilabel_fields)
        label_sets.setdefault(text, set()).add(labels)
        if dedup and (text, labels) in first:
            orig_line, orig_id = first[(text, labels)]
            dups.append(
                {"line": line, "id": row["id"], "duplicate_of_line": orig_line, "duplicate_of_id": orig_id, "row": row}
            )
            continue
        first[(text, labels)] = (line, row["id"])
        kept.append(row)
    conflicting = sum(1 for r in kept if len(label_sets[build_text(r, text_fields)]) > 1)
    return kept, dups, conflicting


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


def _replace_file(path: Path, rows: list) -> str | None:
    """Write ``rows`` to ``path``, or remove a stale file from an earlier run when there is nothing to write."""
    if rows:
        write_jsonl(path, rows)
        return str(path)
    path.unlink(missing_ok=True)
    return None


def _read(records, text_fields, label_fields, multilabel_fields, time_field, temporal: bool):
    """(valid rows, their line numbers, RowErrors) for every record."""
    rows, lines, rejected = [], [], []
    for rec in records:
        if isinstance(rec, Record):
            # The timestamp is required only for a temporal split; a present but unparsable one is always an error.
            check_time = time_field if temporal or rec.data.get(time_field or "") is not None else None
            result = validate_record(rec, text_fields, label_fields, multilabel_fields, check_time)
            if isinstance(result, dict):
                rows.append(result)
                lines.append(rec.line)
                continue
            rec = result
        rejected.append(rec)
    return rows, lines, rejected


def _redact_error(e: RowError) -> dict[str, Any]:
    if isinstance(e.raw, str):
        raw = redact(e.raw)[0]
    elif isinstance(e.raw, dict):
        raw = redact_row(e.raw, [k for k, v in e.raw.items() if isinstance(v, str)])[0]
    else:
        raw = e.raw
    return {**e.to_dict(), "raw": raw}


def prepare(
    input: str | Path,
    out_dir: str | Path,
    *,
    text_fields: Sequence[str] = ("subject", "body"),
    label_fields: Sequence[str] = (),
    multilabel_fields: Sequence[str] = (),
    split: str = "stratified",
    time_field: str | None = "created_at",
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    redact_pii: bool = False,
    dedup: bool = True,
    seed: int = 0,
) -> PrepareSummary:
    """Validate, (optionally) redact, deduplicate and split a ticket file; write everything to ``out_dir``.

    Writes ``train/val/test.jsonl`` (empty val/test are not written), ``rejected.jsonl`` (file, line, reason, raw),
    ``duplicates.jsonl`` (with the line of the kept original), ``data_card.json`` and ``prepare.json`` (these
    arguments plus the summary, so a trainer knows the fields).

    Args:
        input: a file :func:`triagekit.data.io.iter_records` reads.
        out_dir: output directory (created; stale split/report files from an earlier run are replaced).
        text_fields: columns joined into the model input (a comma-separated string is accepted too).
        label_fields: single-label columns; the first one is used to stratify.
        multilabel_fields: tag columns (list, separated string, or ``tag_1..n`` columns).
        split: ``stratified``, ``random``, ``temporal`` or ``none``.
        time_field: timestamp column; required for ``temporal``, otherwise checked only where present.
        val_fraction: share of rows for validation.
        test_fraction: share of rows for test.
        redact_pii: replace emails, phones, etc. in the text fields (before dedup) and in rejected raw rows.
        dedup: drop exact duplicates (same text and labels).
        seed: random seed for the split.

    Raises:
        ValueError: for bad arguments, or when no row is valid.
    """
    text_fields, label_fields, multilabel_fields = map(_fields, (text_fields, label_fields, multilabel_fields))
    _check_split_args(split, val_fraction, test_fraction, time_field)
    records = iter_records(input)  # raises for a missing file or unknown format before anything is written
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, lines, rejected = _read(
        records, text_fields, label_fields, multilabel_fields, time_field, split == "temporal"
    )
    pii: Counter = Counter()
    if redact_pii:
        for i, row in enumerate(rows):
            rows[i], counts = redact_row(row, [*text_fields, "text"])
            pii.update(counts)
    errors = [_redact_error(e) if redact_pii else e.to_dict() for e in rejected]
    rejected_path = _replace_file(out / "rejected.jsonl", errors)
    total = len(rows) + len(rejected)
    if not rows:
        raise ValueError(
            f"no rows in {input}" if not total else f"all {total} rows rejected; see {out / 'rejected.jsonl'}"
        )
    kept, dups, conflicting = _dedup(rows, lines, text_fields, label_fields, multilabel_fields, dedup)
    _replace_file(out / "duplicates.jsonl", dups)
    warnings: list[str] = []
    label = label_fields[0] if label_fields else None
    splits = split_rows(kept, label, val_fraction, test_fraction, seed, split, time_field, warnings)
    write_jsonl(out / "train.jsonl", splits["train"])
    for name in ("val", "test"):
        _replace_file(out / f"{name}.jsonl", splits[name])
    summary = PrepareSummary(
        str(input),
        str(out),
        total,
        len(kept),
        len(rejected),
        len(dups),
        {k: len(v) for k, v in splits.items()},
        dict(pii),
        rejected_path,
        conflicting,
        warnings,
    )
    card = data_card(
        {k: v for k, v in splits.items() if v},
        text_fields,
        label_fields,
        multilabel_fields,
        conflicting_duplicates=conflicting,
    )
    card.update(total=total, rejected=len(rejected), duplicates=len(dups), pii=dict(pii), warnings=warnings)
    _write_json(out / "data_card.json", card)
    args = {
        "input": str(input),
        "text_fields": list(text_fields),
        "label_fields": list(label_fields),
        "multilabel_fields": list(multilabel_fields),
        "split": split,
        "time_field": time_field,
        "val_fraction": val_fraction,
        "test_fraction": test_fraction,
        "redact_pii": redact_pii,
        "dedup": dedup,
        "seed": seed,
    }
    _write_json(out / "prepare.json", {**args, "summary": summary.to_dict()})
    return summary
