"""Calibration math on synthetic data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from triagekit.route.calibration import (
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
    selective_curve,
    sigmoid,
    softmax,
    threshold_for_precision,
)


def _sample_labels(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One class per row drawn from that row's probabilities."""
    u = rng.random((len(probs), 1))
    return np.minimum((probs.cumsum(axis=1) < u).sum(axis=1), probs.shape[1] - 1)


def test_softmax_sigmoid_are_stable():
    p = softmax(np.array([[1000.0, 0.0, -1000.0], [-1e4, -1e4, -1e4]]))
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert p[0, 0] == pytest.approx(1.0)
    np.testing.assert_allclose(softmax(np.array([[2.0, 0.0]]), temperature=2.0), softmax(np.array([[1.0, 0.0]])))
    s = sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_allclose(s, [0.0, 0.5, 1.0])
    assert sigmoid(np.array([4.0]), temperature=2.0)[0] == pytest.approx(sigmoid(np.array([2.0]))[0])


@pytest.mark.parametrize("t0", [0.5, 2.0])
def test_fit_temperature_recovers_known_temperature(t0):
    rng = np.random.default_rng(0)
    z = rng.normal(scale=3.0, size=(6000, 5))
    y = _sample_labels(softmax(z / t0), rng)
    assert fit_temperature(z, y) == pytest.approx(t0, rel=0.1)


def test_fit_temperature_multilabel_recovers_known_temperature():
    rng = np.random.default_rng(1)
    z = rng.normal(scale=4.0, size=(3000, 4))
    y = (rng.random(z.shape) < sigmoid(z / 2.5)).astype(int)
    assert fit_temperature(z, y, multilabel=True) == pytest.approx(2.5, rel=0.1)


def test_fit_temperature_degenerate_inputs_return_one():
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0, dtype=int)) == 1.0
    assert fit_temperature(np.ones((5, 3)), np.zeros(5, dtype=int)) == 1.0  # a single observed class
    assert fit_temperature(np.ones((5, 1)), np.array([0, 0, 0, 0, 0])) == 1.0
    assert fit_temperature(np.ones((4, 2)), np.ones((4, 2)), multilabel=True) == 1.0


def test_ece_small_when_calibrated_large_when_overconfident_and_fixed_by_temperature():
    rng = np.random.default_rng(2)
    z = rng.normal(scale=2.0, size=(8000, 4))
    y = _sample_labels(softmax(z), rng)
    assert expected_calibration_error(softmax(z), y) < 0.03
    overconfident = 4.0 * z  # same ranking, far too sharp
    before = expected_calibration_error(softmax(overconfident), y)
    assert before > 0.15
    t = fit_temperature(overconfident, y)
    assert t == pytest.approx(4.0, rel=0.1)
    assert expected_calibration_error(softmax(overconfident, t), y) < 0.03


def test_ece_multilabel_pairs():
    probs = np.array([[0.9, 0.1], [0.8, 0.3]])
    y = np.array([[1, 0], [1, 1]])
    # Pair confidences 0.9, 0.9, 0.8, 0.7 with correctness 1, 1, 1, 0 (the 0.3 pair predicts "absent").
    bins = reliability_bins(probs, y, n_bins=10)
    assert bins["count"].sum() == 4
    expected = (2 * abs(1 - 0.9) + abs(1 - 0.8) + abs(0 - 0.7)) / 4
    assert expected_calibration_error(probs, y, n_bins=10) == pytest.approx(expected)


def test_reliability_bins_shape_and_edges():
    probs = np.array([[1.0, 0.0], [0.5, 0.5], [0.7, 0.3]])
    bins = reliability_bins(probs, np.array([0, 1, 0]), n_bins=5)
    assert len(bins["bin_edges"]) == 6 and len(bins["count"]) == 5
    assert bins["count"].tolist() == [0, 0, 1, 1, 1]  # 0.5 -> (0.4, 0.6], 0.7 -> (0.6, 0.8], 1.0 -> last bin
    assert np.isnan(bins["accuracy"][0])


def test_selective_curve_sorted_and_groups_ties():
    curve = selective_curve([0.2, 0.9, 0.9, 0.5], [False, True, False, True])
    np.testing.assert_allclose(curve["threshold"], [0.9, 0.5, 0.2])
    np.testing.assert_allclose(curve["coverage"], [0.5, 0.75, 1.0])
    np.testing.assert_allclose(curve["accuracy"], [0.5, 2 / 3, 0.5])


def test_threshold_for_precision_hand_cases():
    conf = [0.95, 0.9, 0.8, 0.7, 0.6, 0.5]
    correct = [True, True, True, False, True, False]
    assert threshold_for_precision(conf, correct, 1.0) == pytest.approx(0.8)
    # At 0.6 the accepted are 4 right out of 5 = 0.8 >= 0.8: the smallest qualifying threshold wins.
    assert threshold_for_precision(conf, correct, 0.8) == pytest.approx(0.6)
    assert threshold_for_precision(conf, correct, 0.5) == pytest.approx(0.5)
    assert threshold_for_precision([0.9, 0.8], [False, False], 0.5) is None
    assert threshold_for_precision([0.9, 0.8], [False, True], 0.9) is None
    assert threshold_for_precision([], [], 0.9) is None
