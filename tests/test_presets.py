"""Presets are package data: resolved by name, listed by `route presets`, trained by default, and installed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from triagekit.core.presets import DEFAULT_ROUTER_PRESET, list_presets, resolve_preset
from triagekit.route.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def test_a_name_resolves_a_shipped_preset_and_a_path_still_works(tmp_path):
    assert resolve_preset("minilm").name == "minilm.yaml"
    assert load_config("minilm").hybrid is True
    own = tmp_path / "mine.yaml"
    own.write_text("epochs: 2\n")
    assert load_config(str(own)).epochs == 2


def test_an_unknown_preset_lists_the_shipped_ones():
    with pytest.raises(FileNotFoundError, match="shipped router presets: .*minilm"):
        load_config("minilmm")


def test_every_preset_has_a_one_line_description_and_the_default_exists():
    presets = dict(list_presets("router"))
    assert DEFAULT_ROUTER_PRESET in presets and all(presets.values())
    assert "(no description)" not in presets.values()
    assert list_presets("triage") and list_presets("answer")


def test_presets_command_prints_one_line_each(capsys):
    from triagekit.cli import main

    assert main(["route", "presets"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(list_presets("router")) and any(line.startswith("minilm (default):") for line in lines)


def test_route_train_without_config_uses_the_default_preset(tiny_encoder, prepared, tmp_path, capsys):
    import yaml

    from triagekit.cli import main

    code = main(
        [
            "route",
            "train",
            "--data",
            str(prepared),
            "--output",
            str(tmp_path / "run"),
            "--labels",
            "queue",
            "--backbone",
            str(tiny_encoder),
            "--set",
            "max_steps=2",
            "--set",
            "trackers=[]",
            "--set",
            "max_length=32",
        ]
    )
    assert code == 0
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    default = load_config(DEFAULT_ROUTER_PRESET)
    assert saved["hybrid"] == default.hybrid and saved["lr"] == default.lr and saved["epochs"] == default.epochs


@pytest.mark.slow
def test_a_wheel_installed_in_a_fresh_venv_trains_with_the_default_preset(tmp_path, synth_file):
    """Build the wheel, install it (no deps) into a new venv that sees this environment's packages through a .pth
    file (so torch is not downloaded), and train from a folder outside the repo with no --config."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        cwd=tmp_path,
    )
    wheel = next(wheels.glob("triagekit-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    here = [p for p in sys.path if p.endswith("site-packages")]
    Path(site, "outer.pth").write_text("\n".join(here) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", site, str(wheel)], check=True
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1")
    found = subprocess.run(
        [str(python), "-c", "import triagekit, sys; print(triagekit.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert found.startswith(site), found  # the installed wheel, not the source tree
    listed = subprocess.run(
        [str(python), "-m", "triagekit", "route", "presets"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "minilm (default)" in listed
    run = subprocess.run(
        [
            str(python),
            "-m",
            "triagekit",
            "route",
            "train",
            "--data",
            str(synth_file),
            "--output",
            str(tmp_path / "run"),
            "--labels",
            "queue",
            "--set",
            "max_steps=2",
            "--set",
            "max_length=32",
            "--set",
            "trackers=[]",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "default preset 'minilm'" in run.stderr and (tmp_path / "run" / "router.json").exists()
