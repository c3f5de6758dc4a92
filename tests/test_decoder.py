"""Decoder LLMs as routers: tiny random Llama and GPT-NeoX backbones, last-token pooling, LoRA and head-only."""

import json

import numpy as np
import pytest
from conftest import save_tiny_model

from triagekit.data import load_prepared
from triagekit.route.config import TrainConfig
from triagekit.route.router import Router
from triagekit.route.train import train


@pytest.fixture(scope="module", params=["llama", "gpt_neox"])
def tiny_decoder(request, tmp_path_factory):
    from transformers import GPTNeoXConfig, GPTNeoXModel, LlamaConfig, LlamaModel

    from triagekit.core.backbones import minilm_path

    if request.param == "llama":
        model, config_cls, extra = LlamaModel, LlamaConfig, {"num_key_value_heads": 2}
    else:
        model, config_cls, extra = GPTNeoXModel, GPTNeoXConfig, {}
    return save_tiny_model(
        tmp_path_factory.mktemp(f"tiny-{request.param}"),
        minilm_path(),
        model,
        config_cls,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=128,
        **extra,
    )


@pytest.mark.parametrize("method", ["lora", "head"])
def test_decoder_router_round_trip(tiny_decoder, prepared, tmp_path, method):
    out = tmp_path / method
    cfg = TrainConfig(
        backbone=str(tiny_decoder),
        method=method,
        labels=["queue", "type"],
        epochs=1,
        batch_size=16,
        lr=1e-3,
        head_lr=1e-2,
        max_length=64,
        trackers=[],
    )
    result = train(cfg, prepared, out)
    assert result.steps > 0
    assert json.loads((out / "model" / "model.json").read_text())["pooling"] == "last"
    params = json.loads((out / "parameters.json").read_text())
    assert params["trainable"] < params["total"] / 3
    # The best model's validation logits, computed in memory during training, equal the reloaded model's.
    with np.load(out / "val_logits.npz") as z:
        in_memory = {k: z[k] for k in z.files}
    router = Router.load(out)
    # Raw network logits (Router.logits adds the prior correction fitted after training; val_logits.npz is before it)
    val_rows = load_prepared(prepared)["val"]
    reloaded = router.backend.logits(router.texts(val_rows), batch_size=7)
    for head in ("queue", "type"):
        np.testing.assert_allclose(reloaded[head], in_memory[head], atol=1e-4)
    if method == "lora":  # `route export DIR --merge`: the adapter folded into plain weights predicts the same
        from triagekit.exporters.export import export

        merged = Router.load(export(out, tmp_path / "merged", format="hf"))
        assert not (tmp_path / "merged" / "model" / "adapter").exists()
        again = merged.backend.logits(merged.texts(val_rows), batch_size=5)
        for head in ("queue", "type"):
            np.testing.assert_allclose(again[head], in_memory[head], atol=1e-4)


def test_qlora_needs_lora_and_cuda(tiny_decoder, prepared, tmp_path):
    import torch

    with pytest.raises(ValueError, match="method: lora"):
        TrainConfig(method="full", quantization="4bit")
    if torch.cuda.is_available():
        pytest.skip("CUDA present: QLoRA is allowed here")
    cfg = TrainConfig(backbone=str(tiny_decoder), method="lora", quantization="4bit", labels=["queue"], epochs=1)
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        train(cfg, prepared, tmp_path / "q")


def test_cpu_bf16_autocast_and_eager_attention(tiny_decoder, prepared, tmp_path):
    """The CPU preset's settings: bf16 autocast and the eager kernel train, and the fp32 reload predicts the same."""
    import torch

    from triagekit.route.heads import HeadSpec
    from triagekit.route.train import build_model

    with pytest.raises(ValueError, match="attn_implementation"):
        TrainConfig(attn_implementation="flash")
    cfg = TrainConfig(
        backbone=str(tiny_decoder),
        method="lora",
        labels=["queue"],
        epochs=1,
        batch_size=16,
        lr=1e-3,
        head_lr=1e-2,
        max_length=64,
        trackers=[],
        device="cpu",
        mixed_precision="bf16",
        attn_implementation="eager",
    )
    model = build_model(cfg, [HeadSpec("queue", ["a", "b"])])
    assert model.backbone.base_model.model.config._attn_implementation == "eager"
    if not torch.cpu._is_avx512_bf16_supported():
        pytest.skip("bf16 on this CPU is emulated: correct but slow, and warned about")
    result = train(cfg, prepared, tmp_path / "bf16")
    assert result.steps > 0 and np.isfinite(result.best_score)
    with np.load(tmp_path / "bf16" / "val_logits.npz") as z:
        in_memory = z["queue"]
    plain = Router.load(tmp_path / "bf16")
    val = load_prepared(prepared)["val"]
    reloaded = plain.backend.logits(plain.texts(val), batch_size=7)["queue"]  # raw: before the prior correction
    np.testing.assert_allclose(reloaded, in_memory, atol=0.05)  # bf16 matmuls in training, fp32 after reload
    # bf16 inference (Router.load(precision="bf16"), `predict --precision bf16`) agrees with the fp32 reload
    fast = Router.load(tmp_path / "bf16", precision="bf16")
    fast_logits = fast.backend.logits(fast.texts(val), batch_size=7)["queue"]
    np.testing.assert_allclose(fast_logits, reloaded, atol=0.05)
    assert not np.array_equal(fast_logits, reloaded)  # the autocast really ran
    with pytest.raises(ValueError, match="precision must be one of"):
        Router.load(tmp_path / "bf16", precision="fp16")
    from triagekit.cli import main

    assert main(["route", "predict", str(tmp_path / "bf16"), "--text", "VPN drops", "--precision", "bf16"]) == 0
    with pytest.raises(ValueError, match="fp16 needs a GPU"):
        train(TrainConfig(**{**cfg.__dict__, "mixed_precision": "fp16"}), prepared, tmp_path / "fp16")
