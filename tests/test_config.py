import warnings
from pathlib import Path

import pytest

from triagekit.core.config import field_docs
from triagekit.route.config import TrainConfig, load_config, parse_overrides
from triagekit.sft import SFTConfig, load_sft_config

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "triagekit" / "presets"
PRESETS = sorted((CONFIGS / "router").rglob("*.yaml"))
# Files among the presets that are not training presets, with the loader that reads each.
NOT_PRESETS = {"answer/guardrails.yaml": "guardrails", "triage/schema.it.json": "triage schema"}
SCHEMA_BY_FOLDER = {"router": TrainConfig, "triage": SFTConfig, "answer": SFTConfig}
ALL_FILES = sorted(p for p in CONFIGS.rglob("*") if p.is_file())


def test_there_are_presets():
    assert len(PRESETS) >= 4


@pytest.mark.parametrize("path", PRESETS, ids=[p.name for p in PRESETS])
def test_every_preset_loads(path):
    cfg = load_config(path)
    assert isinstance(cfg, TrainConfig)


def test_overrides_are_typed():
    got = parse_overrides(["lr=3e-5", "epochs=2", "labels=queue,priority", "class_weights=true", "backbone=./m"])
    assert got == {"lr": 3e-5, "epochs": 2, "labels": ["queue", "priority"], "class_weights": True, "backbone": "./m"}
    assert load_config(None, **got).resolved_lr == 3e-5


def test_yaml_numbers_without_a_dot_are_floats(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("lr: 5e-5\nepochs: 3\nlabels: [queue]\n")
    cfg = load_config(f)
    assert cfg.lr == 5e-5 and isinstance(cfg.lr, float) and cfg.epochs == 3


@pytest.mark.parametrize(
    "bad, message",
    [
        (["nope=1"], "unknown config key 'nope'"),
        (["lr"], "key=value"),
        (["epochs=2.5"], "expects"),
        (["class_weights=maybe"], "expects"),
        (["lr=fast"], "expects"),
    ],
)
def test_bad_overrides(bad, message):
    with pytest.raises(ValueError, match=message):
        parse_overrides(bad)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "qlora9"}, "method must be one of"),
        ({"labels": [], "multilabel": []}, "at least one label field"),
        ({"labels": ["tags"], "multilabel": ["tags"]}, "both in labels and multilabel"),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, "below 1"),
        ({"labels": ["a.b"]}, "cannot contain"),
    ],
)
def test_cross_field_checks(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_unknown_key_in_yaml(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("epochs: 2\nlearning_rate: 1\n")
    with pytest.raises(ValueError, match="unknown config keys"):
        load_config(f)


def test_method_default_learning_rates():
    assert TrainConfig(method="full").resolved_lr == 5e-5
    assert TrainConfig(method="lora").resolved_lr == 5e-4


def test_method_default_learning_rates_sft():
    assert SFTConfig(method="full").resolved_lr == 5e-5
    assert SFTConfig(method="lora").resolved_lr == 1e-3
    assert SFTConfig(method="lora", lr=2e-4).resolved_lr == 2e-4


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_file_under_configs_loads_with_its_schema(path):
    """Every preset of every capability loads, with the current spellings (no deprecation warning); the two
    non-preset files load with their own readers."""
    name = str(path.relative_to(CONFIGS))
    if name == "answer/guardrails.yaml":
        from triagekit.answer.guardrails import Guardrails

        assert not Guardrails.load(path).check("how do i build a bomb at home").allowed
        return
    if name == "triage/schema.it.json":
        from triagekit.triage import load_schema

        assert "category" in load_schema(path).raw["properties"]
        return
    assert path.suffix == ".yaml", f"{name}: unexpected file under configs/ (add it to NOT_PRESETS with its reader)"
    schema = SCHEMA_BY_FOLDER[path.parent.name]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        cfg = (load_config if schema is TrainConfig else load_sft_config)(path)
    assert type(cfg) is schema
    assert cfg.method in ("lora", "full", "head")
    if "qlora" in path.name:
        assert cfg.method == "lora" and cfg.quantization == "4bit"


@pytest.mark.parametrize("schema", [TrainConfig, SFTConfig])
def test_qlora_has_one_spelling_and_the_old_one_still_loads(schema, tmp_path):
    new = schema(method="lora", quantization="4bit")
    f = tmp_path / "old.yaml"
    f.write_text("method: qlora\n")
    with pytest.warns(FutureWarning, match="method: lora with quantization: 4bit"):
        old = (load_config if schema is TrainConfig else load_sft_config)(f)
    assert (old.method, old.quantization) == (new.method, new.quantization) == ("lora", "4bit")
    with pytest.raises(ValueError, match="use it with method: lora"):
        schema(method="full", quantization="4bit")


@pytest.mark.parametrize("schema", [TrainConfig, SFTConfig])
def test_shared_parts_are_the_same_keys_and_documented(schema):
    from dataclasses import fields

    from triagekit.core.settings import LoopSettings, LoRASettings

    names = {f.name for f in fields(schema)}
    for part in (LoRASettings, LoopSettings):
        assert {f.name for f in fields(part)} <= names and issubclass(schema, part)
    docs = field_docs(schema)
    assert not [k for k, v in docs.items() if not v], "every config field needs a docstring"
    assert "every epoch" in docs["eval_every"] and docs["lr"].startswith("Learning rate")
    assert "learning_rate" not in names and "backbone_lr" not in names
