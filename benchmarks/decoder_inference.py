"""Router inference in fp32 vs bf16 autocast on this machine: tickets/s and test accuracy of one trained run.

Loads the same run twice (``Router.load(run, precision=...)``), predicts the prepared test split with each, and
prints throughput, accuracy per head and how often the two agree, side by side. Made for decoder routers on a CPU
with AMX (``lscpu | grep amx``), where bf16 matmuls are several times faster than fp32.

    flock /tmp/triagekit-cpu.lock python benchmarks/decoder_inference.py \\
        --run /tmp/triagekit-bench/router-smollm2/banking77/smollm2-lora
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a trained router run directory")
    ap.add_argument("--data", default=None, help="prepared data directory (default: the run's own)")
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()

    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from triagekit.data import load_prepared
    from triagekit.route.router import Router

    fp32 = Router.load(args.run, device="cpu")
    data = Path(args.data or fp32.meta["data_dir"])
    test = load_prepared(data)["test"]
    texts = fp32.texts(test)
    results = {}
    for precision in ("fp32", "bf16"):
        router = fp32 if precision == "fp32" else Router.load(args.run, device="cpu", precision="bf16")
        router.logits(texts[:64])  # warm-up
        start = time.perf_counter()
        proba = router.predict_proba(texts, batch_size=args.batch_size)
        seconds = time.perf_counter() - start
        labels = {h.name: np.asarray(h.labels)[proba[h.name].argmax(1)] for h in router.heads if not h.multilabel}
        results[precision] = (len(texts) / seconds, labels)
    table = Table(title=f"{args.run}: {len(texts)} test tickets, batch {args.batch_size}")
    for col in ("", "fp32", "bf16", "bf16 / fp32"):
        table.add_column(col, justify="left" if not col else "right")
    (f_rate, f_labels), (b_rate, b_labels) = results["fp32"], results["bf16"]
    table.add_row("tickets/s", f"{f_rate:.1f}", f"{b_rate:.1f}", f"{b_rate / f_rate:.2f}x")
    for head, pred in f_labels.items():
        gold = np.asarray([row[head] for row in test])
        agree = float(np.mean(pred == b_labels[head]))
        table.add_row(
            f"{head} accuracy",
            f"{100 * np.mean(pred == gold):.2f} %",
            f"{100 * np.mean(b_labels[head] == gold):.2f} %",
            f"agree {100 * agree:.2f} %",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
