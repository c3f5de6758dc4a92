"""Out-of-scope detection: the detectors on known geometry, the fitted detector in a run, its verdict in every
prediction path (PyTorch, ONNX, hybrid, batch file, eval report), bad input, and the topics of flagged tickets."""

import json

import numpy as np
import pytest

from triagekit.route.oos import (
    DETECTORS,
    FEATURES,
    OutOfScope,
    auroc,
    fit_out_of_scope,
    fit_scorer,
    score,
    threshold_for,
)
from triagekit.route.router import Router


def _blobs(n_per: int, seed: int, centres: np.ndarray, spread: float = 0.3):
    rng = np.random.default_rng(seed)
    x = np.concatenate([c + spread * rng.standard_normal((n_per, centres.shape[1])) for c in centres])
    y = np.repeat(np.arange(len(centres)), n_per)
    return x.astype(np.float32), y


def _logits(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return -(((x[:, None, :] - centres[None]) ** 2).sum(-1))  # nearest-centre logits: confident everywhere


@pytest.fixture(scope="module")
def geometry():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((4, 16)) * 3
    train = _blobs(80, 1, centres)
    val = _blobs(40, 2, centres)
    # Out-of-scope points: a fifth class far from the four known ones.
    far = _blobs(60, 3, rng.standard_normal((1, 16)) * 3 + 12)[0]
    return centres, train, val, far


@pytest.mark.parametrize("detector", ["mahalanobis", "knn"])
def test_feature_detectors_separate_an_unseen_cluster(geometry, detector):
    centres, (x, y), (vx, _), far = geometry
    stats = fit_scorer(detector, x, y, n_classes=4)
    s_in = score(detector, stats, _logits(vx, centres), vx)
    s_out = score(detector, stats, _logits(far, centres), far)
    assert auroc(s_in, s_out) > 0.99
    # Scores rank by distance: a point on a class mean scores lower than one halfway to the far cluster.
    mid = (centres[:1] + far[:1]) / 2
    assert (
        score(detector, stats, _logits(centres[:1], centres), centres[:1])[0]
        < score(detector, stats, _logits(mid, centres), mid)[0]
    )


def test_mahalanobis_matches_the_textbook_formula(geometry):
    centres, (x, y), (vx, _), _ = geometry
    stats = fit_scorer("mahalanobis", x, y, n_classes=4)
    p = stats["precision"].astype(np.float64)
    expected = [min(float((v - m) @ p @ (v - m)) for m in stats["means"].astype(np.float64)) for v in vx[:5]]
    np.testing.assert_allclose(score("mahalanobis", stats, _logits(vx[:5], centres), vx[:5]), expected, rtol=1e-4)


def test_msp_and_energy_follow_the_logits():
    z = np.array([[10.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    assert score("msp", {}, z)[0] < score("msp", {}, z)[1]
    assert score("energy", {}, z)[0] < score("energy", {}, z)[1]
    np.testing.assert_allclose(score("energy", {}, z)[1], -(1 + np.log(3)))


def test_threshold_hits_the_target_rejection_rate():
    s = np.random.default_rng(0).standard_normal(1000)
    for rate in (0.01, 0.05, 0.2):
        assert abs(float(np.mean(s > threshold_for(s, rate))) - rate) < 0.005


def test_non_finite_inputs_score_as_out_of_scope(geometry):
    centres, (x, y), _, _ = geometry
    stats = fit_scorer("mahalanobis", x, y, n_classes=4)
    bad = np.full((1, 16), np.nan, dtype=np.float32)
    assert np.isinf(score("mahalanobis", stats, np.zeros((1, 4)), bad)[0])


def test_feature_detector_without_features_says_what_to_use():
    with pytest.raises(ValueError, match="energy or msp"):
        fit_scorer("knn", None, np.zeros(3, int), 2)
    with pytest.raises(ValueError, match="ood_detector"):
        fit_scorer("lof", None, np.zeros(3, int), 2)


def test_save_and_load_round_trip(tmp_path, geometry):
    from triagekit.route.heads import HeadSpec

    centres, (x, y), (vx, vy), far = geometry
    head = HeadSpec("queue", [f"c{i}" for i in range(4)])
    train = {"queue": _logits(x, centres), FEATURES: x}
    val = {"queue": _logits(vx, centres), FEATURES: vx}
    oos = fit_out_of_scope("knn", [head], train, {"queue": y}, val, {"queue": vy}, {}, 0.1)
    assert abs(oos.heads["queue"]["val_rejection"] - 0.1) < 0.02
    oos.save(tmp_path)
    back = OutOfScope.load(tmp_path, oos.info(0.1))
    a = oos.flags("queue", _logits(far, centres), far)
    b = back.flags("queue", _logits(far, centres), far)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1].all()


# ---------------------------------------------------------------------------------------------------------------
# in a trained run (the shared tiny routers of conftest.py)
BAD = ["", "   \n\t ", "สวัสดีครับ บัตรของฉันหาย", "🙂🙂🙂 ☎️", "refund " * 4000, "\x00\x01 ctrl"]


def test_auto_is_the_measured_winner_for_neural_runs_and_energy_for_tfidf():
    from triagekit.route.oos import resolve_detector

    assert resolve_detector("auto", has_features=True) == "msp"
    assert resolve_detector("auto", has_features=False) == "energy"
    assert resolve_detector("knn", has_features=True) == "knn"
    with pytest.raises(ValueError, match="ood_detector must be"):
        resolve_detector("lof", has_features=True)


def test_training_fits_the_configured_detector(tiny_router):
    info = json.loads((tiny_router / "router.json").read_text())
    assert info["oos"]["detector"] == "mahalanobis" and info["oos"]["target_rejection"] == 0.05
    assert set(info["oos"]["heads"]) == {"queue", "priority", "type"}  # single-label heads only
    assert (tiny_router / "oos.npz").exists()
    for m in info["oos"]["heads"].values():
        assert 0 < m["val_rejection"] <= 0.1 and np.isfinite(m["threshold"])


def test_predictions_say_why_they_need_review(tiny_router):
    router = Router.load(tiny_router)
    threshold = router.oos.heads["queue"]["threshold"]
    results = router.predict(["printer broken", *BAD])
    for r in results:
        q = r["queue"]
        assert isinstance(q["out_of_scope"], bool) and np.isfinite(q["oos_score"])
        assert q["out_of_scope"] == (q["oos_score"] > threshold)
        assert set(q["review_reasons"]) <= {"low_confidence", "out_of_scope"}
        assert q["requires_review"] == bool(q["review_reasons"])
        assert ("out_of_scope" in q["review_reasons"]) == q["out_of_scope"]
        assert "out_of_scope" not in r["tags"] and r["tags"]["review_reasons"] in ([], ["low_confidence"])


def test_out_of_scope_flag_sends_a_confident_ticket_to_review(tiny_router, copy_router, tmp_path):
    run = copy_router(tiny_router, tmp_path / "run")
    info = json.loads((run / "router.json").read_text())
    info["oos"]["heads"]["queue"]["threshold"] = -1.0  # every ticket is out of scope
    info["calibration"]["queue"]["review_threshold"] = 0.0  # and none is unsure
    (run / "router.json").write_text(json.dumps(info))
    q = Router.load(run).predict(["printer broken"])[0]["queue"]
    assert q["out_of_scope"] and q["requires_review"] and q["review_reasons"] == ["out_of_scope"]


def test_detector_none_and_tfidf_fallback(tiny_encoder, prepared, tmp_path):
    from conftest import tiny_router_config
    from rich.console import Console

    from triagekit.route.train import train

    cfg = tiny_router_config(
        tiny_encoder, backbone="tfidf", labels=["queue"], multilabel=[], tfidf_C=1.0, ood_detector="auto"
    )
    train(cfg, prepared, tmp_path / "tfidf", console=Console(quiet=True))
    router = Router.load(tmp_path / "tfidf")
    assert router.oos.detector == "energy"  # auto: no features in a TF-IDF run
    assert "out_of_scope" in router.predict(["vpn down"])[0]["queue"]
    cfg.ood_detector = "none"
    train(cfg, prepared, tmp_path / "none", console=Console(quiet=True))
    assert Router.load(tmp_path / "none").oos is None
    assert "out_of_scope" not in Router.load(tmp_path / "none").predict(["vpn down"])[0]["queue"]


def test_bad_config_value_is_refused():
    from triagekit.route.config import TrainConfig

    with pytest.raises(ValueError, match="ood_detector"):
        TrainConfig(ood_detector="lof")
    with pytest.raises(ValueError, match="ood_target_rejection"):
        TrainConfig(ood_target_rejection=0)
    assert set(DETECTORS) == {"mahalanobis", "knn", "energy", "msp", "none"}


@pytest.mark.parametrize("kind", ["full", "hybrid"])
def test_onnx_export_gives_the_same_scores_and_flags(tiny_router, tiny_hybrid_router, tmp_path, kind):
    pytest.importorskip("onnxruntime")
    from triagekit.exporters.export import export

    run = {"full": tiny_router, "hybrid": tiny_hybrid_router}[kind]
    out = export(run, tmp_path / "onnx")
    assert (out / "oos.npz").exists()
    torch_router, onnx_router = Router.load(run), Router.load(out)
    texts = ["printer broken", "VPN down since the update", *BAD]
    a, b = torch_router.outputs(texts, batch_size=3), onnx_router.outputs(texts, batch_size=5)
    np.testing.assert_allclose(b[FEATURES], a[FEATURES], atol=1e-4)
    sa, sb = torch_router.out_of_scope(a), onnx_router.out_of_scope(b)
    for h in sa:
        np.testing.assert_allclose(sb[h][0], sa[h][0], rtol=1e-3, atol=1e-3)
    pa, pb = torch_router.predict(texts), onnx_router.predict(texts)
    assert [r["queue"]["out_of_scope"] for r in pa] == [r["queue"]["out_of_scope"] for r in pb]


def test_old_export_without_features_is_refused_with_a_fix(tiny_router, tmp_path):
    pytest.importorskip("onnxruntime")
    from triagekit.exporters.common import copy_lexical, copy_tokenizer, load_merged, read_run, write_info
    from triagekit.exporters.onnx import export_graph

    info = read_run(tiny_router)
    out = tmp_path / "old"
    out.mkdir()
    heads = [h for h in Router.load(tiny_router).heads]
    export_graph(load_merged(tiny_router, info), heads, out / "model.onnx", info["max_length"], features=False)
    copy_tokenizer(tiny_router, info, out / "tokenizer")
    copy_lexical(tiny_router, info, out)
    write_info(info, out, tiny_router, "onnx", {"format": "onnx"}, onnx_file="model.onnx", tokenizer_dir="tokenizer")
    with pytest.raises(ValueError, match="re-export"):
        Router.load(out)


def test_batch_prediction_and_eval_report_the_out_of_scope_rate(tiny_router, prepared, tmp_path):
    from triagekit.data import load_prepared
    from triagekit.route.evaluate import evaluate
    from triagekit.route.predict import predict_file

    router = Router.load(tiny_router)
    rows = load_prepared(prepared)["test"][:40]
    # Ten tickets whose queue is a class the router never saw: the open class of the report.
    unseen = [{**r, "queue": "Quantum Computing"} for r in rows[:10]]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows + unseen))
    predict_file(router, src, tmp_path / "out.jsonl")
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert all("out_of_scope" in line["queue"] for line in lines)
    metrics = evaluate(router, rows + unseen, tmp_path / "eval", plots=False)
    m = metrics["out_of_scope"]["queue"]
    flagged = np.mean([line["queue"]["out_of_scope"] for line in lines])
    assert m["oos_rate"] == pytest.approx(flagged) and m["n_unseen_labels"] == 10
    assert m["unseen_labels"] == ["Quantum Computing"] and 0 <= m["open_recall"] <= 1
    assert "open_recall" not in metrics["out_of_scope"]["priority"]
    assert "## Out of scope" in (tmp_path / "eval" / "report.md").read_text()


# ---------------------------------------------------------------------------------------------------------------
# topics
def test_topics_recover_planted_groups_with_their_terms():
    from triagekit.route.topics import find_topics

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 24)) * 4
    x, y = _blobs(20, 5, centres, spread=0.4)
    words = [["crypto", "wallet", "bitcoin"], ["mortgage", "house", "loan"], ["insurance", "travel", "claim"]]
    texts = [f"my {' '.join(rng.permutation(words[c]))} question {i}" for i, c in enumerate(y)]
    topics, assign = find_topics(texts, x, min_size=5)
    from sklearn.metrics import adjusted_rand_score

    assert len(topics) == 3 and adjusted_rand_score(y, assign) > 0.9
    for t in topics:
        intent = np.bincount(y[t["members"]]).argmax()
        assert set(t["terms"][:3]) <= set(words[intent]) | {" ".join(p) for p in zip(words[intent], words[intent])}
        assert len(t["examples"]) == 3 and t["size"] == len(t["members"])
    assert find_topics([], np.zeros((0, 4)))[0] == []
    assert (find_topics(["a", "b"], np.eye(2))[1] == -1).all()  # too few to form a topic


