"""Check parsed records against the fields a router needs: text, labels, tags, timestamp."""

from __future__ import annotations

import json
import re
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from triagekit.data.io import Record, RowError, iter_records

__all__ = ["validate_record", "load_records", "parse_time", "gather_multilabel", "scalar_str"]

_SEPARATORS = ("|", ";", ",")


def scalar_str(value: Any) -> str:
    """A label value as a string; integral floats lose their ``.0`` so 3, 3.0 and "3" agree."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def parse_time(value: Any) -> datetime:
    """Parse a timestamp (ISO 8601 or a common format) into a naive UTC datetime, for ordering.

    Raises:
        ValueError: if ``value`` is not a recognisable date/time.
    """
    if isinstance(value, datetime):
        dt = value
    else:
        text = str(value).strip()
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except ValueError:
            dt = _pandas_time(text)
    if dt.tzinfo is not None:  # aware and naive datetimes cannot be compared: normalise to naive UTC
        dt = (dt - dt.utcoffset()).replace(tzinfo=None)
    return dt


def _pandas_time(text: str) -> datetime:
    import pandas as pd  # the slow, lenient parser only for what fromisoformat rejects

    if not re.search(r"\d", text) or re.fullmatch(r"\d+(?:\.\d+)?", text):
        raise ValueError(f"not a date/time: {text!r}")  # bare numbers would be read as epoch nanoseconds
    try:
        with warnings.catch_warnings():  # pandas warns about day-first guesses ("15.01.2024"); the guess is fine
            warnings.simplefilter("ignore")
            ts = pd.to_datetime(text)
    except (ValueError, OverflowError, TypeError) as e:
        raise ValueError(f"not a date/time: {text!r}") from e
    if ts is pd.NaT or pd.isna(ts):
        raise ValueError(f"not a date/time: {text!r}")
    return ts.to_pydatetime()


def _singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    return name[:-1] if name.endswith("s") else name


def _split_tags(text: str) -> list[Any]:
    if text.startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, list):
            return value
    sep = next((s for s in _SEPARATORS if s in text), None)
    return text.split(sep) if sep else [text]


def gather_multilabel(data: dict[str, Any], field: str) -> list[str]:
    """Tags for ``field`` from a list column (list, JSON-list string, or ``|``/``;``/``,``-separated string)
    and/or numbered columns ``field_1..n`` / ``<singular>_1..n``; deduplicated, order kept.

    Raises:
        ValueError: if the column holds something other than a list or a string.
    """
    values: list[Any] = []
    column = data.get(field)
    if isinstance(column, str):
        values.extend(_split_tags(column))
    elif isinstance(column, (list, tuple)):
        values.extend(column)
    elif column is not None:
        raise ValueError(f"multi-label field '{field}' must be a list or a string, got {type(column).__name__}")
    pattern = re.compile(rf"(?:{re.escape(field)}|{re.escape(_singular(field))})_(\d+)")
    numbered = sorted((int(m.group(1)), k) for k in data if (m := pattern.fullmatch(k)))
    values.extend(data[k] for _, k in numbered)
    tags: list[str] = []
    for v in values:
        if isinstance(v, (dict, list)):
            raise ValueError(f"multi-label field '{field}' holds a nested {type(v).__name__}")
        tag = scalar_str(v) if v is not None else ""
        if tag and tag not in tags:
            tags.append(tag)
    return tags


def _text_error(data: dict[str, Any], text_fields: Sequence[str], max_chars: int) -> str | None:
    fields = list(text_fields)
    if not any(f in data for f in fields) and "text" in data:
        fields = ["text"]
    for f in fields:
        if isinstance(data.get(f), (list, dict)):
            return f"text field '{f}' must be a string, got {type(data[f]).__name__}"
    parts = [str(data[f]).strip() for f in fields if data.get(f) is not None and str(data[f]).strip()]
    if not parts:
        names = " and ".join(fields) if fields else "text"
        verb = "is" if len(fields) == 1 else "are"
        if not any(f in data for f in fields):
            return f"missing text: no column {' or '.join(dict.fromkeys([*fields, 'text']))}"
        return f"missing text: {names} {verb} empty"
    length = sum(len(p) for p in parts) + len(parts) - 1
    if length > max_chars:
        return f"text too long: {length} chars > max_chars {max_chars}"
    return None


def _label_error(data: dict[str, Any], field: str) -> str | None:
    value = data.get(field)
    if value is None:
        return f"missing label '{field}'" if field in data else f"missing label '{field}' (no such column)"
    if isinstance(value, (list, tuple, dict)):
        return f"label '{field}' must be a single value, got {type(value).__name__} {json.dumps(value, default=str)}"
    if not scalar_str(value):
        return f"missing label '{field}'"
    return None


def validate_record(
    rec: Record,
    text_fields: Sequence[str],
    label_fields: Sequence[str] = (),
    multilabel_fields: Sequence[str] = (),
    time_field: str | None = None,
    max_chars: int = 20000,
) -> dict[str, Any] | RowError:
    """The clean row for ``rec``, or a :class:`RowError` saying what is wrong with it.

    Args:
        rec: a record from :func:`iter_records`.
        text_fields: columns joined into the model input; at least one must be non-empty. If none of them is a
            column but ``text`` is, ``text`` is used.
        label_fields: single-label columns; each must be present, non-empty and scalar (returned as str).
        multilabel_fields: tag-like columns, returned as ``list[str]`` (possibly empty).
        time_field: if set, this column must parse as a date/time.
        max_chars: longest accepted text (all text fields joined).

    Returns:
        The original data plus ``id`` (kept if present, else ``<file stem>-<line>``), labels as strings and
        multi-label fields as lists.
    """
    data = rec.data
    reason = _text_error(data, text_fields, max_chars)
    reason = reason or next((r for f in label_fields if (r := _label_error(data, f))), None)
    if reason:
        return RowError(rec.file, rec.line, reason, data)
    row = dict(data)
    for f in label_fields:
        row[f] = scalar_str(data[f])
    for f in multilabel_fields:
        try:
            row[f] = gather_multilabel(data, f)
        except ValueError as e:
            return RowError(rec.file, rec.line, str(e), data)
    if time_field:
        if data.get(time_field) is None:
            return RowError(rec.file, rec.line, f"missing timestamp '{time_field}'", data)
        try:
            parse_time(data[time_field])
        except ValueError:
            return RowError(rec.file, rec.line, f"bad timestamp '{time_field}': {data[time_field]!r}", data)
    ident = data.get("id")
    row["id"] = scalar_str(ident) if ident is not None and scalar_str(ident) else f"{Path(rec.file).stem}-{rec.line}"
    return row


def load_records(
    path: str | Path,
    text_fields: Sequence[str],
    label_fields: Sequence[str] = (),
    multilabel_fields: Sequence[str] = (),
    time_field: str | None = None,
) -> tuple[list[dict[str, Any]], list[RowError]]:
    """Read and validate every row of ``path``.

    Args:
        path: any file :func:`iter_records` reads.
        text_fields: see :func:`validate_record`.
        label_fields: see :func:`validate_record`.
        multilabel_fields: see :func:`validate_record`.
        time_field: see :func:`validate_record`.

    Returns:
        (valid rows, errors) in file order.
    """
    rows: list[dict[str, Any]] = []
    errors: list[RowError] = []
    for item in iter_records(path):
        if isinstance(item, Record):
            item = validate_record(item, text_fields, label_fields, multilabel_fields, time_field)
        (errors if isinstance(item, RowError) else rows).append(item)
    return rows, errors
