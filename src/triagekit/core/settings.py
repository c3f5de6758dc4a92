"""Config parts every training run shares: the adapters (``LoRASettings``) and the loop (``LoopSettings``).

The router's ``TrainConfig`` and the SFT ``SFTConfig`` inherit both, so YAML keys stay flat (``lora_r: 16``, not
``lora: {r: 16}``) and mean the same thing in every preset. A config may give a field its own default by declaring
it again without a docstring; :func:`triagekit.core.config.field_docs` finds the documentation along the MRO.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from triagekit.core.config import ATTENTION, PRECISIONS
from triagekit.core.tracking import TRACKERS

__all__ = ["Settings", "LoRASettings", "LoopSettings", "QUANTIZATIONS", "SCHEDULERS"]

QUANTIZATIONS = ("none", "4bit", "8bit")
SCHEDULERS = ("cosine", "linear", "constant")


class Settings:
    """Validation, ``to_dict``, ``save`` and ``replace`` for a config dataclass made of settings parts.

    Each part adds its rules by overriding ``_checks`` (and calling ``super()``); ``__post_init__`` runs
    ``_upgrade`` (old spellings) and then every rule, raising the first broken one's message.
    """

    def _upgrade(self) -> None:
        """Rewrite deprecated spellings into the current ones (each with a one-line warning)."""

    def _checks(self) -> list[tuple[bool, str]]:
        return []

    def __post_init__(self) -> None:
        self._upgrade()
        for ok, message in self._checks():
            if not ok:
                raise ValueError(message)

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain values: the config's own first (``backbone``, ``method``...), then the parts'."""
        values = dataclasses.asdict(self)
        inherited = {name for base in type(self).__mro__[1:] for name in getattr(base, "__dataclass_fields__", {})}
        own = [name for name in vars(type(self)).get("__annotations__", {}) if name not in inherited]
        return {**{name: values[name] for name in own}, **values}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    def replace(self, **changes: Any):
        return dataclasses.replace(self, **changes)


@dataclass
class LoRASettings(Settings):
    """LoRA adapters and QLoRA: ``method: lora`` with ``quantization: 4bit`` is QLoRA for routers and SFT alike."""

    lora_r: int = 16
    """LoRA rank."""
    lora_alpha: int = 32
    """LoRA scaling numerator (scale = alpha / r)."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA input."""
    lora_target_modules: list[str] | None = None
    """Module names to adapt; None picks them from the architecture family."""
    quantization: str = "none"
    """Base weights for QLoRA: none, 4bit (NF4, double-quantised, bf16 compute) or 8bit; with ``method: lora``
    only, and it needs CUDA + bitsandbytes."""

    def _upgrade(self) -> None:
        super()._upgrade()
        if getattr(self, "method", None) == "qlora":
            # `method: qlora` was the SFT spelling until 0.x; it keeps loading for one release.
            warnings.warn(
                "method: qlora is deprecated; write method: lora with quantization: 4bit", FutureWarning, stacklevel=4
            )
            self.method = "lora"
            self.quantization = "4bit" if self.quantization == "none" else self.quantization

    def _checks(self) -> list[tuple[bool, str]]:
        return super()._checks() + [
            (self.quantization in QUANTIZATIONS, f"quantization must be one of {QUANTIZATIONS}"),
            (
                self.quantization == "none" or getattr(self, "method", "lora") == "lora",
                "quantization (QLoRA) trains adapters on a frozen quantised base: use it with method: lora",
            ),
            (self.lora_r > 0 and self.lora_alpha > 0, "lora_r and lora_alpha must be positive"),
        ]


