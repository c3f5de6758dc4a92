"""The package layers, read from the source with ``ast`` (nothing of triagekit is imported to check them).

Every ``import`` counts, at module level or inside a function (most of triagekit's own imports sit in functions to
keep start-up cheap, so skipping them would hide the graph). The rules, and why, are in ``docs/architecture.md``:

- ``core`` imports nothing of triagekit outside ``core``; ``data`` imports only ``core``; ``sft`` only ``core``
  and ``data``.
- ``route``, ``triage`` and ``answer`` never import each other's modules; what one needs of another goes through
  that package's ``__init__`` and its ``__all__`` (``from triagekit.route import Router``).
- ``serve`` and ``exporters`` sit on top of the capabilities and import only public (non-underscore) names of
  public modules; no package imports an underscore name or module of another package.
- No import cycles between modules. ``from pkg import name`` is resolved to the submodule that the package's
  ``__init__`` takes ``name`` from, so a package re-exporting its submodules is not counted as a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "triagekit"
CAPABILITIES = {"route", "triage", "answer"}
# What each layer may import besides itself. None: anything (subject to the private-name and cycle rules).
ALLOWED: dict[str, set[str] | None] = {
    "core": set(),
    "data": {"core"},
    "sft": {"core", "data"},
    "route": {"core", "data"},
    "triage": {"core", "data", "sft"},
    "answer": {"core", "data", "sft"},
    "exporters": {"core", "data", "route"},
    "serve": {"core", "data", "sft", "route", "triage", "answer", "exporters"},
    "registry": {"core"},  # the registry commands; the store itself is core/registry.py
}


@dataclass(frozen=True)
class Edge:
    """One import at ``path:line``: ``importer`` takes ``names`` from ``written`` (the module named in the source),
    which resolves to ``imported`` (the submodule the name comes from, when ``written`` is a package re-exporting it).
    """

    importer: str
    imported: str
    names: tuple[str, ...]
    path: str
    line: int
    written: str = ""

    def __str__(self) -> str:
        what = f" ({', '.join(self.names)})" if self.names else ""
        via = f" via {self.written}" if self.written and self.written != self.imported else ""
        return f"{self.path}:{self.line}: {self.importer} -> {self.imported}{what}{via}"


def module_files(src: Path = SRC) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name, for its ``__init__.py``)."""
    out = {}
    for path in sorted((src / ROOT).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def raw_imports(module: str, path: Path) -> list[tuple[str, tuple[str, ...], int]]:
    """(imported module, names taken from it, line) for every import of triagekit anywhere in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, (), node.lineno) for a in node.names if a.name.split(".")[0] == ROOT]
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(node, module, is_package)
            if target.split(".")[0] == ROOT:
                found.append((target, tuple(a.name for a in node.names), node.lineno))
    return found


def _reexports(modules: dict[str, Path]) -> dict[str, dict[str, str]]:
    """For each package: name -> the submodule its ``__init__`` imports it from (eagerly or in ``__getattr__``)."""
    out: dict[str, dict[str, str]] = {}
    for module, path in modules.items():
        if path.name != "__init__.py":
            continue
        table = out.setdefault(module, {})
        for target, names, _ in raw_imports(module, path):
            for name in names:
                sub = f"{target}.{name}"
                table[name] = sub if sub in modules else target
    return out


def build_edges(src: Path = SRC) -> list[Edge]:
    """Every import between triagekit's modules, each ``from pkg import name`` resolved to where ``name`` lives."""
    modules = module_files(src)
    reexports = _reexports(modules)
    edges = []
    for module, path in modules.items():
        rel = str(path.relative_to(src.parent))
        for target, names, line in raw_imports(module, path):
            if not names:
                edges.append(Edge(module, target, (), rel, line))
                continue
            for name in names:
                if f"{target}.{name}" in modules:  # `from triagekit.route import router`: the submodule
                    edges.append(Edge(module, f"{target}.{name}", (), rel, line))
                elif target in reexports and name in reexports[target] and reexports[target][name] != module:
                    edges.append(Edge(module, reexports[target][name], (name,), rel, line, target))
                else:
                    edges.append(Edge(module, target, (name,), rel, line))
    return edges


def layer(module: str) -> str:
    """The top-level package of a module (``route`` for ``triagekit.route.heads``); ``""`` for the root modules
    (``triagekit``, ``triagekit.cli``, ``triagekit.__main__``), which may import anything."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else ""


def package_all(src: Path, package: str) -> set[str]:
    """The names in a package's ``__all__`` (its public surface), read from its ``__init__.py``."""
    path = src.joinpath(*package.split("."), "__init__.py")
    for node in ast.parse(path.read_text()).body if path.exists() else []:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return set()


def _private(edge: Edge) -> bool:
    parts = (edge.written or edge.imported).split(".")[1:] + list(edge.names)
    return any(p.startswith("_") and not p.startswith("__") for p in parts)


def layer_violations(edges: list[Edge], src: Path = SRC) -> list[str]:
    """Imports that cross a layer the wrong way, or reach a peer capability other than through its ``__init__``."""
    bad = []
    for e in edges:
        importer, dst = layer(e.importer), layer(e.imported)
        if not importer or importer == dst or ALLOWED.get(importer) is None or dst in ALLOWED[importer]:
            continue
        if e.imported == ROOT:
            continue  # what the root package defines itself (``__version__``); its lazy Router resolves elsewhere
        peer = importer in CAPABILITIES and dst in CAPABILITIES
        package = f"{ROOT}.{dst}"
        if peer and (e.written or e.imported) == package and e.names and set(e.names) <= package_all(src, package):
            continue  # a name in the peer's __all__, taken from the package itself
        rule = (
            f"capabilities reach each other only through {package}'s __all__"
            if peer
            else (f"{importer} may import only {', '.join(sorted(ALLOWED[importer])) or 'itself'}")
        )
        bad.append(f"{e}  [{rule}]")
    return bad


def private_violations(edges: list[Edge]) -> list[str]:
    """Imports of an underscore name or module that belongs to another top-level package."""
    return [
        f"{e}  [underscore names stay inside their package]"
        for e in edges
        if layer(e.importer) != layer(e.imported) and _private(e)
    ]


def cycles(edges: list[Edge]) -> list[list[Edge]]:
    """One shortest cycle per strongly connected group of modules (Tarjan, then a BFS inside the group)."""
    graph: dict[str, dict[str, Edge]] = {}
    for e in edges:
        if e.imported != e.importer:
            graph.setdefault(e.importer, {}).setdefault(e.imported, e)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_shortest_cycle(graph, group) for group in groups]


