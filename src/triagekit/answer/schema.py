"""The unified answer-example schema: ``{id, inputs: {question, context?}, outputs: {answer}, meta: {...}}``.

Every loader (tickets, dialogs, Q&A pairs) produces :class:`AnswerExample`; training, evaluation and the shipped
suite all read this one shape, so a JSONL file written by ``triagekit answer prepare`` can be fed to any of them.
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = ["AnswerExample", "Inputs", "Outputs", "Meta", "MAX_CHARS", "format_validation_error", "to_messages"]

MAX_CHARS = 20_000
"""Longest question, context or answer accepted (longer rows are rejected, not truncated silently)."""


def _text(value: Any, name: str, required: bool) -> Optional[str]:
    if value is None:
        if required:
            raise ValueError(f"{name} is missing")
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}")
    value = value.strip()
    if not value:
        if required:
            raise ValueError(f"{name} is empty")
        return None
    if len(value) > MAX_CHARS:
        raise ValueError(f"{name} has {len(value)} characters (limit {MAX_CHARS})")
    return value


class Inputs(BaseModel):
    """What the model sees."""

    model_config = ConfigDict(extra="forbid")
    question: str
    """The customer's message (for tickets: subject and body)."""
    context: Optional[str] = None
    """Optional grounding: earlier dialog turns, a knowledge-base passage, account facts."""

    @field_validator("question", mode="before")
    @classmethod
    def _question(cls, v: Any) -> str:
        return _text(v, "question", required=True)

    @field_validator("context", mode="before")
    @classmethod
    def _context(cls, v: Any) -> Optional[str]:
        return _text(v, "context", required=False)


class Outputs(BaseModel):
    """What the model should say."""

    model_config = ConfigDict(extra="forbid")
    answer: str
    """The reference reply (the ``chosen`` reply for preference tuning)."""
    rejected: Optional[str] = None
    """A worse reply to the same question, for preference tuning (DPO); optional."""

    @field_validator("answer", mode="before")
    @classmethod
    def _answer(cls, v: Any) -> str:
        return _text(v, "answer", required=True)

    @field_validator("rejected", mode="before")
    @classmethod
    def _rejected(cls, v: Any) -> Optional[str]:
        return _text(v, "rejected", required=False)


class Meta(BaseModel):
    """Where the example came from; used for stratified splits and per-source reports."""

    model_config = ConfigDict(extra="allow")  # loaders may keep e.g. language, queue, file and line
    source: str = "unknown"
    """Origin of the example (a file name or a data set name)."""
    timestamp: Optional[str] = None
    """ISO 8601 creation time when known (checked to be parseable)."""
    tags: list[str] = Field(default_factory=list)
    """Topic tags (deduplicated, order kept)."""

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp(cls, v: Any) -> Optional[str]:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        from triagekit.data.validate import parse_time

        return parse_time(v).isoformat()

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, v: Any) -> list[str]:
        if v is None:
            return []
        if isinstance(v, str):
            v = [t for t in v.replace(";", "|").split("|")]
        if not isinstance(v, (list, tuple)) or any(isinstance(t, (dict, list)) for t in v):
            raise ValueError("tags must be a list of strings or a '|'-separated string")
        return list(dict.fromkeys(str(t).strip() for t in v if t is not None and str(t).strip()))


class AnswerExample(BaseModel):
    """One question with its reference answer."""

    model_config = ConfigDict(extra="forbid")
    id: str
    """Unique id (taken from the input or derived from file and line)."""
    inputs: Inputs
    outputs: Outputs
    meta: Meta = Field(default_factory=Meta)

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: Any) -> str:
        if isinstance(v, bool) or not isinstance(v, (str, int)) or not str(v).strip():
            raise ValueError("id must be a non-empty string or integer")
        return str(v).strip()

    def to_row(self) -> dict[str, Any]:
        """A JSON-ready dict (None fields left out)."""
        return self.model_dump(exclude_none=True)


def format_validation_error(exc: ValidationError) -> str:
    """A one-line reason: ``inputs.question: question is empty; meta.timestamp: ...``."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "row"
        parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def to_messages(example: AnswerExample | dict[str, Any], system: str | None = None) -> list[dict[str, str]]:
    """Chat messages for an example: optional system prompt, the user turn (context, then question), the answer."""
    ex = example if isinstance(example, AnswerExample) else AnswerExample.model_validate(example)
    user = ex.inputs.question if not ex.inputs.context else f"{ex.inputs.context}\n\n{ex.inputs.question}"
    messages = [{"role": "system", "content": system}] if system else []
    return messages + [{"role": "user", "content": user}, {"role": "assistant", "content": ex.outputs.answer}]
