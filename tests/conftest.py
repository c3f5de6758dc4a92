"""Shared fixtures: tiny random models built from configs (never downloaded) and small synthetic data."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One OpenMP thread per process: scikit-learn's logistic regression (TF-IDF heads) spins OpenMP threads that fight
# over 2 shared cores. Measured here, 4 one-vs-rest tag fits on 150 tickets: 8.7 s with the default, 0.85 s with 1.
# The tiny torch models of the tests are too small to gain from a second thread. Set it yourself to override.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402


def pytest_configure(config):
    """Under pytest-xdist (``make test`` runs ``-n``), each worker gets a PostgreSQL database of its own: the
    PostgreSQL tests start from a clean slate (they drop the tables), which two workers on one database would do to
    each other's tables mid-test."""
    url, worker = os.environ.get("TRIAGEKIT_TEST_PG_URL"), os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"{base.database}_{worker}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    os.environ["TRIAGEKIT_TEST_PG_URL"] = base.set(database=name).render_as_string(hide_password=False)


def save_tiny_model(path, tokenizer_dir, model_cls, config_cls, token_ids=(), **config):
    """``model_cls`` with random weights (seed 0) from ``config_cls(vocab_size=<tokenizer's>, **config)``, saved to
    ``path`` with the tokenizer of ``tokenizer_dir``; ``token_ids`` names tokenizer ids the config copies (e.g.
    ``eos_token_id``). Returns ``path``."""
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    ids = {name: getattr(tokenizer, name) for name in token_ids}
    torch.manual_seed(0)
    model_cls(config_cls(vocab_size=len(tokenizer), **ids, **config)).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory):
    """A 2-layer, hidden-32 BERT with random weights and the embedded MiniLM tokenizer, saved to disk."""
    from transformers import BertConfig, BertModel

    from triagekit.core.backbones import minilm_path

    return save_tiny_model(
        tmp_path_factory.mktemp("tiny-bert"),
        minilm_path(),
        BertModel,
        BertConfig,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory):
    """A 2-layer, hidden-32 Llama causal LM with random weights and the embedded SmolLM2 tokenizer (SFT, triage
    and answer tests)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from triagekit.core.backbones import smollm2_path

    return save_tiny_model(
        tmp_path_factory.mktemp("tiny-llama"),
        smollm2_path(),
        LlamaForCausalLM,
        LlamaConfig,
        token_ids=("eos_token_id", "bos_token_id"),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
    )


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
    prepare(
        synth_file,
        out,
        text_fields=["subject", "body"],
        label_fields=["queue", "priority", "type"],
        multilabel_fields=["tags"],
        seed=0,
    )
    return out


# ---------------------------------------------------------------------------------------------------------------
# Routers trained once per session. Test modules used to train their own; the settings are those of the export tests
# (a few steps at a high rate: clear logit margins, so int8 agreement measures the quantizer, not ties).
ROUTER_HEADS = dict(labels=["queue", "priority", "type"], multilabel=["tags"])


def tiny_router_config(tiny_encoder, **kw):
    """The ``TrainConfig`` of the shared tiny routers, with ``kw`` on top (for tests that train their own)."""
    from triagekit.route.config import TrainConfig

    base = dict(
        backbone=str(tiny_encoder),
        epochs=1,
        max_steps=15,
        batch_size=16,
        lr=3e-3,
        head_lr=3e-2,
        max_length=48,
        trackers=[],
        prior_correction=False,
        # The feature detector (not the default msp) so that every trained-run test covers the feature path: the
        # features through ONNX, the service and batch prediction.
        ood_detector="mahalanobis",
        **ROUTER_HEADS,
    )
    return TrainConfig(**{**base, **kw})


def _read_only(root):
    # A shared run must not change under the tests that read it: a write fails loudly instead of leaking into the
    # next module. Tests that change a run (calibrate it, serve it, edit router.json) take `copy_router` first.
    for path in [*root.rglob("*"), root]:
        path.chmod(path.stat().st_mode & ~0o222)
    return root


def _train_once(tmp_path_factory, name, cfg, data):
    from rich.console import Console

    from triagekit.route.train import train

    out = tmp_path_factory.mktemp(name) / "run"
    train(cfg, data, out, console=Console(quiet=True))
    return _read_only(out)


@pytest.fixture(scope="session")
def tiny_router(tmp_path_factory, tiny_encoder, prepared):
    """A full fine-tune of ``tiny_encoder`` on ``prepared`` (queue, priority, type, tags): 15 steps. Read-only."""
    return _train_once(tmp_path_factory, "tiny-router", tiny_router_config(tiny_encoder, method="full"), prepared)


@pytest.fixture(scope="session")
def tiny_lora_router(tmp_path_factory, tiny_encoder, prepared):
    """The same with LoRA adapters (merge and export paths). Read-only."""
    return _train_once(tmp_path_factory, "tiny-lora-router", tiny_router_config(tiny_encoder, method="lora"), prepared)


@pytest.fixture(scope="session")
def tiny_hybrid_router(tmp_path_factory, tiny_encoder, prepared):
    """A hybrid (encoder + TF-IDF pooled per head) on queue, priority and tags, 5 steps on 150 rows: TF-IDF's
    one-vs-rest tag models take most of a minute on the full split on 2 cores. Read-only."""
    small = tmp_path_factory.mktemp("small-data")
    for split in ("train", "val"):
        lines = (prepared / f"{split}.jsonl").read_text().splitlines()
        (small / f"{split}.jsonl").write_text("\n".join(lines[:150]) + "\n")
    cfg = tiny_router_config(tiny_encoder, method="full", labels=["queue", "priority"], hybrid=True, max_steps=5)
    return _train_once(tmp_path_factory, "tiny-hybrid-router", cfg, small)


@pytest.fixture(scope="session")
def copy_router():
    """``copy_router(run, dest)``: a writable copy of a shared run at ``dest`` (returned)."""
    import shutil

    def copy(run, dest):
        shutil.copytree(run, dest, copy_function=shutil.copyfile)
        for path in [dest, *dest.rglob("*")]:
            if path.is_dir():
                path.chmod(path.stat().st_mode | 0o700)
        return dest

    return copy


#: The databases a prediction-log test runs on: SQLite always, PostgreSQL where ``TRIAGEKIT_TEST_PG_URL`` names one
#: (``eval "$(bash scripts/ci_postgres.sh)"`` starts a throwaway cluster).
# What a single-label head returns for a ticket when the router has an out-of-scope detector (the default): the
# prediction, and whether and why it needs review.
HEAD_RESULT_KEYS = {"label", "confidence", "top_k", "requires_review", "review_reasons", "out_of_scope", "oos_score"}

DBS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            not os.environ.get("TRIAGEKIT_TEST_PG_URL"), reason="TRIAGEKIT_TEST_PG_URL not set (scripts/ci_postgres.sh)"
        ),
    ),
]


def pytest_collection_modifyitems(config, items):
    """The longest tests first (the image build, then the ``slow`` ones), so that under pytest-xdist they do not
    start last and leave the other workers idle at the end; the order is otherwise the collection order."""

    def rank(item) -> int:
        return 0 if item.get_closest_marker("image") else 1 if item.get_closest_marker("slow") else 2

    items.sort(key=rank)