def _shortest_cycle(graph: dict[str, dict[str, Edge]], group: set[str]) -> list[Edge]:
    start = min(group)
    paths: dict[str, list[Edge]] = {start: []}
    queue = [start]
    for v in queue:
        for w, edge in sorted(graph.get(v, {}).items()):
            if w == start:
                return paths[v] + [edge]
            if w in group and w not in paths:
                paths[w] = paths[v] + [edge]
                queue.append(w)
    raise AssertionError(f"no cycle through {start}")  # unreachable: a strongly connected group has one


def _report(title: str, lines: list[str]) -> str:
    return f"{title}:\n  " + "\n  ".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# The rules on the real source
EDGES = build_edges()


def test_the_graph_is_read():
    # Guards the checker itself: if the parsing broke, every rule below would pass on an empty graph.
    assert len(module_files()) > 60
    assert any(e.importer == "triagekit.route.train" and layer(e.imported) == "core" for e in EDGES)
    assert any(e.importer == "triagekit.serve.service" and e.imported == "triagekit.route.router" for e in EDGES)
    assert any(e.importer == "triagekit.triage.model" and e.written == "triagekit.sft" for e in EDGES)


def test_every_package_has_a_layer():
    packages = {p.name for p in (SRC / ROOT).iterdir() if (p / "__init__.py").exists()}
    assert packages == set(ALLOWED), "add the new package to ALLOWED here and to docs/architecture.md"


def test_layers():
    bad = layer_violations(EDGES)
    assert not bad, _report("imports across layers (file:line: importer -> imported)", bad)


def test_no_private_names_across_packages():
    bad = private_violations(EDGES)
    assert not bad, _report("underscore names imported from another package", bad)


def test_no_import_cycles():
    found = cycles(EDGES)
    assert not found, _report("import cycles", ["\n    ".join(map(str, c)) for c in found])


