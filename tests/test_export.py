"""Exporters against PyTorch: ONNX fp32 parity, int8 agreement, merged HF weights, the Triton repository, the CLI,
and resumable streaming prediction. Tiny random encoders trained for a few steps, all on CPU."""

import json
import random
import shutil
import sys
import types

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from triagekit.cli import main  # noqa: E402
from triagekit.exporters.export import export, validate_repository
from triagekit.route.onnx import OnnxBackend  # noqa: E402
from triagekit.route.router import Router  # noqa: E402

REAL = [
    "my invoice shows a double charge",
    {"subject": "VPN down", "body": "cannot connect since the update"},
    "Drucker druckt nicht mehr, bitte dringend helfen!!",
    "x",
    "refund for order 12345 " * 40,
    {"subject": "Password reset", "body": "I forgot my password and the reset mail never arrives."},
]


@pytest.fixture(scope="module")
def runs(tiny_router, tiny_lora_router, tiny_hybrid_router):
    """The session's shared tiny routers (conftest.py) by method; read-only, so an export never writes into them."""
    return {"full": tiny_router, "lora": tiny_lora_router, "hybrid": tiny_hybrid_router}


@pytest.fixture(scope="module")
def fixture_rows(prepared):
    return [
        json.loads(line)
        for split in ("train", "val", "test")
        for line in (prepared / f"{split}.jsonl").read_text().splitlines()
    ]


def _random_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = ["printer", "VPN", "refund", "Rechnung", "😀", "ERR_42", "login", "the", "na", "??", "x" * 30, "é"]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(1, 120))) for _ in range(n)]


@pytest.mark.parametrize("method", ["full", "lora"])
def test_onnx_fp32_matches_pytorch(runs, tmp_path, method):
    out = export(runs[method], tmp_path / "onnx")
    info = json.loads((out / "router.json").read_text())
    assert info["backend"] == "onnx" and info["onnx_file"] == "model.onnx" and "model_dir" not in info
    assert info["calibration"] == json.loads((runs[method] / "router.json").read_text())["calibration"]
    torch_router, onnx_router = Router.load(runs[method]), Router.load(out)
    assert isinstance(onnx_router.backend, OnnxBackend)
    texts = REAL + _random_texts(24)
    for batch_size in (1, 7, 64):
        a = torch_router.predict_proba(texts, batch_size=batch_size)
        b = onnx_router.predict_proba(texts, batch_size=batch_size)
        for h in torch_router.heads:
            np.testing.assert_allclose(b[h.name], a[h.name], atol=1e-4, err_msg=f"{h.name} @ batch {batch_size}")
    pa, pb = torch_router.predict(REAL), onnx_router.predict(REAL)
    assert [sorted(p) for p in pb] == [sorted(p) for p in pa]
    assert [p["queue"]["label"] for p in pb] == [p["queue"]["label"] for p in pa]
    assert onnx_router.predict([]) == []
    assert onnx_router.predict_proba([])["queue"].shape == (0, len(onnx_router.heads[0].labels))


