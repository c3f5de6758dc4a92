"""Text similarity for generated answers: ROUGE-L (longest common subsequence) and sentence-embedding cosine.

ROUGE-L follows the definition of Lin (2004) as implemented by Google's ``rouge-score`` (lower-cased
alphanumeric tokens, F-measure of LCS precision and recall), without stemming; it is a plain dynamic programme
here so no extra package is needed. Embedding similarity uses the embedded all-MiniLM-L6-v2 (mean pooling over
real tokens, L2-normalised), so it runs offline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

__all__ = ["tokenize", "lcs_length", "rouge_l", "RougeL", "Embedder", "embedding_similarity"]

_TOKEN = re.compile(r"[^\W_]+")  # letters and digits of any script; punctuation and underscores split tokens


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens (letters and digits, any script), as ROUGE compares them."""
    return _TOKEN.findall(text.lower())


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists (O(len(a)·len(b)) time, O(len(b)) memory)."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


@dataclass(frozen=True)
class RougeL:
    """ROUGE-L of one candidate against one reference."""

    precision: float
    """LCS length / candidate length."""
    recall: float
    """LCS length / reference length."""
    f1: float
    """Harmonic mean of precision and recall (0 when either is 0)."""


def rouge_l(candidate: str, reference: str) -> RougeL:
    """ROUGE-L precision, recall and F1 of ``candidate`` against ``reference`` (0 for an empty side)."""
    cand, ref = tokenize(candidate), tokenize(reference)
    lcs = lcs_length(cand, ref)
    if lcs == 0:
        return RougeL(0.0, 0.0, 0.0)
    p, r = lcs / len(cand), lcs / len(ref)
    return RougeL(p, r, 2 * p * r / (p + r))


class Embedder:
    """Sentence embeddings by mean pooling a Hugging Face encoder (default: the embedded MiniLM).

    Args:
        model: a local path or HF id; None means :func:`triagekit.core.backbones.minilm_path`.
        max_length: tokens kept per text.
        batch_size: texts per forward pass.
    """

    def __init__(self, model: str | Path | None = None, max_length: int = 256, batch_size: int = 32):
        from transformers import AutoModel, AutoTokenizer

        if model is None:
            from triagekit.core.backbones import minilm_path

            model = minilm_path()
        self.tokenizer = AutoTokenizer.from_pretrained(str(model))
        self.model = AutoModel.from_pretrained(str(model)).eval()
        self.max_length, self.batch_size = max_length, batch_size

    def encode(self, texts: Sequence[str]):
        """A float32 array (n, dim) of unit-length embeddings; an empty text embeds its special tokens only."""
        import numpy as np
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    [t or "" for t in texts[i : i + self.batch_size]],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
                out.append(torch.nn.functional.normalize(mean, dim=-1).float().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.model.config.hidden_size), dtype="float32")

    def similarity(self, a: Sequence[str], b: Sequence[str]) -> list[float]:
        """Cosine similarity of ``a[i]`` and ``b[i]`` for every i.

        Raises:
            ValueError: if the two lists differ in length.
        """
        if len(a) != len(b):
            raise ValueError(f"need pairs of texts, got {len(a)} and {len(b)}")
        emb = self.encode(list(a) + list(b))
        return [float(x) for x in (emb[: len(a)] * emb[len(a) :]).sum(axis=1)]


_DEFAULT: Embedder | None = None


def embedding_similarity(a: Sequence[str], b: Sequence[str], embedder: Embedder | None = None) -> list[float]:
    """Pairwise cosine similarity with ``embedder`` (the embedded MiniLM, loaded once, when None)."""
    global _DEFAULT
    if embedder is None:
        _DEFAULT = _DEFAULT or Embedder()
        embedder = _DEFAULT
    return embedder.similarity(a, b)
