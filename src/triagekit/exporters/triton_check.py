"""Offline validation of a Triton model repository: each ``config.pbtxt`` against Triton's own ``ModelConfig``
message (field names, value kinds, enums, oneofs; ``pbtxt.load_config``) and against what it describes: ONNX graph
inputs and outputs (names, element types, ranks, dims), Python models (``TritonPythonModel.execute``), and
ensembles (every step's model exists, maps name real inputs and outputs, tensors flow from an ensemble input or an
earlier step with matching types and shapes, every ensemble output is produced).
"""

from __future__ import annotations

import ast
from pathlib import Path

from triagekit.exporters.pbtxt import load_config

__all__ = ["validate_repository", "ONNX_TYPES"]

VERSION = "1"
ONNX_TYPES = {
    1: "TYPE_FP32",
    2: "TYPE_UINT8",
    3: "TYPE_INT8",
    5: "TYPE_INT16",
    6: "TYPE_INT32",
    7: "TYPE_INT64",
    8: "TYPE_STRING",
    9: "TYPE_BOOL",
    10: "TYPE_FP16",
    11: "TYPE_FP64",
    16: "TYPE_BF16",
}
"""ONNX ``TensorProto`` element types -> Triton data types."""


def _onnx_io(path: Path) -> tuple[dict, dict]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    init = {i.name for i in graph.initializer}

    def io(values):
        return {
            v.name: (
                ONNX_TYPES.get(v.type.tensor_type.elem_type, "TYPE_INVALID"),
                [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim],
            )
            for v in values
            if v.name not in init
        }

    return io(graph.input), io(graph.output)


def _check_tensors(name: str, cfg: dict, errors: list[str]) -> None:
    for kind in ("input", "output"):
        seen = set()
        for t in cfg.get(kind, []):
            where = f"{name}: {kind} {t.get('name')!r}"
            if not t.get("name"):
                errors.append(f"{name}: an {kind} has no name")
            if t.get("name") in seen:
                errors.append(f"{where} is declared twice")
            seen.add(t.get("name"))
            if t.get("data_type", "TYPE_INVALID") == "TYPE_INVALID":
                errors.append(f"{where} has no data_type")
            if not t.get("dims") or any(d < -1 or d == 0 for d in t["dims"]):
                errors.append(f"{where}: dims must be non-empty, each > 0 or -1 (got {t.get('dims')})")


def _check_onnx(name: str, cfg: dict, path: Path, errors: list[str]) -> None:
    graph_in, graph_out = _onnx_io(path)
    batch = 1 if cfg.get("max_batch_size", 0) > 0 else 0
    declared_in = {t["name"] for t in cfg.get("input", [])}
    for missing in sorted(set(graph_in) - declared_in):
        errors.append(f"{name}: the graph's input {missing!r} is not declared")
    for kind, graph in (("input", graph_in), ("output", graph_out)):
        for t in cfg.get(kind, []):
            if t["name"] not in graph:
                errors.append(f"{name}: {kind} {t['name']!r} is not in the graph (has {sorted(graph)})")
                continue
            dtype, dims = graph[t["name"]]
            if dtype != t.get("data_type"):
                errors.append(f"{name}: {kind} {t['name']!r} is {t.get('data_type')} but {dtype} in the graph")
            if batch and (not dims or dims[0] != -1):
                errors.append(f"{name}: {kind} {t['name']!r} needs a dynamic batch axis for max_batch_size > 0")
            if len(dims) - batch != len(t.get("dims", [])):
                errors.append(
                    f"{name}: {kind} {t['name']!r} has rank {len(dims) - batch} (without batch) in the "
                    f"graph, {len(t.get('dims', []))} in the config"
                )
                continue
            for c, g in zip(t.get("dims", []), dims[batch:]):
                if c != -1 and g != -1 and c != g:
                    errors.append(f"{name}: {kind} {t['name']!r} dims {t['dims']} differ from the graph's {dims}")
                if c != -1 and g == -1 and kind == "output":
                    errors.append(f"{name}: output {t['name']!r} is dynamic in the graph but fixed in the config")


def _check_python(name: str, path: Path, errors: list[str]) -> None:
    tree = ast.parse(path.read_text())
    cls = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "TritonPythonModel"]
    if not cls or "execute" not in {f.name for f in cls[0].body if isinstance(f, ast.FunctionDef)}:
        errors.append(f"{name}: {path.name} defines no TritonPythonModel with an execute method")


