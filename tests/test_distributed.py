"""The same training code under `accelerate launch` with 2 CPU processes (what multi-GPU users run), for a router
and for an SFT (triage) run."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # 2-process `accelerate launch` trainings

LAUNCH = [
    sys.executable,
    "-m",
    "accelerate.commands.launch",
    "--multi_gpu",
    "--num_processes",
    "2",
    "--num_machines",
    "1",
    "--mixed_precision",
    "no",
    "--dynamo_backend",
    "no",
    "-m",
    "triagekit",
]


def _launch(args):
    # --multi_gpu starts one torch.distributed process each; with no GPU they train on the CPU over gloo.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(LAUNCH + args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _steps_fit_two_shards(out, n_train, batch, epochs):
    # Each process sees half the batches, so an epoch has half the optimizer steps of a single process (the
    # sharded loader may leave a process one batch short per epoch); one process alone would take 2 * n_batches.
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    n_batches = int(np.ceil(n_train / batch))
    assert epochs * (n_batches // 2 - 1) <= max(steps) <= epochs * int(np.ceil(n_batches / 2))


def test_two_cpu_processes(tiny_encoder, prepared, tmp_path):
    out = tmp_path / "ddp"
    _launch(
        [
            "train",
            "--data",
            str(prepared),
            "--labels",
            "queue,priority",
            "--multilabel",
            "tags",
            "--output",
            str(out),
            "--backbone",
            str(tiny_encoder),
            "--epochs",
            "2",
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
        ]
    )
    _steps_fit_two_shards(out, len((prepared / "train.jsonl").read_text().splitlines()), 16, 2)
    from triagekit.route.router import Router

    router = Router.load(out)
    assert router.predict(["my invoice is wrong"])[0]["queue"]["label"] in router.heads[0].labels


@pytest.fixture(scope="module")
def triage_data(tmp_path_factory):
    from triagekit.triage import write_triage_synth

    return write_triage_synth(80, tmp_path_factory.mktemp("triage") / "t.jsonl", seed=4)


def test_two_cpu_processes_sft(tiny_llama, triage_data, tmp_path):
    out = tmp_path / "ddp-sft"
    _launch(
        [
            "train",
            "--task",
            "triage",
            "--data",
            str(triage_data),
            "--output",
            str(out),
            "--backbone",
            str(tiny_llama),
            "--method",
            "lora",
            "--epochs",
            "2",
            "--set",
            "batch_size=8",
            "--set",
            "lr=5e-3",
            "--set",
            "max_length=160",
            "--set",
            "eval_every=0",
            "--set",
            "early_stopping_patience=0",
        ]
    )
    n_train = 80 - round(0.1 * 80)  # train_triage keeps 10 % for validation
    _steps_fit_two_shards(out, n_train, 8, 2)
    meta = json.loads((out / "sft.json").read_text())
    assert meta["steps"] == max(json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines())
    assert np.isfinite(meta["best_val_loss"]) and meta["best_step"] > 0
    evals = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if "val_loss" in x]
    assert len(evals) == 2  # one validation per epoch, written once (by the main process)
    from triagekit.sft import load

    lm = load(out, device="cpu")
    assert isinstance(lm.generate(["vpn drops"], max_new_tokens=4)[0], str)
