"""The model registry: every verb, concurrent writers, integrity refusal and ``registry:NAME@alias`` everywhere."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import pytest

from triagekit.cli import main
from triagekit.core.registry import IntegrityError, Registry, RegistryError, parse_ref


@pytest.fixture(scope="module")
def tfidf_run(prepared, tmp_path_factory):
    """A TF-IDF router (trains in a second) with an evaluation, as `triagekit train` + `eval` leave it."""
    out = tmp_path_factory.mktemp("reg-run") / "run"
    assert (
        main(
            [
                "train",
                "--data",
                str(prepared),
                "--output",
                str(out),
                "--backbone",
                "tfidf",
                "--labels",
                "queue,priority",
            ]
        )
        == 0
    )
    assert main(["eval", str(out), "--data", str(prepared), "--no-baseline"]) == 0
    return out


def test_register_show_list_and_metadata(tfidf_run, tmp_path, capsys):
    root = tmp_path / "reg"
    assert main(["registry", "register", str(tfidf_run), "--name", "router", "--registry", str(root)]) == 0
    meta = Registry(root).get("router", "v1")
    assert meta["version"] == 1 and meta["parent"] is None and meta["created_at"]
    assert meta["metrics"]["heads"]["queue"]["macro_f1"] > 0
    assert meta["data"]["rows"]["train"] > 0 and len(meta["data"]["sha256"]) == 64
    assert meta["config"]["backbone"] == "tfidf"
    assert "router.json" in meta["files"] and len(meta["files"]["router.json"]["sha256"]) == 64
    assert not any(f.startswith(("checkpoints/", "tb/")) or f.endswith(".db") for f in meta["files"])
    capsys.readouterr()
    assert main(["registry", "show", "router@v1", "--registry", str(root)]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 1
    assert main(["registry", "list", "--json", "--registry", str(root)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["version"]) for r in listed] == [("router", 1)]


def test_promote_rollback_delete(tfidf_run, tmp_path):
    reg = Registry(tmp_path / "reg", create=True)
    for _ in range(3):
        reg.register(tfidf_run, "router")
    root = str(reg.root)
    assert main(["registry", "promote", "router@v1", "--alias", "production", "--registry", root]) == 0
    assert main(["registry", "promote", "router@v3", "--alias", "production", "--registry", root]) == 0
    assert reg.get("router", "production")["version"] == 3
    assert reg.get("router", "v3")["aliases"] == ["production"]
    # refused while an alias points at it
    assert main(["registry", "delete", "router@v3", "--registry", root]) == 2
    with pytest.raises(RegistryError, match="current production"):
        reg.delete("router", "v3")
    assert main(["registry", "rollback", "router", "--alias", "production", "--registry", root]) == 0
    assert reg.get("router", "production")["version"] == 1
    with pytest.raises(RegistryError, match="no previous version"):
        reg.rollback("router", "production")
    assert main(["registry", "delete", "router@v3", "--registry", root]) == 0
    assert reg.versions("router") == [1, 2]
    # a deleted version is skipped by rollback: v2 -> production, then v1 is the previous holder
    reg.promote("router", "v2", "production")
    assert reg.rollback("router", "production")["version"] == 1
    assert reg.register(tfidf_run, "router")["version"] == 4  # numbers are never reused after a delete


def test_diff_side_by_side(tfidf_run, tmp_path, capsys):
    reg = Registry(tmp_path / "reg", create=True)
    reg.register(tfidf_run, "router")
    reg.register(tfidf_run, "router")
    diff = reg.diff("router", "v1", "router", "v2")
    assert diff["a"] == "router@v1" and diff["b"] == "router@v2"
    va, vb, delta = diff["heads"]["queue"]["macro_f1"]
    assert va == vb and delta == 0.0
    assert main(["registry", "diff", "router@v1", "router@v2", "--registry", str(reg.root)]) == 0
    assert "macro_f1" in capsys.readouterr().out


def test_clear_errors(tfidf_run, tmp_path):
    with pytest.raises(RegistryError, match="not a triagekit registry"):
        Registry(tmp_path)
    (tmp_path / "junk.txt").write_text("x")
    with pytest.raises(RegistryError, match="not empty"):
        Registry(tmp_path, create=True)
    reg = Registry(tmp_path / "reg", create=True)
    with pytest.raises(RegistryError, match="no router.json"):
        reg.register(tmp_path, "router")
    reg.register(tfidf_run, "router")
    with pytest.raises(RegistryError, match="no alias 'production'"):
        reg.get("router", "production")
    with pytest.raises(RegistryError, match="no version v9"):
        reg.get("router", "v9")
    with pytest.raises(RegistryError, match="no model 'other'"):
        reg.get("other")
    with pytest.raises(RegistryError, match="bad model name"):
        parse_ref("registry:bad name!@production")
    # a crashed writer's temporary folder is never read as a version
    (reg.root / "router" / ".tmp-123-abcd" / "files").mkdir(parents=True)
    assert reg.versions("router") == [1]


def test_integrity_refusal(tfidf_run, tmp_path):
    from triagekit.route.router import Router

    reg = Registry(tmp_path / "reg", create=True)
    reg.register(tfidf_run, "router")
    reg.promote("router", 1, "production")
    ref = f"registry:{reg.root}/router@production"
    router = Router.load(ref)
    assert router.model_version == "router@v1"
    assert router.meta["run_model_version"].startswith("tfidf-")
    weights = reg.files_dir("router", 1) / "tfidf.joblib"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(IntegrityError, match="no longer matches its sha256"):
        Router.load(ref)
    weights.unlink()
    with pytest.raises(IntegrityError, match="missing"):
        Router.load(ref)


def _register_and_promote(args):
    root, run, i = args
    reg = Registry(root, create=True)
    meta = reg.register(run, "router")
    reg.promote("router", meta["version"], "staging" if i % 2 else "production")
    return meta["version"]


def test_eight_parallel_writers(tfidf_run, tmp_path):
    root = tmp_path / "reg"
    ctx = mp.get_context("spawn")
    with ctx.Pool(8) as pool:
        versions = pool.map(_register_and_promote, [(str(root), str(tfidf_run), i) for i in range(8)])
    assert sorted(versions) == list(range(1, 9))  # no number handed out twice, none lost
    reg = Registry(root)
    assert reg.versions("router") == list(range(1, 9))
    for v in range(1, 9):
        reg.verify("router", v)  # every version whole
    aliases = reg.aliases("router")
    # every promote landed: the alias's current holder plus its history are exactly the versions promoted to it
    for alias, parity in (("production", 0), ("staging", 1)):
        promoted = {versions[i] for i in range(8) if i % 2 == parity}
        assert {aliases[alias]["version"], *aliases[alias]["history"]} == promoted
    assert not [p for p in (root / "router").iterdir() if p.name.startswith(".tmp")]


def test_registry_ref_everywhere(tfidf_run, prepared, tmp_path, monkeypatch, capsys):
    reg = Registry(tmp_path / "reg", create=True)
    reg.register(tfidf_run, "router")
    reg.promote("router", 1, "production")
    monkeypatch.setenv("TRIAGEKIT_REGISTRY", str(reg.root))
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["predict", "registry:router@production", "--text", "I was charged twice"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert line["model_version"] == "router@v1"
    before = (reg.files_dir("router", 1) / "router.json").read_bytes()
    assert main(["eval", "registry:router@production", "--data", str(prepared), "--no-baseline"]) == 0
    assert (tmp_path / "eval-router-v1" / "metrics.json").exists()
    assert (reg.files_dir("router", 1) / "router.json").read_bytes() == before  # the version stays untouched
    reg.verify("router", 1)
    assert main(["predict", "registry:router@staging", "--text", "x"]) == 2  # missing alias: clear error, exit 2


def test_service_db_and_model_dir_for_registry_ref(tfidf_run, tmp_path):
    pytest.importorskip("fastapi")
    from triagekit.serve.settings import ServeSettings

    reg = Registry(tmp_path / "reg", create=True)
    reg.register(tfidf_run, "router")
    url = ServeSettings().db_url(f"registry:{reg.root}/router@production")
    # one prediction log per model name, shared by all its versions (feedback survives a promotion)
    assert url == f"sqlite:///{(reg.root / 'router').resolve() / 'predictions.db'}"
    assert Path(reg.root / "router").is_dir()


def test_register_by_hard_link_still_catches_an_edited_run(tfidf_run, tmp_path):
    import shutil

    from triagekit.cli import main as cli

    run = tmp_path / "run"
    shutil.copytree(tfidf_run, run)
    root = tmp_path / "reg"
    assert cli(["registry", "register", str(run), "--name", "router", "--link", "--registry", str(root)]) == 0
    reg = Registry(root)
    linked = reg.files_dir("router", 1) / "router.json"
    assert linked.stat().st_ino == (run / "router.json").stat().st_ino  # no copy made
    reg.verify("router", 1)
    info = json.loads((run / "router.json").read_text())
    info["calibration"] = {"queue": {"review_threshold": 0.01}}
    (run / "router.json").write_text(json.dumps(info))  # editing the run edits the linked version
    with pytest.raises(IntegrityError, match="router.json no longer matches"):
        reg.verify("router", 1)
