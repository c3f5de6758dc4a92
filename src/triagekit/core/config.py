"""Typed YAML + ``--set key=value`` loading for every config dataclass (router, SFT, DPO): values are coerced
by each field's declared type, unknown keys are refused with the list of valid ones."""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping, get_type_hints

import yaml

__all__ = ["load_config", "parse_overrides", "field_docs", "reference_markdown", "PRECISIONS", "ATTENTION"]

PRECISIONS = ("auto", "native", "no", "bf16", "fp16")
ATTENTION = ("auto", "sdpa", "eager")


def _coerce(name: str, value: Any, schema: type) -> Any:
    """A YAML or ``--set`` value as the field's type. YAML reads ``5e-5`` as a string, so numbers are converted
    by the field's declared type; a value that cannot be converted is a clear error."""
    hint = str(get_type_hints(schema)[name])
    parsed = yaml.safe_load(value) if isinstance(value, str) and hint != "<class 'str'>" else value
    try:
        if "None" in hint and (parsed is None or str(parsed).lower() in ("none", "null")):
            return None
        if "list" in hint:
            return [p.strip() for p in parsed.split(",") if p.strip()] if isinstance(parsed, str) else list(parsed)
        if "dict" in hint:
            return dict(parsed)
        if "bool" in hint:
            if not isinstance(parsed, bool):
                raise ValueError
            return parsed
        if "float" in hint:
            return float(parsed)
        if "int" in hint:
            if float(parsed) != int(float(parsed)):
                raise ValueError
            return int(float(parsed))
        return str(value)
    except (TypeError, ValueError):
        raise ValueError(f"config key {name!r} expects {hint.replace('typing.', '')}, got {value!r}") from None


def parse_overrides(pairs: list[str], schema: type) -> dict[str, Any]:
    """``["lr=3e-5", "labels=queue,priority"]`` -> typed dict; unknown keys raise with the list of valid ones.

    ``schema`` is the config dataclass the keys belong to.
    """
    valid = {f.name for f in fields(schema)}
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        key = key.strip()
        if key not in valid:
            raise ValueError(f"unknown config key {key!r}; valid keys: {', '.join(sorted(valid))}")
        out[key] = _coerce(key, value, schema)
    return out


def load_config(path: str | Path | None = None, *, schema: type, **overrides: Any) -> Any:
    """A ``schema`` config from a YAML file (optional) with ``overrides`` on top; None values in overrides are
    ignored."""
    data: dict[str, Any] = {}
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, Mapping):
            raise ValueError(f"{path}: a config file must be a YAML mapping")
        valid = {f.name for f in fields(schema)}
        unknown = sorted(set(loaded) - valid)
        if unknown:
            raise ValueError(f"{path}: unknown config keys {unknown}; valid keys: {', '.join(sorted(valid))}")
        data.update({k: _coerce(k, v, schema) for k, v in loaded.items()})
    data.update({k: v for k, v in overrides.items() if v is not None})
    return schema(**data)


def field_docs(schema: type) -> dict[str, str]:
    """Each field's docstring (the string literal under it), looked up along the MRO so that a config which only
    changes an inherited field's default keeps the part's documentation. A field without one maps to ``""``."""
    docs: dict[str, str] = {}
    for cls in reversed(schema.__mro__):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, nxt in zip(body, body[1:]):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[node.target.id] = inspect.cleandoc(nxt.value.value)
    return {f.name: docs.get(f.name, "") for f in fields(schema)}


def reference_markdown(schema: type, title: str, intro: str = "") -> str:
    """A markdown table of ``schema``'s fields: key, type, default and the field's docstring."""
    import dataclasses

    docs = field_docs(schema)
    hints = get_type_hints(schema)
    lines = [f"## {title}", ""] + ([intro, ""] if intro else [])
    lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
    for f in fields(schema):
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = repr(f.default_factory())
        else:
            default = "(required)"
        kind = str(hints[f.name]).replace("typing.", "").replace("<class '", "").replace("'>", "").replace("|", "\\|")
        text = " ".join(docs.get(f.name, "").split()).replace("|", "\\|")
        lines.append(f"| `{f.name}` | `{kind}` | `{default}` | {text} |")
    return "\n".join(lines) + "\n"
