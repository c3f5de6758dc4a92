"""Which tickets a human should label next: selection strategies for the review queue and active learning.

``least-confidence`` (1 - top probability; the service's ``requires_review`` order), ``margin`` (1 - the gap between
the two most likely labels), ``entropy`` (normalised by log of the class count) and ``diverse``: the margin's most
uncertain ``pool_factor * n`` tickets clustered (k-means on their embeddings) into ``n`` groups, the most uncertain
ticket of each group taken, so one batch does not spend 50 reviews on near-identical tickets. ``random`` is the
baseline. With several heads, a ticket's uncertainty is the mean over its heads (or one head with ``head=``).

Two entry points: ``select(probs, n, strategy, embeddings)`` on full probability matrices (``route select``, the
active-learning benchmark), and ``order(pool, strategy)`` on prediction records as the service logs them (the
review page's queue order).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

__all__ = ["STRATEGIES", "uncertainty", "select", "order", "probs_from_records"]

STRATEGIES = ("least-confidence", "margin", "entropy", "diverse", "random")
POOL_FACTOR = 5


def _head_uncertainty(p: np.ndarray, strategy: str, multilabel: bool) -> np.ndarray:
    """Per-row uncertainty in [0, 1] of one head (higher: ask a human first)."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1.0)
    if multilabel:  # each tag is a yes/no question; the least sure tag speaks for the ticket
        conf = np.maximum(p, 1 - p)
        if strategy == "entropy":
            q = np.clip(1 - p, 1e-12, 1.0)
            return (-(p * np.log2(p) + q * np.log2(q))).mean(axis=1)
        if strategy == "margin":
            return 1 - (2 * conf.min(axis=1) - 1)
        return 1 - conf.min(axis=1)
    if strategy == "entropy":
        k = p.shape[1]
        return -(p * np.log(p)).sum(axis=1) / (np.log(k) if k > 1 else 1.0)
    if strategy in ("margin", "diverse"):
        top2 = -np.sort(-p, axis=1)[:, :2]
        gap = top2[:, 0] - (top2[:, 1] if p.shape[1] > 1 else 0.0)
        return 1 - gap
    return 1 - p.max(axis=1)


def uncertainty(
    probs: Mapping[str, np.ndarray], strategy: str, multilabel: Sequence[str] = (), head: str | None = None
) -> np.ndarray:
    """Mean uncertainty over the heads in ``probs`` (or only ``head``) under ``strategy``."""
    _check(strategy)
    names = [head] if head else list(probs)
    if head and head not in probs:
        raise ValueError(f"unknown head {head!r}; heads: {sorted(probs)}")
    scores = [_head_uncertainty(probs[h], strategy, h in multilabel) for h in names]
    return np.mean(scores, axis=0)


