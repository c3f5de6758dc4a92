import json

import numpy as np

from triagekit.route.heads import HeadSpec
from triagekit.route.hybrid import HybridBackend, fit_fusion, fit_fusion_weights, fuse
from triagekit.route.router import Router


def test_weights_follow_the_better_model():
    rng = np.random.default_rng(0)
    head = HeadSpec("q", ["a", "b", "c"])
    y = rng.integers(0, 3, 400)
    good = np.eye(3)[y] * 4 + rng.normal(0, 1, (400, 3))
    noise = rng.normal(0, 1, (400, 3))
    assert fit_fusion_weights([head], {"q": noise}, {"q": good}, {"q": y})["q"] > 0.5
    assert fit_fusion_weights([head], {"q": good}, {"q": noise}, {"q": y})["q"] == 0.0


def test_convex_pool_uses_an_accurate_but_overconfident_lexical_model():
    # The class-balanced TF-IDF half is right more often but far too sure of itself: the earlier rule (weight on
    # its raw log-probabilities) switched it off; the convex pool scales each half on validation first.
    rng = np.random.default_rng(1)
    head = HeadSpec("q", ["a", "b", "c", "d"])
    y = rng.integers(0, 4, 600)
    weak = np.eye(4)[y] * 0.8 + rng.normal(0, 1, (600, 4))
    wrong = rng.random(600) < 0.25
    sure = 25.0 * np.eye(4)[np.where(wrong, rng.integers(0, 4, 600), y)]
    assert fit_fusion_weights([head], {"q": weak}, {"q": sure}, {"q": y})["q"] <= 0.1
    weights, scales = fit_fusion([head], {"q": weak}, {"q": sure}, {"q": y})
    assert weights["q"] >= 0.5 and scales["q"][1] < 0.5  # the lexical half is cooled down, then trusted
    pooled = fuse(head, weak, sure, weights["q"], scales["q"])
    assert np.mean(pooled.argmax(1) == y) > max(np.mean(weak.argmax(1) == y), np.mean(sure.argmax(1) == y)) - 0.01


def test_convex_pool_ends_are_the_two_halves():
    head = HeadSpec("q", ["a", "b"])
    zn, zl = np.array([[2.0, 0.0]]), np.array([[0.0, 3.0]])
    assert fuse(head, zn, zl, 0.0, [0.5, 2.0]).tolist() == zn.tolist()
    one = fuse(head, zn, zl, 1.0, [0.5, 2.0])
    np.testing.assert_allclose(np.exp(one), np.exp(2.0 * zl) / np.exp(2.0 * zl).sum(), atol=1e-12)


def test_fuse_is_log_linear_pooling():
    head = HeadSpec("q", ["a", "b"])
    z = fuse(head, np.log([[0.5, 0.5]]), np.log([[0.9, 0.1]]), 1.0)
    p = np.exp(z) / np.exp(z).sum()
    np.testing.assert_allclose(p, [[0.9, 0.1]], atol=1e-9)
    assert fuse(head, np.array([[1.0, 2.0]]), np.array([[5.0, 0.0]]), 0.0).tolist() == [[1.0, 2.0]]


def test_hybrid_router_trains_saves_and_loads(tiny_hybrid_router):
    out = tiny_hybrid_router  # trained once for the session (conftest.py) on queue, priority and tags
    info = json.loads((out / "router.json").read_text())
    assert set(info["lexical"]["weights"]) == {"queue", "priority", "tags"}
    assert set(info["lexical"]["scales"]) == {"queue", "priority", "tags"}
    assert all(0.0 <= w <= 1.0 for w in info["lexical"]["weights"].values())
    router = Router.load(out)
    assert isinstance(router.backend, HybridBackend)
    probs = router.predict_proba(["refund my double charge", "VPN is down"])
    np.testing.assert_allclose(probs["queue"].sum(1), 1.0, atol=1e-5)


def test_eval_reuses_the_runs_tfidf_half_only_when_it_is_the_baseline(tiny_hybrid_router, prepared):
    from pathlib import Path

    from triagekit.data import load_prepared
    from triagekit.route.commands import _baseline
    from triagekit.route.tfidf import TfidfBackend

    router = Router.load(tiny_hybrid_router)
    data = load_prepared(Path(router.meta["data_dir"]))
    reused = _baseline(router, tiny_hybrid_router, data["train"], data["val"])
    assert reused is router.backend.lexical
    fitted = TfidfBackend.baseline(data["train"], router.heads, router.text_fields, val_rows=data["val"])
    assert fitted.chosen_C == reused.chosen_C
    test = load_prepared(prepared)["test"][:60]
    a, b = reused.logits(test), fitted.logits(test)
    for head in router.heads:
        np.testing.assert_allclose(a[head.name], b[head.name], rtol=1e-6, atol=1e-6)
    # other training rows, or no validation rows, are another baseline: fitted, not reused
    assert _baseline(router, tiny_hybrid_router, data["train"][1:], data["val"]) is not router.backend.lexical
    assert _baseline(router, tiny_hybrid_router, data["train"], None) is not router.backend.lexical
