"""Triton Python-backend model ``triagekit_postprocess``: raw logits per head -> calibrated probabilities.

Copied as ``<repo>/triagekit_postprocess/1/model.py``; ``heads.json`` beside it holds each head's labels, whether it
is multi-label (sigmoid) or not (softmax), the prior correction (``logit_bias``, added to the raw logits) and the
temperature fitted at training time, in the order the router applies them. Needs only numpy.
"""

import json
from pathlib import Path

import numpy as np


def _probs(z, temperature, multilabel, bias=None):
    z = z.astype(np.float64)
    if bias is not None:
        z = z + np.asarray(bias, dtype=np.float64)
    z = z / temperature
    if multilabel:
        return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class TritonPythonModel:
    def initialize(self, args):
        self.heads = json.loads((Path(__file__).resolve().parent / "heads.json").read_text())

    def execute(self, requests):
        import triton_python_backend_utils as pb_utils

        responses = []
        for request in requests:
            outputs = []
            for h in self.heads:
                z = pb_utils.get_input_tensor_by_name(request, f"logits_{h['name']}").as_numpy()
                p = _probs(z, float(h.get("temperature", 1.0)), bool(h["multilabel"]), h.get("logit_bias"))
                outputs.append(pb_utils.Tensor(f"probs_{h['name']}", p.astype(np.float32)))
            responses.append(pb_utils.InferenceResponse(output_tensors=outputs))
        return responses
