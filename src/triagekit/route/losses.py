"""Per-head losses: cross-entropy (optionally class-weighted, label-smoothed), focal loss, and BCE for tags."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import torch
import torch.nn.functional as F

from triagekit.route.heads import IGNORE

__all__ = ["focal_loss", "head_loss", "balanced_weights"]


def focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    gamma: float = 2.0,
    weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Focal loss (Lin et al., 2017): cross-entropy scaled by (1 - p_t)^gamma; ignores targets equal to -100."""
    keep = target != IGNORE
    if not keep.any():
        return logits.sum() * 0.0
    logits, target = logits[keep], target[keep]
    ce = F.cross_entropy(logits, target, weight=weight, reduction="none", label_smoothing=label_smoothing)
    p_t = torch.softmax(logits.float(), dim=-1).gather(1, target[:, None]).squeeze(1)
    return (((1 - p_t) ** gamma) * ce).mean()


def head_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    multilabel: bool,
    kind: str = "ce",
    gamma: float = 2.0,
    weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """The loss of one head on a batch. Single-label targets use -100 for 'no label' (skipped)."""
    logits = logits.float()
    if multilabel:
        # Sum over tags, mean over examples: a mean over every (example, tag) pair would shrink the tag head's
        # gradient by the number of tags and leave it far behind the single-label heads it shares a backbone with.
        return F.binary_cross_entropy_with_logits(logits, target.float(), reduction="sum") / max(len(logits), 1)
    if kind == "focal":
        return focal_loss(logits, target, gamma=gamma, weight=weight, label_smoothing=label_smoothing)
    if not (target != IGNORE).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits, target, weight=weight, ignore_index=IGNORE, label_smoothing=label_smoothing)


def balanced_weights(targets: Sequence[int], n_classes: int) -> torch.Tensor:
    """Inverse-frequency class weights (sklearn's 'balanced'); unseen classes get weight 1."""
    counts = Counter(t for t in targets if t != IGNORE)
    total = sum(counts.values())
    w = [total / (n_classes * counts[c]) if counts.get(c) else 1.0 for c in range(n_classes)]
    return torch.tensor(w, dtype=torch.float32)
