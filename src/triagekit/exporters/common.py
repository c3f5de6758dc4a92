"""What every exporter does with a run directory: read its ``router.json``, copy the tokenizer and the lexical
model beside the export, and write the export's own ``router.json``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from triagekit.route.heads import HeadSpec
from triagekit.route.router import ROUTER_FILE

__all__ = ["read_run", "run_heads", "load_merged", "copy_tokenizer", "copy_lexical", "write_info"]


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """The run's ``router.json``; only encoder runs (not TF-IDF) have a network to export.

    Raises:
        FileNotFoundError: ``run_dir`` is not a triagekit model directory.
        ValueError: the run is not an encoder run.
    """
    file = Path(run_dir) / ROUTER_FILE
    if not file.exists():
        raise FileNotFoundError(f"{run_dir} is not a triagekit model directory (no {ROUTER_FILE})")
    info = json.loads(file.read_text())
    if info.get("backend") != "encoder":
        raise ValueError(f"{run_dir}: only encoder runs can be exported (its backend is {info.get('backend')!r})")
    return info


def run_heads(info: dict[str, Any]) -> list[HeadSpec]:
    return [HeadSpec.from_dict(h) for h in info["heads"]]


def load_merged(run_dir: Path, info: dict[str, Any]):
    """The run's ``MultiHeadModel`` in eval mode, LoRA adapters merged into the base weights."""
    from triagekit.route.modeling import load_model

    return load_model(Path(run_dir) / info.get("model_dir", "."), run_heads(info), merge=True).eval()


def copy_tokenizer(run_dir: Path, info: dict[str, Any], dest: Path) -> None:
    src = Path(run_dir) / info.get("model_dir", ".") / "tokenizer"
    shutil.copytree(src, dest, dirs_exist_ok=True)


def copy_lexical(run_dir: Path, info: dict[str, Any], out_dir: Path) -> None:
    """The TF-IDF half of a hybrid run and the out-of-scope statistics: both are applied in numpy on top of the
    exported graph's outputs."""
    from triagekit.route.hybrid import LEXICAL_DIR

    if info.get("lexical"):
        shutil.copytree(Path(run_dir) / LEXICAL_DIR, Path(out_dir) / LEXICAL_DIR, dirs_exist_ok=True)
    oos = info.get("oos") or {}
    if (Path(run_dir) / oos.get("file", "-")).is_file():  # the out-of-scope statistics (route.oos)
        shutil.copy2(Path(run_dir) / oos["file"], Path(out_dir) / oos["file"])


def write_info(
    info: dict[str, Any], out_dir: Path, run_dir: Path, backend: str, export: dict[str, Any], **fields: Any
) -> None:
    """The run's ``router.json`` with the backend swapped; ``meta.export`` says where and how it came from."""
    new = {k: v for k, v in info.items() if k != "model_dir"}
    new.update(backend=backend, **fields)
    new["meta"] = {**info.get("meta", {}), "export": {"from": str(Path(run_dir).resolve()), **export}}
    (Path(out_dir) / ROUTER_FILE).write_text(json.dumps(new, indent=2))
