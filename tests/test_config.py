from pathlib import Path

import pytest

from triagekit.route.config import TrainConfig, load_config, parse_overrides

# router presets; other tasks (presets/answer, ...) load their presets with their own schema in their own tests
PRESETS = sorted((Path(__file__).resolve().parents[1] / "src" / "triagekit" / "presets" / "router").rglob("*.yaml"))


def test_there_are_presets():
    assert len(PRESETS) >= 4


@pytest.mark.parametrize("path", PRESETS, ids=[p.name for p in PRESETS])
def test_every_preset_loads(path):
    cfg = load_config(path)
    assert isinstance(cfg, TrainConfig)


def test_overrides_are_typed():
    got = parse_overrides(["lr=3e-5", "epochs=2", "labels=queue,priority", "class_weights=true", "backbone=./m"])
    assert got == {"lr": 3e-5, "epochs": 2, "labels": ["queue", "priority"], "class_weights": True, "backbone": "./m"}
    assert load_config(None, **got).backbone_lr == 3e-5


def test_yaml_numbers_without_a_dot_are_floats(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("lr: 5e-5\nepochs: 3\nlabels: [queue]\n")
    cfg = load_config(f)
    assert cfg.lr == 5e-5 and isinstance(cfg.lr, float) and cfg.epochs == 3


@pytest.mark.parametrize("bad, message", [
    (["nope=1"], "unknown config key 'nope'"),
    (["lr"], "key=value"),
    (["epochs=2.5"], "expects"),
    (["class_weights=maybe"], "expects"),
    (["lr=fast"], "expects"),
])
def test_bad_overrides(bad, message):
    with pytest.raises(ValueError, match=message):
        parse_overrides(bad)


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "qlora9"}, "method must be one of"),
    ({"labels": [], "multilabel": []}, "at least one label field"),
    ({"labels": ["tags"], "multilabel": ["tags"]}, "both in labels and multilabel"),
    ({"val_fraction": 0.6, "test_fraction": 0.5}, "below 1"),
    ({"labels": ["a.b"]}, "cannot contain"),
])
def test_cross_field_checks(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_unknown_key_in_yaml(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("epochs: 2\nlearning_rate: 1\n")
    with pytest.raises(ValueError, match="unknown config keys"):
        load_config(f)


def test_method_default_learning_rates():
    assert TrainConfig(method="full").backbone_lr == 5e-5
    assert TrainConfig(method="lora").backbone_lr == 5e-4
