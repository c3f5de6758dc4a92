"""Protobuf text format for Triton's ``config.pbtxt``: a writer, a parser, and a check of field names, value kinds
and enums against the part of Triton's ``ModelConfig`` (``model_config.proto``) that a model repository uses.

Triton itself is not needed (nor its generated protobuf classes): the schema below lists every top-level field of
``ModelConfig`` and, in full, the messages our configs use; other nested messages are accepted unchecked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["Enum", "dumps", "parse", "load_config", "DATA_TYPES"]


class Enum(str):
    """An enum value: written bare (``TYPE_FP32``), not quoted."""


DATA_TYPES = {"TYPE_INVALID", "TYPE_BOOL", "TYPE_UINT8", "TYPE_UINT16", "TYPE_UINT32", "TYPE_UINT64", "TYPE_INT8",
              "TYPE_INT16", "TYPE_INT32", "TYPE_INT64", "TYPE_FP16", "TYPE_FP32", "TYPE_FP64", "TYPE_STRING",
              "TYPE_BF16"}
_KINDS = {"KIND_AUTO", "KIND_GPU", "KIND_CPU", "KIND_MODEL"}
_FORMATS = {"FORMAT_NONE", "FORMAT_NHWC", "FORMAT_NCHW"}
R = True  # repeated
ANY = "any"
# field -> (type, repeated). Types: string/int/uint/bool/float, a set of enum values, a message name, ANY, or
# ("map", value type) written as repeated {key value} entries.
SCHEMA: dict[str, dict[str, tuple[Any, bool]]] = {
    "ModelConfig": {
        "name": ("string", False), "platform": ("string", False), "backend": ("string", False),
        "runtime": ("string", False), "version_policy": (ANY, False), "max_batch_size": ("int", False),
        "input": ("ModelInput", R), "output": ("ModelOutput", R), "batch_input": (ANY, R), "batch_output": (ANY, R),
        "optimization": (ANY, False), "dynamic_batching": ("ModelDynamicBatching", False),
        "sequence_batching": (ANY, False), "ensemble_scheduling": ("ModelEnsembling", False),
        "instance_group": ("ModelInstanceGroup", R), "default_model_filename": ("string", False),
        "cc_model_filenames": (("map", "string"), R), "metric_tags": (("map", "string"), R),
        "parameters": (("map", "ModelParameter"), R), "model_warmup": (ANY, R), "model_operations": (ANY, False),
        "model_transaction_policy": (ANY, False), "model_repository_agents": (ANY, False),
        "response_cache": (ANY, False), "model_metrics": (ANY, False),
    },
    "ModelInput": {
        "name": ("string", False), "data_type": (DATA_TYPES, False), "format": (_FORMATS, False),
        "dims": ("int", R), "reshape": ("ModelTensorReshape", False), "is_shape_tensor": ("bool", False),
        "allow_ragged_batch": ("bool", False), "optional": ("bool", False), "is_non_linear_format_io": ("bool", False),
    },
    "ModelOutput": {
        "name": ("string", False), "data_type": (DATA_TYPES, False), "dims": ("int", R),
        "reshape": ("ModelTensorReshape", False), "label_filename": ("string", False),
        "is_shape_tensor": ("bool", False), "is_non_linear_format_io": ("bool", False),
    },
    "ModelTensorReshape": {"shape": ("int", R)},
    "ModelDynamicBatching": {
        "preferred_batch_size": ("int", R), "max_queue_delay_microseconds": ("uint", False),
        "preserve_ordering": ("bool", False), "priority_levels": ("uint", False),
        "default_priority_level": ("uint", False), "default_queue_policy": (ANY, False),
        "priority_queue_policy": (ANY, R),
    },
    "ModelEnsembling": {"step": ("ModelEnsemblingStep", R), "max_inflight_responses": ("uint", False)},
    "ModelEnsemblingStep": {
        "model_name": ("string", False), "model_version": ("int", False), "input_map": (("map", "string"), R),
        "output_map": (("map", "string"), R), "model_namespace": ("string", False),
    },
    "ModelInstanceGroup": {
        "name": ("string", False), "kind": (_KINDS, False), "count": ("int", False), "rate_limiter": (ANY, False),
        "gpus": ("int", R), "secondary_devices": (ANY, R), "profile": ("string", R), "passive": ("bool", False),
        "host_policy": ("string", False),
    },
    "ModelParameter": {"string_value": ("string", False)},
}
_ONEOFS = {"ModelConfig": ("dynamic_batching", "sequence_batching", "ensemble_scheduling")}


# -- writing --------------------------------------------------------------------------------------------------------
def _scalar(v: Any) -> str:
    if isinstance(v, Enum):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))


def dumps(msg: Mapping[str, Any], indent: int = 0) -> str:
    """A message as text format: dicts are messages, lists are repeated fields (``[ ... ]``), maps are lists of
    ``{"key": k, "value": v}`` dicts; ``Enum`` values are written bare."""
    pad, lines = "  " * indent, []
    for key, value in msg.items():
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            if all(set(v) == {"key", "value"} for v in value):  # a map: one entry block per key
                lines += [f"{pad}{key} {{\n{dumps(v, indent + 1)}\n{pad}}}" for v in value]
            else:
                blocks = [f"{pad}  {{\n{dumps(v, indent + 2)}\n{pad}  }}" for v in value]
                lines.append(f"{pad}{key} [\n" + ",\n".join(blocks) + f"\n{pad}]")
        elif isinstance(value, list):
            lines.append(f"{pad}{key}: [ {', '.join(_scalar(v) for v in value)} ]")
        elif isinstance(value, Mapping):
            body = dumps(value, indent + 1)
            lines.append(f"{pad}{key} {{\n{body}\n{pad}}}" if body else f"{pad}{key} {{ }}")
        else:
            lines.append(f"{pad}{key}: {_scalar(value)}")
    return "\n".join(lines)


# -- parsing --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Token:
    kind: str  # "str", "word" or "punct"
    text: str
    pos: int


_TOKEN = re.compile(r"""\s+|\#[^\n]*|(?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')|(?P<punct>[{}\[\]:,;<>])"""
                    r"""|(?P<word>[A-Za-z0-9_.+\-]+)""")


