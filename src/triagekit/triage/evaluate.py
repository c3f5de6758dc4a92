"""Evaluation of triage outputs against gold records: validity, exact match, per-field accuracy and macro-F1 on
the enum fields, summary ROUGE-L and embedding similarity, and agreement with an encoder router on shared fields."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from triagekit.triage.schema import TriageSchema

__all__ = ["evaluate_triage", "INVALID"]

INVALID = "<invalid>"
"""The predicted value of a field when the output did not parse or lacks the field (counted as wrong)."""


def _field(result: dict[str, Any], name: str) -> str:
    record = result.get("triage") or {}
    value = record.get(name)
    return str(value) if value is not None else INVALID


def evaluate_triage(
    results: Sequence[dict[str, Any]],
    gold: Sequence[dict[str, Any]],
    schema: TriageSchema,
    *,
    summary_field: str | None = "summary",
    embedder=None,
    languages: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Metrics of ``Triager.triage`` results against gold records (same order).

    Args:
        languages: each ticket's language; adds ``by_language`` (the same metrics per language).

    Returns:
        ``{"n", "valid_rate", "parse_rate", "exact_match", "fields": {name: {"accuracy", "macro_f1"}},
        "summary": {"rouge_l", "embedding_similarity"}}``. An invalid output counts as wrong on every field;
        ``exact_match`` asks every enum field to be right.
    """
    if languages is not None:
        if len(languages) != len(gold):
            raise ValueError(f"{len(languages)} languages for {len(gold)} gold records")
        out = evaluate_triage(results, gold, schema, summary_field=summary_field, embedder=embedder)
        out["by_language"] = {}
        for lang in sorted(set(map(str, languages))):
            idx = [i for i, g in enumerate(languages) if str(g) == lang]
            out["by_language"][lang] = evaluate_triage(
                [results[i] for i in idx],
                [gold[i] for i in idx],
                schema,
                summary_field=summary_field,
                embedder=embedder,
            )
        return out
    from sklearn.metrics import f1_score

    from triagekit.core.textsim import embedding_similarity, rouge_l

    if len(results) != len(gold):
        raise ValueError(f"{len(results)} results for {len(gold)} gold records")
    n = len(gold)
    out: dict[str, Any] = {
        "n": n,
        "valid_rate": float(np.mean([r["valid"] for r in results])) if n else 0.0,
        "parse_rate": float(np.mean([r.get("triage") is not None for r in results])) if n else 0.0,
    }
    fields: dict[str, dict[str, float]] = {}
    all_right = np.ones(n, dtype=bool)
    for name in schema.enum_fields:
        y = [str(g[name]) for g in gold]
        p = [_field(r, name) for r in results]
        right = np.array([a == b for a, b in zip(y, p)])
        all_right &= right
        labels = sorted(set(y))  # macro over the gold classes: predicting an unseen or invalid value only costs
        fields[name] = {
            "accuracy": float(right.mean()) if n else 0.0,
            "macro_f1": float(f1_score(y, p, labels=labels, average="macro", zero_division=0)),
        }
    out["fields"] = fields
    out["exact_match"] = float(all_right.mean()) if n else 0.0
    if summary_field and summary_field in schema.fields and n:
        refs = [str(g.get(summary_field, "")) for g in gold]
        hyps = [str((r.get("triage") or {}).get(summary_field, "")) for r in results]
        out["summary"] = {
            "rouge_l": float(np.mean([rouge_l(h, t).f1 for h, t in zip(hyps, refs)])),
            "embedding_similarity": float(np.mean(embedding_similarity(hyps, refs, embedder))),
        }
    return out
