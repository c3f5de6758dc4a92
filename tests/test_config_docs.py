"""docs/configuration.md is generated from the config dataclasses; it must match the code."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from triagekit.core.config import field_docs, reference_markdown

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_config_docs", ROOT / "scripts" / "gen_config_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_page_is_current():
    page = (ROOT / "docs" / "configuration.md").read_text()
    assert page == _generator().render(), "docs/configuration.md is stale: run python scripts/gen_config_docs.py"


@dataclass
class _Base:
    a: int = 1
    """Base doc of a."""
    b: str = "x"
    """Doc of b."""


@dataclass
class _Child(_Base):
    a: int = 2
    """Child doc of a."""
    c: list[str] | None = None
    """Doc of c | with a pipe."""


def test_field_docs_walk_the_mro_and_render_a_table():
    docs = field_docs(_Child)
    assert docs == {"a": "Child doc of a.", "b": "Doc of b.", "c": "Doc of c | with a pipe."}
    table = reference_markdown(_Child, "Child")
    assert "| `a` | `int` | `2` | Child doc of a. |" in table
    assert "| `c` | `list[str] \\| None` | `None` | Doc of c \\| with a pipe. |" in table
    assert table.index("`a`") < table.index("`b`") < table.index("`c`")


def test_every_field_of_every_config_has_a_docstring():
    gen = _generator()
    text = gen.render()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert rows and all(not line.rstrip().endswith("|  |") for line in rows), [r for r in rows if r.endswith("|  |")]
