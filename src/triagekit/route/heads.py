"""Label heads and the text a model sees: the vocabulary shared by data, models, evaluation and serving."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from triagekit.data.text import DEFAULT_TEXT_FIELDS, build_text

__all__ = ["HeadSpec", "build_text", "row_labels", "row_targets", "heads_from_rows", "DEFAULT_TEXT_FIELDS", "IGNORE"]

IGNORE = -100
"""Target of a row whose label is missing or unknown to the head (skipped by losses and metrics)."""


@dataclass
class HeadSpec:
    """One output of a router: a label field and its classes."""

    name: str
    """The label field (column) this head predicts."""
    labels: list[str] = field(default_factory=list)
    """Class names; index i of the model's output is labels[i]."""
    multilabel: bool = False
    """True for tag-like fields: independent sigmoid per class instead of one softmax."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "HeadSpec":
        return cls(name=d["name"], labels=list(d["labels"]), multilabel=bool(d.get("multilabel", False)))


def row_labels(row: Mapping[str, Any], head: HeadSpec) -> Any:
    """The gold label of ``row`` for ``head``: a string, or a list of strings for a multi-label head."""
    value = row.get(head.name)
    if head.multilabel:
        if value is None:
            return []
        if isinstance(value, str):
            return [value] if value else []
        return [str(v) for v in value if v not in (None, "")]
    return None if value is None else str(value)


def heads_from_rows(
    rows: Iterable[Mapping[str, Any]], label_fields: Sequence[str], multilabel_fields: Sequence[str] = ()
) -> list[HeadSpec]:
    """Head specs with the sorted classes seen in ``rows`` (the training split)."""
    rows = list(rows)
    heads = []
    for name in list(label_fields) + list(multilabel_fields):
        spec = HeadSpec(name=name, multilabel=name in multilabel_fields)
        seen: set[str] = set()
        for r in rows:
            v = row_labels(r, spec)
            if spec.multilabel:
                seen.update(v)
            elif v is not None:
                seen.add(v)
        spec.labels = sorted(seen)
        heads.append(spec)
    return heads


def row_targets(rows: Sequence[dict], heads: list[HeadSpec]) -> dict[str, np.ndarray]:
    """Integer targets (single-label; -100 for missing or unseen labels) or 0/1 matrices (multi-label) per head."""
    out = {}
    for h in heads:
        index = {label: i for i, label in enumerate(h.labels)}
        if h.multilabel:
            m = np.zeros((len(rows), len(h.labels)), dtype=np.float32)
            for r, row in enumerate(rows):
                for tag in row_labels(row, h):
                    if tag in index:
                        m[r, index[tag]] = 1.0
            out[h.name] = m
        else:
            out[h.name] = np.array([index.get(row_labels(row, h), IGNORE) for row in rows], dtype=np.int64)
    return out
