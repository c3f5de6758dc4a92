"""Run folders, resumable checkpoints and the Accelerator every training run (router, triage, answer) is built on.

A checkpoint is ``DIR/checkpoints/step-N``: accelerate's state (model, optimizer, scheduler, RNGs) plus
``trainer_state.json``, written to ``step-N.tmp`` and renamed so a kill mid-write never leaves half a checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Sequence

from triagekit.core.tracking import check_trackers

__all__ = [
    "CHECKPOINTS",
    "STATE_FILE",
    "native_bf16",
    "resolve_precision",
    "setup_accelerator",
    "latest_checkpoint",
    "save_checkpoint",
    "check_output",
    "swap_in",
    "link_tree",
]

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"


def native_bf16(cpu: bool) -> bool:
    """True where bf16 runs on hardware: a CUDA GPU with bf16, or a CPU with AVX512-BF16 / AMX.

    Elsewhere torch emulates bf16 on a CPU, slower than fp32 (measured: a CPU without those instructions took
    66 min for the Gemma 3 router in fp32, and bf16 autocast only adds conversions on top).
    """
    import torch

    if cpu:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def resolve_precision(requested: str, cpu: bool) -> str:
    """The accelerate precision for a config's ``mixed_precision``.

    ``auto``: bf16 on a CUDA GPU that has it, fp16 on other GPUs, none on a CPU. ``native``: bf16 wherever the
    hardware computes it natively (see ``native_bf16``), fp32 otherwise: the CPU presets use it so that a machine
    without bf16 instructions never gets emulated bf16.
    """
    import torch

    if requested == "native":
        return "bf16" if native_bf16(cpu) else "no"
    if requested == "auto":
        return "no" if cpu or not torch.cuda.is_available() else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    return requested


def setup_accelerator(cfg: Any, output: Path):
    """An ``Accelerator`` for ``cfg`` (device, mixed_precision, grad_accum, num_threads) with ``cfg.trackers``
    (``core.tracking``; TensorBoard writes under ``output/tb``)."""
    import torch
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration

    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was requested but CUDA is not available")
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    cpu = cfg.device == "cpu" or (
        cfg.device == "auto" and not torch.cuda.is_available() and not torch.backends.mps.is_available()
    )
    precision = resolve_precision(cfg.mixed_precision, cpu)
    if cpu and precision == "fp16":
        raise ValueError("mixed_precision fp16 needs a GPU; on a CPU use bf16 (fast with AMX) or no")
    if cpu and precision == "bf16" and not torch.cpu._is_avx512_bf16_supported():
        warnings.warn(
            "mixed_precision bf16 on a CPU without native bf16 instructions (avx512_bf16/AMX) is slower "
            "than fp32; set mixed_precision: no",
            stacklevel=2,
        )
    check_trackers(cfg.trackers)  # a missing tracker package fails here, before any model is loaded
    # Backbones carry parameters the router never uses (BERT's pooler, a decoder's unused norms): DDP must not
    # wait for their gradients.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    # The precision lives in a process-wide singleton: an earlier Accelerator in this process (another run, a TRL
    # trainer) would make this one fail. The process state (device, process group) is kept.
    AcceleratorState._reset_state()
    return Accelerator(
        cpu=cpu,
        mixed_precision=precision,
        gradient_accumulation_steps=cfg.grad_accum,
        log_with=list(cfg.trackers) or None,
        project_config=ProjectConfiguration(project_dir=str(output), logging_dir=str(output / "tb")),
        kwargs_handlers=[ddp],
    )


def latest_checkpoint(output: Path) -> Path | None:
    root = output / CHECKPOINTS
    done = [p for p in root.glob("step-*") if (p / STATE_FILE).exists()] if root.exists() else []
    return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)


def save_checkpoint(accelerator, output: Path, state: dict[str, Any], keep: int) -> None:
    """Atomic: written to ``step-N.tmp`` and renamed, so a kill mid-write never leaves a half checkpoint."""
    root = output / CHECKPOINTS
    final = root / f"step-{state['global_step']}"
    tmp = root / f"step-{state['global_step']}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    # save_state has no barrier of its own: every process writes its RNG state into tmp, and the rename below
    # must wait for the slowest one (without this, another rank's write failed with "Parent directory ...
    # step-N.tmp does not exist" under `accelerate launch`).
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=2))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        done = sorted(
            (p for p in root.glob("step-*") if not p.name.endswith(".tmp")), key=lambda p: int(p.name.split("-")[1])
        )
        for old in done[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def swap_in(final: Path, write) -> None:
    """Replace the folder ``final`` by what ``write(tmp)`` writes, atomically: readers (a resumed run, a server
    loading the best model) see the old folder or the new one, never half of one."""
    tmp, old = final.with_name(final.name + ".tmp"), final.with_name(final.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    write(tmp)
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def link_tree(src: Path, dest: Path) -> bool:
    """Hard-link the files of ``src`` into a new folder ``dest`` (copied where links are refused, e.g. across file
    systems); False, and nothing written, when ``src`` is not a folder."""
    if not src.is_dir():
        return False

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dest, copy_function=link)
    return True


def check_output(output: Path, resume: bool, overwrite: bool, artifacts: Sequence[str]) -> None:
    """Never mix two runs in one folder: continue it (--resume), replace it (--overwrite), or refuse.

    ``artifacts`` are the names a run of this kind writes (each training module passes its own).
    """
    existing = [name for name in artifacts if (output / name).exists()]
    if not existing or resume:
        return
    if not overwrite:
        raise FileExistsError(
            f"{output} already holds a run ({', '.join(existing)}); pass --resume to continue it "
            "or --overwrite to start again"
        )
    for name in existing:
        path = output / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