def test_onnx_graph_has_named_dynamic_io(runs, tmp_path):
    import onnx

    out = export(runs["full"], tmp_path / "onnx")
    graph = onnx.load(str(out / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask"]
    outputs = ["logits_queue", "logits_priority", "logits_type", "logits_tags", "features"]
    assert [o.name for o in graph.output] == outputs
    for i in graph.input:
        assert i.type.tensor_type.elem_type == onnx.TensorProto.INT64
        assert [d.dim_param for d in i.type.tensor_type.shape.dim] == ["batch", "sequence"]


@pytest.mark.parametrize("method", ["full", "lora"])
def test_int8_agrees_with_pytorch(runs, tmp_path, fixture_rows, method, capsys):
    out = export(runs[method], tmp_path / "int8", quantize="int8")
    assert json.loads((out / "router.json").read_text())["onnx_file"] == "model.int8.onnx"
    assert (out / "model.onnx").exists() and (out / "model.int8.onnx").stat().st_size < (
        out / "model.onnx"
    ).stat().st_size
    torch_router, int8_router = Router.load(runs[method]), Router.load(out)
    a, b = torch_router.logits(fixture_rows), int8_router.logits(fixture_rows)
    agreement = {}
    for h in torch_router.heads:
        same = (a[h.name] > 0) == (b[h.name] > 0) if h.multilabel else a[h.name].argmax(1) == b[h.name].argmax(1)
        agreement[h.name] = float(same.mean())
    with capsys.disabled():
        print(
            f"\nint8 vs PyTorch label agreement ({method}, {len(fixture_rows)} tickets): "
            + ", ".join(f"{k} {100 * v:.2f}%" for k, v in agreement.items())
        )
    assert min(agreement.values()) >= 0.99, agreement


def test_hybrid_run_keeps_its_lexical_pool(runs, tmp_path):
    from triagekit.route.hybrid import HybridBackend

    out = export(runs["hybrid"], tmp_path / "onnx")
    info = json.loads((out / "router.json").read_text())
    assert info["lexical"] == json.loads((runs["hybrid"] / "router.json").read_text())["lexical"]
    assert (out / "lexical").is_dir()
    router = Router.load(out)
    assert isinstance(router.backend, HybridBackend) and isinstance(router.backend.neural, OnnxBackend)
    texts = REAL + _random_texts(10, seed=1)
    np.testing.assert_allclose(
        router.predict_proba(texts)["queue"], Router.load(runs["hybrid"]).predict_proba(texts)["queue"], atol=1e-4
    )


def test_merged_hf_export_loads_with_plain_automodel(runs, tmp_path):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    out = export(runs["lora"], tmp_path / "hf", format="hf")
    assert not (out / "model" / "adapter").exists()
    info = json.loads((out / "router.json").read_text())
    assert info["backend"] == "encoder" and info["meta"]["export"]["merged_lora"] is True
    backbone = AutoModel.from_pretrained(str(out / "model" / "backbone")).eval()
    assert not any("lora" in k for k in backbone.state_dict())
    heads = load_file(str(out / "model" / "heads.safetensors"))
    tokenizer = AutoTokenizer.from_pretrained(str(out / "model" / "tokenizer"))
    texts = [t if isinstance(t, str) else f"{t['subject']}\n{t['body']}" for t in REAL]
    enc = tokenizer(texts, padding=True, truncation=True, max_length=48, return_tensors="pt")
    with torch.inference_mode():
        hidden = backbone(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        queue = pooled @ heads["queue.weight"].T + heads["queue.bias"]
    reference = Router.load(runs["lora"]).logits(REAL)["queue"]
    np.testing.assert_allclose(queue.numpy(), reference, atol=1e-4)
    np.testing.assert_allclose(Router.load(out).logits(REAL)["queue"], reference, atol=1e-4)


# -- Triton ---------------------------------------------------------------------------------------------------------
class _FakeTensor:
    def __init__(self, name, array):
        self._name, self._array = name, np.asarray(array)

    def name(self):
        return self._name

    def as_numpy(self):
        return self._array


def _fake_pb_utils():
    """The few ``triton_python_backend_utils`` calls our Python models make, so they run outside Triton."""
    mod = types.ModuleType("triton_python_backend_utils")
    mod.Tensor = _FakeTensor
    mod.InferenceResponse = lambda output_tensors: {t.name(): t.as_numpy() for t in output_tensors}
    mod.get_input_tensor_by_name = lambda request, name: _FakeTensor(name, request[name])
    return mod


def _python_model(path, config_file):
    import importlib.util

    from triagekit.exporters.pbtxt import load_config

    spec = importlib.util.spec_from_file_location(f"triton_model_{path.parent.parent.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.TritonPythonModel()
    # Triton hands the model its config as JSON; parameters are the only part our models read.
    params = load_config(config_file.read_text())[0].get("parameters", {})
    model.initialize({"model_config": json.dumps({"parameters": params}), "model_version": "1"})
    return model


def test_triton_repository_layout_and_configs(runs, tmp_path):
    from triagekit.exporters.pbtxt import load_config

    repo = export(runs["full"], tmp_path / "repo", format="triton")
    for rel in [
        "triagekit/config.pbtxt",
        "triagekit/1",
        "triagekit_router/config.pbtxt",
        "triagekit_router/1/model.onnx",
        "triagekit_tokenizer/config.pbtxt",
        "triagekit_tokenizer/1/model.py",
        "triagekit_tokenizer/1/tokenizer/tokenizer.json",
        "triagekit_postprocess/config.pbtxt",
        "triagekit_postprocess/1/model.py",
        "triagekit_postprocess/1/heads.json",
        "triagekit_postprocess/labels_queue.txt",
    ]:
        assert (repo / rel).exists(), rel
    assert validate_repository(repo) == []
    router, errors = load_config((repo / "triagekit_router" / "config.pbtxt").read_text())
    assert errors == [] and router["platform"] == "onnxruntime_onnx" and router["max_batch_size"] > 0
    assert "dynamic_batching" in router
    assert {t["name"]: t["dims"] for t in router["input"]} == {"input_ids": [-1], "attention_mask": [-1]}
    assert [t["name"] for t in router["output"]] == ["logits_queue", "logits_priority", "logits_type", "logits_tags"]
    ensemble, _ = load_config((repo / "triagekit" / "config.pbtxt").read_text())
    assert [s["model_name"] for s in ensemble["ensemble_scheduling"]["step"]] == [
        "triagekit_tokenizer",
        "triagekit_router",
        "triagekit_postprocess",
    ]


@pytest.mark.parametrize(
    "breakage, expected",
    [
        (("triagekit_router", "TYPE_INT64", "TYPE_INT32"), "in the graph"),
        (("triagekit_router", "max_batch_size", "max_batch_sise"), "no such field"),
        (("triagekit", '"triagekit_postprocess"', '"triagekit_post"'), "no such model"),
        (("triagekit", 'value: "logits_queue"', 'value: "logits_q"'), "neither an ensemble input"),
        (("triagekit_tokenizer", "KIND_CPU", "KIND_TPU"), "is not one of"),
        (("triagekit_postprocess", "dims: {n}\n", "dims: 999\n"), "do not fit"),
        (("triagekit_router", "{", "{{"), "syntax"),
    ],
)
def test_triton_validator_catches_broken_configs(runs, tmp_path, breakage, expected):
    repo = export(runs["full"], tmp_path / "repo", format="triton")
    model, old, new = breakage
    old = old.replace("{n}", str(len(Router.load(runs["full"]).heads[0].labels)))  # the queue head's width
    file = repo / model / "config.pbtxt"
    assert old in file.read_text()
    file.write_text(file.read_text().replace(old, new, 1))
    errors = validate_repository(repo)
    assert any(expected in e for e in errors), errors


def _triton_matches_router(run, repo, monkeypatch):
    import onnxruntime as ort

    export(run, repo, format="triton")
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", _fake_pb_utils())
    tokenizer = _python_model(
        repo / "triagekit_tokenizer" / "1" / "model.py", repo / "triagekit_tokenizer" / "config.pbtxt"
    )
    post = _python_model(
        repo / "triagekit_postprocess" / "1" / "model.py", repo / "triagekit_postprocess" / "config.pbtxt"
    )
    session = ort.InferenceSession(str(repo / "triagekit_router" / "1" / "model.onnx"))
    router = Router.load(run)
    texts = router.texts(REAL)
    # Two requests, as Triton would hand them over: [batch, 1] byte strings each.
    requests = [
        {"TEXT": np.array([[t.encode()] for t in texts[:2]], dtype=object)},
        {"TEXT": np.array([[t.encode()] for t in texts[2:]], dtype=object)},
    ]
    probs = []
    for tokens in tokenizer.execute(requests):
        assert tokens["input_ids"].shape[1] % 16 == 0 and tokens["input_ids"].dtype == np.int64
        names = [o.name for o in session.get_outputs()]
        logits = dict(zip(names, session.run(names, tokens)))
        probs.append(post.execute([logits])[0])
    expected = router.predict_proba(REAL)
    for h in router.heads:
        got = np.concatenate([p[f"probs_{h.name}"] for p in probs])
        np.testing.assert_allclose(got, expected[h.name], atol=1e-4, err_msg=h.name)


def test_triton_ensemble_runs_offline_and_matches_the_router(runs, tmp_path, monkeypatch):
    _triton_matches_router(runs["full"], tmp_path / "repo", monkeypatch)


def test_triton_ensemble_applies_the_prior_correction(runs, tmp_path, monkeypatch, copy_router):
    run = copy_router(runs["full"], tmp_path / "run")
    info = json.loads((run / "router.json").read_text())
    queue = next(h for h in info["heads"] if h["name"] == "queue")
    # a bias strong enough to change which queue wins, as a prior correction does for rare classes
    bias = [3.0 * (i % 2) - 1.5 for i in range(len(queue["labels"]))]
    info["calibration"].setdefault("queue", {})["logit_bias"] = bias
    (run / "router.json").write_text(json.dumps(info))
    plain = Router.load(runs["full"]).predict_proba(REAL)["queue"]
    assert not np.allclose(Router.load(run).predict_proba(REAL)["queue"], plain, atol=1e-3)
    _triton_matches_router(run, tmp_path / "repo", monkeypatch)


def test_triton_configs_parse_with_tritons_own_proto(runs, tmp_path):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    repo = export(runs["full"], tmp_path / "repo", format="triton")
    files = sorted(repo.glob("*/config.pbtxt"))
    assert len(files) == 4
    for file in files:
        text_format.Parse(file.read_text(), model_config_pb2.ModelConfig())


# -- CLI and predict ------------------------------------------------------------------------------------------------
def test_cli_export_end_to_end(runs, tmp_path, capsys):
    onnx_dir, hf_dir, repo = tmp_path / "onnx", tmp_path / "hf", tmp_path / "repo"
    assert (
        main(["route", "export", str(runs["lora"]), "--format", "onnx", "--quantize", "int8", "--out", str(onnx_dir)])
        == 0
    )
    assert {"model.onnx", "model.int8.onnx", "router.json", "tokenizer"} <= {p.name for p in onnx_dir.iterdir()}
    assert main(["route", "predict", str(onnx_dir), "--text", "my VPN keeps dropping"]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert {"label", "confidence", "top_k", "requires_review"} <= set(line["queue"])
    assert main(["route", "export", str(runs["lora"]), "--merge", "--out", str(hf_dir)]) == 0
    assert (hf_dir / "model" / "backbone" / "config.json").exists()
    assert main(["route", "export", str(runs["full"]), "--format", "triton", "--out", str(repo)]) == 0
    assert validate_repository(repo) == []
    assert (
        main(["route", "export", str(runs["full"]), "--format", "onnx", "--merge", "--out", str(tmp_path / "x")]) == 2
    )
    assert main(["route", "export", str(tmp_path / "nothing"), "--out", str(tmp_path / "y")]) == 2


def test_predict_resume_appends_only_the_missing_records(runs, tmp_path):
    onnx_dir = export(runs["full"], tmp_path / "onnx")
    rows = [
        json.dumps({"id": f"t{i}", "subject": f"ticket {i}", "body": "printer offline " * (i % 7)}) for i in range(30)
    ]
    rows[4], rows[17] = "{not json", json.dumps({"id": "empty", "subject": "", "body": ""})
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(rows) + "\n")
    full, part = tmp_path / "full.jsonl", tmp_path / "part.jsonl"
    assert main(["route", "predict", str(onnx_dir), "--input", str(source), "--output", str(full)]) == 0
    expected = full.read_text().splitlines()
    assert len(expected) == 28
    # A run killed mid-write: 11 complete lines, half of the 12th, and only the first rejected row.
    part.write_text("\n".join(expected[:11]) + "\n" + expected[11][:25])
    shutil.copyfile(tmp_path / "full.jsonl.rejected.jsonl", tmp_path / "part.jsonl.rejected.jsonl")
    rejected = (tmp_path / "part.jsonl.rejected.jsonl").read_text().splitlines()
    (tmp_path / "part.jsonl.rejected.jsonl").write_text(rejected[0] + "\n")
    assert main(["route", "predict", str(onnx_dir), "--input", str(source), "--output", str(part), "--resume"]) == 0
    assert part.read_text().splitlines() == expected
    assert (tmp_path / "part.jsonl.rejected.jsonl").read_text().splitlines() == rejected
    # Resuming a finished file writes nothing new; resuming against another input is refused.
    assert main(["route", "predict", str(onnx_dir), "--input", str(source), "--output", str(part), "--resume"]) == 0
    assert part.read_text().splitlines() == expected
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"id": "zzz", "subject": "a", "body": "b"}) + "\n")
    assert main(["route", "predict", str(onnx_dir), "--input", str(other), "--output", str(part), "--resume"]) == 2


def test_fused_export_matches_pytorch_and_quantizes_its_attention(runs, tmp_path, fixture_rows):
    """``--optimize``: onnxruntime's transformer fusions rewrite the graph (one Attention op per layer) and the fp32
    probabilities stay within 1e-4 of PyTorch; the int8 graph quantizes those Attention ops too."""
    import onnx

    out = export(runs["full"], tmp_path / "fused", quantize="int8", optimize=True)
    fused = json.loads((out / "router.json").read_text())["meta"]["export"]["fused"]
    layers = json.loads((runs["full"] / "model" / "backbone" / "config.json").read_text())["num_hidden_layers"]
    assert fused.get("Attention") == layers and fused.get("SkipLayerNormalization"), fused
    ops = {n.op_type for n in onnx.load(str(out / "model.int8.onnx")).graph.node}
    assert "QAttention" in ops and "Attention" not in ops, ops
    torch_router, info = Router.load(runs["full"]), json.loads((out / "router.json").read_text())
    fp32 = Router(
        OnnxBackend.load(out, torch_router.heads, info["max_length"], file="model.onnx"),
        torch_router.heads,
        torch_router.text_fields,
        info["calibration"],
    )
    texts = REAL + _random_texts(24)
    for batch_size in (1, 7, 64):
        a, b = (
            torch_router.predict_proba(texts, batch_size=batch_size),
            fp32.predict_proba(texts, batch_size=batch_size),
        )
        for h in torch_router.heads:
            np.testing.assert_allclose(b[h.name], a[h.name], atol=1e-4, err_msg=f"{h.name} @ batch {batch_size}")
    a, b = torch_router.logits(fixture_rows), Router.load(out).logits(fixture_rows)
    for h in torch_router.heads:
        same = (a[h.name] > 0) == (b[h.name] > 0) if h.multilabel else a[h.name].argmax(1) == b[h.name].argmax(1)
        assert same.mean() >= 0.99, (h.name, same.mean())


def test_optimize_is_refused_where_it_does_not_apply(runs, tmp_path, monkeypatch):
    from triagekit.exporters import onnx as onnx_export

    with pytest.raises(ValueError, match="--optimize applies to --format onnx"):
        export(runs["full"], tmp_path / "hf", format="hf", optimize=True)
    with pytest.raises(ValueError, match="fuses BERT-like encoders.*'llama'"):
        onnx_export.fuse_transformer(
            tmp_path / "in.onnx", tmp_path / "out.onnx", types.SimpleNamespace(model_type="llama")
        )
    assert not (tmp_path / "out.onnx").exists()
    # A backbone the fusions do not match is refused before the export folder is written.
    monkeypatch.setattr(onnx_export, "FUSABLE", {})
    with pytest.raises(ValueError, match="fuses BERT-like encoders.*'bert'"):
        export(runs["full"], tmp_path / "refused", optimize=True)
    assert not (tmp_path / "refused").exists()


@pytest.mark.slow
def test_compiled_pytorch_backend_matches_eager(runs):
    """``Router.load(compile=True)`` (``route predict --compile``): the torch.compile'd forward pass gives the eager
    probabilities at other batch and sequence sizes than the first call's (one dynamic-shape graph)."""
    eager, compiled = Router.load(runs["full"]), Router.load(runs["full"], compile=True)
    assert compiled.backend.forward is not compiled.backend.model.logits_and_features
    texts = REAL + _random_texts(24)
    # Batch 1 is left out: dynamic shapes specialise sizes 0 and 1, so it would compile a second graph (~10 s).
    for batch_size in (7, 64):
        a, b = eager.predict_proba(texts, batch_size=batch_size), compiled.predict_proba(texts, batch_size=batch_size)
        for h in eager.heads:
            np.testing.assert_allclose(b[h.name], a[h.name], atol=1e-5, err_msg=f"{h.name} @ batch {batch_size}")
