"""Optuna sweeps: search-space parsing, two worker processes on one SQLite study (no trial lost or duplicated),
the results table, the best config as a loadable preset, and the plots."""

from __future__ import annotations

import csv

import pytest

optuna = pytest.importorskip("optuna", reason="the sweep extra is not installed: pip install 'triagekit[sweep]'")


def test_search_space_is_checked_and_suggests_within_bounds():
    from triagekit.core.sweep import load_space

    valid = ["lr", "lora_r", "epochs", "hybrid", "label_smoothing"]
    space = load_space(
        {
            "space": {
                "lr": {"log_uniform": [1e-5, 1e-3]},
                "lora_r": {"choice": [4, 8, 16]},
                "epochs": {"int": [2, 8, 2]},
                "hybrid": {"choice": [True, False]},
                "label_smoothing": {"uniform": [0.0, 0.2]},
            },
            "base": "minilm",
        },
        valid,
    )
    assert space.base == "minilm" and set(space.params) == set(valid)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        p = space.suggest(study.ask())
        assert 1e-5 <= p["lr"] <= 1e-3 and p["lora_r"] in (4, 8, 16) and p["epochs"] in (2, 4, 6, 8)
        assert 0.0 <= p["label_smoothing"] <= 0.2 and p["hybrid"] in (True, False)
    for bad, match in [
        ({"nope": {"choice": [1]}}, "unknown config key 'nope'"),
        ({"lr": {"normal": [0, 1]}}, "give one of"),
        ({"lr": {"uniform": [1, 0]}}, "low must be below high"),
        ({"lr": {"log_uniform": [0, 1]}}, "positive"),
        ({"lr": {"choice": []}}, "at least one"),
        ({}, "empty"),
    ]:
        with pytest.raises(ValueError, match=match):
            load_space(bad, valid)


@pytest.mark.slow
def test_two_workers_share_one_sqlite_study(tiny_encoder, prepared, tmp_path):
    import yaml

    from triagekit.route.config import load_config
    from triagekit.route.sweep import sweep_router_workers

    space = {
        "lr": {"log_uniform": [1e-4, 3e-3]},
        "head_lr": {"log_uniform": [1e-3, 1e-2]},
        "label_smoothing": {"uniform": [0.0, 0.2]},
    }
    fixed = {
        "backbone": str(tiny_encoder),
        "epochs": 2,
        "batch_size": 32,
        "max_length": 48,
        "labels": ["queue", "priority"],
        "multilabel": [],
        "early_stopping_patience": 0,
    }
    summary = sweep_router_workers(
        2, space=space, data=prepared, study_dir=tmp_path / "study", n_trials=6, overrides=fixed, pruner="median"
    )
    study = optuna.load_study(study_name="study", storage=f"sqlite:///{tmp_path / 'study' / 'study.db'}")
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    others = [t for t in study.trials if t not in finished]
    assert all(t.state.name == "FAIL" and t.user_attrs.get("surplus") for t in others), others
    # Exactly 6 finished, none lost, none run twice (two trials with the same run folder would be a duplicate).
    assert len(finished) == 6 and len({t.user_attrs["run"] for t in finished}) == 6
    assert summary["trials"] == 6 and summary["complete"] >= 1 and summary["failed"] == 0
    rows = list(csv.DictReader((tmp_path / "study" / "results.csv").open()))
    assert len(rows) == 6 and {r["trial"] for r in rows} == {str(t.number) for t in finished}
    values = [float(r["value"]) for r in rows if r["state"] == "COMPLETE"]
    assert values == sorted(values, reverse=True) and values[0] == pytest.approx(summary["best_value"])
    for t in finished:
        assert (tmp_path / "study" / f"trial-{t.number}" / "config.yaml").exists()
    best = yaml.safe_load((tmp_path / "study" / "best.yaml").read_text())
    assert best["lr"] == pytest.approx(summary["best_params"]["lr"])
    cfg = load_config(tmp_path / "study" / "best.yaml")  # the best config is a preset that loads
    assert cfg.lr == pytest.approx(summary["best_params"]["lr"])
    assert (tmp_path / "study" / "history.png").stat().st_size > 1000


def test_a_trial_lost_with_its_worker_is_retried_with_its_params_in_its_folder(tmp_path):
    """A worker that dies mid-trial leaves it RUNNING with a silent heartbeat: the next worker fails it and runs it
    again with the same parameters in the same folder, and the study still ends with exactly the trials asked."""
    import time

    from triagekit.core.sweep import load_space, open_study, run_trials

    space = load_space({"lr": {"log_uniform": [1e-4, 1e-2]}, "epochs": {"int": [1, 9]}})
    study = open_study("lost", tmp_path, pruner="none", heartbeat_interval=1, grace_period=1)
    calls = []

    def killed(params, folder, report):
        calls.append((params, folder))
        raise SystemExit("the worker was killed")  # not an error Optuna records: the trial stays RUNNING

    with pytest.raises(SystemExit):
        run_trials(study, space, killed, tmp_path, n_trials=3)
    assert [t.state.name for t in study.get_trials()] == ["RUNNING"]
    time.sleep(2.5)  # past the grace period

    def works(params, folder, report):
        calls.append((params, folder))
        return params["lr"]

    run_trials(study, space, works, tmp_path, n_trials=3)
    assert calls[1] == calls[0] and calls[0][1] == tmp_path / "trial-0"
    assert len(calls) == 4 and len({str(folder) for _, folder in calls}) == 3
    states = [t.state.name for t in study.get_trials()]
    assert states.count("COMPLETE") == 3 and states.count("FAIL") == 1 and "RUNNING" not in states
