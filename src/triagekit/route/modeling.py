"""The multi-head router model: one shared backbone, one linear head per label field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from triagekit.core.modeling import quantized_kwargs, quiet_transformers
from triagekit.core.training import link_tree
from triagekit.route.heads import HeadSpec

__all__ = ["MultiHeadModel", "pool", "load_backbone", "save_model", "load_model"]


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """Sentence vectors from token states. ``last`` takes the last non-pad token (for decoder backbones)."""
    if how == "cls":
        return hidden[:, 0]
    if how == "last":
        # Works for left and right padding: the last position whose mask is 1.
        idx = mask.shape[1] - 1 - mask.flip(1).float().argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), idx]
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-6)


def _key(name: str) -> str:
    return f"head_{name}"


class MultiHeadModel(nn.Module):
    """Backbone + pooling + dropout + ``nn.Linear`` per head; ``forward`` returns logits per head name."""

    def __init__(self, backbone: nn.Module, heads: list[HeadSpec], pooling: str = "mean", dropout: float = 0.1):
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        self.head_specs = heads
        hidden = backbone.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        # Keys are prefixed: a bare head name like "type" would clash with nn.Module attributes.
        self.heads = nn.ModuleDict({_key(h.name): nn.Linear(hidden, len(h.labels)) for h in heads})

    def head(self, name: str) -> nn.Linear:
        return self.heads[_key(name)]

    def logits_and_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Logits per head and the pooled sentence vectors they are computed from (before dropout; what the
        out-of-scope detectors score)."""
        pooled = self.pooled(input_ids, attention_mask)
        return self.classify(pooled), pooled

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, owner: torch.Tensor | None = None, **_: Any
    ) -> dict[str, torch.Tensor]:
        """Logits per head; with ``owner`` (the example of each row, for tickets read as several windows) the
        rows of one example are averaged into one, as prediction does."""
        logits = self.classify(self.pooled(input_ids, attention_mask))
        if owner is None:
            return logits
        return {k: _mean_by_owner(v, owner) for k, v in logits.items()}

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The sentence vector of each row (window), before dropout and the heads."""
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        return pool(hidden, attention_mask, self.pooling)

    def features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, owner: torch.Tensor | None = None
    ) -> torch.Tensor:
        """One vector per example: the pooled row, or the mean over an example's windows. The heads are linear, so
        ``classify(features)`` equals averaging the windows' logits as ``forward`` does (up to dropout)."""
        z = self.pooled(input_ids, attention_mask)
        return z if owner is None else _mean_by_owner(z, owner)

    def classify(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per head of sentence vectors ``z`` (dropout applies in training mode)."""
        z = self.dropout(z)
        return {h.name: self.head(h.name)(z.to(self.head(h.name).weight.dtype)) for h in self.head_specs}


def _mean_by_owner(v: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
    """Rows of ``v`` averaged per example (``owner[i]`` is the example of row i)."""
    n = int(owner.max()) + 1
    counts = torch.bincount(owner, minlength=n).clamp(min=1).unsqueeze(1)
    return torch.zeros(n, v.shape[1], dtype=v.dtype, device=v.device).index_add_(0, owner, v) / counts


def load_backbone(
    name_or_path: str, dtype: torch.dtype | None = None, quantization: str = "none", attn_implementation: str = "auto"
) -> nn.Module:
    """An ``AutoModel`` (bare encoder/decoder, no task head) from a local path or id.

    Args:
        quantization: ``4bit``/``8bit`` loads the base through bitsandbytes for QLoRA (CUDA only).
        attn_implementation: ``sdpa``/``eager`` picks the attention kernel; ``auto`` keeps the library's default.
    """
    from transformers import AutoModel

    quiet_transformers()
    kwargs: dict[str, Any] = {"dtype": dtype} if dtype is not None else {}
    if attn_implementation != "auto":
        kwargs["attn_implementation"] = attn_implementation
    if quantization != "none":
        kwargs.update(quantized_kwargs(quantization))
    return AutoModel.from_pretrained(name_or_path, **kwargs)


def save_model(model: MultiHeadModel, out: Path, *, adapter: bool, base_from: Path | None = None) -> None:
    """Write ``backbone/`` (HF format, base weights), ``adapter/`` (LoRA, if any) and ``heads.safetensors``.

    Adapters stay separate from the base so they can be swapped or merged later (``triagekit route export --merge``).
    ``base_from``: a ``backbone/`` this run saved already (LoRA keeps the base frozen, so it is the same bytes): its
    files are hard-linked instead of serialised again (1 GB of Gemma 3 weights per new best model otherwise).
    """
    out.mkdir(parents=True, exist_ok=True)
    backbone = model.backbone
    if adapter:
        backbone.save_pretrained(out / "adapter")
        if base_from is None or not link_tree(base_from, out / "backbone"):
            base = backbone.get_base_model()
            # Saving the base from inside a peft wrapper would include lora_* tensors: strip them.
            state = {k: v for k, v in base.state_dict().items() if "lora_" not in k}
            state = {k.replace(".base_layer", ""): v for k, v in state.items()}
            base.save_pretrained(out / "backbone", state_dict=state)
    else:
        backbone.save_pretrained(out / "backbone")
    heads = {
        f"{h.name}.{k}": v.detach().contiguous().cpu()
        for h in model.head_specs
        for k, v in model.head(h.name).state_dict().items()
    }
    save_file(heads, str(out / "heads.safetensors"))
    (out / "model.json").write_text(json.dumps({"pooling": model.pooling, "adapter": adapter}, indent=2))


def load_model(
    path: Path, heads: list[HeadSpec], *, merge: bool = True, dtype: torch.dtype | None = None
) -> MultiHeadModel:
    """Rebuild a saved ``MultiHeadModel``; LoRA adapters are merged into the base for inference by default."""
    meta = json.loads((path / "model.json").read_text())
    backbone = load_backbone(str(path / "backbone"), dtype=dtype)
    if meta.get("adapter"):
        from peft import PeftModel

        backbone = PeftModel.from_pretrained(backbone, str(path / "adapter"))
        if merge:
            backbone = backbone.merge_and_unload()
    model = MultiHeadModel(backbone, heads, pooling=meta["pooling"], dropout=0.0)
    state = load_file(str(path / "heads.safetensors"))
    for h in heads:
        model.head(h.name).load_state_dict(
            {k.rsplit(".", 1)[1]: v for k, v in state.items() if k.rsplit(".", 1)[0] == h.name}
        )
    if dtype is not None:
        model.heads.to(dtype)
    return model.eval()
