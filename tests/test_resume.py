"""A run killed with SIGKILL resumes from its last checkpoint and ends where an uninterrupted run ends, for a
router and for an SFT (triage) run: both go through the one loop in ``triagekit.core.loop``."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow  # subprocess trainings, one killed with SIGKILL


@pytest.fixture(scope="module")
def triage_data(tmp_path_factory):
    from triagekit.triage import write_triage_synth

    return write_triage_synth(200, tmp_path_factory.mktemp("triage") / "t.jsonl", seed=3)


def cli(tiny_encoder, prepared, out, *extra):
    return [
        sys.executable,
        "-m",
        "triagekit",
        "train",
        "--data",
        str(prepared),
        "--labels",
        "queue,priority",
        "--output",
        str(out),
        "--backbone",
        str(tiny_encoder),
        "--epochs",
        "6",
        "--set",
        "save_every=5",
        "--set",
        "batch_size=16",
        "--set",
        "lr=1e-3",
        "--set",
        "head_lr=1e-2",
        "--set",
        "max_length=64",
        "--set",
        "trackers=[]",
        "--set",
        "early_stopping_patience=0",
        *extra,
    ]


def sft_cli(tiny_llama, data, out, *extra):
    """180 training tickets in batches of 8: 23 steps an epoch, 46 in all."""
    return [
        sys.executable,
        "-m",
        "triagekit",
        "train",
        "--task",
        "triage",
        "--data",
        str(data),
        "--output",
        str(out),
        "--backbone",
        str(tiny_llama),
        "--method",
        "full",
        "--epochs",
        "2",
        "--set",
        "save_every=5",
        "--set",
        "batch_size=8",
        "--set",
        "lr=5e-3",
        "--set",
        "max_length=160",
        "--set",
        "eval_every=10",
        "--set",
        "early_stopping_patience=0",
        "--set",
        "keep_checkpoints=2",
        *extra,
    ]


def env():
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _command(kind, request, out, *extra):
    if kind == "router":
        return cli(request.getfixturevalue("tiny_encoder"), request.getfixturevalue("prepared"), out, *extra)
    return sft_cli(request.getfixturevalue("tiny_llama"), request.getfixturevalue("triage_data"), out, *extra)


def _best(kind, out) -> float:
    if kind == "router":
        return json.loads((out / "router.json").read_text())["meta"]["best_val_macro_f1"]
    return json.loads((out / "sft.json").read_text())["best_val_loss"]


@pytest.mark.parametrize("kind", ["router", "sft"])
def test_resume_after_sigkill(kind, request, tmp_path):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(_command(kind, request, ref), check=True, env=env(), capture_output=True)

    proc = subprocess.Popen(
        _command(kind, request, killed), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    target = killed / "checkpoints" / "step-20"
    while not target.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if (killed / "router.json").exists() or (killed / "sft.json").exists():
        pytest.fail("the run finished before it could be killed; the test needs a longer run")
    state = json.loads((target / "trainer_state.json").read_text())
    assert state["global_step"] == 20

    done = subprocess.run(_command(kind, request, killed, "--resume"), env=env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resumed from" in done.stderr
    if kind == "router":
        assert _best(kind, killed) == pytest.approx(_best(kind, ref), abs=0.02)
    else:  # the same batches in the same order from the restored RNG and optimizer state: the same loss
        assert _best(kind, killed) == pytest.approx(_best(kind, ref), rel=1e-3)
    ref_steps = [json.loads(x)["step"] for x in (ref / "metrics.jsonl").read_text().splitlines()]
    res_steps = [json.loads(x)["step"] for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert max(res_steps) == max(ref_steps)


def test_resume_without_checkpoint_starts_fresh(tiny_encoder, prepared, tmp_path):
    out = tmp_path / "fresh"
    done = subprocess.run(
        cli(tiny_encoder, prepared, out, "--resume", "--epochs", "1"), env=env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no checkpoint found" in done.stderr
    assert (out / "router.json").exists()
