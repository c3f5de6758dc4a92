"""Tokenised examples, dynamic padding and length-bucketed batches."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from triagekit.heads import HeadSpec, build_text, row_targets

__all__ = ["encode_rows", "BucketBatchSampler", "SequentialLengthSampler", "Collator"]


def encode_rows(rows: Sequence[dict], tokenizer, heads: list[HeadSpec], text_fields: Sequence[str],
                max_length: int) -> list[dict[str, Any]]:
    """Token ids (unpadded) and the targets of each row (see ``row_targets``)."""
    texts = [build_text(r, text_fields) for r in rows]
    ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"] if texts else []
    targets = row_targets(rows, heads)
    return [{"input_ids": tok, **{name: t[i] for name, t in targets.items()}} for i, tok in enumerate(ids)]


class BucketBatchSampler:
    """Shuffled batches of similar length: shuffle, cut into pools of ``pool`` batches, sort each pool by length,
    batch it, shuffle the batch order. Deterministic for (seed, epoch), so a resumed run sees the same order."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 0, pool: int = 50):
        self.lengths = np.asarray(lengths)
        self.batch_size, self.seed, self.pool = batch_size, seed, pool
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        rng = np.random.default_rng(self.seed * 1_000_003 + epoch)
        perm = rng.permutation(len(self.lengths))
        size = self.batch_size * self.pool
        batches = []
        for start in range(0, len(perm), size):
            chunk = perm[start:start + size]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [chunk[i:i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size)]
        self.batches = [batches[i] for i in rng.permutation(len(batches))]

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class SequentialLengthSampler:
    """Evaluation batches in length order (no shuffling), for minimal padding."""

    def __init__(self, lengths: Sequence[int], batch_size: int):
        order = np.argsort(np.asarray(lengths), kind="stable")
        self.batches = [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class Collator:
    """Pads a list of examples to the longest in the batch; keeps each example's index for gathering."""

    def __init__(self, heads: list[HeadSpec], pad_id: int, pad_left: bool = False):
        self.heads, self.pad_id, self.pad_left = heads, pad_id, pad_left

    def __call__(self, items: list[tuple[int, dict[str, Any]]]) -> dict[str, torch.Tensor]:
        width = max(len(ex["input_ids"]) for _, ex in items)
        ids = torch.full((len(items), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for row, (_, ex) in enumerate(items):
            n = len(ex["input_ids"])
            cols = slice(width - n, width) if self.pad_left else slice(0, n)
            ids[row, cols] = torch.tensor(ex["input_ids"])
            mask[row, cols] = 1
        batch = {"input_ids": ids, "attention_mask": mask, "index": torch.tensor([i for i, _ in items])}
        for h in self.heads:
            values = [ex[h.name] for _, ex in items]
            batch[f"target.{h.name}"] = (torch.tensor(np.stack(values)) if h.multilabel
                                         else torch.tensor(values, dtype=torch.long))
        return batch


class IndexedDataset(torch.utils.data.Dataset):
    """Examples that also return their own index (so gathered predictions can be put back in order)."""

    def __init__(self, examples: list[dict[str, Any]]):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> tuple[int, dict[str, Any]]:
        return i, self.examples[i]


def steps_per_epoch(n_batches: int, grad_accum: int) -> int:
    return math.ceil(n_batches / grad_accum)