def test_every_package_imports_in_a_fresh_interpreter():
    code = (
        "import triagekit.core, triagekit.data, triagekit.sft, triagekit.route, triagekit.triage, "
        "triagekit.answer, triagekit.serve, triagekit.exporters"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(SRC), "PATH": "", "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------------------------------------------------------
# The checker on a hand-made package: each rule can fail, and names the import
@pytest.fixture
def package(tmp_path):
    """Writes a fake triagekit (every folder gets an ``__init__.py``) in a fresh folder; returns its src folder."""
    made = []

    def write(files: dict[str, str]) -> Path:
        src = tmp_path / str(len(made)) / "src"
        made.append(src)
        for name, text in files.items():
            path = src / ROOT / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        for folder in [src / ROOT, *(p for p in (src / ROOT).rglob("*") if p.is_dir())]:
            (folder / "__init__.py").touch()
        return src

    return write


def test_checker_names_a_core_import_of_a_capability_inside_a_function(package):
    src = package(
        {
            "core/loop.py": "def f():\n    from triagekit.route.heads import HeadSpec\n",
            "route/heads.py": "HeadSpec = 1\n",
        }
    )
    assert layer_violations(build_edges(src), src) == [
        "src/triagekit/core/loop.py:2: triagekit.core.loop -> triagekit.route.heads (HeadSpec)  "
        "[core may import only itself]"
    ]


def test_checker_lets_peers_meet_only_at_the_package_all(package):
    src = package(
        {
            "route/__init__.py": "__all__ = ['HeadSpec']\n"
            "def __getattr__(name):\n    from triagekit.route.heads import HeadSpec\n",
            "route/heads.py": "HeadSpec = 1\nclass Other: ...\n",
            "triage/a.py": "from triagekit.route import HeadSpec\n",
            "triage/b.py": "from triagekit.route.heads import HeadSpec\n",
            "triage/c.py": "from triagekit.route import Other\n",
            "triage/d.py": "import triagekit.route.heads\n",
            "serve/e.py": "from triagekit.route.heads import Other\n",
        }
    )
    edges = build_edges(src)
    bad = layer_violations(edges, src)
    assert [b.split(":")[0] for b in bad] == [
        "src/triagekit/triage/b.py",
        "src/triagekit/triage/c.py",
        "src/triagekit/triage/d.py",
    ], bad
    assert all("through triagekit.route's __all__" in b for b in bad)
    # a.py's name is resolved to the module the __init__ takes it from (for the cycle search), written as given.
    assert [(e.imported, e.written) for e in edges if e.importer == "triagekit.triage.a"] == [
        ("triagekit.route.heads", "triagekit.route")
    ]


def test_checker_names_private_imports_but_not_inside_a_package(package):
    src = package(
        {
            "core/train.py": "_helper = 1\n",
            "core/loop.py": "from triagekit.core.train import _helper\n",
            "serve/app.py": "from triagekit.core.train import _helper\n",
            "route/x.py": "from triagekit.core import _impl\n",
            "core/_impl.py": "",
        }
    )
    bad = private_violations(build_edges(src))
    assert [b.split("  [")[0] for b in bad] == [
        "src/triagekit/route/x.py:1: triagekit.route.x -> triagekit.core._impl",
        "src/triagekit/serve/app.py:1: triagekit.serve.app -> triagekit.core.train (_helper)",
    ]


def test_checker_finds_a_cycle_through_function_imports_but_not_a_reexport(package):
    init = "from triagekit.data.card import stats\nfrom triagekit.data.prep import p\n"
    card = "from triagekit.data.io import read\ndef stats():\n    from triagekit.data import p\n"
    src = package(
        {
            "data/__init__.py": init,
            "data/card.py": card,
            "data/io.py": "def read(): ...\n",
            "data/prep.py": "from triagekit.data import stats\np = 1\n",
        }
    )
    found = cycles(build_edges(src))
    assert [[str(e) for e in c] for c in found] == [
        [
            "src/triagekit/data/card.py:3: triagekit.data.card -> triagekit.data.prep (p) via triagekit.data",
            "src/triagekit/data/prep.py:1: triagekit.data.prep -> triagekit.data.card (stats) via triagekit.data",
        ]
    ]
    # The same package without card's function-level import: the __init__ re-exporting both is no cycle.
    src = package(
        {
            "data/__init__.py": init,
            "data/card.py": "from triagekit.data.io import read\ndef stats(): ...\n",
            "data/io.py": "def read(): ...\n",
            "data/prep.py": "from triagekit.data import stats\np = 1\n",
        }
    )
    assert cycles(build_edges(src)) == []
