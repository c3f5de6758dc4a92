"""A model registry on a plain directory: versions ``NAME/vK`` with metadata and checksums, and aliases.

Layout of a registry root (``./registry`` or ``$TRIAGEKIT_REGISTRY``)::

    REGISTRY.json                 marks the directory as a registry
    .lock                         one writer at a time (fcntl.flock)
    NAME/aliases.json             {"production": {"version": 3, "history": [1, 2]}, ...}
    NAME/counter.json             the last version number handed out (numbers are never reused)
    NAME/v3/version.json          metadata: metrics, data hash and rows, config, parent, created-at, sha256 of files
    NAME/v3/files/...             the run or export, as it was registered

Writers copy the files into a temporary folder *outside* the lock (a copy can take seconds), then take the lock
only to pick the next version number and rename the folder into place: a crash leaves a ``.tmp-*`` folder that is
never read, never a half-written version. ``aliases.json`` is rewritten by write-temp-then-``os.replace`` under the
same lock. Loading a version checks the sha256 of every file and refuses a version that no longer matches.

``core`` imports no capability: the registry knows a run by its files (``router.json``, ``config.yaml``,
``eval/metrics.json``, ``data/``), never by the router's code.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

__all__ = [
    "Registry",
    "RegistryError",
    "IntegrityError",
    "ModelRef",
    "parse_ref",
    "resolve",
    "is_registry_ref",
    "REGISTRY_ENV",
    "REF_PREFIX",
    "DEFAULT_ROOT",
]

REGISTRY_ENV = "TRIAGEKIT_REGISTRY"
REF_PREFIX = "registry:"
DEFAULT_ROOT = "registry"
MARKER = "REGISTRY.json"
VERSION_FILE = "version.json"
ALIASES_FILE = "aliases.json"
COUNTER_FILE = "counter.json"
FILES = "files"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# Run-folder content that is not the model: training checkpoints, TensorBoard logs, the service's prediction log,
# locks and the ONNX caches `serve --backend onnx` makes (they are rebuilt from the registered files).
SKIP_TOP = ("checkpoints", "tb", "onnx-int8", "onnx-fp32")
SKIP_SUFFIX = (".db", ".db-wal", ".db-shm", ".lock", ".tmp")


class RegistryError(ValueError):
    """A registry operation that cannot be done (bad name, missing alias, not a registry...); the message says why."""


class IntegrityError(RegistryError):
    """A registered file no longer matches its recorded sha256."""


@dataclass(frozen=True)
class ModelRef:
    """``NAME``, ``NAME@vK`` or ``NAME@alias`` inside one registry ``root``."""

    root: Path
    name: str
    selector: str | None = None

    def __str__(self) -> str:
        return f"{self.name}@{self.selector}" if self.selector else self.name


def is_registry_ref(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(REF_PREFIX)


def default_root() -> Path:
    return Path(os.environ.get(REGISTRY_ENV) or DEFAULT_ROOT)


def parse_ref(value: str, root: str | Path | None = None) -> ModelRef:
    """Parse ``[registry:][ROOT/]NAME[@vK|@alias]``; ROOT defaults to ``root``, then ``$TRIAGEKIT_REGISTRY``, then
    ``./registry``.

    Raises:
        RegistryError: an empty or invalid name.
    """
    text = value[len(REF_PREFIX) :] if value.startswith(REF_PREFIX) else value
    spec, _, selector = text.partition("@")
    where, _, name = spec.rpartition("/")
    if not NAME_RE.match(name):
        raise RegistryError(
            f"bad model name {name!r} in {value!r}: use letters, digits, '.', '_' or '-' "
            f"(e.g. registry:router@production)"
        )
    if selector and not NAME_RE.match(selector):
        raise RegistryError(f"bad version or alias {selector!r} in {value!r}")
    base = Path(where) if where else Path(root) if root is not None else default_root()
    return ModelRef(base, name, selector or None)


def resolve(value: str, verify: bool = True) -> tuple[Path, dict[str, Any]]:
    """The files folder and metadata of a ``registry:NAME@...`` reference (checksums verified).

    Raises:
        RegistryError / IntegrityError: see ``Registry.get``.
    """
    ref = parse_ref(value)
    reg = Registry(ref.root)
    meta = reg.get(ref.name, ref.selector)
    path = reg.files_dir(ref.name, meta["version"])
    if verify:
        reg.verify(ref.name, meta["version"])
    return path, meta


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _skipped(rel: Path) -> bool:
    return rel.parts[0] in SKIP_TOP or rel.suffix in SKIP_SUFFIX or rel.parts[0].startswith(".")


def _write_json(path: Path, data: Any) -> None:
    """Write-temp-then-rename: readers see the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise RegistryError(f"{path} is unreadable ({exc}); restore it from a backup or re-register") from None


