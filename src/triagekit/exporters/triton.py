"""A Triton Inference Server model repository for a router: tokenizer -> ONNX router -> probabilities, as one
ensemble, plus an offline validator of the repository (``validate_repository``).

Layout (``export_triton(run, repo)``)::

    repo/triagekit/config.pbtxt, 1/                      ensemble: TEXT -> probs_<head>
    repo/triagekit_tokenizer/config.pbtxt, 1/model.py, 1/tokenizer/   python backend
    repo/triagekit_router/config.pbtxt, 1/model.onnx     onnxruntime backend: logits_<head>
    repo/triagekit_postprocess/config.pbtxt, 1/model.py, 1/heads.json, labels_<head>.txt   python backend

Clients send ``TEXT`` (TYPE_STRING, shape [batch, 1]) built like the router does (``subject + "\\n" + body``) and
get calibrated probabilities, columns in ``labels_<head>.txt`` order; they may also call ``triagekit_router``
directly with token ids and apply softmax themselves. Review thresholds stay a client decision (they are in
``heads.json``), and a hybrid run's TF-IDF pool is not part of the ensemble (a warning says so).
``triagekit.exporters.triton_check.validate_repository`` checks a repository offline.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

from triagekit.core.extras import require
from triagekit.exporters.common import copy_tokenizer, load_merged, read_run, run_heads
from triagekit.exporters.onnx import INPUTS, OPSET, QUANTIZE, export_graph, output_name, quantize_int8
from triagekit.exporters.pbtxt import dumps, model_config

__all__ = ["export_triton", "ENSEMBLE", "TOKENIZER", "ROUTER", "POSTPROCESS", "VERSION"]

ENSEMBLE, TOKENIZER = "triagekit", "triagekit_tokenizer"
ROUTER, POSTPROCESS = "triagekit_router", "triagekit_postprocess"
VERSION = "1"
TEXT = "TEXT"
PAD_MULTIPLE = 16


_README = """# triagekit router: Triton model repository

    tritonserver --model-repository .        # needs the python backend with transformers installed

