"""Read ticket files (CSV, TSV, JSONL, JSON, Parquet) row by row, reporting bad rows instead of dropping them."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterable, Iterator

__all__ = [
    "Record",
    "RowError",
    "iter_records",
    "normalize_value",
    "SUPPORTED_SUFFIXES",
    "write_jsonl",
    "read_jsonl",
    "load_prepared",
    "SPLITS",
]

SPLITS = ("train", "val", "test")

SUPPORTED_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".json", ".parquet")


@dataclass
class RowError:
    """A row that could not be read or did not pass validation."""

    file: str
    """The input path as given."""
    line: int
    """1-based physical line where the record starts (CSV/JSONL), or 1-based record index (JSON array, Parquet)."""
    reason: str
    """Human-readable, specific reason, e.g. ``expected 7 fields, got 9``."""
    raw: Any
    """The raw line (str) or row (dict), so nothing is lost."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Record:
    """One parsed row with normalised values."""

    file: str
    """The input path as given."""
    line: int
    """Same convention as :attr:`RowError.line`."""
    data: dict[str, Any]
    """Column -> value; strings stripped, empty strings and NaN turned into None."""


def normalize_value(value: Any) -> Any:
    """Strip strings, map empty strings/NaN/None to None, recurse into lists and dicts, datetimes to ISO strings."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [normalize_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k).strip(): normalize_value(v) for k, v in value.items()}
    return value


def iter_records(path: str | Path) -> Iterator[Record | RowError]:
    """Yield a :class:`Record` or a :class:`RowError` for every row of ``path``; the format comes from the suffix.

    CSV and JSONL are streamed line by line (constant memory). Empty lines are skipped silently.

    Args:
        path: a ``.csv``, ``.tsv``, ``.jsonl``/``.ndjson``, ``.json`` (array of objects, or an object holding one
            such array) or ``.parquet`` file.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: for an unsupported suffix, or a ``.json`` file that is not valid JSON / holds no row list.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ValueError(
            f"unsupported file format {suffix or '(no suffix)'!r} for {path}; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if not p.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if suffix in (".csv", ".tsv"):
        return _iter_csv(p, str(path), "\t" if suffix == ".tsv" else ",")
    if suffix in (".jsonl", ".ndjson"):
        return _iter_jsonl(p, str(path))
    if suffix == ".json":
        return _iter_rows(_json_rows(p, str(path)), str(path))
    return _iter_parquet(p, str(path))


def _decoded_lines(p: Path) -> Iterator[tuple[str, bool]]:
    """(line, ok) pairs; invalid UTF-8 is replaced but flagged so the row can be rejected rather than altered."""
    with open(p, "rb") as f:
        for i, raw in enumerate(f):
            if i == 0 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield raw.decode("utf-8"), True
            except UnicodeDecodeError:
                yield raw.decode("utf-8", errors="replace"), False


class _LineTap:
    """Feeds lines to csv.reader while remembering the raw text and line span of the record being parsed."""

    def __init__(self, lines: Iterable[tuple[str, bool]]):
        self._lines = iter(lines)
        self.buffer: list[str] = []
        self.ok = True

    def __iter__(self) -> "_LineTap":
        return self

    def __next__(self) -> str:
        line, ok = next(self._lines)
        self.buffer.append(line)
        self.ok = self.ok and ok
        return line

    def take(self) -> tuple[str, bool]:
        raw, ok = "".join(self.buffer).rstrip("\r\n"), self.ok
        self.buffer, self.ok = [], True
        return raw, ok


def _header(cells: list[str]) -> list[str]:
    names: list[str] = []
    for i, cell in enumerate(cells, 1):
        name = cell.strip() or f"column_{i}"
        base, n = name, 2
        while name in names:  # duplicated headers would silently overwrite each other in a dict
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    return names


def _iter_csv(p: Path, file: str, delimiter: str) -> Iterator[Record | RowError]:
    tap = _LineTap(_decoded_lines(p))
    reader = csv.reader(tap, delimiter=delimiter)
    header: list[str] | None = None
    end = 0  # last physical line consumed; the next record starts on end + 1
    while True:
        start = end + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            end = reader.line_num
            raw, _ = tap.take()
            yield RowError(file, start, f"malformed CSV: {e}", raw)
            continue
        end = reader.line_num
        raw, ok = tap.take()
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue  # a blank line; a row of empty fields (",,") is kept and rejected later for missing text
        if header is None:
            header = _header(cells)
        elif not ok:
            yield RowError(file, start, "invalid UTF-8 bytes in row", raw)
        elif len(cells) != len(header):
            yield RowError(file, start, f"expected {len(header)} fields, got {len(cells)}", raw)
        else:
            yield Record(file, start, {k: normalize_value(v) for k, v in zip(header, cells)})


def _iter_jsonl(p: Path, file: str) -> Iterator[Record | RowError]:
    for lineno, (line, ok) in enumerate(_decoded_lines(p), 1):
        text = line.strip()
        if not text:
            continue
        if not ok:
            yield RowError(file, lineno, "invalid UTF-8 bytes in line", text)
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            yield RowError(file, lineno, f"invalid JSON: {e.msg} at col {e.colno}", text)
            continue
        if not isinstance(obj, dict):
            yield RowError(file, lineno, f"expected a JSON object, got {_json_type(obj)}", text)
            continue
        yield Record(file, lineno, normalize_value(obj))


def _json_type(obj: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(obj), "number")


def _json_rows(p: Path, file: str) -> list[Any]:
    try:
        obj = json.loads(p.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{file}: not valid JSON: {e}") from e
    if isinstance(obj, list):
        return obj
    lists = [v for v in obj.values() if isinstance(v, list)] if isinstance(obj, dict) else []
    if len(lists) != 1:
        raise ValueError(
            f"{file}: expected a JSON array of objects or an object with one list value "
            f'(like {{"data": [...]}}), got {_json_type(obj)}'
            + (f" with {len(lists)} list values" if isinstance(obj, dict) else "")
        )
    return lists[0]


def _iter_rows(rows: Iterable[Any], file: str, start: int = 1) -> Iterator[Record | RowError]:
    for index, obj in enumerate(rows, start):
        if isinstance(obj, dict):
            yield Record(file, index, normalize_value(obj))
        else:
            yield RowError(file, index, f"expected a JSON object, got {_json_type(obj)}", obj)


def _iter_parquet(p: Path, file: str) -> Iterator[Record | RowError]:
    import pyarrow.parquet as pq  # imported here: only Parquet users pay for pyarrow

    index = 1
    for batch in pq.ParquetFile(p).iter_batches(batch_size=4096):
        rows = batch.to_pylist()
        yield from _iter_rows(rows, file, index)
        index += len(rows)


def write_jsonl(path: str | Path, rows: Iterable[Any]) -> None:
    """Write one JSON object per line (UTF-8, non-ASCII kept, unknown types via ``str``)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSONL file written by :func:`write_jsonl` (a prepared split)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_prepared(dir: str | Path) -> dict[str, list[dict[str, Any]]]:
    """The prepared splits in ``dir``: ``{"train": [...], "val": [...], "test": [...]}``, only those that exist.

    Raises:
        FileNotFoundError: if ``dir`` holds none of ``train/val/test.jsonl``.
    """
    d = Path(dir)
    splits = {name: read_jsonl(d / f"{name}.jsonl") for name in SPLITS if (d / f"{name}.jsonl").is_file()}
    if not splits:
        raise FileNotFoundError(f"no train/val/test.jsonl in {dir} (run prepare first)")
    return splits