class Registry:
    """One registry directory. Every method is safe to call from several processes at once.

    Args:
        root: the registry directory (``None``: ``$TRIAGEKIT_REGISTRY`` or ``./registry``).
        create: make ``root`` a registry when it does not exist yet (``register`` does; reads do not).
    """

    def __init__(self, root: str | Path | None = None, create: bool = False):
        self.root = Path(root) if root is not None else default_root()
        marker = self.root / MARKER
        if not marker.exists():
            if not create:
                raise RegistryError(
                    f"{self.root} is not a triagekit registry (no {MARKER}); register a model "
                    f"first (`triagekit registry register RUN --name NAME --registry {self.root}`)"
                )
            if self.root.exists() and any(p for p in self.root.iterdir() if not p.name.startswith(".")):
                raise RegistryError(
                    f"{self.root} exists and is not empty: choose an empty or new folder for a registry"
                )
            self.root.mkdir(parents=True, exist_ok=True)
            with self.lock():
                if not marker.exists():
                    _write_json(marker, {"format": "triagekit-registry", "version": 1})

    # -- locking -----------------------------------------------------------------------------------------------
    @contextmanager
    def lock(self) -> Iterator[None]:
        """The registry's write lock (blocking; released when the process dies, so a crash never leaves it held)."""
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # -- paths -------------------------------------------------------------------------------------------------
    def _model_dir(self, name: str) -> Path:
        if not NAME_RE.match(name):
            raise RegistryError(f"bad model name {name!r}: use letters, digits, '.', '_' or '-'")
        return self.root / name

    def version_dir(self, name: str, version: int) -> Path:
        return self._model_dir(name) / f"v{int(version)}"

    def files_dir(self, name: str, version: int) -> Path:
        return self.version_dir(name, version) / FILES

    # -- reading -----------------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and NAME_RE.match(p.name) and not p.name.startswith(".")
        )

    def versions(self, name: str) -> list[int]:
        base = self._model_dir(name)
        if not base.is_dir():
            return []
        found = (re.fullmatch(r"v(\d+)", p.name) for p in base.iterdir())
        return sorted(int(m.group(1)) for m in found if m and (base / m.group(0) / VERSION_FILE).exists())

    def aliases(self, name: str) -> dict[str, dict[str, Any]]:
        file = self._model_dir(name) / ALIASES_FILE
        return _read_json(file) if file.exists() else {}

    def get(self, name: str, selector: str | int | None = None) -> dict[str, Any]:
        """Metadata of ``name`` at ``vK``, an alias, or (None) its latest version, with ``aliases`` it holds.

        Raises:
            RegistryError: unknown name, version or alias.
        """
        versions = self.versions(name)
        if not versions:
            raise RegistryError(f"no model {name!r} in registry {self.root} (known: {self.names() or 'none'})")
        version = self._pick(name, selector, versions)
        meta = _read_json(self.version_dir(name, version) / VERSION_FILE)
        meta["aliases"] = sorted(a for a, v in self.aliases(name).items() if v.get("version") == version)
        return meta

    def _pick(self, name: str, selector: str | int | None, versions: list[int]) -> int:
        if selector is None:
            return versions[-1]
        if isinstance(selector, int) or re.fullmatch(r"v?\d+", str(selector)):
            version = int(str(selector).lstrip("v"))
            if version not in versions:
                raise RegistryError(
                    f"{name} has no version v{version} (versions: {', '.join(f'v{v}' for v in versions)})"
                )
            return version
        alias = self.aliases(name).get(str(selector))
        if not alias or alias.get("version") is None:
            raise RegistryError(
                f"{name} has no alias {selector!r} (aliases: {sorted(self.aliases(name)) or 'none'}"
                f"); promote a version first: `triagekit registry promote {name}@vK --alias "
                f"{selector}`"
            )
        return int(alias["version"])

    def verify(self, name: str, version: int) -> None:
        """Check every registered file against its sha256.

        Raises:
            IntegrityError: a file is missing or changed, naming it and what to do.
        """
        meta = _read_json(self.version_dir(name, version) / VERSION_FILE)
        files = self.files_dir(name, version)
        for rel, info in meta["files"].items():
            path = files / rel
            if not path.is_file():
                raise IntegrityError(
                    f"{name}@v{version} is damaged: {rel} is missing; re-register the run or delete the version"
                )
            if path.stat().st_size != info["size"] or sha256_file(path) != info["sha256"]:
                raise IntegrityError(
                    f"{name}@v{version} is damaged: {rel} no longer matches its sha256 (changed "
                    f"after registration); refusing to load it. Re-register the run or delete "
                    f"the version"
                )

    # -- writing -----------------------------------------------------------------------------------------------
    def register(
        self,
        run: str | Path,
        name: str,
        *,
        link: bool = False,
        parent: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Copy (or hard-link) the run or export ``run`` in as the next version of ``name``; returns its metadata.

        Args:
            run: a folder with ``router.json`` (a run of ``triagekit train`` or an export).
            name: the model name.
            link: hard-link the files instead of copying (same file system; editing the run then damages the
                version, which ``verify`` catches).
            parent: the version this one was derived from (e.g. ``router@v2`` for a retrain).
            extra: more metadata to store (e.g. a retrain report).
        """
        run = Path(run)
        self._model_dir(name)
        if not (run / "router.json").is_file():
            raise RegistryError(
                f"{run} is not a triagekit model directory (no router.json); register a run of "
                f"`triagekit train` or an export"
            )
        tmp = self._model_dir(name) / f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            files = self._copy(run, tmp / FILES, link)
            meta = {
                "name": name,
                "source": str(run.resolve()),
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "parent": parent,
                "files": files,
                **describe_run(run),
                **(extra or {}),
            }
            with self.lock():
                version = self._next_version(name)
                meta["version"] = version
                _write_json(tmp / VERSION_FILE, meta)
                os.rename(tmp, self.version_dir(name, version))  # atomic: the version appears whole or not at all
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return {**meta, "aliases": []}

    def _next_version(self, name: str) -> int:
        """The next number (under the lock); numbers are never reused, even after the latest version is deleted,
        so ``NAME@vK`` in a prediction log always means one model."""
        counter = self._model_dir(name) / COUNTER_FILE
        last = int(_read_json(counter)["last"]) if counter.exists() else 0
        version = max([last, *self.versions(name)]) + 1
        _write_json(counter, {"last": version})
        return version

    @staticmethod
    def _copy(run: Path, dest: Path, link: bool) -> dict[str, dict[str, Any]]:
        files: dict[str, dict[str, Any]] = {}
        for src in sorted(run.rglob("*")):
            rel = src.relative_to(run)
            if not src.is_file() or _skipped(rel):
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if link:
                os.link(src, target)
            else:
                shutil.copy2(src, target)
            files[rel.as_posix()] = {"size": target.stat().st_size, "sha256": sha256_file(target)}
        return files

    def promote(self, name: str, selector: str | int, alias: str) -> dict[str, Any]:
        """Point ``alias`` at ``name@selector``; the previous holder goes on the alias's history (for rollback)."""
        if not NAME_RE.match(alias) or re.fullmatch(r"v?\d+", alias):
            raise RegistryError(f"bad alias {alias!r}: use a word such as production or staging")
        with self.lock():
            version = self._pick(name, selector, self.versions(name))
            aliases = self.aliases(name)
            entry = aliases.get(alias, {"version": None, "history": []})
            if entry.get("version") != version:
                if entry.get("version") is not None:
                    entry["history"] = [*entry.get("history", []), entry["version"]]
                entry.update(version=version, updated_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
                aliases[alias] = entry
                _write_json(self._model_dir(name) / ALIASES_FILE, aliases)
        return {"name": name, "alias": alias, "version": version, "history": entry.get("history", [])}

    def rollback(self, name: str, alias: str) -> dict[str, Any]:
        """Point ``alias`` back at its previous holder (skipping versions deleted since)."""
        with self.lock():
            aliases = self.aliases(name)
            entry = aliases.get(alias)
            if not entry or entry.get("version") is None:
                raise RegistryError(f"{name} has no alias {alias!r} to roll back")
            existing = set(self.versions(name))
            history = [v for v in entry.get("history", []) if v in existing and v != entry["version"]]
            if not history:
                raise RegistryError(f"{name}@{alias} (v{entry['version']}) has no previous version to roll back to")
            previous = history.pop()
            entry.update(version=previous, history=history, updated_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            _write_json(self._model_dir(name) / ALIASES_FILE, aliases)
        return {"name": name, "alias": alias, "version": previous, "history": history}

    def delete(self, name: str, selector: str | int) -> int:
        """Remove a version; refused while an alias points at it. Returns the version number removed."""
        with self.lock():
            version = self._pick(name, selector, self.versions(name))
            holders = sorted(a for a, v in self.aliases(name).items() if v.get("version") == version)
            if holders:
                raise RegistryError(
                    f"{name}@v{version} is the current {', '.join(holders)} version: promote or roll "
                    f"back another version to that alias before deleting it"
                )
            target = self.version_dir(name, version)
            graveyard = target.with_name(f".del-v{version}-{uuid.uuid4().hex[:8]}")
            os.rename(target, graveyard)  # atomic: readers see the whole version or none of it
        shutil.rmtree(graveyard, ignore_errors=True)
        return version

    def diff(self, name_a: str, sel_a: str | None, name_b: str, sel_b: str | None) -> dict[str, Any]:
        """Metrics of two versions side by side, per head: ``{head: {metric: [a, b, b - a]}}``."""
        a, b = self.get(name_a, sel_a), self.get(name_b, sel_b)
        heads: dict[str, dict[str, list]] = {}
        ma, mb = (a.get("metrics") or {}).get("heads", {}), (b.get("metrics") or {}).get("heads", {})
        for head in sorted(set(ma) | set(mb)):
            row = {}
            for key in DIFF_METRICS:
                va, vb = (ma.get(head) or {}).get(key), (mb.get(head) or {}).get(key)
                if va is None and vb is None:
                    continue
                row[key] = [va, vb, None if va is None or vb is None else vb - va]
            heads[head] = row
        return {
            "a": f"{name_a}@v{a['version']}",
            "b": f"{name_b}@v{b['version']}",
            "heads": heads,
            "data": {"a": a.get("data"), "b": b.get("data")},
        }


DIFF_METRICS = ("accuracy", "macro_f1", "weighted_f1", "ece", "coverage_at_threshold", "review_threshold")


def describe_run(run: Path) -> dict[str, Any]:
    """What a run's own files say about it: model version, metrics, resolved config, data hash and row counts."""
    out: dict[str, Any] = {}
    info = json.loads((run / "router.json").read_text())
    meta = info.get("meta") or {}
    out["model_version"] = meta.get("model_version")
    out["backend"] = info.get("backend")
    out["heads"] = {h["name"]: len(h.get("labels", [])) for h in info.get("heads", [])}
    metrics_file = run / "eval" / "metrics.json"
    out["metrics"] = _metrics_summary(json.loads(metrics_file.read_text())) if metrics_file.exists() else None
    if (run / "config.yaml").exists():
        import yaml

        out["config"] = yaml.safe_load((run / "config.yaml").read_text())
    data_dir = run / "data" if (run / "data" / "train.jsonl").exists() else Path(meta.get("data_dir") or run / "data")
    out["data"] = data_summary(data_dir)
    return out


def _metrics_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    heads = {name: {k: m.get(k) for k in DIFF_METRICS if k in m} for name, m in (metrics.get("heads") or {}).items()}
    return {"n_test": metrics.get("n_test"), "heads": heads}


def data_summary(data_dir: Path) -> dict[str, Any] | None:
    """sha256 over the prepared splits and their row counts (None when the run's data is not on disk)."""
    splits = [s for s in ("train", "val", "test") if (data_dir / f"{s}.jsonl").is_file()]
    if not splits:
        return None
    digest, rows = hashlib.sha256(), {}
    for split in splits:
        file = data_dir / f"{split}.jsonl"
        digest.update(f"{split}\0{sha256_file(file)}\n".encode())
        with open(file, "rb") as f:
            rows[split] = sum(1 for line in f if line.strip())
    return {"dir": str(data_dir.resolve()), "sha256": digest.hexdigest(), "rows": rows}
