import json

import numpy as np

from triagekit.route.heads import HeadSpec
from triagekit.route.hybrid import HybridBackend, fit_fusion_weights, fuse
from triagekit.route.router import Router


def test_weights_follow_the_better_model():
    rng = np.random.default_rng(0)
    head = HeadSpec("q", ["a", "b", "c"])
    y = rng.integers(0, 3, 400)
    good = np.eye(3)[y] * 4 + rng.normal(0, 1, (400, 3))
    noise = rng.normal(0, 1, (400, 3))
    assert fit_fusion_weights([head], {"q": noise}, {"q": good}, {"q": y})["q"] > 0.5
    assert fit_fusion_weights([head], {"q": good}, {"q": noise}, {"q": y})["q"] == 0.0


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
    router = Router.load(out)
    assert isinstance(router.backend, HybridBackend)
    probs = router.predict_proba(["refund my double charge", "VPN is down"])
    np.testing.assert_allclose(probs["queue"].sum(1), 1.0, atol=1e-5)
