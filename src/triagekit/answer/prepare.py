"""Turn a raw file of answer examples into train/val/test JSONL in the unified schema, accounting for every row.

Same contract as the router's ``triagekit data prepare``: rejected rows go to ``rejected.jsonl`` with file, line
and reason; exact duplicates to ``duplicates.jsonl``; rows outside ``--language`` are counted; PII is redacted in
questions, contexts and answers before deduplication; splits are stratified by first tag or by source. With
``grounded_only``, training examples whose reply makes claims their question does not back (the hallucination
rubric of :mod:`triagekit.answer.rubric`) go to ``ungrounded.jsonl`` with those claims instead of ``train.jsonl``:
a model tuned on replies that name products, numbers or steps out of nowhere learns to do the same.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from triagekit.answer.ingest import load_examples
from triagekit.answer.schema import AnswerExample
from triagekit.data.pii import redact, redact_row
from triagekit.data.prepare import read_jsonl, split_rows, write_jsonl

__all__ = ["AnswerPrepareSummary", "prepare_answers", "load_split", "STRATIFY"]

STRATIFY = ("tag", "source", "none")


@dataclass
class AnswerPrepareSummary:
    """What :func:`prepare_answers` did; every input row is in exactly one of kept, rejected, duplicates, filtered,
    ungrounded."""

    input: str
    """The input file."""
    out_dir: str
    """Where the splits and reports were written."""
    total: int
    """Rows read."""
    kept: int
    """Examples written to the splits."""
    rejected: int
    """Rows that failed parsing or the schema (``rejected.jsonl``)."""
    duplicates: int
    """Exact duplicates (same question, context and answer) removed (``duplicates.jsonl``)."""
    filtered: int
    """Valid rows left out by ``language`` or ``limit``."""
    splits: dict[str, int]
    """Examples per split."""
    ungrounded: int = 0
    """Training examples left out by ``grounded_only`` (``ungrounded.jsonl``, with their unsupported claims)."""
    pii: dict[str, int] = field(default_factory=dict)
    """PII replacements by type."""
    warnings: list[str] = field(default_factory=list)
    """Fallbacks worth a look (rare strata, impossible stratification)."""


def _redact_example(ex: AnswerExample, counts: Counter) -> AnswerExample:
    row = ex.model_dump()
    for part, key in (("inputs", "question"), ("inputs", "context"), ("outputs", "answer"), ("outputs", "rejected")):
        if row[part].get(key):
            row[part][key], c = redact(row[part][key])
            counts.update(c)
    return AnswerExample.model_validate(row)


def _key(ex: AnswerExample, stratify: str) -> str:
    if stratify == "tag":
        return ex.meta.tags[0] if ex.meta.tags else "(none)"
    return ex.meta.source if stratify == "source" else "all"


def _error_row(e, redact_pii: bool) -> dict[str, Any]:
    raw = e.raw
    if redact_pii and isinstance(raw, str):
        raw = redact(raw)[0]
    elif redact_pii and isinstance(raw, dict):
        raw = redact_row(raw, [k for k, v in raw.items() if isinstance(v, str)])[0]
    return {**e.to_dict(), "raw": raw}


def prepare_answers(
    input: str | Path,
    out_dir: str | Path,
    *,
    question_fields: Sequence[str] = ("subject", "body"),
    answer_field: str = "answer",
    language: str | None = None,
    stratify: str = "tag",
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    redact_pii: bool = False,
    dedup: bool = True,
    limit: int | None = None,
    grounded_only: bool = False,
    seed: int = 0,
) -> AnswerPrepareSummary:
    """Validate, filter, redact, deduplicate and split answer examples; write everything to ``out_dir``.

    Args:
        input: CSV/TSV/JSONL/JSON/Parquet of tickets with an answer column, dialogs, Q&A pairs or unified rows.
        out_dir: output directory (``train/val/test.jsonl``, ``rejected.jsonl``, ``duplicates.jsonl``,
            ``prepare.json``).
        question_fields: ticket columns joined into the question.
        answer_field: ticket column with the reply.
        language: keep only rows whose ``language`` column equals this (rows without one are kept).
        stratify: ``tag`` (first tag), ``source`` or ``none`` (random split).
        val_fraction: share of examples for validation.
        test_fraction: share of examples for test.
        redact_pii: replace e-mails, phones, IPs, cards, IBANs, secret URLs with placeholders.
        dedup: drop exact duplicates (same question, context and answer).
        limit: keep at most this many examples (the first ones after filtering), e.g. for CPU budgets.
        grounded_only: move training examples whose answer makes claims (numbers, names, URLs, e-mails, UI steps)
            that their question and context do not back to ``ungrounded.jsonl``. Applied after splitting, so val
            and test stay the same with or without it.
        seed: split seed.

    Raises:
        ValueError: for bad arguments or when no example is left.
    """
    if stratify not in STRATIFY:
        raise ValueError(f"unknown stratify {stratify!r}; choose one of {', '.join(STRATIFY)}")
    examples, errors = load_examples(input, question_fields, answer_field)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    total = len(examples) + len(errors)
    _replace(out / "rejected.jsonl", [_error_row(e, redact_pii) for e in errors])
    n_valid = len(examples)
    if language:
        examples = [ex for ex in examples if getattr(ex.meta, "language", language) == language]
    if limit is not None:
        examples = examples[:limit]
    filtered = n_valid - len(examples)
    pii: Counter = Counter()
    if redact_pii:
        examples = [_redact_example(ex, pii) for ex in examples]
    kept, dups, seen = [], [], {}
    for ex in examples:
        key = (ex.inputs.question, ex.inputs.context, ex.outputs.answer)
        if dedup and key in seen:
            dups.append({"id": ex.id, "duplicate_of_id": seen[key], "row": ex.to_row()})
            continue
        seen[key] = ex.id
        kept.append(ex)
    _replace(out / "duplicates.jsonl", dups)
    if not kept:
        raise ValueError(
            f"no examples left of {total} rows ({len(errors)} rejected, {filtered} filtered); "
            f"see {out / 'rejected.jsonl'}"
        )
    warnings: list[str] = []
    rows = [{"_key": _key(ex, stratify), "_i": i} for i, ex in enumerate(kept)]
    method = "random" if stratify == "none" else "stratified"
    parts = split_rows(rows, "_key", val_fraction, test_fraction, seed, method, warnings=warnings)
    splits = {name: [kept[r["_i"]].to_row() for r in part] for name, part in parts.items()}
    ungrounded = []
    if grounded_only:
        splits["train"], ungrounded = _split_grounded(splits["train"])
    _replace(out / "ungrounded.jsonl", ungrounded)
    write_jsonl(out / "train.jsonl", splits["train"])
    for name in ("val", "test"):
        _replace(out / f"{name}.jsonl", splits[name])
    summary = AnswerPrepareSummary(
        str(input),
        str(out),
        total,
        len(kept) - len(ungrounded),
        len(errors),
        len(dups),
        filtered,
        {k: len(v) for k, v in splits.items()},
        len(ungrounded),
        dict(pii),
        warnings,
    )
    args = {
        "input": str(input),
        "question_fields": list(question_fields),
        "answer_field": answer_field,
        "language": language,
        "stratify": stratify,
        "val_fraction": val_fraction,
        "test_fraction": test_fraction,
        "redact_pii": redact_pii,
        "dedup": dedup,
        "limit": limit,
        "grounded_only": grounded_only,
        "seed": seed,
    }
    (out / "prepare.json").write_text(
        json.dumps({"task": "answer", **args, "summary": asdict(summary)}, indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    return summary


def _split_grounded(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows whose answer the question (and context) back, and the others with their unsupported claims."""
    from triagekit.answer.rubric import check_reply

    grounded, ungrounded = [], []
    for row in rows:
        result = check_reply(row["outputs"]["answer"], row["inputs"]["question"], context=row["inputs"].get("context"))
        if result.hallucinated:
            ungrounded.append(
                {"id": row["id"], "unsupported": [f"{c.kind}:{c.text}" for c in result.unsupported], "row": row}
            )
        else:
            grounded.append(row)
    return grounded, ungrounded


def _replace(path: Path, rows: list) -> None:
    if rows:
        write_jsonl(path, rows)
    else:
        path.unlink(missing_ok=True)


def load_split(path: str | Path, split: str = "train") -> list[AnswerExample]:
    """Examples from a prepared directory's ``{split}.jsonl`` or from any file :func:`load_examples` reads.

    Raises:
        ValueError: if a raw file has rejected rows (fix or prepare it first; the first reason is shown).
    """
    p = Path(path)
    if p.is_dir():
        file = p / f"{split}.jsonl"
        if not file.is_file():
            raise FileNotFoundError(f"{p} has no {split}.jsonl (run `triagekit answer prepare` first)")
        return [AnswerExample.model_validate(r) for r in read_jsonl(file)]
    examples, errors = load_examples(p)
    if errors:
        e = errors[0]
        raise ValueError(f"{len(errors)} rows of {p} are malformed (first: {e.file} line {e.line}: {e.reason})")
    return examples
