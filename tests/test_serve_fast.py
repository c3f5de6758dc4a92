"""The single-request fast path: stacked TF-IDF tag models, the hybrid skipping zero-weight heads, and
``triagekit serve --backend onnx`` (export on first start, reuse while the run is unchanged, re-export when not)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from triagekit.route.heads import HeadSpec, heads_from_rows
from triagekit.route.hybrid import HybridBackend
from triagekit.route.tfidf import TfidfBackend, _stack_one_vs_rest

WORDS = {
    "billing": "invoice refund charge payment",
    "tech": "error crash login timeout",
    "security": "phishing breach password hacked",
}


def _rows(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        queue = list(WORDS)[i % 3]
        tags = [t for t in ("vpn", "mobile", "printer") if rng.random() < 0.35] + ["always"]  # "always": constant
        words = list(rng.choice(WORDS[queue].split(), 3)) + tags[:-1] + list(rng.choice(["please", "help"], 2))
        rows.append({"subject": " ".join(words[:2]), "body": " ".join(words[2:]), "queue": queue, "tags": tags})
    return rows


@pytest.fixture(scope="module")
def tfidf():
    rows = _rows(120, 0)
    return TfidfBackend().fit(rows, heads_from_rows(rows, ["queue"], ["tags"]), ["subject", "body"], seed=0)


def test_stacked_tag_models_give_one_vs_rest_probabilities(tfidf):
    model = tfidf.models["tags"]
    stacked = _stack_one_vs_rest(model)
    assert stacked is not False, "the fast path must cover logistic regressions and constant tags"
    assert stacked[3].sum() == 1  # the tag present in every row is a constant predictor
    texts = [r["subject"] + "\n" + r["body"] for r in _rows(40, 1)] + ["", "völlig unbekannte Wörter 123"]
    x = tfidf.features.transform(texts)
    np.testing.assert_allclose(tfidf._tag_proba("tags", model, x), model.predict_proba(x), rtol=1e-12, atol=1e-15)
    assert (tfidf._transform(texts) != x).nnz == 0  # the direct feature stacking is FeatureUnion's matrix


def test_logits_of_selected_heads_only(tfidf):
    rows = _rows(10, 2)
    every = tfidf.logits(rows)
    some = tfidf.logits(rows, heads=["tags"])
    assert list(some) == ["tags"]
    np.testing.assert_array_equal(some["tags"], every["tags"])
    assert tfidf.logits(rows, heads=[]) == {}


class _Spy:
    def __init__(self, heads):
        self.heads, self.asked = heads, []

    def logits(self, texts, batch_size=64, heads=None):
        self.asked.append(heads)
        return {
            h.name: np.full((len(texts), len(h.labels)), 0.5) for h in self.heads if heads is None or h.name in heads
        }


def test_hybrid_computes_lexical_logits_only_for_weighted_heads():
    heads = [HeadSpec("queue", ["a", "b"]), HeadSpec("tags", ["x", "y"], multilabel=True)]
    neural, lexical = _Spy(heads), _Spy(heads)
    out = HybridBackend(neural, lexical, {"queue": 0.0, "tags": 1.0}).logits(["t1", "t2"])
    assert lexical.asked == [["tags"]]
    np.testing.assert_array_equal(out["queue"], np.full((2, 2), 0.5))  # weight 0: the encoder's logits as they are
    np.testing.assert_array_equal(out["tags"], np.full((2, 2), 1.0))  # multi-label pool: sum of logits
    HybridBackend(neural, lexical, {"queue": 0.0, "tags": 0.0}).logits(["t"])
    assert len(lexical.asked) == 1  # all weights 0: no TF-IDF at all


# ---------------------------------------------------------------------------------------------------------------
# serve --backend onnx
pytest.importorskip("onnxruntime")
pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")


@pytest.fixture(scope="module")
def run_dir(tiny_router, copy_router, tmp_path_factory):
    """The session's tiny router, copied: ``--backend onnx`` keeps its export inside the run, and a test edits it."""
    return copy_router(tiny_router, tmp_path_factory.mktemp("serve-fast") / "router")


