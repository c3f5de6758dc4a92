"""objective: macro_f1 | accuracy, the post-hoc prior correction and the tuned TF-IDF baseline."""

import numpy as np
import pytest

from triagekit.route.config import TrainConfig
from triagekit.route.heads import HeadSpec
from triagekit.route.objective import apply_bias, fit_prior_correction, head_scores


def _skewed(n=600, seed=0):
    """A 3-class head with 80/15/5 % priors whose logits favour the frequent class: argmax misses the rare ones."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=[0.8, 0.15, 0.05])
    z = rng.normal(size=(n, 3))
    z[np.arange(n), y] += 1.5
    z += np.log([0.8, 0.15, 0.05])  # what a prior-matched classifier adds
    return z, y


def test_prior_correction_raises_macro_f1_and_is_applied_as_a_bias():
    head = HeadSpec("queue", ["a", "b", "c"])
    z_val, y_val = _skewed(seed=0)
    z_test, y_test = _skewed(seed=1)
    fitted = fit_prior_correction([head], {"queue": z_val}, {"queue": y_val}, {"queue": y_val}, "macro_f1")["queue"]
    assert fitted["tau"] > 0 and fitted["val_after"] > fitted["val_before"]
    calibration = {"queue": {"logit_bias": fitted["logit_bias"]}}
    before = head_scores([head], {"queue": z_test}, {"queue": y_test})["queue"]
    after = head_scores([head], apply_bias({"queue": z_test}, calibration), {"queue": y_test})["queue"]
    assert after > before + 0.02  # it carries over to data it was not fitted on


def test_accuracy_objective_keeps_the_bayes_classifier():
    """Logits that are the exact log posteriors already maximise accuracy: no correction is fitted."""
    rng = np.random.default_rng(0)
    prior = np.array([0.8, 0.15, 0.05])
    y = rng.choice(3, size=5000, p=prior)
    x = rng.normal(size=5000) + 1.5 * y  # class-conditional N(1.5 k, 1)
    z = -0.5 * (x[:, None] - 1.5 * np.arange(3)) ** 2 + np.log(prior)
    head = HeadSpec("queue", ["a", "b", "c"])
    fitted = fit_prior_correction([head], {"queue": z}, {"queue": y}, {"queue": y}, "accuracy")["queue"]
    assert fitted["tau"] == 0 and fitted["logit_bias"] is None
    assert fit_prior_correction([head], {"queue": z}, {"queue": y}, {"queue": y}, "macro_f1")["queue"]["tau"] > 0


def test_bad_objective_is_refused():
    with pytest.raises(ValueError, match="objective must be one of"):
        TrainConfig(objective="f2")


def test_tuned_tfidf_baseline_chooses_C_on_validation(prepared):
    from triagekit.data import load_prepared
    from triagekit.route.heads import heads_from_rows
    from triagekit.route.tfidf import C_GRID, TfidfBackend

    splits = load_prepared(prepared)
    heads = heads_from_rows(splits["train"], ["queue", "priority"], [])
    tuned = TfidfBackend.baseline(splits["train"], heads, ["subject", "body"], val_rows=splits["val"])
    assert set(tuned.chosen_C) == {"queue", "priority"} and all(c in C_GRID for c in tuned.chosen_C.values())
    assert tuned.models["queue"].class_weight == "balanced"
    fixed = TfidfBackend().fit(splits["train"], heads, ["subject", "body"], C=10.0)
    assert fixed.chosen_C == {"queue": 10.0, "priority": 10.0} and fixed.models["queue"].class_weight is None


def test_training_stores_the_correction_and_serves_it(prepared, tmp_path):
    """A TF-IDF run with the prior correction: router.json keeps the bias, and Router.logits applies it."""
    from rich.console import Console

    from triagekit.data import load_prepared
    from triagekit.route.router import Router
    from triagekit.route.train import train

    cfg = TrainConfig(backbone="tfidf", labels=["priority"], multilabel=[], tfidf_C=10.0, objective="macro_f1")
    train(cfg, prepared, tmp_path / "run", console=Console(quiet=True))
    router = Router.load(tmp_path / "run")
    cal = router.calibration["priority"]
    assert "prior_tau" in cal and "temperature" in cal
    rows = load_prepared(prepared)["test"][:20]
    raw = router.backend.logits(router.texts(rows))["priority"]
    expected = raw + (np.asarray(cal["logit_bias"]) if cal["logit_bias"] is not None else 0.0)
    np.testing.assert_allclose(router.logits(rows)["priority"], expected)
    router.set_calibration(tmp_path / "run", {"priority": {"temperature": 2.0, "review_threshold": 0.5}})
    assert Router.load(tmp_path / "run").calibration["priority"]["prior_tau"] == cal["prior_tau"]  # kept
