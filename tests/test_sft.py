"""Causal-LM SFT core on a tiny random Llama with the SmolLM2 tokenizer: masking, truncation, training, round
trip, resume, and the KV-cached decoding loop against ``model.generate``."""

import json

import pytest
import torch

from triagekit.sft import IGNORE_INDEX, SFTConfig, encode_pair, encode_pairs, load, train_sft
from triagekit.sft.decode import decode

PAIRS = [
    (f"ticket {i}: the {w} is broken", '{"category": "%s"}' % c)
    for i, (w, c) in enumerate(
        [
            ("printer", "Hardware"),
            ("vpn", "Network"),
            ("laptop", "Hardware"),
            ("wifi", "Network"),
            ("excel", "Software"),
            ("outlook", "Software"),
        ]
        * 4
    )
]


def _tokenizer(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


def test_prompt_tokens_are_masked(tiny_llama):
    tok = _tokenizer(tiny_llama)
    ex = encode_pair(tok, "the vpn drops", '{"a": 1}', max_length=256, system="Triage.")
    labels, ids = ex["labels"], ex["input_ids"]
    n = ex["n_prompt"]
    assert all(x == IGNORE_INDEX for x in labels[:n]) and labels[n:] == ids[n:]
    assert tok.decode(ids[n:]) == '{"a": 1}<|im_end|>'
    assert tok.decode(ids[:n]).endswith("<|im_start|>assistant\n") and "Triage." in tok.decode(ids[:n])


def test_truncation_keeps_the_answer_and_is_counted(tiny_llama):
    tok = _tokenizer(tiny_llama)
    long_prompt = "word " * 300
    examples, stats = encode_pairs(
        tok, [(long_prompt, "ANSWER TEXT"), ("short", "x " * 300), ("ok", "fine")], max_length=96
    )
    assert stats.prompt_truncated == 1 and stats.dropped_answer_too_long == [1] and stats.examples == 2
    first = examples[0]
    assert len(first["input_ids"]) == 96 and first["row"] == 0
    assert tok.decode(first["input_ids"][first["n_prompt"] :]) == "ANSWER TEXT<|im_end|>"
    assert tok.decode(first["input_ids"][: first["n_prompt"]]).endswith("<|im_end|>\n<|im_start|>assistant\n")


def _answer_loss(lm, pairs) -> float:
    from triagekit.sft.data import SFTCollator

    examples, _ = encode_pairs(lm.tokenizer, pairs, 256)
    batch = SFTCollator(lm.tokenizer.pad_token_id)(list(enumerate(examples)))
    with torch.no_grad():
        return float(
            lm.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
        )


def test_answer_token_loss_is_the_labels_loss_and_its_gradient(tiny_llama):
    """Logits only where an answer token is predicted: the same loss and gradients as ``labels=`` (full and LoRA,
    the prompt masked, rows of different lengths padded), and the ``labels=`` path for a model without
    ``logits_to_keep``."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from triagekit.sft.data import SFTCollator
    from triagekit.sft.train import _keeps_logits, answer_token_loss

    tok = _tokenizer(tiny_llama)
    examples, _ = encode_pairs(tok, PAIRS[:4] + [(PAIRS[4][0] * 6, PAIRS[4][1])], max_length=256)
    batch = SFTCollator(tok.pad_token_id)(list(enumerate(examples)))
    assert (batch["labels"][:, 1:] == IGNORE_INDEX).all(0).any()  # some positions predict no answer token
    torch.manual_seed(0)
    full = AutoModelForCausalLM.from_pretrained(str(tiny_llama))
    lora = get_peft_model(
        AutoModelForCausalLM.from_pretrained(str(tiny_llama)),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    refs = []
    for model in (full, lora):
        assert _keeps_logits(model)
        grads = []
        for fn in (
            lambda m: m(**{k: batch[k] for k in ("input_ids", "attention_mask", "labels")}).loss,
            lambda m: answer_token_loss(m, batch),
        ):
            model.zero_grad()
            loss = fn(model)
            loss.backward()
            grads.append((loss.item(), [p.grad.clone() for p in model.parameters() if p.requires_grad]))
        (ref, ref_g), (got, got_g) = grads
        assert got == pytest.approx(ref, rel=1e-5)
        refs.append(ref)
        for a, b in zip(ref_g, got_g):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)

    class NoKeep(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, labels=None):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, labels=labels)

    plain = NoKeep(full)
    assert not _keeps_logits(plain)
    assert answer_token_loss(plain, batch, keeps_logits=False).item() == pytest.approx(refs[0], rel=1e-5)


@pytest.mark.parametrize("method", ["lora", "full"])
def test_training_lowers_the_loss_and_round_trips(tiny_llama, tmp_path, method):
    before = _answer_loss(load(str(tiny_llama), device="cpu"), PAIRS)
    cfg = SFTConfig(
        base=str(tiny_llama),
        method=method,
        lr=5e-2 if method == "lora" else 1e-2,
        epochs=0,
        max_steps=30,
        batch_size=8,
        lora_r=8,
        lora_alpha=64,
        eval_every=10,
        early_stopping_patience=0,
        max_length=128,
    )
    result = train_sft(cfg, PAIRS, tmp_path / "run", val_pairs=PAIRS[:6], task="test", task_meta={"k": 1})
    assert result.steps == 30 and result.train_tokens > 0
    meta = json.loads((tmp_path / "run" / "sft.json").read_text())
    assert meta["task"] == "test" and meta["task_meta"] == {"k": 1} and meta["best_step"] == result.best_step
    lm = load(tmp_path / "run", device="cpu")
    after = _answer_loss(lm, PAIRS)
    # From ~ln(vocab) = 10.8; adapters on a random tiny model cannot move its embeddings, so they learn slower.
    assert after < before - (1.0 if method == "full" else 0.25), (before, after)
    # The reloaded model's validation loss is the one recorded at the best step.
    assert _answer_loss(lm, PAIRS[:6]) == pytest.approx(result.best_val_loss, rel=1e-3)
    if method == "lora":
        assert (tmp_path / "run" / "model" / "adapter" / "adapter_config.json").exists()
        unmerged = load(tmp_path / "run", device="cpu", merge=False)
        assert _answer_loss(unmerged, PAIRS) == pytest.approx(after, rel=1e-4)
    with pytest.raises(FileExistsError):
        train_sft(cfg, PAIRS, tmp_path / "run")


def test_resume_continues_to_the_same_model(tiny_llama, tmp_path):
    cfg = SFTConfig(
        base=str(tiny_llama),
        method="full",
        lr=5e-3,
        epochs=0,
        max_steps=6,
        batch_size=4,
        save_every=3,
        keep_checkpoints=3,
        early_stopping_patience=0,
        max_length=128,
    )
    full = train_sft(cfg, PAIRS, tmp_path / "a")
    import shutil

    shutil.copytree(tmp_path / "a", tmp_path / "b")
    shutil.rmtree(tmp_path / "b" / "checkpoints" / "step-6")
    resumed = train_sft(cfg.replace(max_steps=999), PAIRS, tmp_path / "b", resume=True)  # the saved config wins
    assert resumed.steps == full.steps == 6
    a, b = load(tmp_path / "a", device="cpu"), load(tmp_path / "b", device="cpu")
    assert _answer_loss(a, PAIRS) == pytest.approx(_answer_loss(b, PAIRS), rel=1e-5)


def test_qlora_needs_cuda(tiny_llama, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(RuntimeError, match="CUDA"):
        train_sft(SFTConfig(base=str(tiny_llama), method="qlora", max_steps=1), PAIRS, tmp_path / "q")


def test_decode_matches_generate(tiny_llama):
    lm = load(str(tiny_llama), device="cpu")
    prompts = [lm.prompt_ids(p) for p in ["a", "a much longer prompt about a broken printer", "vpn"]]
    ours = decode(lm.model, prompts, max_new_tokens=12, stop_ids=set(), pad_id=lm.tokenizer.pad_token_id)
    for p, new in zip(prompts, ours):
        ref = lm.model.generate(
            torch.tensor([p]),
            max_new_tokens=12,
            do_sample=False,
            eos_token_id=None,
            min_new_tokens=12,
            pad_token_id=lm.tokenizer.pad_token_id,
        )[0, len(p) :].tolist()
        assert new == ref
    texts = lm.generate(["a", "vpn"], max_new_tokens=5)
    assert len(texts) == 2 and lm.last_stats.tokens > 0
    streamed = "".join(lm.stream("a", max_new_tokens=5))
    assert streamed == texts[0]


class _Forcing:
    """Forces ``forced[row]`` after every sampled token of that row: forced runs of different lengths per row."""

    def __init__(self, forced):
        self.forced = forced

    def begin(self, n):
        pass

    def prepare(self, rows):
        pass

    def mask_(self, logits, rows):
        pass

    def advance(self, row, token):
        return list(self.forced[row])

    def finished(self, row):
        return False


def test_decode_with_forced_runs_of_different_lengths_matches_a_full_recompute(tiny_llama):
    # Each row's next token must come from its own last position, however many forced tokens each row read in
    # the same forward pass (only those positions' logits are computed).
    lm = load(str(tiny_llama), device="cpu")
    prompts = [lm.prompt_ids(p) for p in ["a", "a much longer prompt about a broken printer", "vpn"]]
    forced = [[11, 12, 13], [], [14]]
    ours = decode(
        lm.model,
        prompts,
        max_new_tokens=13,
        stop_ids=set(),
        pad_id=lm.tokenizer.pad_token_id,
        constraint=_Forcing(forced),
        overlap=False,
    )
    for p, f, new in zip(prompts, forced, ours):
        seq = list(p)
        while len(seq) - len(p) < 13:
            with torch.no_grad():
                token = int(lm.model(torch.tensor([seq])).logits[0, -1].argmax())
            seq += [token] + f
        assert new == seq[len(p) : len(p) + 13]


@pytest.mark.parametrize(
    "preset",
    sorted(__import__("pathlib").Path(__file__).resolve().parents[1].glob("src/triagekit/presets/triage/*.yaml")),
    ids=lambda p: p.name,
)
def test_triage_presets_load(preset):
    from triagekit.sft import load_sft_config

    cfg = load_sft_config(preset)
    assert cfg.method in ("lora", "full", "qlora") and cfg.max_length >= 64


def test_config_errors():
    from triagekit.sft import load_sft_config, parse_sft_overrides

    assert parse_sft_overrides(["lr=3e-4", "method=full"]) == {"lr": 3e-4, "method": "full"}
    with pytest.raises(ValueError, match="unknown config key"):
        parse_sft_overrides(["nope=1"])
    with pytest.raises(ValueError, match="method must be"):
        load_sft_config(method="head")
