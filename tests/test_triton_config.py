"""``config.pbtxt`` through Triton's own ``ModelConfig`` (tritonclient) and protobuf's text format: the round trip
and the wording of each kind of problem. No model is needed."""

import pytest

from triagekit.exporters.pbtxt import dumps, load_config, loads, to_dict

CONFIG = {
    "name": "m",
    "backend": "python",
    "max_batch_size": 8,
    "input": [{"name": "TEXT", "data_type": "TYPE_STRING", "dims": [1]}],
    "output": [{"name": "ids", "data_type": "TYPE_INT64", "dims": [-1], "label_filename": "labels.txt"}],
    "instance_group": [{"count": 1, "kind": "KIND_CPU"}],
    "parameters": {"max_length": {"string_value": "64"}},
}


def test_round_trip_keeps_kinds():
    text = dumps(CONFIG)
    assert "data_type: TYPE_STRING" in text and 'key: "max_length"' in text  # enums bare, maps as entries
    cfg, errors = load_config(text)
    assert errors == [] and cfg == CONFIG
    assert cfg["output"][0]["dims"] == [-1] and isinstance(cfg["max_batch_size"], int)
    assert to_dict(loads(text)) == CONFIG


def test_writer_refuses_what_model_config_lacks():
    from google.protobuf.json_format import ParseError

    with pytest.raises(ParseError, match="max_batch_sise"):
        dumps({**CONFIG, "max_batch_sise": 8})
    with pytest.raises(ParseError, match="KIND_TPU"):
        dumps({**CONFIG, "instance_group": [{"kind": "KIND_TPU"}]})


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("max_batch_size", "max_batch_sise", "line 2: max_batch_sise: no such field in ModelConfig"),
        ("KIND_CPU", "KIND_TPU", "KIND_TPU is not one of ['KIND_AUTO', 'KIND_GPU', 'KIND_CPU', 'KIND_MODEL']"),
        ("max_batch_size: 8", "max_batch_size: eight", "schema: line 2"),
        ('name: "m"', 'name: "m"\nname: "n"', "should not have multiple"),
        ('name: "m"', 'name: "m"\ndynamic_batching { }\nsequence_batching { }', "oneof"),
        ("input {", "input {{", "syntax: line 3"),
    ],
)
def test_problems_name_the_line_and_what_is_allowed(old, new, expected):
    text = dumps(CONFIG)
    assert old in text
    cfg, errors = load_config(text.replace(old, new, 1))
    assert cfg == {} and len(errors) == 1 and expected in errors[0], errors
