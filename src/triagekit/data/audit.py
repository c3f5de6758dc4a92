"""Label audit: likely mis-labelled tickets found by confident learning (cleanlab) on cross-validated predictions.

Agents mis-route; a model trained on their labels learns some of those mistakes. Each label field gets
out-of-fold probabilities from a class-balanced word + char TF-IDF logistic regression (k-fold, so no ticket is
scored by a model that saw it), and cleanlab's ``find_label_issues`` ranks the tickets whose given label the
out-of-fold model finds least plausible. The suspects are written with the suggested label; ``route train
--exclude-suspects FILE`` drops those labels (the ticket keeps its other heads). Audit the training split only:
judging whether excluding suspects helps needs a test split nobody audited.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from triagekit.core.extras import require
from triagekit.data.text import build_text

__all__ = ["audit_labels", "write_suspects", "read_suspects", "drop_suspect_labels", "row_key"]

FIELDS = ["rank", "key", "id", "head", "given", "suggested", "given_probability", "suggested_probability", "text"]


def row_key(row: dict, text_fields: Sequence[str]) -> str:
    """A stable key of a ticket: the hash of its model input (ids are optional in ticket files)."""
    return hashlib.sha1(build_text(row, text_fields).encode("utf-8")).hexdigest()[:16]


def _oof_probs(x, y: np.ndarray, n_classes: int, folds: int, seed: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    probs = np.zeros((len(y), n_classes))
    smallest = int(np.bincount(y).min())
    split = StratifiedKFold(
        n_splits=max(2, min(folds, smallest)) if smallest >= 2 else folds, shuffle=True, random_state=seed
    )
    for train, held in split.split(np.zeros(len(y)), y if smallest >= 2 else np.zeros(len(y))):
        model = LogisticRegression(C=10.0, max_iter=2000, class_weight="balanced", random_state=seed)
        model.fit(x[train], y[train])
        probs[np.ix_(held, model.classes_)] = model.predict_proba(x[held])
    return probs


def audit_labels(
    rows: list[dict], label_fields: Sequence[str], text_fields: Sequence[str], folds: int = 5, seed: int = 0
) -> list[dict[str, Any]]:
    """Likely label errors, most suspicious first within each head.

    Args:
        rows: Labelled tickets (e.g. a prepared training split).
        label_fields: Single-label fields to audit.
        text_fields: Fields joined into the text (as in training).
        folds: Cross-validation folds of the out-of-fold predictions.
        seed: Fold shuffling and classifier seed.

    Returns:
        One dict per suspect: ``rank`` (within its head), ``key``, ``id``, ``head``, ``given``, ``suggested``, the
        out-of-fold probabilities of both and a text excerpt.
    """
    require("cleanlab", extra="audit")
    from cleanlab.filter import find_label_issues

    from triagekit.core.features import tfidf_features

    if not rows:
        raise ValueError("no tickets to audit")
    texts = [build_text(r, text_fields) for r in rows]
    empty = [i for i, t in enumerate(texts) if not t.strip()]
    if empty:
        raise ValueError(
            f"{len(empty)} tickets have no text in {list(text_fields)} (first: row {empty[0] + 1}); "
            f"fix or remove them (`triagekit data prepare` rejects them with a reason)"
        )
    x = tfidf_features().fit_transform(texts)
    suspects = []
    for head in label_fields:
        labelled = [i for i, r in enumerate(rows) if r.get(head) not in (None, "")]
        classes = sorted({str(rows[i][head]) for i in labelled})
        if len(classes) < 2:
            continue
        index = {c: k for k, c in enumerate(classes)}
        y = np.array([index[str(rows[i][head])] for i in labelled])
        probs = _oof_probs(x[labelled], y, len(classes), folds, seed)
        ranked = find_label_issues(y, probs, return_indices_ranked_by="self_confidence")
        for rank, j in enumerate(ranked, 1):
            i = labelled[j]
            best = int(probs[j].argmax())
            suspects.append(
                {
                    "rank": rank,
                    "key": row_key(rows[i], text_fields),
                    "id": rows[i].get("id"),
                    "head": head,
                    "given": classes[y[j]],
                    "suggested": classes[best],
                    "given_probability": round(float(probs[j, y[j]]), 4),
                    "suggested_probability": round(float(probs[j, best]), 4),
                    "text": texts[i][:200],
                }
            )
    return suspects


def write_suspects(suspects: list[dict], path: str | Path) -> Path:
    """Write the suspects as CSV (``.csv``) or JSONL (anything else)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(suspects)
    else:
        with path.open("w", encoding="utf-8") as f:
            f.writelines(json.dumps(s, ensure_ascii=False) + "\n" for s in suspects)
    return path


def read_suspects(path: str | Path) -> list[dict]:
    """The suspects of a file written by ``write_suspects`` (CSV or JSONL)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such audit file (write one with `triagekit data audit`)")
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def drop_suspect_labels(
    rows: list[dict], path: str | Path, text_fields: Sequence[str]
) -> tuple[list[dict], dict[str, int]]:
    """``rows`` with the labels listed in the audit file removed (set to None), and the count dropped per head.

    A ticket keeps its text and its other labels, so a suspect queue does not cost the ticket's priority.
    """
    wanted: dict[str, set[str]] = {}
    for s in read_suspects(path):
        wanted.setdefault(str(s["key"]), set()).add(str(s["head"]))
    out, dropped = [], {}
    for row in rows:
        heads = wanted.get(row_key(row, text_fields))
        if heads:
            row = dict(row)
            for h in heads:
                if row.get(h) is not None:
                    row[h] = None
                    dropped[h] = dropped.get(h, 0) + 1
        out.append(row)
    return out, dropped
