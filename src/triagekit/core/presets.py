"""Presets shipped inside the package (``triagekit/presets/{router,triage,answer}/``), found by name or path.

``--config minilm`` resolves ``presets/router/minilm.yaml``; an existing file path is used as it is, so a user's
own YAML works the same way. Presets are package data, so a ``pip install`` user has them too.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PRESETS_DIR", "preset_path", "resolve_preset", "list_presets", "DEFAULT_ROUTER_PRESET"]

PRESETS_DIR = Path(__file__).resolve().parents[1] / "presets"
DEFAULT_ROUTER_PRESET = "minilm"
"""What ``triagekit route train`` trains without ``--config``: the MiniLM + TF-IDF hybrid the docs benchmark."""


def preset_path(task: str, name: str) -> Path:
    """The shipped file of preset ``name`` (with or without ``.yaml``) of ``task`` (router, triage, answer)."""
    stem = name[:-5] if name.endswith(".yaml") else name
    return PRESETS_DIR / task / f"{stem}.yaml"


def resolve_preset(name_or_path: str | Path, task: str = "router") -> Path:
    """An existing file as given, else the shipped preset of that name; a clear error lists the presets."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = preset_path(task, str(name_or_path))
    if "/" not in str(name_or_path) and shipped.is_file():
        return shipped
    names = ", ".join(name for name, _ in list_presets(task)) or "none"
    raise FileNotFoundError(
        f"no config file {str(name_or_path)!r} and no {task} preset of that name; "
        f"shipped {task} presets: {names} (`triagekit route presets` describes them)"
    )


def _summary(path: Path) -> str:
    """The preset's first comment block, joined into one line."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").strip())
    return " ".join(lines) or "(no description)"


def list_presets(task: str = "router") -> list[tuple[str, str]]:
    """``(name, one-line description)`` of every shipped preset of ``task``, sorted by name."""
    folder = PRESETS_DIR / task
    return [(p.stem, _summary(p)) for p in sorted(folder.glob("*.yaml"))] if folder.is_dir() else []