def _tokens(text: str) -> list[Token]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"unexpected character {text[pos]!r} at offset {pos}")
        kind = m.lastgroup
        if kind:
            out.append(Token(kind, m.group(kind), pos))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str):
        self.toks, self.i = _tokens(text), 0

    def peek(self) -> Token | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, text: str | None = None) -> Token:
        tok = self.peek()
        if tok is None or (text is not None and tok.text != text):
            where = f"offset {tok.pos}" if tok else "end of text"
            raise ValueError(f"expected {text or 'a token'!r} at {where}, got {tok.text if tok else 'nothing'!r}")
        self.i += 1
        return tok

    def message(self, close: str | None) -> dict[str, list]:
        fields: dict[str, list] = {}
        while (tok := self.peek()) is not None and tok.text != close:
            name = self.take()
            if name.kind != "word":
                raise ValueError(f"expected a field name at offset {name.pos}, got {name.text!r}")
            colon = self.peek() is not None and self.peek().text == ":"
            if colon:
                self.take(":")
            values = self.values() if self.peek() is not None and self.peek().text == "[" else [self.value(colon)]
            fields.setdefault(name.text, []).extend(values)
            if self.peek() is not None and self.peek().text in (",", ";"):
                self.take()
        if close is not None:
            self.take(close)
        return fields

    def value(self, after_colon: bool) -> Any:
        tok = self.peek()
        if tok is not None and tok.text in ("{", "<"):
            self.take()
            return self.message("}" if tok.text == "{" else ">")
        if not after_colon:
            raise ValueError(f"expected ':' or '{{' after a field name near offset {tok.pos if tok else 'end'}")
        tok = self.take()
        if tok.kind == "punct":
            raise ValueError(f"expected a value at offset {tok.pos}, got {tok.text!r}")
        return tok

    def values(self) -> list:
        self.take("[")
        out = []
        while self.peek() is not None and self.peek().text != "]":
            out.append(self.value(True))
            if self.peek() is not None and self.peek().text == ",":
                self.take(",")
        self.take("]")
        return out


