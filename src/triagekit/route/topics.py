"""New topics: the tickets a router flags as out of scope, grouped into candidate classes a team can name.

The flagged tickets are clustered on the router's own pooled features (L2-normalised, so Euclidean distance is
cosine distance) with scikit-learn's HDBSCAN, which needs no number of clusters and leaves tickets that belong to
no dense group as noise instead of forcing them into a topic. Each topic gets its size, its most characteristic
terms by class-based TF-IDF (Grootendorst, 2022, BERTopic: the term frequency in the topic's concatenated tickets
times log(1 + mean words per topic / the term's frequency over all topics)) and the tickets nearest its centroid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["find_topics", "topic_terms", "topics_from_file"]


def _cluster(x: np.ndarray, min_size: int) -> np.ndarray:
    from sklearn.cluster import HDBSCAN

    if len(x) < 2 * min_size:
        return np.full(len(x), -1, dtype=np.int64)
    # min_samples below min_cluster_size: intents are tight but small groups, a large min_samples marks their
    # edges as noise (HDBSCAN's own advice for small data).
    return HDBSCAN(min_cluster_size=min_size, min_samples=max(2, min_size // 2), copy=True).fit_predict(x)


def topic_terms(texts: Sequence[str], assign: np.ndarray, n_terms: int = 8) -> dict[int, list[str]]:
    """The ``n_terms`` most characteristic terms (c-TF-IDF, English stop words removed) of each cluster id >= 0."""
    from sklearn.feature_extraction.text import CountVectorizer

    ids = sorted(int(c) for c in set(assign.tolist()) if c >= 0)
    if not ids:
        return {}
    docs = [" ".join(t for t, a in zip(texts, assign) if a == c) for c in ids]
    try:
        vec = CountVectorizer(stop_words="english", ngram_range=(1, 2), min_df=1)
        counts = vec.fit_transform(docs).toarray().astype(np.float64)
    except ValueError:  # nothing but stop words / symbols in every topic
        return {c: [] for c in ids}
    tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    idf = np.log(1 + counts.sum(axis=1).mean() / np.maximum(counts.sum(axis=0), 1))
    weights = tf * idf
    vocab = vec.get_feature_names_out()
    return {
        c: [str(vocab[j]) for j in np.argsort(-weights[i])[:n_terms] if weights[i, j] > 0] for i, c in enumerate(ids)
    }


def find_topics(
    texts: Sequence[str], features: np.ndarray, min_size: int | None = None, n_examples: int = 3
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Candidate topics of ``texts`` (the flagged tickets) from their router features ``(n, d)``.

    Args:
        min_size: smallest topic; default ``max(5, n // 50)``.

    Returns:
        ``(topics, assign)``: topics largest first, each ``{"topic", "size", "terms", "examples", "members"}``
        (``members``: indices into ``texts``), and the topic index of every ticket (-1: no topic).
    """
    n = len(texts)
    if n == 0:
        return [], np.zeros(0, dtype=np.int64)
    x = np.asarray(features, np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    min_size = min_size or max(5, n // 50)
    raw = _cluster(x, min_size)
    order = sorted((c for c in set(raw.tolist()) if c >= 0), key=lambda c: -int((raw == c).sum()))
    assign = np.full(n, -1, dtype=np.int64)
    for new, c in enumerate(order):
        assign[raw == c] = new
    terms = topic_terms(texts, assign)
    topics = []
    for c in range(len(order)):
        members = np.flatnonzero(assign == c)
        centroid = x[members].mean(axis=0)
        nearest = members[np.argsort(-(x[members] @ centroid))[:n_examples]]
        topics.append(
            {
                "topic": c,
                "size": int(len(members)),
                "terms": terms.get(c, []),
                "examples": [texts[i] for i in nearest],
                "members": members.tolist(),
            }
        )
    return topics, assign


def topics_from_file(
    router, input: str | Path, head: str | None = None, min_size: int | None = None, batch_size: int = 64
) -> dict[str, Any]:
    """Read ``input``, flag its out-of-scope tickets with ``router`` and cluster them.

    Args:
        head: the head whose flag counts (default: a ticket is flagged when any single-label head flags it).

    Raises:
        ValueError: the router has no out-of-scope detector, an unknown head, or no ticket with text.
    """
    from triagekit.data.io import RowError, iter_records
    from triagekit.route.oos import FEATURES

    if router.oos is None:
        raise ValueError(
            "this router has no out-of-scope detector: retrain with ood_detector auto (the default), msp or mahalanobis"
        )
    if head is not None and head not in router.oos.heads:
        raise ValueError(f"--head {head!r}: the detector covers {sorted(router.oos.heads)}")
    rows = [r.data for r in iter_records(input) if not isinstance(r, RowError)]
    texts = router.texts(rows)
    keep = [i for i, t in enumerate(texts) if t.strip()]
    if not keep:
        raise ValueError(f"{input} has no ticket with text in {router.text_fields} (or 'text')")
    rows, texts = [rows[i] for i in keep], [texts[i] for i in keep]
    outputs = router.outputs(rows, batch_size=batch_size)
    flags = router.out_of_scope(outputs)
    chosen = [head] if head else list(flags)
    flagged = np.zeros(len(rows), bool)
    for h in chosen:
        flagged |= flags[h][1]
    idx = np.flatnonzero(flagged)
    features = outputs.get(FEATURES)
    if features is None:
        raise ValueError("topics need the router's pooled features; a TF-IDF router has none")
    topics, _ = find_topics([texts[i] for i in idx], features[idx], min_size=min_size)
    for t in topics:
        t["ids"] = [rows[idx[m]].get("id") for m in t.pop("members")]
    return {
        "tickets": len(rows),
        "out_of_scope": int(len(idx)),
        "out_of_scope_rate": float(len(idx) / len(rows)),
        "unclustered": int(len(idx) - sum(t["size"] for t in topics)),
        "topics": topics,
    }
