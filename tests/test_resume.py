"""A run killed with SIGKILL resumes from its last checkpoint and ends where an uninterrupted run ends."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow  # subprocess trainings, one killed with SIGKILL


def cli(tiny_encoder, prepared, out, *extra):
    return [sys.executable, "-m", "triagekit", "train", "--data", str(prepared), "--labels", "queue,priority",
            "--output", str(out), "--backbone", str(tiny_encoder), "--epochs", "6", "--set", "save_every=5",
            "--set", "batch_size=16", "--set", "lr=1e-3", "--set", "head_lr=1e-2", "--set", "max_length=64",
            "--set", "tensorboard=false", "--set", "early_stopping_patience=0", *extra]


def env():
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def test_resume_after_sigkill(tiny_encoder, prepared, tmp_path):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(cli(tiny_encoder, prepared, ref), check=True, env=env(), capture_output=True)

    proc = subprocess.Popen(cli(tiny_encoder, prepared, killed), env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    target = killed / "checkpoints" / "step-20"
    while not target.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if (killed / "router.json").exists():
        pytest.fail("the run finished before it could be killed; the test needs a longer run")
    state = json.loads((target / "trainer_state.json").read_text())
    assert state["global_step"] == 20

    done = subprocess.run(cli(tiny_encoder, prepared, killed, "--resume"), env=env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resumed from" in done.stderr
    a = json.loads((ref / "router.json").read_text())["meta"]
    b = json.loads((killed / "router.json").read_text())["meta"]
    assert b["best_val_macro_f1"] == pytest.approx(a["best_val_macro_f1"], abs=0.02)
    ref_steps = [json.loads(x)["step"] for x in (ref / "metrics.jsonl").read_text().splitlines()]
    res_steps = [json.loads(x)["step"] for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert max(res_steps) == max(ref_steps)


def test_resume_without_checkpoint_starts_fresh(tiny_encoder, prepared, tmp_path):
    out = tmp_path / "fresh"
    done = subprocess.run(cli(tiny_encoder, prepared, out, "--resume", "--epochs", "1"), env=env(),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no checkpoint found" in done.stderr
    assert (out / "router.json").exists()
