"""Tokenised router examples and their dynamic padding (the batch order lives in ``core.batching``)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from triagekit.route.heads import HeadSpec, build_text, row_targets

__all__ = ["encode_rows", "Collator"]


def encode_rows(rows: Sequence[dict], tokenizer, heads: list[HeadSpec], text_fields: Sequence[str],
                max_length: int) -> list[dict[str, Any]]:
    """Token ids (unpadded) and the targets of each row (see ``row_targets``)."""
    texts = [build_text(r, text_fields) for r in rows]
    ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"] if texts else []
    targets = row_targets(rows, heads)
    return [{"input_ids": tok, **{name: t[i] for name, t in targets.items()}} for i, tok in enumerate(ids)]


class Collator:
    """Pads a list of examples to the longest in the batch; keeps each example's index for gathering."""

    def __init__(self, heads: list[HeadSpec], pad_id: int):
        self.heads, self.pad_id = heads, pad_id

    def __call__(self, items: list[tuple[int, dict[str, Any]]]) -> dict[str, torch.Tensor]:
        width = max(len(ex["input_ids"]) for _, ex in items)
        ids = torch.full((len(items), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for row, (_, ex) in enumerate(items):
            n = len(ex["input_ids"])
            ids[row, :n] = torch.tensor(ex["input_ids"])
            mask[row, :n] = 1
        batch = {"input_ids": ids, "attention_mask": mask, "index": torch.tensor([i for i, _ in items])}
        for h in self.heads:
            values = [ex[h.name] for _, ex in items]
            batch[f"target.{h.name}"] = (torch.tensor(np.stack(values)) if h.multilabel
                                         else torch.tensor(values, dtype=torch.long))
        return batch