def _check_ensemble(name: str, cfg: dict, configs: dict[str, dict | None], errors: list[str]) -> None:
    steps = cfg.get("ensemble_scheduling", {}).get("step", [])
    if not steps:
        errors.append(f"{name}: an ensemble needs ensemble_scheduling with at least one step")
    # Ensemble tensors known so far: name -> (dtype, dims without batch).
    known = {t["name"]: (t.get("data_type"), t.get("dims")) for t in cfg.get("input", [])}
    for i, s in enumerate(steps):
        model, where = s.get("model_name", ""), f"{name}: step {i} ({s.get('model_name')!r})"
        if model not in configs:
            errors.append(f"{where}: no such model in the repository")
            continue
        sub = configs[model]
        if sub is None:
            continue  # its config is unreadable, reported above
        if cfg.get("max_batch_size", 0) > sub.get("max_batch_size", 0):
            errors.append(f"{where}: the ensemble's max_batch_size exceeds the model's")
        inputs = {t["name"]: t for t in sub.get("input", [])}
        outputs = {t["name"]: t for t in sub.get("output", [])}
        for key, tensor in s.get("input_map", {}).items():
            if key not in inputs:
                errors.append(f"{where}: input_map key {key!r} is not an input of {model}")
            elif tensor not in known:
                errors.append(f"{where}: {tensor!r} is neither an ensemble input nor an earlier step's output")
            else:
                dtype, dims = known[tensor]
                if dtype != inputs[key].get("data_type"):
                    errors.append(
                        f"{where}: {tensor!r} is {dtype}, {model} input {key!r} wants {inputs[key].get('data_type')}"
                    )
                want = inputs[key].get("dims", [])
                if len(dims or []) != len(want) or any(a != b and -1 not in (a, b) for a, b in zip(dims, want)):
                    errors.append(f"{where}: {tensor!r} dims {dims} do not fit {model} input {key!r} dims {want}")
        for missing in sorted(set(inputs) - set(s.get("input_map", {}))):
            if not inputs[missing].get("optional"):
                errors.append(f"{where}: required input {missing!r} of {model} is not mapped")
        for key, tensor in s.get("output_map", {}).items():
            if key not in outputs:
                errors.append(f"{where}: output_map key {key!r} is not an output of {model}")
            elif tensor in known:
                errors.append(f"{where}: ensemble tensor {tensor!r} is produced twice")
            else:
                known[tensor] = (outputs[key].get("data_type"), outputs[key].get("dims"))
    for t in cfg.get("output", []):
        if t["name"] not in known:
            errors.append(f"{name}: output {t['name']!r} is produced by no step")
        elif known[t["name"]][0] != t.get("data_type"):
            errors.append(
                f"{name}: output {t['name']!r} is {t.get('data_type')} but the step gives {known[t['name']][0]}"
            )


def validate_repository(repo: str | Path) -> list[str]:
    """Check a model repository offline the way Triton would on load; returns the problems found (none: [])."""
    repo, errors, configs = Path(repo), [], {}
    models = sorted(p for p in repo.iterdir() if p.is_dir())
    for model in models:
        file = model / "config.pbtxt"
        if not file.exists():
            errors.append(f"{model.name}: no config.pbtxt")
            continue
        cfg, problems = load_config(file.read_text())
        errors += [f"{model.name}/config.pbtxt: {p}" for p in problems]
        configs[model.name] = None if problems else cfg
        if problems:
            continue  # nothing more to check in a config Triton cannot read
        if cfg.get("name", model.name) != model.name:
            errors.append(f"{model.name}: config name {cfg['name']!r} differs from its directory")
        if bool(cfg.get("platform")) == bool(cfg.get("backend")) and cfg.get("platform") != "ensemble":
            errors.append(f"{model.name}: set exactly one of platform and backend")
        if cfg.get("max_batch_size", 0) < 0:
            errors.append(f"{model.name}: max_batch_size must be >= 0")
        if not any(p.is_dir() and p.name.isdigit() for p in model.iterdir()):
            errors.append(f"{model.name}: no numeric version directory")
        _check_tensors(model.name, cfg, errors)
    for name, cfg in configs.items():
        if cfg is None:
            continue
        version = repo / name / VERSION
        if cfg.get("platform") == "onnxruntime_onnx" or cfg.get("backend") == "onnxruntime":
            onnx_file = version / cfg.get("default_model_filename", "model.onnx")
            if onnx_file.exists():
                _check_onnx(name, cfg, onnx_file, errors)
            else:
                errors.append(f"{name}: {onnx_file.relative_to(repo)} is missing")
        elif cfg.get("backend") == "python":
            if (version / "model.py").exists():
                _check_python(name, version / "model.py", errors)
            else:
                errors.append(f"{name}: {VERSION}/model.py is missing")
        elif cfg.get("platform") == "ensemble":
            _check_ensemble(name, cfg, configs, errors)
        for t in cfg.get("output", []):
            if t.get("label_filename") and not (repo / name / t["label_filename"]).exists():
                errors.append(f"{name}: label file {t['label_filename']} is missing")
    return errors
