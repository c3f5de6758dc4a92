"""SFT examples: (prompt, answer) pairs as token ids with the model's chat template, loss on the answer only.

The prompt (system + user turns + the assistant header) and the answer (its text + the template's end-of-turn) are
tokenised separately and concatenated: that is exactly what the model sees at generation time, where the prompt
is encoded alone and the answer is produced token by token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

__all__ = ["IGNORE_INDEX", "EncodeStats", "to_messages", "prompt_text", "encode_pair", "encode_pairs", "SFTCollator"]

IGNORE_INDEX = -100
"""Label of every token the loss skips (prompt and padding)."""
_PROBE = "\x00ANSWER\x00"


def to_messages(prompt: str | Sequence[dict], system: str | None = None) -> list[dict[str, str]]:
    """A chat: a plain string becomes one user turn; ``system`` is prepended unless the chat already has one."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
    if not messages or any(
        not isinstance(m.get("content"), str) or m.get("role") not in ("system", "user", "assistant", "tool")
        for m in messages
    ):
        raise ValueError("a prompt is a string or a list of {role: system|user|assistant, content: str} messages")
    if system is not None and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system})
    return messages


def prompt_text(tokenizer, prompt: str | Sequence[dict], system: str | None = None) -> str:
    """The prompt rendered by the chat template, ending with the assistant header (generation prompt)."""
    messages = to_messages(prompt, system)
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    # No template (a base model): a plain transcript.
    return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "


def answer_suffix(tokenizer, prompt: str | Sequence[dict], system: str | None = None) -> str:
    """What the chat template writes after an assistant message (e.g. ``<|im_end|>\\n``), found by rendering a
    probe answer; EOS for tokenizers without a template."""
    if not getattr(tokenizer, "chat_template", None):
        return tokenizer.eos_token or ""
    messages = to_messages(prompt, system) + [{"role": "assistant", "content": _PROBE}]
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    tail = full[full.index(_PROBE) + len(_PROBE) :]
    # The end-of-turn token is what teaches the model to stop; trailing newlines after it are not needed.
    return tail.rstrip("\n") or (tokenizer.eos_token or "")


@dataclass
class EncodeStats:
    """What encoding did to the data: nothing is cut or dropped without being counted here."""

    examples: int = 0
    prompt_truncated: int = 0
    dropped_answer_too_long: list[int] = field(default_factory=list)
    prompt_tokens: int = 0
    answer_tokens: int = 0

    def summary(self) -> str:
        return (
            f"{self.examples} examples ({self.prompt_tokens} prompt + {self.answer_tokens} answer tokens); "
            f"{self.prompt_truncated} prompts cut in the middle to fit; {len(self.dropped_answer_too_long)} "
            f"dropped because the answer alone does not fit"
            + (f" (rows {self.dropped_answer_too_long[:10]})" if self.dropped_answer_too_long else "")
        )


def encode_pair(
    tokenizer,
    prompt: str | Sequence[dict],
    answer: str,
    max_length: int,
    system: str | None = None,
    keep_tail: int = 24,
) -> dict[str, Any] | None:
    """``input_ids`` and ``labels`` (``IGNORE_INDEX`` on the prompt) of one example, or None when the answer alone
    (plus ``keep_tail`` prompt tokens) exceeds ``max_length``.

    A prompt that does not fit is cut in the middle: its head (system prompt, instruction) and its last
    ``keep_tail`` tokens (end of the user turn and the assistant header) are kept. ``truncated`` says so.
    """
    p_ids = tokenizer(prompt_text(tokenizer, prompt, system), add_special_tokens=False)["input_ids"]
    a_ids = tokenizer(answer + answer_suffix(tokenizer, prompt, system), add_special_tokens=False)["input_ids"]
    budget = max_length - len(a_ids)
    if budget < min(keep_tail, len(p_ids)) + 1:
        return None
    truncated = len(p_ids) > budget
    if truncated:
        tail = min(keep_tail, budget - 1)
        p_ids = p_ids[: budget - tail] + p_ids[len(p_ids) - tail :]
    return {
        "input_ids": p_ids + a_ids,
        "labels": [IGNORE_INDEX] * len(p_ids) + a_ids,
        "truncated": truncated,
        "n_prompt": len(p_ids),
    }


def encode_pairs(
    tokenizer, pairs: Sequence[tuple[Any, str]], max_length: int, system: str | None = None
) -> tuple[list[dict[str, Any]], EncodeStats]:
    """Encode ``(prompt, answer)`` pairs; returns the examples kept and the counts of what was cut or dropped."""
    stats, out = EncodeStats(), []
    for i, (prompt, answer) in enumerate(pairs):
        ex = encode_pair(tokenizer, prompt, answer, max_length, system)
        if ex is None:
            stats.dropped_answer_too_long.append(i)
            continue
        ex["row"] = i
        stats.examples += 1
        stats.prompt_truncated += ex["truncated"]
        stats.prompt_tokens += ex["n_prompt"]
        stats.answer_tokens += len(ex["input_ids"]) - ex["n_prompt"]
        out.append(ex)
    return out, stats


class SFTCollator:
    """Right-pads ``input_ids`` with ``pad_id`` and ``labels`` with ``IGNORE_INDEX`` to the longest in the batch."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, items: list[tuple[int, dict[str, Any]]]) -> dict[str, torch.Tensor]:
        width = max(len(ex["input_ids"]) for _, ex in items)
        ids = torch.full((len(items), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(items), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for row, (_, ex) in enumerate(items):
            n = len(ex["input_ids"])
            ids[row, :n] = torch.tensor(ex["input_ids"])
            labels[row, :n] = torch.tensor(ex["labels"])
            mask[row, :n] = 1
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "labels": labels,
            "index": torch.tensor([i for i, _ in items]),
        }