def parse(text: str) -> dict[str, list]:
    """Text format -> ``{field: [values]}`` (messages are dicts, scalars ``Token``s); syntax only, no schema."""
    return _Parser(text).message(None)


# -- schema ---------------------------------------------------------------------------------------------------------
def _convert(tok: Any, kind: Any, path: str, errors: list[str]) -> Any:
    if kind == ANY:
        return tok
    if isinstance(kind, str) and kind in SCHEMA:
        if not isinstance(tok, dict):
            errors.append(f"{path}: expected a {kind} message")
            return None
        return _check(tok, kind, path, errors)
    if isinstance(tok, dict):
        errors.append(f"{path}: expected a scalar, got a message")
        return None
    text = tok.text
    if kind == "string":
        if tok.kind != "str":
            errors.append(f"{path}: expected a quoted string, got {text}")
            return text
        body = text[1:-1].replace("\\'", "'").replace('"', '\\"') if text[0] == "'" else text[1:-1]
        try:
            return json.loads(f'"{body}"')
        except ValueError:  # octal or \x escapes, which JSON lacks: keep the raw text
            return body
    if kind in ("int", "uint"):
        if tok.kind != "word" or not re.fullmatch(r"[+-]?\d+", text) or (kind == "uint" and text.startswith("-")):
            errors.append(f"{path}: expected an {'unsigned ' if kind == 'uint' else ''}integer, got {text}")
            return None
        return int(text)
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            errors.append(f"{path}: expected a number, got {text}")
            return None
    if kind == "bool":
        if text not in ("true", "false", "True", "False", "t", "f", "1", "0"):
            errors.append(f"{path}: expected true or false, got {text}")
            return None
        return text in ("true", "True", "t", "1")
    if isinstance(kind, set):
        if tok.kind != "word" or text not in kind:
            errors.append(f"{path}: {text} is not one of {sorted(kind)}")
        return text
    raise AssertionError(kind)


def _check(fields: dict[str, list], message: str, path: str, errors: list[str]) -> dict[str, Any]:
    schema, out = SCHEMA[message], {}
    for name, values in fields.items():
        where = f"{path}.{name}" if path else name
        if name not in schema:
            errors.append(f"{where}: no such field in {message}")
            continue
        kind, repeated = schema[name]
        if not repeated and len(values) > 1:
            errors.append(f"{where}: set {len(values)} times but is not repeated")
        if isinstance(kind, tuple):  # a map
            entries = {}
            for i, v in enumerate(values):
                if not isinstance(v, dict) or set(v) - {"key", "value"} or "key" not in v:
                    errors.append(f"{where}[{i}]: a map entry needs key and value")
                    continue
                key = _convert(v["key"][0], "string", f"{where}[{i}].key", errors)
                if "value" in v:
                    entries[key] = _convert(v["value"][0], kind[1], f"{where}[{key}]", errors)
                else:
                    entries[key] = "" if kind[1] == "string" else {}
            out[name] = entries
        else:
            conv = [_convert(v, kind, f"{where}[{i}]" if repeated else where, errors) for i, v in enumerate(values)]
            out[name] = conv if repeated else conv[-1]
    chosen = [f for f in _ONEOFS.get(message, ()) if f in out]
    if len(chosen) > 1:
        errors.append(f"{path or message}: {' and '.join(chosen)} are one choice (scheduling_choice); set one")
    return out


def load_config(text: str) -> tuple[dict[str, Any], list[str]]:
    """A ``config.pbtxt`` as plain Python (repeated fields as lists, maps as dicts) and the schema errors found."""
    errors: list[str] = []
    try:
        fields = parse(text)
    except ValueError as exc:
        return {}, [f"syntax: {exc}"]
    return _check(fields, "ModelConfig", "", errors), errors
