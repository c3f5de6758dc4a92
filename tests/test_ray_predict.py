"""Batch routing on Ray Data (2 local actors): the same records as the in-process predict, bad rows reported with
file and line, one output shard per input shard, shards already written skipped."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'triagekit[ray]'")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def router_run(tiny_router):
    """The suite's shared tiny router (queue, priority, type, tags; the feature detector): read-only, which
    batch routing must respect."""
    return tiny_router


@pytest.fixture(scope="module")
def shards(prepared, tmp_path_factory):
    import pandas as pd

    from triagekit.data import load_prepared

    rows = load_prepared(prepared)["test"]
    d = tmp_path_factory.mktemp("shards")
    pd.DataFrame(rows[:25]).drop(columns=["tags"]).to_csv(d / "a.csv", index=False)
    lines = [json.dumps(r) for r in rows[25:50]]
    lines.insert(3, "{not json")
    lines.insert(7, json.dumps({"id": "empty", "subject": "", "body": "  "}))
    (d / "b.jsonl").write_text("\n".join(lines) + "\n")
    pd.DataFrame(rows[50:60]).to_parquet(d / "c.parquet")
    return d


def test_ray_matches_in_process_predict_and_resumes(router_run, shards, tmp_path):
    import ray

    try:
        _predict_and_resume(router_run, shards, tmp_path)
    finally:
        ray.shutdown()  # one local Ray for both runs: each start spawns its processes on the 2 cores again


def _predict_and_resume(router_run, shards, tmp_path):
    from triagekit.route import Router
    from triagekit.route.distributed import predict_ray
    from triagekit.route.predict import predict_file

    counts = predict_ray(router_run, shards, tmp_path / "ray", num_actors=2, batch_size=8)
    assert counts == {"predicted": 60, "rejected": 2, "shards": 3, "skipped": 0}
    router = Router.load(router_run)
    for name in ("a.csv", "b.jsonl", "c.parquet"):
        stem = name.split(".")[0]
        predict_file(router, shards / name, tmp_path / "local" / f"{stem}.jsonl")
        local = (tmp_path / "local" / f"{stem}.jsonl").read_text().splitlines()
        remote = (tmp_path / "ray" / f"{stem}.jsonl").read_text().splitlines()
        assert len(local) == len(remote) > 0
        for a, b in zip(local, remote):
            a, b = json.loads(a), json.loads(b)
            assert a["id"] == b["id"]
            for head in ("queue", "priority"):
                assert a[head]["label"] == b[head]["label"]
                assert a[head]["confidence"] == pytest.approx(b[head]["confidence"], abs=1e-5)
            assert a["tags"]["labels"] == b["tags"]["labels"]
    rejected = [json.loads(x) for x in (tmp_path / "ray" / "b.rejected.jsonl").read_text().splitlines()]
    assert [(r["file"].endswith("b.jsonl"), r["line"]) for r in rejected] == [(True, 4), (True, 8)]
    assert "not JSON" in rejected[0]["reason"] or "JSON" in rejected[0]["reason"]
    assert "no text" in rejected[1]["reason"]
    # A rerun skips every shard already written; removing one output redoes only that shard.
    assert predict_ray(router_run, shards, tmp_path / "ray")["skipped"] == 3
    (tmp_path / "ray" / "c.jsonl").unlink()
    again = predict_ray(router_run, str(shards / "*"), tmp_path / "ray", num_actors=1)
    assert again == {"predicted": 10, "rejected": 0, "shards": 1, "skipped": 2}


def test_bad_inputs_are_clear_errors(router_run, tmp_path):
    from triagekit.route.distributed import input_shards, predict_ray

    with pytest.raises(FileNotFoundError, match="no CSV"):
        input_shards(tmp_path / "nothing-*.csv")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "t.csv").write_text("subject,body\na,b\n")
    (tmp_path / "x" / "t.jsonl").write_text('{"subject": "a"}\n')
    with pytest.raises(ValueError, match="same output name"):
        input_shards(tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="not a triagekit model"):
        predict_ray(tmp_path, tmp_path / "x", tmp_path / "o")
    with pytest.raises(ValueError, match="num-actors"):
        predict_ray(router_run, tmp_path / "x", tmp_path / "o", num_actors=0)


def test_actors_share_the_cores_out(monkeypatch):
    """2 cores, 2 actors: one thread each (2 in all, like the in-process path); a cluster: 1 unless told."""
    import triagekit.route.onnx as onnx
    from triagekit.route.distributed import actor_threads

    monkeypatch.setattr(onnx, "available_cores", lambda: 2)
    assert [actor_threads(n) for n in (1, 2, 4)] == [2, 1, 1]
    monkeypatch.setattr(onnx, "available_cores", lambda: 16)
    assert actor_threads(4) == 4 and actor_threads(4, address="auto") == 1 and actor_threads(4, "auto", 3) == 3
    with pytest.raises(ValueError, match="at least 1"):
        actor_threads(2, given=0)
