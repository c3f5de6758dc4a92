"""Long tickets: which tokens the router reads (``long_text: truncate | head_tail | chunks``).

p90 of the shared support tickets is 742 characters (~190 MiniLM tokens) and the router reads 128, so a plain
truncation drops the end of one ticket in five, often where the customer states the actual request.

- ``truncate``: the first ``max_length`` tokens (the tokenizer's own truncation).
- ``head_tail``: the first quarter and the last three quarters of the budget from both ends of the text
  (Sun et al., 2019, "How to fine-tune BERT for text classification?": head + tail beat head-only truncation).
- ``chunks``: overlapping windows of ``max_length`` tokens, ``stride`` apart, at most ``max_chunks`` of them; each
  window is one forward pass and the ticket's logits are the mean of its windows' logits (in training, in
  prediction and on top of the ONNX graph, which scores windows like any other input).

Every function takes a Hugging Face tokenizer and returns token id lists with the special tokens in place, plus the
ticket (owner) of each list.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

__all__ = ["MODES", "encode_windows", "pool_windows", "padded_batches", "LongText"]

MODES = ("truncate", "head_tail", "chunks")


class LongText:
    """The long-text settings of a run (``router.json["long_text"]``); defaults reproduce plain truncation."""

    def __init__(self, mode: str = "truncate", stride: int = 0, max_chunks: int = 4):
        if mode not in MODES:
            raise ValueError(f"long_text must be one of {MODES}, got {mode!r}")
        self.mode, self.stride, self.max_chunks = mode, int(stride), int(max_chunks)

    @classmethod
    def from_info(cls, info: Mapping | None) -> "LongText":
        info = info or {}
        return cls(info.get("mode", "truncate"), info.get("stride", 0), info.get("max_chunks", 4))


def _body_windows(ids: list[int], body: int, mode: str, stride: int, max_chunks: int) -> list[list[int]]:
    if len(ids) <= body:
        return [ids]
    if mode == "head_tail":
        head = body // 4
        return [ids[:head] + ids[len(ids) - (body - head) :]]
    step = stride if 0 < stride <= body else max(1, body * 3 // 4)
    out = []
    for start in range(0, len(ids), step):
        out.append(ids[start : start + body])
        if start + body >= len(ids) or len(out) == max_chunks:
            break
    return out


def _special_frame(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after a text (e.g. [CLS] ... [SEP], or a BOS).

    Read off one encoding with and one without special tokens: transformers 5 tokenizers no longer have
    ``build_inputs_with_special_tokens``.
    """
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return list(full[:start]), list(full[start + len(plain) :])
    return [], []


def encode_windows(
    tokenizer, texts: Sequence[str], max_length: int, long_text: LongText | None = None
) -> tuple[list[list[int]], np.ndarray]:
    """Token ids of every window and the index of the text it belongs to (one window per text unless chunks).

    Args:
        tokenizer: A Hugging Face tokenizer (its special tokens are added to every window).
        texts: The model inputs.
        max_length: Tokens per window, special tokens included.
        long_text: The settings; None is plain truncation.
    """
    long_text = long_text or LongText()
    if not texts:
        return [], np.zeros(0, dtype=np.int64)
    if long_text.mode == "truncate":
        ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
        return ids, np.arange(len(ids), dtype=np.int64)
    prefix, suffix = _special_frame(tokenizer)
    body = max(1, max_length - len(prefix) - len(suffix))
    # Whole texts first (no truncation: the windows are cut here); the tokenizer's "longer than the maximum"
    # warning does not apply since no sequence reaches the model uncut.
    raw = tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    windows, owner = [], []
    for i, ids in enumerate(raw):
        for w in _body_windows(ids, body, long_text.mode, long_text.stride, long_text.max_chunks):
            windows.append(prefix + w + suffix)
            owner.append(i)
    return windows, np.asarray(owner, dtype=np.int64)


def pool_windows(logits: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Mean of the window logits of each of the ``n`` texts (rows of ``logits`` in window order)."""
    if len(owner) == n and np.array_equal(owner, np.arange(n)):
        return logits
    out = np.zeros((n, logits.shape[1]), dtype=np.float64)
    np.add.at(out, owner, logits)
    counts = np.bincount(owner, minlength=n).astype(np.float64)[:, None]
    return (out / np.maximum(counts, 1)).astype(logits.dtype)


def padded_batches(windows: Sequence[Sequence[int]], batch_size: int, pad_id: int):
    """``(window indices, input_ids, attention_mask)`` per batch (int64 numpy), windows sorted by length so that
    padding stays small."""
    lengths = np.fromiter((len(w) for w in windows), dtype=np.int64, count=len(windows))
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        width = int(lengths[idx].max())
        ids = np.full((len(idx), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        for row, i in enumerate(idx):
            ids[row, : lengths[i]] = windows[i]
            mask[row, : lengths[i]] = 1
        yield idx, ids, mask
