"""The same training code under `accelerate launch` with 2 CPU processes (what multi-GPU users run)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # a 2-process `accelerate launch` training


def test_two_cpu_processes(tiny_encoder, prepared, tmp_path):
    out = tmp_path / "ddp"
    # --multi_gpu starts one torch.distributed process each; with no GPU they train on the CPU over gloo.
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "triagekit", "train", "--data", str(prepared), "--labels", "queue,priority", "--multilabel", "tags",
           "--output", str(out), "--backbone", str(tiny_encoder), "--epochs", "2", "--set", "batch_size=16",
           "--set", "lr=1e-3", "--set", "head_lr=1e-2", "--set", "max_length=64", "--set", "tensorboard=false"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    n_train = len((prepared / "train.jsonl").read_text().splitlines())
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    # Each process sees half the batches, so an epoch has half the optimizer steps of a single process (the
    # sharded loader may leave a process one batch short per epoch); one process alone would take 2 * n_batches.
    n_batches = int(np.ceil(n_train / 16))
    assert 2 * (n_batches // 2 - 1) <= max(steps) <= 2 * int(np.ceil(n_batches / 2))
    from triagekit.route.router import Router

    router = Router.load(out)
    assert router.predict(["my invoice is wrong"])[0]["queue"]["label"] in router.heads[0].labels
