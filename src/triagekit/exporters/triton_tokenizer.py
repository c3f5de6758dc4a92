"""Triton Python-backend model ``triagekit_tokenizer``: ticket text -> ``input_ids``, ``attention_mask``.

Copied as ``<repo>/triagekit_tokenizer/1/model.py`` by ``triagekit route export --format triton``; the tokenizer
files lie beside it in ``1/tokenizer``. Needs ``transformers`` (and ``tokenizers``) in the Triton Python environment.

Each request's texts are padded to the longest of them, rounded up to ``pad_to_multiple_of`` tokens: Triton's
dynamic batcher only merges requests of equal shape, so buckets of 16 tokens let the router batch across requests.
"""

import json
from pathlib import Path

import numpy as np


class TritonPythonModel:
    def initialize(self, args):
        from transformers import AutoTokenizer

        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.max_length = int(params.get("max_length", "128"))
        multiple = int(params.get("pad_to_multiple_of", "0"))
        # Rounding up must never pass max_length (the position embeddings end there).
        self.multiple = multiple if multiple and self.max_length % multiple == 0 else None
        self.tokenizer = AutoTokenizer.from_pretrained(str(Path(__file__).resolve().parent / "tokenizer"))

    def execute(self, requests):
        import triton_python_backend_utils as pb_utils

        responses = []
        for request in requests:
            raw = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy().reshape(-1)
            texts = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in raw]
            enc = self.tokenizer(
                texts,
                truncation=True,
                max_length=self.max_length,
                padding=True,
                pad_to_multiple_of=self.multiple,
                return_tensors="np",
            )
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor("input_ids", enc["input_ids"].astype(np.int64)),
                        pb_utils.Tensor("attention_mask", enc["attention_mask"].astype(np.int64)),
                    ]
                )
            )
        return responses