def test_topics_command_writes_topics(tiny_router, copy_router, prepared, tmp_path, capsys):
    from triagekit.cli import main

    run = copy_router(tiny_router, tmp_path / "run")
    info = json.loads((run / "router.json").read_text())
    info["oos"]["heads"]["queue"]["threshold"] = -1.0  # flag everything: the tiny model's features still group
    (run / "router.json").write_text(json.dumps(info))
    out = tmp_path / "topics.json"
    code = main(
        ["route", "topics", str(run), "--input", str(prepared / "test.jsonl"), "--head", "queue", "--output", str(out)]
    )
    found = json.loads(out.read_text())
    assert code == 0 and found["out_of_scope"] == found["tickets"] > 0
    assert found["unclustered"] + sum(t["size"] for t in found["topics"]) == found["out_of_scope"]
    assert "out of scope" in capsys.readouterr().err
    assert main(["route", "topics", str(run), "--input", str(prepared / "test.jsonl"), "--head", "tags"]) != 0
    assert "--head 'tags'" in capsys.readouterr().err  # a multi-label head has no detector: said, not a traceback


def test_a_growing_out_of_scope_rate_is_drift():
    from triagekit.serve.drift import distribution, drift_report
    from triagekit.serve.metrics import ServeMetrics

    def outputs(n_out: int, n: int = 200):
        return [
            {"queue": {"label": "a" if i % 2 else "b", "confidence": 0.9, "out_of_scope": i < n_out}} for i in range(n)
        ]

    ref = distribution(outputs(10))  # 5 % flagged, as the threshold was fitted
    assert ref["queue"]["out_of_scope"] == [190, 10]
    same = drift_report(ref, distribution(outputs(11)))
    assert same["status"] == "ok" and same["heads"]["queue"]["oos_rate"] == pytest.approx(0.055)
    grown = drift_report(ref, distribution(outputs(50)))  # a quarter of the tickets fit no class
    q = grown["heads"]["queue"]
    assert grown["status"] == "alert" and q["psi_label"] < 0.01 and q["psi_oos"] > 0.2
    assert q["oos_rate"] == 0.25 and q["oos_rate_reference"] == 0.05
    metrics = ServeMetrics()
    metrics.observe_drift(grown)
    metrics.observe_prediction(outputs(1, 1)[0], review=True)
    text = metrics.render().decode()
    assert 'triagekit_drift_out_of_scope_rate{head="queue",window="window"} 0.25' in text
    assert 'triagekit_out_of_scope_total{head="queue"} 1.0' in text
    assert 'kind="oos"' in text