def _check(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown selection strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")


def select(
    probs: Mapping[str, np.ndarray],
    n: int,
    strategy: str,
    embeddings: np.ndarray | None = None,
    multilabel: Sequence[str] = (),
    head: str | None = None,
    seed: int = 0,
    pool_factor: int = POOL_FACTOR,
) -> np.ndarray:
    """Indices of the ``n`` pool rows to label next, most useful first.

    Args:
        probs: per head, the calibrated probabilities of every pool row, shape (rows, classes).
        n: batch size (all rows when the pool is smaller).
        strategy: one of ``STRATEGIES``.
        embeddings: (rows, dim) vectors of the pool; ``diverse`` needs them (any dense or sparse features).
        multilabel: the heads in ``probs`` that are multi-label.
        head: rank by this head only.
        seed: for ``random`` and the k-means of ``diverse``.
        pool_factor: ``diverse`` clusters the ``pool_factor * n`` most uncertain rows.
    """
    _check(strategy)
    rows = len(next(iter(probs.values())))
    n = min(int(n), rows)
    if n <= 0:
        return np.zeros(0, dtype=int)
    if strategy == "random":
        return np.random.default_rng(seed).permutation(rows)[:n]
    score = uncertainty(probs, strategy, multilabel, head)
    ranked = np.argsort(-score, kind="stable")
    if strategy != "diverse":
        return ranked[:n]
    if embeddings is None:
        raise ValueError("the diverse strategy needs embeddings of the pool (vectors to cluster)")
    return _diverse(ranked[: min(rows, pool_factor * n)], score, embeddings, n, seed)


def _diverse(candidates: np.ndarray, score: np.ndarray, embeddings, n: int, seed: int) -> np.ndarray:
    """k-means the candidates into ``n`` clusters and take each cluster's most uncertain member."""
    if len(candidates) <= n:
        return candidates
    from sklearn.cluster import KMeans

    x = embeddings[candidates]
    # k-means++ seeding spreads the first centres over distinct groups (MiniBatchKMeans put 3 of 5 centres in one
    # tight cluster in tests/test_select.py); 50 Lloyd iterations are plenty for a batch choice.
    labels = KMeans(n_clusters=n, random_state=seed, n_init=1, max_iter=50).fit_predict(x)
    best: dict[int, int] = {}
    for idx, cluster in zip(candidates, labels):  # candidates come most uncertain first
        best.setdefault(int(cluster), int(idx))
    chosen = list(best.values())
    if len(chosen) < n:  # empty clusters: top up with the most uncertain candidates not taken
        taken = set(chosen)
        chosen += [int(i) for i in candidates if int(i) not in taken][: n - len(chosen)]
    chosen.sort(key=lambda i: -score[i])
    return np.asarray(chosen, dtype=int)


def probs_from_records(records: Sequence[Mapping[str, Any]]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Probability rows from prediction records (``{"heads": {head: {"top_k": [...]}|{"scores": {...}}}}`` as in the
    prediction log, or the heads at the top level as ``triagekit predict`` writes them).

    Single-label heads keep their top-k probabilities, the rest of the mass spread so that no unseen class outranks
    the k-th (margin and least-confidence exact, entropy estimated); multi-label heads keep the tags they scored.
    """
    heads_of = [r.get("heads", r) for r in records]
    names = sorted({h for heads in heads_of for h, v in heads.items() if isinstance(v, Mapping)})
    out, multilabel = {}, []
    for name in names:
        values = [heads.get(name) or {} for heads in heads_of]
        if any("scores" in v for v in values):
            multilabel.append(name)
            width = max((len(v.get("scores") or {}) for v in values), default=1) or 1
            mat = np.full((len(values), width), 0.0)
            for i, v in enumerate(values):
                s = list((v.get("scores") or {}).values())
                mat[i, : len(s)] = s
        else:
            rows = [_full_row([t["p"] for t in v.get("top_k") or []] or [v.get("confidence", 1.0)]) for v in values]
            mat = np.zeros((len(rows), max(len(r) for r in rows)))
            for i, r in enumerate(rows):
                mat[i, : len(r)] = r
        out[name] = mat
    return out, multilabel


def _full_row(top: list[float], most: int = 1000) -> list[float]:
    """Top-k probabilities plus the rest of the mass spread over just enough classes that none outranks the k-th,
    so the top two (least-confidence, margin) are exact and the entropy is an estimate."""
    rest = max(0.0, 1.0 - float(sum(top)))
    last = float(top[-1]) if top else 1.0
    if rest <= 1e-9 or last <= 0:
        return list(top)
    m = min(most, int(np.ceil(rest / last)))
    return list(top) + [rest / m] * m


def _record_text(record: Mapping[str, Any]) -> str:
    inputs = record.get("inputs") or record
    return " ".join(str(v) for k, v in inputs.items() if isinstance(v, str) and k not in ("id", "prediction_id"))


def order(
    pool: Sequence[Mapping[str, Any]],
    strategy: str = "least-confidence",
    batch: int = 50,
    embed: Callable[[list[str]], Any] | None = None,
    head: str | None = None,
    seed: int = 0,
) -> list:
    """``pool`` (prediction records, e.g. ``GET /review`` items) in the order a reviewer should see them.

    ``diverse`` puts a diverse batch of ``batch`` records first, then the rest by margin; its vectors come from
    ``embed(texts)`` or, without it, a TF-IDF of the records' input text (no model needed).
    """
    _check(strategy)
    pool = list(pool)
    if len(pool) < 2:
        return pool
    probs, multilabel = probs_from_records(pool)
    if not probs:
        return pool
    embeddings = None
    if strategy == "diverse":
        texts = [_record_text(r) for r in pool]
        if embed is not None:
            embeddings = np.asarray(embed(texts))
        else:
            from sklearn.feature_extraction.text import TfidfVectorizer

            embeddings = TfidfVectorizer(sublinear_tf=True).fit_transform(texts)
    first = select(
        probs,
        min(batch, len(pool)) if strategy == "diverse" else len(pool),
        strategy,
        embeddings,
        multilabel,
        head,
        seed,
    )
    seen = set(int(i) for i in first)
    rest = [int(i) for i in select(probs, len(pool), "margin", None, multilabel, head) if int(i) not in seen]
    return [pool[i] for i in list(first) + rest]
