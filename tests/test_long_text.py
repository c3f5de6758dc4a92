"""long_text: truncate | head_tail | chunks, in training, prediction and the ONNX path."""

import json

import numpy as np
import pytest

from triagekit.route.config import TrainConfig
from triagekit.route.router import Router
from triagekit.route.train import train
from triagekit.route.windows import LongText, encode_windows, pool_windows

LONG = " ".join(f"word{i}" for i in range(300)) + " the printer on floor three is broken"


@pytest.fixture(scope="module")
def tokenizer(tiny_encoder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_encoder))


def test_truncate_is_the_tokenizers_truncation(tokenizer):
    windows, owner = encode_windows(tokenizer, [LONG, "short"], 32)
    assert windows == tokenizer([LONG, "short"], truncation=True, max_length=32)["input_ids"]
    assert owner.tolist() == [0, 1]


def test_head_tail_keeps_both_ends(tokenizer):
    (ids,), _ = encode_windows(tokenizer, [LONG], 32, LongText("head_tail"))
    full = tokenizer(LONG, add_special_tokens=False)["input_ids"]
    assert len(ids) == 32 and ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    body = ids[1:-1]
    assert body[:7] == full[:7] and body[-23:] == full[-23:]  # a quarter from the head, the rest from the tail
    assert "broken" in tokenizer.decode(ids)


def test_chunks_overlap_cover_and_are_capped(tokenizer):
    full = tokenizer(LONG, add_special_tokens=False)["input_ids"]
    windows, owner = encode_windows(tokenizer, ["short", LONG], 32, LongText("chunks", stride=20, max_chunks=100))
    assert owner[0] == 0 and (owner[1:] == 1).all() and len(windows[0]) < 32
    bodies = [w[1:-1] for w in windows[1:]]
    assert all(len(w) <= 32 for w in windows) and bodies[0] == full[:30]
    assert bodies[1][:10] == full[20:30]  # 10 tokens of overlap
    assert bodies[-1][-1] == full[-1]  # the end of the text is read
    capped, owner = encode_windows(tokenizer, [LONG], 32, LongText("chunks", stride=20, max_chunks=3))
    assert len(capped) == 3


def test_pool_windows_is_the_mean_per_text():
    z = np.array([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0]])
    np.testing.assert_allclose(pool_windows(z, np.array([0, 0, 1]), 2), [[2.0, 1.0], [5.0, 5.0]])
    assert pool_windows(z, np.arange(3), 3) is z


def test_bad_long_text_setting_is_a_clear_error():
    with pytest.raises(ValueError, match="long_text must be one of"):
        TrainConfig(long_text="summarise")


@pytest.fixture(scope="module")
def chunked_run(tmp_path_factory, tiny_encoder, prepared):
    from rich.console import Console

    out = tmp_path_factory.mktemp("chunks") / "run"
    cfg = TrainConfig(
        backbone=str(tiny_encoder),
        labels=["queue"],
        multilabel=[],
        epochs=1,
        max_steps=4,
        batch_size=8,
        max_length=16,
        long_text="chunks",
        chunk_stride=8,
        max_chunks=3,
        lr=1e-3,
        trackers=[],
    )
    train(cfg, prepared, out, console=Console(quiet=True))
    return out


def test_chunked_training_and_prediction_pool_the_windows(chunked_run):
    import torch

    info = json.loads((chunked_run / "router.json").read_text())
    assert info["long_text"] == {"mode": "chunks", "stride": 8, "max_chunks": 3}
    router = Router.load(chunked_run, device="cpu")
    backend = router.backend
    got = backend.logits([LONG, "printer broken"])["queue"]
    windows, owner = encode_windows(backend.tokenizer, [LONG, "printer broken"], 16, backend.long_text)
    assert (owner == 0).sum() == 3
    with torch.inference_mode():
        each = [
            backend.model(input_ids=torch.tensor([w]), attention_mask=torch.ones(1, len(w), dtype=torch.long))["queue"][
                0
            ].numpy()
            for w in windows
        ]
    np.testing.assert_allclose(got[0], np.mean(each[:3], axis=0), atol=1e-5)
    np.testing.assert_allclose(got[1], each[3], atol=1e-5)


def test_onnx_export_of_a_chunked_run_matches_pytorch(chunked_run, tmp_path):
    pytest.importorskip("onnxruntime")
    from triagekit.exporters.export import export

    out = export(chunked_run, tmp_path / "onnx")
    a = Router.load(chunked_run, device="cpu").predict_proba([LONG, "vpn down", LONG[:200]])["queue"]
    b = Router.load(out).predict_proba([LONG, "vpn down", LONG[:200]])["queue"]
    np.testing.assert_allclose(b, a, atol=1e-4)


def test_a_negative_pad_multiple_is_a_clear_error():
    with pytest.raises(ValueError, match="pad_to_multiple_of must be 0"):
        TrainConfig(labels=["queue"], pad_to_multiple_of=-16)


def test_collator_pads_to_a_multiple_of_the_setting_and_masks_the_pads():
    import torch

    from triagekit.route.batching import Collator
    from triagekit.route.heads import HeadSpec

    heads = [HeadSpec("queue", ["a", "b"])]
    items = [(0, {"windows": [[5, 6, 7]], "queue": 1}), (1, {"windows": [[5] * 17], "queue": 0})]
    plain, padded = Collator(heads, 0)(items), Collator(heads, 0, pad_to_multiple_of=16)(items)
    assert plain["input_ids"].shape == (2, 17) and padded["input_ids"].shape == (2, 32)
    assert torch.equal(padded["attention_mask"].sum(1), torch.tensor([3, 17]))
    assert torch.equal(padded["input_ids"][:, :17], plain["input_ids"]) and int(padded["input_ids"][:, 17:].sum()) == 0
