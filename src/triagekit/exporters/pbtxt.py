"""Triton's ``config.pbtxt`` read and written through Triton's own ``ModelConfig`` message and protobuf's text format.

The message class is the one Triton generates from its ``model_config.proto`` (``tritonclient.grpc.model_config_pb2``,
in the ``export`` extra), so a field name, value kind, enum value, repeated or oneof field is checked exactly as
Triton checks it on load. A config is built as plain Python (repeated fields as lists, maps as dicts, enums by
name), written with ``dumps`` and read back with ``load_config``.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

__all__ = ["dumps", "loads", "to_dict", "load_config", "model_config"]


def model_config() -> Any:
    """Triton's ``ModelConfig`` message class.

    Raises:
        RuntimeError: when ``tritonclient[grpc]`` is missing, with the install command.
    """
    try:
        from tritonclient.grpc import model_config_pb2
    except (ImportError, RuntimeError) as exc:  # tritonclient without its grpc part raises RuntimeError
        raise RuntimeError("Triton configs need tritonclient[grpc]: `pip install 'triagekit[export]'`") from exc
    return model_config_pb2.ModelConfig


def dumps(config: Mapping[str, Any]) -> str:
    """A config (plain Python, as ``to_dict`` returns it) as ``config.pbtxt`` text.

    Raises:
        google.protobuf.json_format.ParseError: on a field or value that ``ModelConfig`` does not have.
    """
    from google.protobuf import json_format, text_format

    return text_format.MessageToString(json_format.ParseDict(dict(config), model_config()()))


def loads(text: str) -> Any:
    """``config.pbtxt`` text as a ``ModelConfig`` message (raises ``text_format.ParseError`` naming line:column)."""
    from google.protobuf import text_format

    return text_format.Parse(text, model_config()())


def _is_repeated(field: Any) -> bool:
    # protobuf >= 6.31 has is_repeated and deprecates label; older releases only have label.
    return field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED


def _value(field: Any, value: Any) -> Any:
    if field.message_type is not None:
        return to_dict(value)
    if field.enum_type is not None:
        return field.enum_type.values_by_number[value].name
    return value


def to_dict(message: Any) -> dict[str, Any]:
    """The fields set in a message: repeated fields as lists, maps as dicts, enums by name, int64 as int."""
    out: dict[str, Any] = {}
    for field, value in message.ListFields():
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            inner = entry.fields_by_name["value"]
            out[field.name] = {k: _value(inner, v) for k, v in value.items()}
        elif _is_repeated(field):
            out[field.name] = [_value(field, v) for v in value]
        else:
            out[field.name] = _value(field, value)
    return out


def _explain(exc: Exception) -> str:
    """A text-format error in the wording of a config review: the line, the field or value, what is allowed."""
    from google.protobuf import descriptor_pool

    where = f"line {exc.GetLine()}" if hasattr(exc, "GetLine") and exc.GetLine() else "config"
    message = str(exc).split(" : ", 1)[-1]
    if m := re.search(r'Message type "([\w.]+)" has no field named "(\w+)"', message):
        return f"{where}: {m[2]}: no such field in {m[1].rsplit('.', 1)[-1]}"
    if m := re.search(r'Enum type "([\w.]+)" has no value named (\w+)', message):
        allowed = [v.name for v in descriptor_pool.Default().FindEnumTypeByName(m[1]).values]
        return f"{where}: {m[2]} is not one of {allowed}"
    kind = "schema" if re.search(r"Message type|oneof|Enum type|Invalid value|Couldn't parse", message) else "syntax"
    return f"{kind}: {where}: {message}"


def load_config(text: str) -> tuple[dict[str, Any], list[str]]:
    """A ``config.pbtxt`` as plain Python (``to_dict``) and the problems that stop Triton from reading it.

    Returns:
        ``(config, [])`` when it parses as a ``ModelConfig``; ``({}, [problem])`` when not (text format stops at
        the first problem, as Triton does).
    """
    from google.protobuf import text_format

    try:
        return to_dict(loads(text)), []
    except text_format.ParseError as exc:
        return {}, [_explain(exc)]
