"""Length-bucketed, resumable batch order and an index-carrying dataset: shared by router and SFT training."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

__all__ = ["BucketBatchSampler", "SequentialLengthSampler", "IndexedDataset"]


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
            chunk = perm[start : start + size]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [chunk[i : i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size)]
        self.batches = [batches[i] for i in rng.permutation(len(batches))]

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class SequentialLengthSampler:
    """Evaluation batches in length order (no shuffling), for minimal padding."""

    def __init__(self, lengths: Sequence[int], batch_size: int):
        order = np.argsort(np.asarray(lengths), kind="stable")
        self.batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class IndexedDataset(torch.utils.data.Dataset):
    """Examples that also return their own index (so gathered predictions can be put back in order)."""

    def __init__(self, examples: list[dict[str, Any]]):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> tuple[int, dict[str, Any]]:
        return i, self.examples[i]
