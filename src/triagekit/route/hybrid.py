"""Hybrid routing: the fine-tuned encoder's log-probabilities plus a weighted TF-IDF term, per head.

Lexical n-grams (product names, error codes, fixed phrases) and a sentence encoder make different mistakes, so a
log-linear pool of the two beats either alone. The weight of the lexical term is fitted on validation per head
(0 turns it off), and the pooled logits are then temperature-calibrated like any other router's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from triagekit.route.heads import HeadSpec

__all__ = ["HybridBackend", "fuse", "fit_fusion_weights", "LEXICAL_DIR"]

LEXICAL_DIR = "lexical"
WEIGHTS = np.round(np.arange(0.0, 1.51, 0.1), 2)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def fuse(head: HeadSpec, neural: np.ndarray, lexical: np.ndarray, weight: float) -> np.ndarray:
    """Pooled logits: log p_neural + w * log p_lexical (single-label), or logit sums (multi-label)."""
    if weight == 0:
        return neural
    if head.multilabel:
        return neural + weight * lexical
    return _log_softmax(neural) + weight * _log_softmax(lexical)


def _nll(head: HeadSpec, z: np.ndarray, y: np.ndarray) -> float:
    if head.multilabel:
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))
        return float(-np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12)))
    return float(-np.mean(_log_softmax(z)[np.arange(len(y)), y]))


def fit_fusion_weights(
    heads: list[HeadSpec],
    neural: Mapping[str, np.ndarray],
    lexical: Mapping[str, np.ndarray],
    targets: Mapping[str, np.ndarray],
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
            z = fuse(h, neural[h.name][keep], lexical[h.name][keep], float(w))
            key = (round(_nll(h, z, y[keep]), 9), w)
            best = key if best is None or key < best else best
        out[h.name] = float(best[1])
    return out


class HybridBackend:
    """An encoder backend and a TF-IDF backend pooled with per-head weights; same ``logits`` protocol."""

    def __init__(self, neural, lexical, weights: Mapping[str, float]):
        self.neural, self.lexical, self.weights = neural, lexical, dict(weights)
        self.heads = neural.heads

    @classmethod
    def load(cls, neural, path: Path, weights: Mapping[str, float]) -> "HybridBackend":
        from triagekit.route.tfidf import TfidfBackend

        return cls(neural, TfidfBackend.load(path / LEXICAL_DIR), weights)

    def logits(self, texts: list[str], batch_size: int = 64) -> dict[str, np.ndarray]:
        return self._pool(texts, self.neural.logits(texts, batch_size=batch_size))

    def outputs(self, texts: list[str], batch_size: int = 64) -> dict[str, np.ndarray]:
        """The pooled logits plus whatever else the neural backend gives (its pooled features)."""
        out = dict(getattr(self.neural, "outputs", self.neural.logits)(texts, batch_size=batch_size))
        return {**out, **self._pool(texts, {h.name: out[h.name] for h in self.heads})}

    def _pool(self, texts: list[str], z_n: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        pooled = [h.name for h in self.heads if self.weights.get(h.name, 0.0)]
        if not pooled:
            return z_n
        # Only the heads with a non-zero weight need their lexical logits (the char n-gram features are shared).
        z_l = self.lexical.logits(texts, heads=pooled)
        return {
            h.name: fuse(h, z_n[h.name], z_l[h.name], self.weights[h.name]) if h.name in z_l else z_n[h.name]
            for h in self.heads
        }
