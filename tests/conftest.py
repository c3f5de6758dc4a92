"""Shared fixtures: tiny random models built from configs (never downloaded) and small synthetic data."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory):
    """A 2-layer, hidden-32 BERT with random weights and the embedded MiniLM tokenizer, saved to disk."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from triagekit.core.backbones import minilm_path

    path = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()))
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory):
    """A 2-layer, hidden-32 Llama causal LM with random weights and the embedded SmolLM2 tokenizer (SFT, triage
    and answer tests)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from triagekit.core.backbones import smollm2_path

    path = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(str(smollm2_path()))
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=tokenizer.bos_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def synth_file(tmp_path_factory):
    """600 synthetic tickets as JSONL."""
    from triagekit.data import write_synth

    path = tmp_path_factory.mktemp("synth") / "tickets.jsonl"
    write_synth(600, path, seed=1)
    return path


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, synth_file):
    """The synthetic tickets validated and split (stratified by queue)."""
    from triagekit.data import prepare

    out = tmp_path_factory.mktemp("prepared")
    prepare(synth_file, out, text_fields=["subject", "body"], label_fields=["queue", "priority", "type"],
            multilabel_fields=["tags"], seed=0)
    return out