@dataclass
class LoopSettings(Settings):
    """The training loop (``triagekit.core.loop``): optimisation, validation schedule, checkpoints, hardware.

    A config using it sets ``DEFAULT_LR`` (method -> learning rate used when ``lr`` is None).
    """

    # optimisation
    epochs: int = 5
    """Passes over the training data (early stopping may end sooner; 0: ``max_steps`` alone bounds the run)."""
    max_steps: int = 0
    """Stop after this many optimizer steps (0: no limit)."""
    batch_size: int = 32
    """Examples per device per step (before accumulation)."""
    eval_batch_size: int = 128
    """Examples per forward pass at validation (and, for routers, prediction)."""
    grad_accum: int = 1
    """Gradient accumulation steps."""
    lr: float | None = None
    """Learning rate (of the backbone, for routers); None picks the method's default (routers: full 5e-5,
    lora 5e-4; SFT: full 5e-5, lora 1e-3)."""
    weight_decay: float = 0.01
    """AdamW weight decay (not applied to biases and norms)."""
    scheduler: str = "cosine"
    """Learning-rate schedule after warmup: cosine, linear or constant."""
    warmup_ratio: float = 0.06
    """Fraction of steps with linear warmup."""
    max_grad_norm: float = 1.0
    """Gradient clipping (0 disables)."""
    gradient_checkpointing: bool = False
    """Recompute activations in backward to save memory (slower)."""
    attn_implementation: str = "auto"
    """Attention kernel: auto (the library's default, sdpa), sdpa or eager (trains short inputs faster on a CPU)."""

    # loop
    eval_every: int = 0
    """Validate every N optimizer steps and at the last step (0: at the end of every epoch). With N set, epoch ends
    are not extra validations, so early-stopping patience counts evaluations N steps apart."""
    save_every: int = 0
    """Write a resumable checkpoint every N optimizer steps (0: once per epoch); one is always written at the end."""
    keep_checkpoints: int = 2
    """How many resumable checkpoints (``DIR/checkpoints/step-N``) to keep."""
    early_stopping_patience: int = 3
    """Stop after this many validations without a better score (routers: macro-F1; SFT: validation loss;
    0 disables)."""
    early_stopping_min_delta: float = 1e-4
    """Smallest change of the validation score that counts as better."""
    seed: int = 0
    """Seed for data order, initialisation and dropout."""

    # hardware and logging
    device: str = "auto"
    """auto, cpu, cuda or mps."""
    mixed_precision: str = "auto"
    """auto (bf16 on CUDA when supported, fp16 otherwise; none on CPU), native (bf16 where the GPU or CPU computes
    it natively: AVX512-BF16/AMX, fp32 otherwise), no, bf16, fp16. bf16 on a CPU with AMX (``lscpu`` shows amx_bf16)
    trains a decoder about 2x faster; on a CPU without bf16 instructions it is slower."""
    num_threads: int = 0
    """torch CPU threads (0: torch's default)."""
    trackers: list[str] = field(default_factory=lambda: ["tensorboard"])
    """Experiment trackers (Accelerate's ``log_with``), any of tensorboard (``DIR/tb``), mlflow (a file store in
    ``DIR/mlruns`` unless ``MLFLOW_TRACKING_URI`` is set; extra ``mlflow``) and wandb (``WANDB_MODE=offline`` needs
    no account; extra ``wandb``); ``[]`` logs to ``metrics.jsonl`` only. Each gets the resolved config and parameter
    counts once, every train-loss and validation record, and the final metrics."""
    tracker_project: str = "triagekit"
    """The MLflow experiment / W&B project / TensorBoard sub-folder the runs are logged under (each run is named
    after its folder; ``MLFLOW_EXPERIMENT_NAME`` overrides it for MLflow)."""
    tensorboard: bool | None = None
    """Deprecated: ``tensorboard: false`` means ``trackers: []``, ``true`` adds tensorboard to ``trackers``."""

    DEFAULT_LR = {"full": 5e-5, "lora": 5e-4}

    def _upgrade(self) -> None:
        super()._upgrade()
        if self.tensorboard is not None:
            # `tensorboard: true|false` was the only tracker switch until trackers existed; it keeps loading.
            warnings.warn(
                "tensorboard: is deprecated; write trackers: [tensorboard] (or trackers: [] for none)",
                FutureWarning,
                stacklevel=4,
            )
            others = [t for t in self.trackers if t != "tensorboard"]
            self.trackers = (["tensorboard"] if self.tensorboard else []) + others
            self.tensorboard = None

    @property
    def resolved_lr(self) -> float:
        """``lr``, or the method's default when it is None."""
        return self.lr if self.lr is not None else self.DEFAULT_LR[getattr(self, "method", "full")]

    def _checks(self) -> list[tuple[bool, str]]:
        return super()._checks() + [
            (
                self.batch_size > 0 and self.grad_accum > 0 and self.eval_batch_size > 0,
                "batch_size, eval_batch_size and grad_accum must be positive",
            ),
            (self.epochs >= 0 and self.max_steps >= 0, "epochs and max_steps cannot be negative"),
            (self.epochs > 0 or self.max_steps > 0, "give epochs > 0 or max_steps > 0"),
            (self.lr is None or self.lr >= 0, "lr cannot be negative"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (self.scheduler in SCHEDULERS, f"scheduler must be one of {SCHEDULERS}, got {self.scheduler!r}"),
            (self.eval_every >= 0 and self.save_every >= 0, "eval_every and save_every cannot be negative"),
            (self.mixed_precision in PRECISIONS, f"mixed_precision must be one of {PRECISIONS}"),
            (
                self.attn_implementation in ATTENTION,
                f"attn_implementation must be one of {ATTENTION}, not {self.attn_implementation!r}",
            ),
            (self.device in ("auto", "cpu", "cuda", "mps"), "device must be auto, cpu, cuda or mps"),
            (
                set(self.trackers) <= set(TRACKERS),
                f"trackers must be a list of {', '.join(TRACKERS)} (or [] for none), got {self.trackers!r}",
            ),
        ]
