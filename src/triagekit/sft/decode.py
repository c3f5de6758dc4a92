"""One decoding loop for every generation: batched, KV-cached, greedy or sampled, optionally constrained.

A ``Constraint`` (e.g. the JSON-schema grammar of ``triagekit.triage.grammar``) masks the logits of each row and
may hand back *forced* tokens after each sampled one (jump-forward decoding): they join the same forward pass as
the sampled token, so the fixed skeleton of a JSON object costs one model call per run of forced text instead of
one per token. Its masks for the next step are computed in a background thread while the model runs.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, Sequence

import torch

__all__ = ["Constraint", "DecodeStats", "decode", "pick"]


class Constraint(Protocol):
    """Per-row token restrictions; rows are the indices of the prompts passed to ``decode``."""

    def begin(self, n: int) -> None:
        """Start ``n`` fresh rows."""

    def prepare(self, rows: Sequence[int]) -> None:
        """Compute the masks of these rows for their next token (called from a worker thread)."""

    def mask_(self, logits: torch.Tensor, rows: Sequence[int]) -> None:
        """Apply the prepared masks to ``logits`` (one line per row, in place)."""

    def advance(self, row: int, token: int) -> list[int]:
        """Accept the sampled token; return the tokens forced after it (possibly none)."""

    def finished(self, row: int) -> bool:
        """True when the row can only end (its output is complete)."""


@dataclass
class DecodeStats:
    """Counters of one ``decode`` call: tokens produced, how many were forced, model calls, wall time."""

    tokens: int = 0
    forced: int = 0
    forwards: int = 0
    seconds: float = 0.0

    def add(self, other: "DecodeStats") -> None:
        for k in ("tokens", "forced", "forwards", "seconds"):
            setattr(self, k, getattr(self, k) + getattr(other, k))


def pick(
    logits: torch.Tensor, temperature: float = 0.0, top_p: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Greedy (temperature 0) or nucleus sampling over ``logits`` of shape (rows, vocab)."""
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        cut = sorted_p.cumsum(-1) - sorted_p > top_p
        sorted_p[cut] = 0.0
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_p)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="triagekit-mask")


@torch.inference_mode()
def decode(
    model,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    stop_ids: set[int],
    pad_id: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    constraint: Constraint | None = None,
    overlap: bool = True,
    stats: DecodeStats | None = None,
) -> list[list[int]]:
    """New token ids for each prompt (stop token excluded).

    Args:
        model: a causal LM (``AutoModelForCausalLM``-like: ``input_ids``, ``attention_mask``, ``position_ids``,
            ``past_key_values``).
        prompts: token ids of each prompt (any lengths; left-padded internally).
        max_new_tokens: the most tokens per row, forced ones included.
        stop_ids: tokens that end a row (EOS, end-of-turn).
        constraint: optional masks + forced tokens per row (see ``Constraint``).
        overlap: compute the constraint's next masks in a worker thread while the model runs.
        stats: counters to fill (tokens, forced tokens, forward passes, seconds).
    """
    started = time.perf_counter()
    stats = stats if stats is not None else DecodeStats()
    device, n = model.device, len(prompts)
    width = max(len(p) for p in prompts)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = torch.tensor(list(p), dtype=torch.long)
        mask[i, width - len(p) :] = 1
    ids, mask = ids.to(device), mask.to(device)
    position = (mask.cumsum(1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=position, use_cache=True, logits_to_keep=1)
    stats.forwards += 1
    cache, logits = out.past_key_values, out.logits[:, -1].float()
    next_pos = position[:, -1] + 1
    rows, results = list(range(n)), [[] for _ in range(n)]
    if constraint is not None:
        constraint.begin(n)
        constraint.prepare(rows)
    while rows:
        if constraint is not None:
            constraint.mask_(logits, rows)
        tokens = pick(logits, temperature, top_p, generator).tolist()
        chunks, keep = [], []
        for i, r in enumerate(rows):
            if tokens[i] in stop_ids:
                continue
            forced = constraint.advance(r, tokens[i]) if constraint is not None else []
            new = ([tokens[i]] + forced)[: max_new_tokens - len(results[r])]
            results[r] += new
            stats.tokens += len(new)
            stats.forced += len(new) - 1
            if len(results[r]) < max_new_tokens:
                chunks.append(new)
                keep.append(i)
        if len(keep) < len(rows):
            if not keep:
                break
            cache.batch_select_indices(torch.tensor(keep, device=device))
            mask, next_pos, rows = mask[keep], next_pos[keep], [rows[i] for i in keep]
        job = None
        if constraint is not None:
            job = _POOL.submit(constraint.prepare, list(rows)) if overlap else constraint.prepare(rows)
        k = max(len(c) for c in chunks)
        chunk = torch.full((len(rows), k), pad_id, dtype=torch.long)
        chunk_mask = torch.zeros((len(rows), k), dtype=torch.long)
        for j, c in enumerate(chunks):
            chunk[j, : len(c)] = torch.tensor(c, dtype=torch.long)
            chunk_mask[j, : len(c)] = 1
        lengths = chunk_mask.sum(1).to(device)
        mask = torch.cat([mask, chunk_mask.to(device)], dim=1)
        position = next_pos[:, None] + torch.arange(k, device=device)[None, :]
        # A shorter chunk is padded at its end: the holes are masked out and later tokens keep their positions.
        # Only each row's last position needs logits: the vocabulary projection of every forced token would cost
        # more than the rest of the model on a large vocabulary (Gemma 3: 262k x 640 per position).
        last = lengths - 1
        keep_at = torch.unique(last)
        out = model(
            input_ids=chunk.to(device),
            attention_mask=mask,
            position_ids=position,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=keep_at,
        )
        stats.forwards += 1
        cache = out.past_key_values
        logits = out.logits[torch.arange(len(rows), device=device), torch.searchsorted(keep_at, last)].float()
        next_pos = next_pos + lengths
        if job is not None and overlap:
            job.result()
        if constraint is not None:
            live = [j for j, r in enumerate(rows) if not constraint.finished(r)]
            if len(live) < len(rows):
                if not live:
                    break
                cache.batch_select_indices(torch.tensor(live, device=device))
                mask, next_pos, logits = mask[live], next_pos[live], logits[live]
                rows = [rows[j] for j in live]
    stats.seconds += time.perf_counter() - started
    return results
