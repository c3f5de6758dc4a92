"""Experiment tracking through Accelerate's trackers: the ``trackers`` key, TensorBoard event files and the MLflow
file store read back with each tool's own reader, and the error for a tracker that is not installed."""

from __future__ import annotations

import json

import pytest

from tests.conftest import tiny_router_config


def _records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _series(records, key):
    return {r["step"]: r[key] for r in records if key in r}


def test_trackers_key_defaults_alias_and_validation():
    from triagekit.core.config import parse_overrides
    from triagekit.route.config import TrainConfig
    from triagekit.sft import SFTConfig

    assert TrainConfig().trackers == ["tensorboard"]
    assert SFTConfig(base="x").trackers == ["tensorboard"]
    assert parse_overrides(["trackers=[mlflow,tensorboard]"], TrainConfig) == {"trackers": ["mlflow", "tensorboard"]}
    assert parse_overrides(["trackers=[]"], TrainConfig) == {"trackers": []}
    with pytest.warns(FutureWarning, match="trackers"):
        assert TrainConfig(tensorboard=False).trackers == []
    with pytest.warns(FutureWarning):
        cfg = TrainConfig(tensorboard=True, trackers=["mlflow"])
    assert cfg.trackers == ["tensorboard", "mlflow"] and cfg.tensorboard is None  # saved configs use trackers
    with pytest.raises(ValueError, match="trackers must be a list of tensorboard, mlflow, wandb"):
        TrainConfig(trackers=["neptune"])


def test_missing_tracker_package_names_the_extra(monkeypatch, tiny_encoder, prepared, tmp_path):
    import triagekit.core.extras as extras
    from triagekit.route.train import train

    monkeypatch.setattr(extras, "available", lambda module: module != "wandb")
    with pytest.raises(RuntimeError, match=r"wandb not installed: `pip install 'triagekit\[wandb\]'`"):
        train(tiny_router_config(tiny_encoder, trackers=["wandb"], epochs=1), prepared, tmp_path / "run")
    assert not (tmp_path / "run" / "model").exists()


def test_router_run_logs_to_tensorboard_and_mlflow_file_store(tiny_encoder, prepared, tmp_path, monkeypatch):
    """Both trackers get the same per-step and per-validation numbers as metrics.jsonl, the resolved config and
    parameter counts once, and the final metrics once."""
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from triagekit.route.train import train

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)  # the run sets it; restored after the test
    run = tmp_path / "run-a"
    cfg = tiny_router_config(tiny_encoder, trackers=["tensorboard", "mlflow"], eval_every=5, head_lr=1e-2)
    train(cfg, prepared, run)
    records = _records(run)
    loss, f1 = _series(records, "train_loss"), _series(records, "val_macro_f1")
    assert loss and sorted(f1) == [5, 10, 15]
    parameters = json.loads((run / "parameters.json").read_text())
    state = max(run.glob("checkpoints/step-*"), key=lambda p: int(p.name.split("-")[1])) / "trainer_state.json"
    best = json.loads(state.read_text())

    events = EventAccumulator(str(run / "tb" / "triagekit"), size_guidance={"scalars": 0})
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train_loss", "val_macro_f1", "final/val_macro_f1", "final/best_step"} <= tags
    assert {e.step: e.value for e in events.Scalars("val_macro_f1")} == pytest.approx(f1)
    assert {e.step: e.value for e in events.Scalars("train_loss")} == pytest.approx(loss)
    (final,) = events.Scalars("final/val_macro_f1")
    assert final.value == pytest.approx(best["best_metrics"]["val_macro_f1"])

    client = MlflowClient(tracking_uri=(run / "mlruns").resolve().as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "triagekit"]
    (mlrun,) = client.search_runs([experiment.experiment_id])
    assert mlrun.info.run_name == "run-a" and mlrun.info.status == "FINISHED"
    params = mlrun.data.params
    assert params["backbone"] == str(tiny_encoder) and float(params["head_lr"]) == 1e-2
    assert float(params["lr"]) == cfg.resolved_lr and "tensorboard" not in params
    assert json.loads(params["labels"]) == cfg.labels
    assert int(params["parameters_trainable"]) == parameters["trainable"]
    metrics = mlrun.data.metrics
    assert metrics["final.val_macro_f1"] == pytest.approx(best["best_metrics"]["val_macro_f1"])
    assert metrics["final.best_step"] == best["best_step"] and "val_macro_f1.queue" in metrics
    history = client.get_metric_history(mlrun.info.run_id, "val_macro_f1")
    assert {m.step: m.value for m in history} == pytest.approx(f1)


def test_sft_run_logs_validation_loss_to_tensorboard(tiny_llama, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from triagekit.sft import SFTConfig, train_sft

    pairs = [(f"ticket {i}: my card was charged twice", f"Refund #{i} is on its way.") for i in range(8)]
    cfg = SFTConfig(base=str(tiny_llama), method="full", lr=5e-3, batch_size=4, max_length=64, epochs=1)
    run = tmp_path / "sft"
    train_sft(cfg, pairs, run, val_pairs=pairs[:4])
    events = EventAccumulator(str(run / "tb" / "triagekit"), size_guidance={"scalars": 0})
    events.Reload()
    val = _series(_records(run), "val_loss")
    assert val and {e.step: e.value for e in events.Scalars("val_loss")} == pytest.approx(val)
    assert "final/val_loss" in events.Tags()["scalars"]
