"""Supervised fine-tuning of causal LMs on (prompt, answer) pairs, and generation from the tuned model.

Shared by the tasks that tune a small LLM (``triage``: strict JSON tickets; ``answer``: support replies)::

    from triagekit.sft import SFTConfig, train_sft, load

    cfg = SFTConfig(base="smollm2", method="lora", epochs=2, max_length=256)   # or load_sft_config(yaml, **overrides)
    result = train_sft(cfg, [("VPN drops every 10 min", '{"category": "Network"}'), ...], "runs/x",
                       val_pairs=[...], task="triage", task_meta={"schema": {...}})
    lm = load("runs/x")                       # or load("smollm2") / an HF id / a local HF folder (untuned)
    lm.generate(["printer jammed again"], max_new_tokens=64, temperature=0.0, batch_size=8)
    for piece in lm.stream("reset my password"): print(piece, end="")

- A prompt is a string (one user turn) or a list of ``{role, content}`` messages; it is rendered with the model's
  chat template (``cfg.system_prompt`` prepended) and the loss is on the answer tokens only (``sft.data``).
- Over-long examples: the prompt is cut in the middle, an answer is never cut; counts are in ``result.encode``.
- Methods: ``lora`` (peft, adapters saved separately and merged at load; QLoRA with ``quantization: 4bit``,
  CUDA + bitsandbytes only, a clear error elsewhere) and ``full``. Warmup + cosine, gradient accumulation and clipping,
  gradient checkpointing, validation loss with early stopping, atomic checkpoints and ``resume=True``.
- The run directory: ``sft.json`` (task, base, method, best step/loss, ``task_meta``), ``config.yaml``,
  ``model/adapter`` + ``base/`` or ``model/weights``, ``model/tokenizer``, ``metrics.jsonl``, ``checkpoints/``.
- ``CausalLM.generate(..., constraint=...)`` takes a ``sft.decode.Constraint`` (grammar masks + forced tokens),
  e.g. the JSON-schema grammar of ``triagekit.triage.grammar``.
"""

from triagekit.sft.config import SFTConfig, load_sft_config, parse_sft_overrides
from triagekit.sft.data import IGNORE_INDEX, EncodeStats, encode_pair, encode_pairs, prompt_text
from triagekit.sft.decode import Constraint, DecodeStats, decode
from triagekit.sft.generate import CausalLM, load
from triagekit.sft.train import SFTResult, load_causal_lm, train_sft

__all__ = [
    "SFTConfig",
    "load_sft_config",
    "parse_sft_overrides",
    "IGNORE_INDEX",
    "EncodeStats",
    "encode_pair",
    "encode_pairs",
    "prompt_text",
    "Constraint",
    "DecodeStats",
    "decode",
    "CausalLM",
    "load",
    "SFTResult",
    "load_causal_lm",
    "train_sft",
]
