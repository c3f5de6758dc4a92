"""The one training loop (``triagekit.core.loop``) behaves the same for a router run and an SFT run: when it
validates, and when early stopping ends the run."""

import json

import pytest

SFT_PAIRS = [
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


def _records(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _router(tiny_encoder, prepared, out, **kw):
    """A router run; returns (result, steps per epoch)."""
    from triagekit.route.config import TrainConfig
    from triagekit.route.train import train

    cfg = TrainConfig(
        **{
            **dict(
                backbone=str(tiny_encoder),
                labels=["queue"],
                multilabel=[],
                batch_size=16,
                lr=1e-3,
                head_lr=1e-2,
                max_length=64,
                trackers=[],
            ),
            **kw,
        }
    )
    n_train = len((prepared / "train.jsonl").read_text().splitlines())
    return train(cfg, prepared, out), -(-n_train // 16)


def _sft(tiny_llama, out, **kw):
    from triagekit.sft import SFTConfig, train_sft

    cfg = SFTConfig(**{**dict(base=str(tiny_llama), method="full", lr=5e-3, batch_size=4, max_length=128), **kw})
    return train_sft(cfg, SFT_PAIRS, out, val_pairs=SFT_PAIRS[:6]), -(-len(SFT_PAIRS) // 4)


def _run(kind, request, out, **kw):
    if kind == "router":
        return _router(request.getfixturevalue("tiny_encoder"), request.getfixturevalue("prepared"), out, **kw)
    return _sft(request.getfixturevalue("tiny_llama"), out, **kw)


SCORE = {"router": "val_macro_f1", "sft": "val_loss"}


@pytest.mark.parametrize("kind", ["router", "sft"])
def test_validation_schedule_is_the_same_for_every_mode(kind, request, tmp_path):
    """eval_every N: every N steps and the last step, never extra at epoch ends; eval_every 0: each epoch end."""
    every = 7 if kind == "router" else 4
    result, per_epoch = _run(kind, request, tmp_path / "steps", epochs=2, eval_every=every, early_stopping_patience=0)
    total = 2 * per_epoch
    assert per_epoch % every, "the test needs epoch ends that are not multiples of eval_every"
    validated = [r["step"] for r in _records(tmp_path / "steps") if SCORE[kind] in r]
    assert result.steps == total
    assert validated == list(range(every, total + 1, every)) + ([total] if total % every else [])

    result, per_epoch = _run(kind, request, tmp_path / "epochs", epochs=2, eval_every=0, early_stopping_patience=0)
    validated = [r["step"] for r in _records(tmp_path / "epochs") if SCORE[kind] in r]
    assert validated == [per_epoch, 2 * per_epoch]


@pytest.mark.parametrize("kind", ["router", "sft"])
def test_early_stopping_stops_when_nothing_improves(kind, request, tmp_path):
    out = tmp_path / "stop"
    kw = dict(head_lr=0.0) if kind == "router" else {}
    result, _ = _run(kind, request, out, epochs=10, lr=0.0, early_stopping_patience=2, eval_every=3, **kw)
    assert result.stopped_early
    evals = [r for r in _records(out) if SCORE[kind] in r]
    assert len(evals) == 3 and result.best_step == 3
    assert [r["best"] for r in evals] == [True, False, False]
    assert result.steps == 9  # the run ended at the third validation, not after 10 epochs


@pytest.mark.parametrize("kind", ["router", "sft"])
def test_max_steps_and_accumulation(kind, request, tmp_path):
    result, per_epoch = _run(
        kind, request, tmp_path / "acc", epochs=3, max_steps=5, grad_accum=2, early_stopping_patience=0
    )
    assert result.steps == 5
    assert [r["step"] for r in _records(tmp_path / "acc") if "train_loss" in r] == [5]
    assert (tmp_path / "acc" / "checkpoints" / "step-5" / "trainer_state.json").exists()


def test_parameter_report_for_full_and_adapter_runs():
    from triagekit.core.modeling import parameter_report

    full = parameter_report({"trainable": 100, "total": 100, "trainable_percent": 100.0, "reduction_ratio": 1.0})
    assert "fewer" not in full and "full fine-tune" in full
    lora = parameter_report({"trainable": 5, "total": 100, "trainable_percent": 5.0, "reduction_ratio": 20.0})
    assert "20.0x fewer" in lora and "5.000%" in lora


@pytest.mark.parametrize(
    "higher, best, value, improved",
    [
        (True, None, 0.1, True),
        (True, 0.5, 0.5 + 2e-4, True),
        (True, 0.5, 0.5 + 5e-5, False),
        (True, 0.5, 0.4, False),
        (False, None, 9.0, True),
        (False, 2.0, 2.0 - 2e-4, True),
        (False, 2.0, 2.0 - 5e-5, False),
        (False, 2.0, 2.1, False),
    ],
)
def test_a_better_score_needs_min_delta_in_the_scores_direction(higher, best, value, improved):
    from triagekit.core.loop import Score, _improved

    assert _improved(Score(value, higher_is_better=higher), best, min_delta=1e-4) is improved
