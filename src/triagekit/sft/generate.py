"""Load a tuned directory (or a base model) and generate with its chat template: ``load(path).generate(prompts)``."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from triagekit.sft.data import prompt_text
from triagekit.sft.decode import Constraint, DecodeStats, decode

__all__ = ["CausalLM", "load"]


class CausalLM:
    """A causal LM with its tokenizer, system prompt and run metadata; ``generate`` and ``stream`` use the chat
    template. Build it with ``load``."""

    def __init__(self, model, tokenizer, meta: dict[str, Any] | None = None, system_prompt: str | None = None):
        self.model, self.tokenizer, self.meta = model.eval(), tokenizer, meta or {}
        self.system_prompt = system_prompt
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        self.stop_ids = self._stop_ids()
        self.last_stats = DecodeStats()
        """Counters of the latest ``generate`` call (tokens, forced tokens, forward passes, seconds)."""

    def _stop_ids(self) -> set[int]:
        ids = {self.tokenizer.eos_token_id} if self.tokenizer.eos_token_id is not None else set()
        eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids |= set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        for tok in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"):
            tid = self.tokenizer.convert_tokens_to_ids(tok) if tok in self.tokenizer.get_vocab() else None
            if tid is not None:
                ids.add(tid)
        return ids

    @property
    def device(self) -> torch.device:
        return self.model.device

    def prompt_ids(self, prompt: str | Sequence[dict]) -> list[int]:
        """Token ids of a prompt (string or chat messages) rendered with the chat template."""
        text = prompt_text(self.tokenizer, prompt, self.system_prompt)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def generate(
        self,
        prompts: Sequence[str | Sequence[dict]],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = 0,
        batch_size: int = 8,
        constraint: Constraint | None = None,
        overlap: bool = True,
    ) -> list[str]:
        """Completions of ``prompts`` (greedy when ``temperature`` is 0), in input order.

        Prompts are batched by length (``batch_size`` per model call). ``constraint`` restricts the tokens (and
        may force some); a constraint with per-prompt settings has ``for_rows(indices)``, which gives the
        constraint of one batch (indices into ``prompts``). ``self.last_stats`` holds the counters of this call.
        """
        generator = torch.Generator(device="cpu").manual_seed(seed) if seed is not None else None
        encoded = [self.prompt_ids(p) for p in prompts]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        outputs: list[str] = [""] * len(encoded)
        self.last_stats = DecodeStats()
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            new = decode(
                self.model,
                [encoded[i] for i in batch],
                max_new_tokens=max_new_tokens,
                stop_ids=self.stop_ids,
                pad_id=self.tokenizer.pad_token_id,
                temperature=temperature,
                top_p=top_p,
                generator=generator if temperature > 0 else None,
                constraint=constraint.for_rows(batch) if hasattr(constraint, "for_rows") else constraint,
                overlap=overlap,
                stats=self.last_stats,
            )
            for i, ids in zip(batch, new):
                outputs[i] = self.tokenizer.decode(ids, skip_special_tokens=True)
        return outputs

    def stream(
        self, prompt: str | Sequence[dict], *, max_new_tokens: int = 256, temperature: float = 0.0, top_p: float = 1.0
    ) -> Iterator[str]:
        """Text pieces of one completion as they are generated (``transformers.TextIteratorStreamer``)."""
        from transformers import TextIteratorStreamer

        ids = torch.tensor([self.prompt_ids(prompt)], device=self.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = dict(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            streamer=streamer,
            eos_token_id=sorted(self.stop_ids),
            pad_token_id=self.tokenizer.pad_token_id,
            do_sample=temperature > 0,
            **({"temperature": temperature, "top_p": top_p} if temperature > 0 else {}),
        )
        thread = threading.Thread(target=self.model.generate, kwargs=kwargs, daemon=True)
        thread.start()
        yield from streamer
        thread.join()


def _dtype(name: str | None):
    return {None: None, "auto": None, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
        name
    ]


def load(
    path_or_name: str | Path, *, device: str | None = None, merge: bool = True, dtype: str | None = None
) -> CausalLM:
    """A tuned SFT directory (``sft.json``), or a base model: ``smollm2``, an HF id or a local HF folder.

    Args:
        device: ``cpu``/``cuda``/...; default cuda when available.
        merge: fold LoRA adapters into the base weights (faster inference); False keeps them separate.
        dtype: ``float32`` / ``bfloat16`` / ``float16`` (default: the checkpoint's).
    """
    from transformers import AutoTokenizer

    from triagekit.core.backbones import resolve_backbone
    from triagekit.sft.train import load_causal_lm

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    path = Path(path_or_name).expanduser()
    if not (path / "sft.json").exists():
        name = resolve_backbone(str(path_or_name))
        model = load_causal_lm(name, dtype=_dtype(dtype)).to(device)
        return CausalLM(model, AutoTokenizer.from_pretrained(name), {"base": str(path_or_name), "tuned": False})
    meta = json.loads((path / "sft.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(str(path / "model" / "tokenizer"))
    if not meta.get("adapter"):
        model = load_causal_lm(str(path / "model" / "weights"), dtype=_dtype(dtype))
    else:
        from peft import PeftModel

        base = str(path / meta["base_dir"]) if meta.get("base_dir") else meta["base"]
        model = PeftModel.from_pretrained(load_causal_lm(base, dtype=_dtype(dtype)), str(path / "model" / "adapter"))
        if merge:
            model = model.merge_and_unload()
    return CausalLM(model.to(device), tokenizer, {**meta, "tuned": True}, system_prompt=meta.get("system_prompt"))