def test_backend_onnx_exports_once_and_re_exports_a_changed_run(run_dir):
    from triagekit.serve.backends import STAMP_FILE, onnx_dir, resolve_model_dir

    assert resolve_model_dir(run_dir, "auto") == run_dir
    out = resolve_model_dir(run_dir, "onnx")
    assert out == onnx_dir(run_dir, "onnx") and (out / "model.int8.onnx").exists()
    info = json.loads((out / "router.json").read_text())
    assert info["backend"] == "onnx" and info["onnx_file"] == "model.int8.onnx"
    first = (out / "model.int8.onnx").stat().st_mtime_ns
    assert resolve_model_dir(run_dir, "onnx") == out
    assert (out / "model.int8.onnx").stat().st_mtime_ns == first  # unchanged run: reused, not exported again
    assert resolve_model_dir(out, "onnx") == out  # an export directory is served as it is

    # Recalibrating the run (what `triagekit route eval` does) makes the export stale: the next start exports again.
    run_info = json.loads((run_dir / "router.json").read_text())
    run_info["calibration"].setdefault("queue", {})["review_threshold"] = 0.123
    (run_dir / "router.json").write_text(json.dumps(run_info, indent=2))
    stamp = json.loads((out / STAMP_FILE).read_text())
    assert resolve_model_dir(run_dir, "onnx") == out
    assert json.loads((out / STAMP_FILE).read_text()) != stamp
    assert json.loads((out / "router.json").read_text())["calibration"]["queue"]["review_threshold"] == 0.123
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]


def test_backend_onnx_refuses_what_it_cannot_export(tmp_path):
    from triagekit.serve import ServeSettings
    from triagekit.serve.backends import resolve_model_dir

    (tmp_path / "router.json").write_text(json.dumps({"backend": "tfidf"}))
    with pytest.raises(ValueError, match="needs an encoder run"):
        resolve_model_dir(tmp_path, "onnx")
    with pytest.raises(FileNotFoundError, match="no router.json"):
        resolve_model_dir(tmp_path / "missing", "onnx")
    with pytest.raises(ValueError, match="backend must be one of"):
        ServeSettings(backend="tensorrt")


def test_service_on_onnx_matches_pytorch(run_dir, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from triagekit.route.router import Router
    from triagekit.serve import ServeSettings, create_app

    for name in ("TRIAGEKIT_ORT_THREADS", "TRIAGEKIT_ORT_SPINNING"):
        monkeypatch.setenv(name, "unset")  # recorded, so the values the service sets are undone afterwards
        monkeypatch.delenv(name)
    tickets = [
        {"subject": "Invoice charged twice", "body": "My card was billed twice."},
        {"text": "VPN down since the update"},
    ]
    app = create_app(run_dir, ServeSettings(db=f"sqlite:///{tmp_path / 'log.db'}", backend="onnx-fp32", threads=1))
    with TestClient(app) as client:
        assert client.get("/ready").json()["status"] == "ready"
        served = [client.post("/predict", json={**t, "top_k": 2}).json() for t in tickets]
        options = app.state.service.router.backend.session.get_session_options()
    assert os.environ.get("TRIAGEKIT_ORT_THREADS") == "1"  # --threads reaches onnxruntime too
    assert options.intra_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"  # no busy-waiting in a server
    assert (run_dir / "onnx-fp32" / "model.onnx").exists()
    torch_router = Router.load(run_dir)
    expected = torch_router.predict_proba(tickets)
    for i, body in enumerate(served):
        q = body["heads"]["queue"]
        head = next(h for h in torch_router.heads if h.name == "queue")
        assert q["label"] == head.labels[int(np.argmax(expected["queue"][i]))]
        assert abs(q["confidence"] - float(expected["queue"][i].max())) < 1e-4
        assert body["model_version"] == torch_router.model_version and body["inference_ms"] > 0


def test_serve_command_passes_the_backend(run_dir, monkeypatch):
    import triagekit.serve.app as serve_app
    from triagekit.cli import main

    seen = {}
    monkeypatch.setattr(serve_app, "run_server", lambda model, settings, log_level: seen.update(s=settings))
    assert main(["serve", str(run_dir), "--backend", "onnx"]) == 0
    assert seen["s"].backend == "onnx"
    assert main(["serve", str(run_dir)]) == 0
    assert seen["s"].backend == "auto"  # the directory as it is, unless asked
