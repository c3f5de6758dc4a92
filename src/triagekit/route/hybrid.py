"""Hybrid routing: a convex log-linear pool of the fine-tuned encoder and a TF-IDF model, per head.

Lexical n-grams (product names, error codes, fixed phrases) and a sentence encoder make different mistakes, so a
log-linear pool of the two beats either alone. Each part is first temperature-scaled on validation (the
class-balanced logistic regression is far more confident than the encoder trained with label smoothing; without
this its probabilities are so badly calibrated that any weight on them raises the likelihood of the pool and the
fit switches it off, measured on the support tickets: queue and priority weights of 0), then
``(1 - w) log p_encoder + w log p_lexical`` with ``w`` in [0, 1] fitted on validation per head: 0 is the encoder
alone, 1 the lexical model alone, so the pool can always fall back to the better half. The pooled logits are then
temperature-calibrated like any other router's.

Runs saved before the convex pool (no ``scales`` in ``router.json``) load with the earlier rule,
``log p_encoder + w log p_lexical``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from triagekit.route.heads import HeadSpec

__all__ = ["HybridBackend", "fuse", "fit_fusion", "fit_fusion_weights", "LEXICAL_DIR", "PARALLEL_ENV"]

LEXICAL_DIR = "lexical"
PARALLEL_ENV = "TRIAGEKIT_HYBRID_PARALLEL"
"""``0`` runs the lexical half after the encoder instead of beside it (the older, serial path)."""
WEIGHTS = np.round(np.arange(0.0, 1.001, 0.1), 2)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def fuse(
    head: HeadSpec, neural: np.ndarray, lexical: np.ndarray, weight: float, scales: Sequence[float] | None = None
) -> np.ndarray:
    """Pooled logits of one head.

    With ``scales`` (``[1/T_neural, 1/T_lexical]``, the convex pool): ``(1 - w) log softmax(s_n z_n) + w log
    softmax(s_l z_l)``, or ``(1 - w) z_n + w z_l`` for a multi-label head. Without (runs saved before it):
    ``log p_neural + w log p_lexical``, or logit sums for a multi-label head. ``w = 0`` returns the neural logits.
    """
    if weight == 0:
        return neural
    if scales is None:
        if head.multilabel:
            return neural + weight * lexical
        return _log_softmax(neural) + weight * _log_softmax(lexical)
    if head.multilabel:
        return (1.0 - weight) * neural + weight * lexical
    s_n, s_l = scales
    return (1.0 - weight) * _log_softmax(s_n * neural) + weight * _log_softmax(s_l * lexical)


def _nll(head: HeadSpec, z: np.ndarray, y: np.ndarray) -> float:
    if head.multilabel:
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))
        return float(-np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12)))
    return float(-np.mean(_log_softmax(z)[np.arange(len(y)), y]))


def fit_fusion(
    heads: list[HeadSpec],
    neural: Mapping[str, np.ndarray],
    lexical: Mapping[str, np.ndarray],
    targets: Mapping[str, np.ndarray],
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Per head, ``(weights, scales)`` of the convex pool: each part's inverse temperature on validation, then the
    lexical weight in [0, 1] with the lowest validation negative log-likelihood (see ``fit_fusion_weights``)."""
    from triagekit.route.calibration import fit_temperature

    scales = {}
    for h in heads:
        y = targets[h.name]
        keep = np.ones(len(y), bool) if h.multilabel else y >= 0
        if h.multilabel or not keep.any():
            scales[h.name] = [1.0, 1.0]
            continue
        scales[h.name] = [1.0 / fit_temperature(part[h.name][keep], y[keep]) for part in (neural, lexical)]
    return fit_fusion_weights(heads, neural, lexical, targets, scales), scales


def fit_fusion_weights(
    heads: list[HeadSpec],
    neural: Mapping[str, np.ndarray],
    lexical: Mapping[str, np.ndarray],
    targets: Mapping[str, np.ndarray],
    scales: Mapping[str, Sequence[float]] | None = None,
) -> dict[str, float]:
    """Per head, the lexical weight with the lowest validation negative log-likelihood (ties: smaller weight).

    Log-likelihood rather than accuracy: on a few hundred validation tickets accuracy is a step function that a
    weight can win by a handful of lucky examples (a noisy head then gets a large lexical weight that hurts on
    test); the likelihood scores every example's probability and is the proper rule for fitting a pooling weight,
    as it is for the temperature.
    """
    out = {}
    for h in heads:
        y = targets[h.name]
        keep = np.ones(len(y), bool) if h.multilabel else y >= 0
        if not keep.any():
            out[h.name] = 0.0
            continue
        best = None
        for w in WEIGHTS:
            z = fuse(h, neural[h.name][keep], lexical[h.name][keep], float(w), (scales or {}).get(h.name))
            key = (round(_nll(h, z, y[keep]), 9), w)
            best = key if best is None or key < best else best
        out[h.name] = float(best[1])
    return out


@lru_cache(maxsize=1)
def _lexical_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(1, thread_name_prefix="triagekit-lexical")


class HybridBackend:
    """An encoder backend and a TF-IDF backend pooled with per-head weights; same ``logits`` protocol."""

    def __init__(
        self, neural, lexical, weights: Mapping[str, float], scales: Mapping[str, Sequence[float]] | None = None
    ):
        self.neural, self.lexical, self.weights = neural, lexical, dict(weights)
        self.scales = dict(scales or {})
        self.heads = neural.heads

    @classmethod
    def load(
        cls, neural, path: Path, weights: Mapping[str, float], scales: Mapping[str, Sequence[float]] | None = None
    ) -> "HybridBackend":
        from triagekit.route.tfidf import TfidfBackend

        return cls(neural, TfidfBackend.load(path / LEXICAL_DIR), weights, scales)

    def logits(self, texts: list[str], batch_size: int = 64) -> dict[str, np.ndarray]:
        return self._pool(texts, lambda: self.neural.logits(texts, batch_size=batch_size))

    def outputs(self, texts: list[str], batch_size: int = 64) -> dict[str, np.ndarray]:
        """The pooled logits plus whatever else the neural backend gives (its pooled features)."""
        run = getattr(self.neural, "outputs", self.neural.logits)
        return self._pool(texts, lambda: dict(run(texts, batch_size=batch_size)))

    def _pool(self, texts: list[str], neural) -> dict[str, np.ndarray]:
        """``neural()``'s outputs with each pooled head's logits replaced by the pool with the lexical half."""
        pooled = [h.name for h in self.heads if self.weights.get(h.name, 0.0)]
        if not pooled:
            return neural()
        # Only the heads with a non-zero weight need their lexical logits (the char n-gram features are shared).
        if os.environ.get(PARALLEL_ENV, "1") == "0":
            out = neural()
            z_l = self.lexical.logits(texts, heads=pooled)
        else:
            # The two halves side by side: the encoder's runtime releases the GIL while it computes, so the
            # TF-IDF half (pure CPU in Python and scipy, ~1.8 ms for one ticket) runs meanwhile on another core
            # instead of after it; one ticket's latency becomes the longer half, not the sum.
            lexical = _lexical_pool().submit(self.lexical.logits, texts, heads=pooled)
            out = neural()
            z_l = lexical.result()
        return {
            **out,
            **{
                h.name: fuse(h, out[h.name], z_l[h.name], self.weights[h.name], self.scales.get(h.name))
                for h in self.heads
                if h.name in z_l
            },
        }
