"""Tokenised router examples and their dynamic padding (the batch order lives in ``core.batching``)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from triagekit.route.heads import HeadSpec, build_text, row_targets
from triagekit.route.windows import LongText, encode_windows

__all__ = ["encode_rows", "Collator"]


def encode_rows(
    rows: Sequence[dict],
    tokenizer,
    heads: list[HeadSpec],
    text_fields: Sequence[str],
    max_length: int,
    long_text: LongText | None = None,
) -> list[dict[str, Any]]:
    """Per row: its token windows (unpadded; one unless ``long_text`` is chunks), their total ``length`` and the
    row's targets (see ``row_targets``)."""
    texts = [build_text(r, text_fields) for r in rows]
    windows, owner = encode_windows(tokenizer, texts, max_length, long_text)
    per_row: list[list[list[int]]] = [[] for _ in texts]
    for w, i in zip(windows, owner):
        per_row[i].append(w)
    targets = row_targets(rows, heads)
    return [
        {"windows": ws, "length": sum(len(w) for w in ws), **{name: t[i] for name, t in targets.items()}}
        for i, ws in enumerate(per_row)
    ]


class Collator:
    """Pads the windows of a list of examples to the longest in the batch; keeps each example's index for gathering
    and, when an example has several windows, the ``owner`` (position in the batch) of each window."""

    def __init__(self, heads: list[HeadSpec], pad_id: int, pad_to_multiple_of: int = 0):
        self.heads, self.pad_id, self.multiple = heads, pad_id, pad_to_multiple_of

    def __call__(self, items: list[tuple[int, dict[str, Any]]]) -> dict[str, torch.Tensor]:
        windows = [(row, w) for row, (_, ex) in enumerate(items) for w in ex["windows"]]
        width = max(len(w) for _, w in windows)
        if self.multiple > 1:
            width = -(-width // self.multiple) * self.multiple
        ids = torch.full((len(windows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(windows), width), dtype=torch.long)
        for k, (_, w) in enumerate(windows):
            ids[k, : len(w)] = torch.tensor(w)
            mask[k, : len(w)] = 1
        batch = {"input_ids": ids, "attention_mask": mask, "index": torch.tensor([i for i, _ in items])}
        if len(windows) != len(items):
            batch["owner"] = torch.tensor([row for row, _ in windows], dtype=torch.long)
        for h in self.heads:
            values = [ex[h.name] for _, ex in items]
            batch[f"target.{h.name}"] = (
                torch.tensor(np.stack(values)) if h.multilabel else torch.tensor(values, dtype=torch.long)
            )
        return batch
