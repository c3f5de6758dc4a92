"""Seconds per training step of a decoder router on this CPU: fp32 + sdpa + LoRA dropout vs the CPU preset's settings.

Times forward, backward and AdamW of the SmolLM2-135M LoRA router (every projection, the preset's rank) on random
token batches of the given shape, one configuration at a time, and prints the ratio. The preset
(``smollm2-lora`` preset) uses bf16 autocast (AMX on CPUs that have it), the eager attention kernel and
no LoRA dropout.

    flock /tmp/triagekit-cpu.lock python benchmarks/cpu_step.py --batch-size 32 --length 24
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SETTINGS = {
    "fp32, sdpa, LoRA dropout 0.05": dict(mixed_precision="no", attn_implementation="sdpa", lora_dropout=0.05),
    "bf16, sdpa, LoRA dropout 0.05": dict(mixed_precision="bf16", attn_implementation="sdpa", lora_dropout=0.05),
    "bf16, eager, LoRA dropout 0.05": dict(mixed_precision="bf16", attn_implementation="eager", lora_dropout=0.05),
    "preset: bf16, eager, no dropout": dict(mixed_precision="bf16", attn_implementation="eager", lora_dropout=0.0),
}


def seconds_per_step(cfg, batch_size: int, length: int, steps: int) -> float:
    import torch

    from triagekit.route.heads import HeadSpec
    from triagekit.route.train import build_model

    torch.manual_seed(0)
    model = build_model(cfg, [HeadSpec("category", [str(i) for i in range(77)])])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(100, 40_000, (batch_size, length))
    mask = torch.ones_like(ids)
    labels = torch.randint(0, 77, (batch_size,))
    times = []
    for _ in range(steps + 2):  # two warm-up steps
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.mixed_precision == "bf16"):
            logits = model(ids, mask)["category"]
        torch.nn.functional.cross_entropy(logits.float(), labels).backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - start)
    return sorted(times[2:])[len(times[2:]) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="smollm2-lora")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--length", type=int, default=24, help="tokens per input (Banking77 queries: about 20)")
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()

    import torch
    from rich.console import Console
    from rich.table import Table

    from triagekit.route.config import load_config

    table = Table(
        title=f"SmolLM2 LoRA router, batch {args.batch_size} x {args.length} tokens, "
        f"{torch.get_num_threads()} CPU threads (median of {args.steps} steps)"
    )
    for col in ("settings", "s / step", "speed-up"):
        table.add_column(col, justify="left" if col == "settings" else "right")
    base = None
    for name, overrides in SETTINGS.items():
        cfg = load_config(args.config, labels=["category"], **overrides)
        s = seconds_per_step(cfg, args.batch_size, args.length, args.steps)
        base = base or s
        table.add_row(name, f"{s:.3f}", f"{base / s:.2f}x")
    Console().print(table)
    if not torch.cpu._is_avx512_bf16_supported():
        Console().print("[yellow]this CPU has no native bf16: the bf16 rows are emulated")


if __name__ == "__main__":
    main()
