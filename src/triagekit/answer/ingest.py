"""Read answer examples from tickets with an answer column, chat/dialog JSONL, Q&A pairs or the unified schema.

The shape is detected per row, so one file may mix them. Every row becomes an :class:`AnswerExample` or a
:class:`~triagekit.data.io.RowError` with file, line and reason: nothing is dropped silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from pydantic import ValidationError

from triagekit.answer.schema import AnswerExample, format_validation_error
from triagekit.data.io import Record, RowError, iter_records
from triagekit.data.validate import gather_multilabel

__all__ = ["load_examples", "record_to_example", "detect_kind"]

_QUESTION_KEYS = ("question", "prompt", "instruction", "query")
_ANSWER_KEYS = ("answer", "response", "output", "chosen")
_ROLES = {"system": "System", "user": "Customer", "assistant": "Agent"}
_META_KEYS = ("language", "queue", "type", "priority")
_TIME_KEYS = ("timestamp", "created_at", "date")


def detect_kind(data: dict[str, Any], answer_field: str = "answer") -> str:
    """``unified``, ``dialog``, ``qa`` or ``ticket`` for a parsed row."""
    if "inputs" in data or "outputs" in data:
        return "unified"
    if "messages" in data:
        return "dialog"
    if any(k in data for k in _QUESTION_KEYS) and any(k in data for k in _ANSWER_KEYS):
        return "qa"
    return "ticket"


def _first(data: dict[str, Any], keys: Sequence[str]) -> Any:
    return next((data[k] for k in keys if data.get(k) is not None), None)


def _meta(data: dict[str, Any], source: str) -> dict[str, Any]:
    meta = {
        "source": data.get("source") or source,
        "timestamp": _first(data, _TIME_KEYS),
        "tags": gather_multilabel(data, "tags"),
    }
    meta.update({k: data[k] for k in _META_KEYS if isinstance(data.get(k), str)})
    return meta


def _ticket(data: dict[str, Any], question_fields: Sequence[str], answer_field: str) -> dict[str, Any]:
    parts = [data.get(f) for f in question_fields]
    bad = [f for f, v in zip(question_fields, parts) if v is not None and not isinstance(v, str)]
    if bad:
        raise ValueError(f"question field {bad[0]!r} must be text")
    if not any(parts):
        raise ValueError(f"no question: all of {', '.join(question_fields)} are empty or missing")
    if data.get(answer_field) is None:
        raise ValueError(f"answer column {answer_field!r} is empty or missing")
    return {
        "inputs": {"question": "\n\n".join(p for p in parts if p), "context": data.get("context")},
        "outputs": {"answer": data[answer_field]},
    }


def _dialog(messages: Any) -> dict[str, Any]:
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list of {role, content} objects")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in _ROLES or not isinstance(m.get("content"), str):
            raise ValueError(f"messages[{i}] must be an object with role in {sorted(_ROLES)} and text content")
    if messages[-1]["role"] != "assistant":
        raise ValueError("the last message must be the assistant's reply (the answer)")
    users = [i for i, m in enumerate(messages[:-1]) if m["role"] == "user"]
    if not users:
        raise ValueError("no user message before the assistant's reply")
    q = users[-1]
    history = [m for i, m in enumerate(messages[:-1]) if i != q]
    context = "\n".join(f"{_ROLES[m['role']]}: {m['content']}" for m in history) or None
    return {
        "inputs": {"question": messages[q]["content"], "context": context},
        "outputs": {"answer": messages[-1]["content"]},
    }


def _qa(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "inputs": {"question": _first(data, _QUESTION_KEYS), "context": data.get("context")},
        "outputs": {"answer": _first(data, _ANSWER_KEYS), "rejected": data.get("rejected")},
    }


def record_to_example(
    rec: Record,
    question_fields: Sequence[str] = ("subject", "body"),
    answer_field: str = "answer",
    source: str | None = None,
) -> AnswerExample | RowError:
    """Convert one parsed row; a row that does not fit the schema becomes a :class:`RowError`."""
    data = rec.data
    source = source or Path(rec.file).name
    kind = detect_kind(data, answer_field)
    try:
        if kind == "unified":
            row = {**data, "id": data.get("id", f"{Path(rec.file).stem}-{rec.line}")}
            meta = row.get("meta")
            if meta is None:
                row["meta"] = {"source": source}
            elif isinstance(meta, dict):
                row["meta"] = {"source": source, **{k: v for k, v in meta.items() if v is not None}}
            return AnswerExample.model_validate(row)
        body = {
            "dialog": lambda: _dialog(data["messages"]),
            "qa": lambda: _qa(data),
            "ticket": lambda: _ticket(data, question_fields, answer_field),
        }[kind]()
        return AnswerExample.model_validate(
            {"id": data.get("id", f"{Path(rec.file).stem}-{rec.line}"), **body, "meta": _meta(data, source)}
        )
    except ValidationError as exc:
        return RowError(rec.file, rec.line, f"{kind} row: {format_validation_error(exc)}", data)
    except ValueError as exc:
        return RowError(rec.file, rec.line, f"{kind} row: {exc}", data)


def load_examples(
    path: str | Path,
    question_fields: Sequence[str] = ("subject", "body"),
    answer_field: str = "answer",
    source: str | None = None,
) -> tuple[list[AnswerExample], list[RowError]]:
    """All examples of a CSV/TSV/JSONL/JSON/Parquet file, and the rows that were rejected (file, line, reason).

    Args:
        path: the input file.
        question_fields: ticket columns joined (blank line between) into the question.
        answer_field: the ticket column holding the reply.
        source: ``meta.source`` for rows without one (default: the file name).

    Raises:
        FileNotFoundError, ValueError: for a missing file or an unsupported format.
    """
    examples, errors = [], []
    for rec in iter_records(path):
        item = rec if isinstance(rec, RowError) else record_to_example(rec, question_fields, answer_field, source)
        (errors if isinstance(item, RowError) else examples).append(item)
    return examples, errors
