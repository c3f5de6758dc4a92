"""TF-IDF + logistic regression: the cheap baseline every evaluation report compares against.

It follows the router protocol (``heads``, ``text_fields``, ``logits``) so ``evaluate`` treats it like a
fine-tuned model: raw logits per head whose softmax (single-label) or sigmoid (multi-label) gives back the
classifier's probabilities.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Sequence

import joblib
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion

from triagekit.heads import DEFAULT_TEXT_FIELDS, HeadSpec, build_text, row_targets

__all__ = ["TfidfBackend"]

FILENAME = "tfidf.joblib"
UNSEEN_LOGIT = -1e4
"""Logit of a class the head knows but training never showed: its probability is exactly 0."""
EPS = 1e-12


def _features() -> FeatureUnion:
    # Word n-grams carry the topic; char_wb n-grams survive typos, inflection and unseen compounds.
    return FeatureUnion(
        [
            ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, min_df=1)),
            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=1)),
        ]
    )


class TfidfBackend:
    """Word + character TF-IDF features shared by all heads, and one logistic regression per head."""

    def __init__(self) -> None:
        self.heads: list[HeadSpec] = []
        self.text_fields: list[str] = list(DEFAULT_TEXT_FIELDS)
        self.features: FeatureUnion | None = None
        self.models: dict[str, Any] = {}

    def fit(
        self,
        rows: list[dict],
        heads: list[HeadSpec],
        text_fields: Sequence[str] = DEFAULT_TEXT_FIELDS,
        seed: int = 0,
        C: float = 10.0,
    ) -> "TfidfBackend":
        """Fit the features on all rows and each head's classifier on the rows labelled for it.

        Args:
            rows: Training rows (dicts with the text fields and the label fields).
            heads: The heads to predict; their ``labels`` fix the output column order.
            text_fields: Fields joined into the model input (see ``build_text``).
            seed: Random state of the classifiers.
            C: Inverse L2 regularisation strength of every logistic regression.

        Returns:
            self.
        """
        self.heads = [HeadSpec.from_dict(h.to_dict()) for h in heads]
        self.text_fields = list(text_fields)
        self.features = _features()
        x = self.features.fit_transform([build_text(r, self.text_fields) for r in rows])
        self.models = {}
        for head in self.heads:
            fit = self._fit_multi if head.multilabel else self._fit_single
            self.models[head.name] = fit(x, rows, head, seed, C)
        return self

    @staticmethod
    def _fit_single(x, rows, head: HeadSpec, seed: int, C: float):
        y = row_targets(rows, [head])[head.name]
        keep = np.flatnonzero(y >= 0)
        y = y[keep]
        if len(np.unique(y)) < 2:
            # Nothing to discriminate: remember the only class seen (or none) instead of failing.
            return {"constant": int(y[0]) if len(y) else None}
        return LogisticRegression(C=C, max_iter=2000, random_state=seed).fit(x[keep], y)

    @staticmethod
    def _fit_multi(x, rows, head: HeadSpec, seed: int, C: float):
        y = row_targets(rows, [head])[head.name].astype(np.int64)
        if y.shape[1] == 0:
            return None
        with warnings.catch_warnings():
            # A tag always or never present gets a constant predictor (probability 1 or 0); that is intended.
            warnings.filterwarnings("ignore", message="Label .* is present in all training examples")
            warnings.filterwarnings("ignore", message="Label not .* is present in all training examples")
            return OneVsRestClassifier(LogisticRegression(C=C, max_iter=2000, random_state=seed)).fit(x, y)

    def logits(self, inputs: list[str | dict], batch_size: int = 64) -> dict[str, np.ndarray]:
        """Raw logits per head name, shape (n, len(head.labels)), columns in ``head.labels`` order.

        Single-label heads return ``log(proba)`` (softmax gives the probabilities back; classes unseen in
        training get -1e4), multi-label heads ``logit(proba)``.

        Args:
            inputs: Texts or row dicts.
            batch_size: Unused; part of the router protocol. Sparse features are cheap to compute in one pass.
        """
        if self.features is None:
            raise RuntimeError("TfidfBackend is not fitted; call fit() or TfidfBackend.load() first")
        if len(inputs) == 0:  # sklearn rejects empty matrices
            return {h.name: np.zeros((0, len(h.labels))) for h in self.heads}
        x = self.features.transform([build_text(r, self.text_fields) for r in inputs])
        return {h.name: self._head_logits(x, h) for h in self.heads}

    def _head_logits(self, x, head: HeadSpec) -> np.ndarray:
        model = self.models[head.name]
        n = x.shape[0]
        if head.multilabel:
            if model is None:
                return np.zeros((n, 0))
            p = np.clip(model.predict_proba(x), EPS, 1.0 - EPS)
            return np.log(p) - np.log1p(-p)
        out = np.full((n, len(head.labels)), UNSEEN_LOGIT)
        if isinstance(model, dict):
            if model["constant"] is not None:
                out[:, model["constant"]] = 0.0
            return out
        out[:, model.classes_] = np.log(np.clip(model.predict_proba(x), EPS, 1.0))
        return out

    def save(self, directory: str | Path) -> Path:
        """Write the fitted backend to ``directory/tfidf.joblib`` and return that path."""
        path = Path(directory) / FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "heads": [h.to_dict() for h in self.heads],
            "text_fields": self.text_fields,
            "features": self.features,
            "models": self.models,
        }
        joblib.dump(state, path)
        return path

    @classmethod
    def load(cls, directory: str | Path) -> "TfidfBackend":
        """Load a backend written by ``save`` (only load files you trust: joblib runs pickle)."""
        state = joblib.load(Path(directory) / FILENAME)
        self = cls()
        self.heads = [HeadSpec.from_dict(h) for h in state["heads"]]
        self.text_fields = list(state["text_fields"])
        self.features = state["features"]
        self.models = state["models"]
        return self
