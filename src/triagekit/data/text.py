"""The text a model sees for a ticket: its non-empty text fields joined by newlines (shared by data cards,
training, prediction and serving)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

__all__ = ["build_text", "DEFAULT_TEXT_FIELDS", "TEXT_SEPARATOR"]

DEFAULT_TEXT_FIELDS = ("subject", "body")
TEXT_SEPARATOR = "\n"


def build_text(row: Mapping[str, Any] | str, text_fields: Sequence[str] = DEFAULT_TEXT_FIELDS) -> str:
    """The model input for a row: the non-empty text fields joined by newlines.

    A plain string, or a dict with a ``text`` key and none of ``text_fields``, is taken as is.
    """
    if isinstance(row, str):
        return row
    parts = [str(row[f]).strip() for f in text_fields if row.get(f) not in (None, "") and str(row[f]).strip()]
    if not parts and row.get("text"):
        return str(row["text"]).strip()
    return TEXT_SEPARATOR.join(parts)