Call the ensemble `triagekit` with `TEXT` (BYTES, shape [batch, 1]): the ticket as the router reads it, the text
fields joined by newlines (`subject + "\\n" + body`). It returns calibrated probabilities {heads}, columns in the
order of `triagekit_postprocess/labels_<head>.txt`. To skip the postprocess step, call `triagekit_router` with
`input_ids` and `attention_mask` (INT64, [batch, sequence]) and apply softmax (sigmoid for multi-label heads) to
`logits_<head>` divided by the temperature in `triagekit_postprocess/1/heads.json`; review thresholds are there too.
"""


def _tensor(name: str, dtype: str, dims: list[int], **extra: Any) -> dict[str, Any]:
    return {"name": name, "data_type": dtype, "dims": dims, **extra}


def _params(**values: Any) -> dict[str, dict[str, str]]:
    return {k: {"string_value": str(v)} for k, v in values.items()}


def _configs(heads, max_length: int, max_batch_size: int) -> dict[str, dict[str, Any]]:
    ids = [_tensor(name, "TYPE_INT64", [-1]) for name in INPUTS]
    logits = [_tensor(output_name(h.name), "TYPE_FP32", [len(h.labels)]) for h in heads]
    probs = [
        _tensor(f"probs_{h.name}", "TYPE_FP32", [len(h.labels)], label_filename=f"labels_{h.name}.txt") for h in heads
    ]
    cpu = [{"count": 1, "kind": "KIND_CPU"}]
    batching = {"max_queue_delay_microseconds": 2000}

    def step(model: str, inputs: list[str], outputs: list[str]) -> dict[str, Any]:
        return {
            "model_name": model,
            "model_version": -1,
            "input_map": {n: n for n in inputs},
            "output_map": {n: n for n in outputs},
        }

    return {
        ROUTER: {
            "name": ROUTER,
            "platform": "onnxruntime_onnx",
            "max_batch_size": max_batch_size,
            "input": ids,
            "output": logits,
            "dynamic_batching": batching,
        },
        TOKENIZER: {
            "name": TOKENIZER,
            "backend": "python",
            "max_batch_size": max_batch_size,
            "input": [_tensor(TEXT, "TYPE_STRING", [1])],
            "output": ids,
            "instance_group": cpu,
            "parameters": _params(max_length=max_length, pad_to_multiple_of=PAD_MULTIPLE),
        },
        POSTPROCESS: {
            "name": POSTPROCESS,
            "backend": "python",
            "max_batch_size": max_batch_size,
            "input": [dict(t) for t in logits],
            "output": probs,
            "instance_group": cpu,
        },
        ENSEMBLE: {
            "name": ENSEMBLE,
            "platform": "ensemble",
            "max_batch_size": max_batch_size,
            "input": [_tensor(TEXT, "TYPE_STRING", [1])],
            "output": [{k: v for k, v in t.items() if k != "label_filename"} for t in probs],
            "ensemble_scheduling": {
                "step": [
                    step(TOKENIZER, [TEXT], list(INPUTS)),
                    step(ROUTER, list(INPUTS), [output_name(h.name) for h in heads]),
                    step(POSTPROCESS, [output_name(h.name) for h in heads], [f"probs_{h.name}" for h in heads]),
                ]
            },
        },
    }


def export_triton(
    run_dir: str | Path, out_dir: str | Path, quantize: str | None = None, max_batch_size: int = 64
) -> Path:
    """Write a Triton model repository for the run into ``out_dir`` (see the module docstring for the layout).

    Args:
        run_dir: a trained encoder run.
        out_dir: the model repository (``tritonserver --model-repository out_dir``).
        quantize: None or ``"int8"`` for the router graph.
        max_batch_size: the largest batch Triton may form (per model).

    Returns:
        ``out_dir``.
    """
    require("onnx", "onnxruntime")
    model_config()  # a missing tritonclient fails here, before the minute of graph export
    if quantize not in (None, *QUANTIZE):
        raise ValueError(f"--quantize must be one of {QUANTIZE}, got {quantize!r}")
    run_dir, repo = Path(run_dir), Path(out_dir)
    info = read_run(run_dir)
    heads = run_heads(info)
    if info.get("lexical") and any(info["lexical"].get("weights", {}).values()):
        warnings.warn(
            "the Triton ensemble serves the encoder only: this hybrid run's TF-IDF pool is left out", stacklevel=2
        )
    onnx_path = repo / ROUTER / VERSION / "model.onnx"
    export_graph(load_merged(run_dir, info), heads, onnx_path, info["max_length"], features=False)
    if quantize == "int8":
        tmp = onnx_path.with_name("model.int8.onnx")
        quantize_int8(onnx_path, tmp)
        tmp.replace(onnx_path)
    here = Path(__file__).resolve().parent
    tok_dir = repo / TOKENIZER / VERSION
    copy_tokenizer(run_dir, info, tok_dir / "tokenizer")
    shutil.copyfile(here / "triton_tokenizer.py", tok_dir / "model.py")
    post_dir = repo / POSTPROCESS / VERSION
    post_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(here / "triton_postprocess.py", post_dir / "model.py")
    calibration = info.get("calibration") or {}
    (post_dir / "heads.json").write_text(
        json.dumps(
            [
                {
                    **h.to_dict(),
                    "temperature": float(calibration.get(h.name, {}).get("temperature", 1.0)),
                    "review_threshold": calibration.get(h.name, {}).get("review_threshold"),
                    "logit_bias": calibration.get(h.name, {}).get("logit_bias"),
                }
                for h in heads
            ],
            indent=2,
        )
    )
    for h in heads:
        (repo / POSTPROCESS / f"labels_{h.name}.txt").write_text("\n".join(h.labels) + "\n")
    (repo / ENSEMBLE / VERSION).mkdir(parents=True, exist_ok=True)  # Triton wants a version dir, even empty
    for name, config in _configs(heads, info["max_length"], max_batch_size).items():
        (repo / name / "config.pbtxt").write_text(dumps(config))
    (repo / "README.md").write_text(_README.format(heads=", ".join(f"probs_{h.name}" for h in heads)))
    (repo / "triagekit.json").write_text(
        json.dumps(
            {
                "text_fields": info["text_fields"],
                "heads": info["heads"],
                "meta": info.get("meta", {}),
                "export": {"from": str(run_dir.resolve()), "format": "triton", "opset": OPSET, "quantize": quantize},
            },
            indent=2,
        )
    )
    return repo
