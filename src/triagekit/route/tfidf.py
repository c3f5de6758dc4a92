"""TF-IDF + logistic regression: the cheap baseline every evaluation report compares against.

It follows the router protocol (``heads``, ``text_fields``, ``logits``) so ``evaluate`` treats it like a
fine-tuned model: raw logits per head whose softmax (single-label) or sigmoid (multi-label) gives back the
classifier's probabilities.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Collection, Sequence

import joblib
import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion

from triagekit.core.features import tfidf_features
from triagekit.route.heads import DEFAULT_TEXT_FIELDS, HeadSpec, build_text, row_targets

__all__ = ["TfidfBackend", "C_GRID", "BASELINE", "baseline_key"]

FILENAME = "tfidf.joblib"
C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0)
"""Inverse regularisation strengths tried per head when ``C`` is chosen on validation (``C=None``)."""
UNSEEN_LOGIT = -1e4
"""Logit of a class the head knows but training never showed: its probability is exactly 0."""
EPS = 1e-12
MAX_ITER = 2000
"""lbfgs iterations of every logistic regression."""
BASELINE = {"C": None, "class_weight": "balanced", "objective": "macro_f1", "seed": 0}
"""The ``fit`` settings of ``TfidfBackend.baseline`` (and what ``baseline_key`` fingerprints)."""
FIT_THREADS = 2
"""Most classifier fits run at once (more gained nothing measurable on 2 cores)."""


def baseline_key(
    rows: Sequence[dict], val_rows: Sequence[dict] | None, heads: Sequence[HeadSpec], text_fields: Sequence[str]
) -> str:
    """Fingerprint of what ``TfidfBackend.baseline`` fits: its settings, the heads, the text fields and every row.

    A hybrid run whose TF-IDF half was fitted with the baseline's settings stores it (``router.json``,
    ``lexical.baseline_key``):
    evaluating that run on the same train and validation rows reuses the half as the baseline instead of fitting
    the identical model again (the C search is most of a small evaluation: 15 of 22 s in the demo's).
    """
    digest = hashlib.sha256()
    settings = {**BASELINE, "C_GRID": C_GRID, "max_iter": MAX_ITER}
    head_info = [h.to_dict() for h in heads]
    digest.update(json.dumps([settings, head_info, list(text_fields)], sort_keys=True).encode())
    for part in (rows, val_rows or []):
        digest.update(b"\0split")
        for row in part:
            digest.update(json.dumps(row, sort_keys=True, default=str).encode() + b"\n")
    return digest.hexdigest()


class TfidfBackend:
    """Word + character TF-IDF features shared by all heads, and one logistic regression per head."""

    def __init__(self) -> None:
        self.heads: list[HeadSpec] = []
        self.text_fields: list[str] = list(DEFAULT_TEXT_FIELDS)
        self.features: FeatureUnion | None = None
        self.models: dict[str, Any] = {}
        self._stacked: dict[str, Any] = {}
        """Per multi-label head, its tag classifiers stacked into one matrix (built on first use)."""
        self.chosen_C: dict[str, float | None] = {}
        """Per single-label head, the C its classifier was fitted with (chosen on validation when asked)."""

    def fit(
        self,
        rows: list[dict],
        heads: list[HeadSpec],
        text_fields: Sequence[str] = DEFAULT_TEXT_FIELDS,
        seed: int = 0,
        C: float | None = 10.0,
        class_weight: str | None = None,
        val_rows: list[dict] | None = None,
        objective: str = "macro_f1",
    ) -> "TfidfBackend":
        """Fit the features on all rows and each head's classifier on the rows labelled for it.

        Args:
            rows: Training rows (dicts with the text fields and the label fields).
            heads: The heads to predict; their ``labels`` fix the output column order.
            text_fields: Fields joined into the model input (see ``build_text``).
            seed: Random state of the classifiers.
            C: Inverse L2 regularisation strength of every logistic regression; None chooses it per single-label
                head from ``C_GRID`` by the validation ``objective`` (needs ``val_rows``; 10 without them).
            class_weight: ``"balanced"`` weights each class by inverse frequency (what macro-F1 rewards).
            val_rows: Validation rows for the choice of C; never the test split.
            objective: ``macro_f1`` or ``accuracy``: what the choice of C maximises.

        Returns:
            self.
        """
        from threadpoolctl import threadpool_limits

        # One BLAS thread: lbfgs on sparse TF-IDF gains nothing from more, and on shared busy cores (load 13 on 2)
        # the threaded BLAS made one fit 7x slower (8.5 s vs 1.2 s for 480 tickets).
        with threadpool_limits(limits=1, user_api="blas"):
            return self._fit(rows, heads, text_fields, seed, C, class_weight, val_rows, objective)

    def _fit(self, rows, heads, text_fields, seed, C, class_weight, val_rows, objective) -> "TfidfBackend":
        self.heads = [HeadSpec.from_dict(h.to_dict()) for h in heads]
        self.text_fields = list(text_fields)
        self.features = tfidf_features()
        x = self.features.fit_transform([build_text(r, self.text_fields) for r in rows])
        x_val = self._transform([build_text(r, self.text_fields) for r in val_rows]) if C is None and val_rows else None
        self.models, self._stacked, self.chosen_C = {}, {}, {}
        # Every (head, C) fit is independent: they run on a thread pool (lbfgs on sparse features holds the GIL
        # only part of the time: 10.4 -> 8.1 s for the demo's 15 fits on 2 cores) and are chosen in grid order, so
        # the result is the serial one.
        multi, single = {}, {}
        with ThreadPoolExecutor(max_workers=max(1, min(FIT_THREADS, os.cpu_count() or 1))) as pool:
            for head in self.heads:
                if head.multilabel:
                    multi[head.name] = pool.submit(self._fit_multi, x, rows, head, seed, C or 10.0)
                    continue
                y = row_targets(rows, [head])[head.name]
                keep = np.flatnonzero(y >= 0)
                if len(np.unique(y[keep])) < 2:
                    # Nothing to discriminate: remember the only class seen (or none) instead of failing.
                    self.models[head.name] = {"constant": int(y[keep][0]) if len(keep) else None}
                    self.chosen_C[head.name] = None
                    continue
                grid = C_GRID if C is None and x_val is not None else (C or 10.0,)
                x_head = x[keep]
                single[head.name] = [
                    pool.submit(self._fit_single, x_head, y[keep], c, seed, class_weight) for c in grid
                ]
            for head in self.heads:
                if head.name in multi:
                    self.models[head.name] = multi[head.name].result()
                elif head.name in single:
                    fitted = [job.result() for job in single[head.name]]
                    val = (x_val, row_targets(val_rows, [head])[head.name]) if len(fitted) > 1 else None
                    self.models[head.name], self.chosen_C[head.name] = self._choose(fitted, val, objective)
        return self

    @classmethod
    def baseline(
        cls,
        rows: list[dict],
        heads: list[HeadSpec],
        text_fields: Sequence[str] = DEFAULT_TEXT_FIELDS,
        val_rows: list[dict] | None = None,
        seed: int = 0,
    ) -> "TfidfBackend":
        """The tuned baseline every comparison shows: class-balanced, C chosen per head on validation macro-F1.

        This is what a careful engineer would put up against a fine-tuned model; an unweighted C = 10 model
        loses 3-5 macro-F1 points on the minority classes of real tickets and would flatter the router.
        """
        return cls().fit(rows, heads, text_fields, val_rows=val_rows, **{**BASELINE, "seed": seed})

    @staticmethod
    def _fit_single(x, y, c: float, seed: int, class_weight):
        return LogisticRegression(C=c, max_iter=MAX_ITER, random_state=seed, class_weight=class_weight).fit(x, y)

    @staticmethod
    def _choose(models: Sequence[LogisticRegression], val, objective: str):
        """The model (and its C) of the grid with the best ``objective`` on ``val`` (ties: the earlier, smaller
        C), or the only one."""
        from sklearn.metrics import accuracy_score, f1_score

        if val is None or not (val[1] >= 0).any():
            return models[0], float(models[0].C)  # nothing to choose on: the first (smallest) C, as before
        x_val, y_val = val
        ok = y_val >= 0
        best = None
        for model in models:
            pred = model.predict(x_val[np.flatnonzero(ok)])
            if objective == "macro_f1":
                score = f1_score(y_val[ok], pred, average="macro", zero_division=0)
            else:
                score = accuracy_score(y_val[ok], pred)
            if best is None or score > best[0] + 1e-9:
                best = (score, model)
        return best[1], float(best[1].C)

    @staticmethod
    def _fit_multi(x, rows, head: HeadSpec, seed: int, C: float):
        y = row_targets(rows, [head])[head.name].astype(np.int64)
        if y.shape[1] == 0:
            return None
        with warnings.catch_warnings():
            # A tag always or never present gets a constant predictor (probability 1 or 0); that is intended.
            warnings.filterwarnings("ignore", message="Label .* is present in all training examples")
            warnings.filterwarnings("ignore", message="Label not .* is present in all training examples")
            return OneVsRestClassifier(LogisticRegression(C=C, max_iter=MAX_ITER, random_state=seed)).fit(x, y)

    def logits(
        self, inputs: list[str | dict], batch_size: int = 64, heads: Collection[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Raw logits per head name, shape (n, len(head.labels)), columns in ``head.labels`` order.

        Single-label heads return ``log(proba)`` (softmax gives the probabilities back; classes unseen in
        training get -1e4), multi-label heads ``logit(proba)``.

        Args:
            inputs: Texts or row dicts.
            batch_size: Unused; part of the router protocol. Sparse features are cheap to compute in one pass.
            heads: Names of the heads to compute (default all); the hybrid router skips heads it weights 0.
        """
        if self.features is None:
            raise RuntimeError("TfidfBackend is not fitted; call fit() or TfidfBackend.load() first")
        wanted = [h for h in self.heads if heads is None or h.name in heads]
        if len(inputs) == 0:  # sklearn rejects empty matrices
            return {h.name: np.zeros((0, len(h.labels))) for h in wanted}
        if not wanted:
            return {}
        x = self._transform([build_text(r, self.text_fields) for r in inputs])
        return {h.name: self._head_logits(x, h) for h in wanted}

    def _transform(self, texts: list[str]):
        # FeatureUnion.transform dispatches through joblib even with n_jobs=None (~0.4 ms per call, a third of
        # the featurisation of one ticket); stacking the parts directly gives the same matrix.
        f = self.features
        parts = f.transformer_list
        if f.transformer_weights or any(t in ("drop", "passthrough") for _, t in parts):
            return f.transform(texts)
        return sp.hstack([t.transform(texts) for _, t in parts], format="csr")

    def _head_logits(self, x, head: HeadSpec) -> np.ndarray:
        model = self.models[head.name]
        n = x.shape[0]
        if head.multilabel:
            if model is None:
                return np.zeros((n, 0))
            p = np.clip(self._tag_proba(head.name, model, x), EPS, 1.0 - EPS)
            return np.log(p) - np.log1p(-p)
        out = np.full((n, len(head.labels)), UNSEEN_LOGIT)
        if isinstance(model, dict):
            if model["constant"] is not None:
                out[:, model["constant"]] = 0.0
            return out
        out[:, model.classes_] = np.log(np.clip(model.predict_proba(x), EPS, 1.0))
        return out

    def _tag_proba(self, name: str, model, x) -> np.ndarray:
        """``model.predict_proba(x)`` of a one-vs-rest tag model, as one sparse-dense product.

        ``OneVsRestClassifier`` calls each tag's classifier in turn; with ~40 tags that is ~6 ms for a single
        ticket, almost all of it per-call validation. The binary logistic regressions are stacked once into one
        weight matrix (constant tags keep their constant), which gives the same probabilities in ~0.1 ms.
        """
        stacked = self._stacked.get(name)
        if stacked is None:
            stacked = self._stacked[name] = _stack_one_vs_rest(model)
        if stacked is False:
            return model.predict_proba(x)
        weights, intercept, constant, is_constant = stacked
        p = expit(np.asarray(x @ weights) + intercept)
        return np.where(is_constant, constant, p)

    def save(self, directory: str | Path) -> Path:
        """Write the fitted backend to ``directory/tfidf.joblib`` and return that path."""
        path = Path(directory) / FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "heads": [h.to_dict() for h in self.heads],
            "text_fields": self.text_fields,
            "features": self.features,
            "models": self.models,
            "chosen_C": self.chosen_C,
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
        self.chosen_C = state.get("chosen_C", {})
        return self


def _stack_one_vs_rest(model) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | bool:
    """(weights (features x tags), intercepts, constant probabilities, which tags are constant) of a multi-label
    ``OneVsRestClassifier`` of binary logistic regressions; False when it is anything else."""
    estimators = getattr(model, "estimators_", None)
    if not getattr(model, "multilabel_", False) or not estimators or len(estimators) < 2:
        return False
    n_features = next((e.coef_.shape[1] for e in estimators if isinstance(e, LogisticRegression)), None)
    if n_features is None:
        return False
    weights = np.zeros((n_features, len(estimators)))
    intercept, constant = np.zeros(len(estimators)), np.zeros(len(estimators))
    is_constant = np.zeros(len(estimators), dtype=bool)
    for j, e in enumerate(estimators):
        if isinstance(e, LogisticRegression) and e.coef_.shape == (1, n_features) and len(e.classes_) == 2:
            weights[:, j], intercept[j] = e.coef_[0], e.intercept_[0]
        elif hasattr(e, "y_"):  # sklearn's _ConstantPredictor: a tag always or never present in training
            is_constant[j], constant[j] = True, float(np.ravel(e.y_)[0])
        else:
            return False
    return weights, intercept, constant, is_constant
