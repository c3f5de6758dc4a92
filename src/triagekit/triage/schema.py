"""The triage schema: a JSON Schema file (object, properties in output order, enums) that the grammar enforces.

The default IT schema ships as ``triagekit/presets/triage/schema.it.json``; any user file with the same shape works
without code changes (``.json`` or ``.yaml``). Keys starting with ``x-`` are triagekit annotations (``x-taxonomy``:
which subcategories and assignment group belong to each category) and are removed before compiling the grammar.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["TriageSchema", "load_schema", "DEFAULT_SCHEMA", "parse_output"]

DEFAULT_SCHEMA = Path(__file__).resolve().parents[1] / "presets" / "triage" / "schema.it.json"


@dataclass
class TriageSchema:
    """A checked JSON Schema for triage output; ``raw`` is the file's content."""

    raw: dict[str, Any]
    source: str = "<dict>"

    def __post_init__(self) -> None:
        s, where = self.raw, f"triage schema {self.source}"
        if not isinstance(s, dict) or s.get("type") != "object" or not isinstance(s.get("properties"), dict):
            raise ValueError(f"{where}: must be a JSON Schema object with 'type': 'object' and 'properties'")
        if not s["properties"]:
            raise ValueError(f"{where}: 'properties' is empty")
        for name, prop in s["properties"].items():
            if not isinstance(prop, dict):
                raise ValueError(f"{where}: property {name!r} must be an object")
            if "enum" in prop and (not isinstance(prop["enum"], list) or not prop["enum"]):
                raise ValueError(f"{where}: property {name!r} has an empty or non-list enum")
        unknown = set(s.get("required", [])) - set(s["properties"])
        if unknown:
            raise ValueError(f"{where}: required fields {sorted(unknown)} are not in properties")
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(self.grammar_schema())
        except SchemaError as exc:
            raise ValueError(f"{where}: not a valid JSON Schema: {exc.message}") from None

    @property
    def fields(self) -> list[str]:
        """Property names in output order."""
        return list(self.raw["properties"])

    @property
    def enum_fields(self) -> dict[str, list]:
        """Fields restricted to a list of values, with the values."""
        return {k: v["enum"] for k, v in self.raw["properties"].items() if "enum" in v}

    @property
    def taxonomy(self) -> dict[str, Any]:
        return self.raw.get("x-taxonomy", {})

    def grammar_schema(self) -> dict[str, Any]:
        """The schema without ``x-`` annotations; every field required and no extra keys unless the file says so."""
        s = {k: v for k, v in self.raw.items() if not k.startswith("x-")}
        s.setdefault("required", self.fields)
        s.setdefault("additionalProperties", False)
        return s

    def validate(self, obj: Any) -> list[str]:
        """Validation errors of ``obj`` (empty list when valid)."""
        from jsonschema import Draft202012Validator

        validator = Draft202012Validator(self.grammar_schema())
        return [f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in validator.iter_errors(obj)]

    def dumps(self, record: dict[str, Any]) -> str:
        """A record as the model writes it: one line, properties in schema order, ``", "``/``": "`` separators."""
        return json.dumps({k: record[k] for k in self.fields if k in record}, ensure_ascii=False)

    def describe(self) -> str:
        """The schema as prompt text for an untuned model: each field, its allowed values or description."""
        lines = []
        for name, prop in self.raw["properties"].items():
            if "enum" in prop:
                lines.append(f"- {name}: one of {', '.join(map(str, prop['enum']))}")
            else:
                lines.append(f"- {name}: {prop.get('description') or prop.get('type', 'value')}")
        return "Answer with one JSON object with these fields:\n" + "\n".join(lines)

    def max_output_bytes(self) -> int | None:
        """Upper bound on the bytes of any output the grammar allows, or None when a field is unbounded.

        Every token of a byte-level or byte-fallback vocabulary writes at least one byte, so this also bounds the
        tokens a constrained decoder needs: given that many, it always reaches the closing brace.
        """
        total = 2 + 2 * (len(self.fields) - 1)  # braces and ", " separators
        for name, prop in self.raw["properties"].items():
            total += len(json.dumps(name, ensure_ascii=False).encode()) + 2  # the key and ": "
            if "enum" in prop:
                total += max(len(json.dumps(v, ensure_ascii=False).encode()) for v in prop["enum"])
            elif prop.get("type") == "string" and isinstance(prop.get("maxLength"), int):
                total += 12 * prop["maxLength"] + 2  # worst case: each character a surrogate-pair escape
            elif prop.get("type") == "boolean":
                total += 5
            elif prop.get("type") == "integer" and {"minimum", "maximum"} <= set(prop):
                total += max(len(str(int(prop["minimum"]))), len(str(int(prop["maximum"]))))
            else:
                return None
        return total

    def to_json(self) -> str:
        return json.dumps(self.raw, indent=2, ensure_ascii=False)


def load_schema(path: str | Path | None = None) -> TriageSchema:
    """A schema from a ``.json``/``.yaml`` file; None gives the default IT schema."""
    if path is None:
        path = DEFAULT_SCHEMA
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"triage schema {path} does not exist")
    text = path.read_text()
    try:
        raw = __import__("yaml").safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    except Exception as exc:  # noqa: BLE001 - json and yaml raise different types
        raise ValueError(f"triage schema {path}: cannot parse: {exc}") from None
    return TriageSchema(raw, str(path))


def parse_output(text: str, schema: TriageSchema) -> tuple[dict[str, Any] | None, list[str]]:
    """``(record, errors)`` of a model's output: the record when it parses as a JSON object, and its schema
    errors (``["not JSON: ..."]`` when it does not parse)."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [f"not JSON: {exc.msg} at char {exc.pos}"]
    if not isinstance(obj, dict):
        return None, ["not a JSON object"]
    return obj, schema.validate(obj)
