"""Metrics on tiny hand-made examples."""

from __future__ import annotations

import numpy as np
import pytest

from triagekit.route.metrics import critical_recall, group_metrics, head_metrics, multilabel_metrics, top_k_accuracy

LABELS = ["billing", "tech", "sales"]
# Gold: billing, tech, tech, billing. Ranked predictions: rows 0 and 1 right, row 2 has gold second,
# row 3 has gold third.
Y = np.array([0, 1, 1, 0])
P = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.1, 0.8, 0.1],
        [0.5, 0.3, 0.2],
        [0.1, 0.3, 0.6],
    ]
)


def test_top_k_hand_example():
    assert top_k_accuracy(Y, P, 1) == pytest.approx(0.5)
    assert top_k_accuracy(Y, P, 2) == pytest.approx(0.75)
    assert top_k_accuracy(Y, P, 3) == pytest.approx(1.0)
    assert top_k_accuracy(Y, P, 10) == pytest.approx(1.0)  # capped at the number of classes


def test_head_metrics_with_label_absent_from_test_set():
    # "sales" never occurs in gold; it is predicted once (row 3), a false positive.
    m = head_metrics(Y, P, LABELS)
    assert m["n"] == 4
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["top_k_accuracy"] == {"1": 0.5, "2": 0.75, "3": 1.0}
    assert m["per_class"]["sales"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["per_class"]["billing"]["support"] == 2
    assert m["confusion_matrix"] == [[1, 0, 1], [1, 1, 0], [0, 0, 0]]
    assert "sales" in m["classification_report"]
    # billing F1 0.5, tech 2/3, sales 0 (predicted, never right): a predicted absent class does count.
    assert m["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0.0) / 3)


def test_head_metrics_class_never_seen_nor_predicted_does_not_drag_macro_f1():
    probs = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05]])
    m = head_metrics(np.array([0, 1]), probs, LABELS)
    assert m["macro_f1"] == pytest.approx(1.0)
    assert len(m["confusion_matrix"]) == 3


def test_head_metrics_empty():
    m = head_metrics(np.zeros(0, dtype=int), np.zeros((0, 3)), LABELS)
    assert m["n"] == 0 and m["accuracy"] == 0.0
    assert m["confusion_matrix"] == [[0, 0, 0]] * 3


def test_multilabel_metrics():
    y = np.array([[1, 0, 0], [0, 0, 0], [0, 1, 0]])
    p = np.array([[0.9, 0.1, 0.1], [0.1, 0.1, 0.1], [0.1, 0.2, 0.1]])
    m = multilabel_metrics(y, p, ["a", "b", "c"])
    assert m["subset_accuracy"] == pytest.approx(2 / 3)
    assert m["hamming_loss"] == pytest.approx(1 / 9)
    assert m["micro_f1"] == pytest.approx(2 / 3)  # tp=1, fp=0, fn=1
    assert m["samples_f1"] == pytest.approx(2 / 3)  # the empty/empty row counts as right
    assert m["macro_f1"] == pytest.approx(0.5)  # over a and b; c is neither gold nor predicted
    assert m["per_class"]["b"]["recall"] == 0.0 and m["per_class"]["c"]["support"] == 0


def test_group_metrics_per_language():
    g = group_metrics(Y, P, ["en", "de", "en", "de"])
    assert set(g) == {"de", "en"}
    assert g["en"]["n"] == 2 and g["en"]["accuracy"] == pytest.approx(0.5)
    assert g["de"]["accuracy"] == pytest.approx(0.5)


def test_critical_recall():
    r = critical_recall(Y, P, LABELS, ["tech", "sales", "unknown"])
    assert r == {"tech": pytest.approx(0.5), "sales": None, "unknown": None}
    y = np.array([[1, 0], [1, 1]])
    p = np.array([[0.9, 0.2], [0.3, 0.8]])
    assert critical_recall(y, p, ["a", "b"], ["a", "b"]) == {"a": 0.5, "b": 1.0}
