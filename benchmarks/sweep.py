"""Does a sweep beat the default router? An Optuna sweep of the default preset, its best retrained, both on test.

Per data set (Banking77: the official train split, 5 % of it as validation, the official test split; the support
tickets: the stratified 75/10/15 split of ``benchmarks/router.py``): ``--trials`` trials of ``triagekit route
sweep`` over ``--config`` (default ``minilm``, the default router) with median pruning from the per-epoch
validation macro-F1, then the best trial's config (``best.yaml``) retrained from scratch and the preset trained as
it is, both evaluated on the test split (accuracy and macro-F1 per head). Validation chooses; test only reports.

Usage:
    python benchmarks/sweep.py                                     # both data sets, 12 trials each (hours on 2 cores)
    python benchmarks/sweep.py --datasets tickets --trials 12 --out results/sweep
    python benchmarks/sweep.py --trials 2 --subsample 300 --set max_steps=20 --set max_length=48   # a quick check
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from router import DATASETS, in_child, predict_phase, train_phase  # noqa: E402 - the same splits and phases

# The keys a support org tunes on the default router; bounds around the preset's own values (lr 1e-4, head_lr
# 2e-3, 8 epochs, label smoothing 0.1, warm-up 0.06), so the preset itself is a point of the space.
SPACE = {
    "lr": {"log_uniform": [2e-5, 2e-4]},
    "head_lr": {"log_uniform": [1e-3, 1e-2]},
    "epochs": {"int": [4, 12]},
    "label_smoothing": {"uniform": [0.0, 0.2]},
    "warmup_ratio": {"uniform": [0.0, 0.15]},
}


def subsample(data: Path, n: int, seed: int = 0) -> None:
    """Keep ``n`` random rows of each split of the prepared folder ``data`` (for a quick check only)."""
    for split in ("train", "val", "test"):
        path = data / f"{split}.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        random.Random(seed).shuffle(lines)
        path.write_text("".join(lines[:n]), encoding="utf-8")


def sweep_phase(space: dict, data: str, study_dir: str, config: str, trials: int, overrides: dict) -> dict:
    from triagekit.route.sweep import sweep_router

    started = time.perf_counter()
    summary = sweep_router(space, data, study_dir, config=config, n_trials=trials, overrides=overrides)
    return {**summary, "sweep_seconds": time.perf_counter() - started}


def compare(name: str, args, out: Path, overrides: dict) -> list[dict]:
    """Sweep, retrain the best, train the preset, evaluate both on test: one row each."""
    from triagekit.route.config import load_config

    data, text_fields, labels = DATASETS[name](out / name / "data")
    if args.subsample:
        subsample(data, args.subsample)
    fixed = {"labels": labels, "text_fields": text_fields, "trackers": [], **overrides}
    summary, _ = in_child(sweep_phase, SPACE, str(data), str(out / name / "study"), args.config, args.trials, fixed)
    if "best_config" not in summary:
        raise SystemExit(f"{name}: no trial completed ({summary}); see {out / name / 'study' / 'results.csv'}")
    rows = []
    configs = [
        (f"{args.config} preset", load_config(args.config, **fixed), "preset"),
        (f"sweep best (trial {summary['best_trial']})", load_config(summary["best_config"], **fixed), "best"),
    ]
    for label, cfg, folder in configs:
        trained, _ = in_child(train_phase, cfg.to_dict(), str(data), str(out / name / folder), False)
        tested, _ = in_child(predict_phase, str(out / name / folder), str(data), False)
        rows.append({"dataset": name, "router": label, **trained, **tested})
    rows[1]["best_val"] = summary["best_value"]
    rows[1]["best_params"] = summary["best_params"]
    rows[1]["sweep_seconds"] = summary["sweep_seconds"]
    rows[1]["trials"] = {k: summary[k] for k in ("trials", "complete", "pruned", "failed")}
    return rows


def markdown(rows: list[dict]) -> str:
    heads = list(rows[0]["heads"])
    cols = " | ".join(f"{h} acc | {h} macro-F1" for h in heads)
    lines = [f"| router | {cols} | train s |", "|---" * (2 + 2 * len(heads)) + "|"]
    for r in rows:
        cells = " | ".join(
            f"{100 * r['heads'][h]['accuracy']:.2f} | {100 * r['heads'][h]['macro_f1']:.2f}" for h in heads
        )
        lines.append(f"| {r['router']} | {cells} | {r['wall_seconds']:.0f} |")
    best = rows[1]
    t = best["trials"]
    lines.append("")
    lines.append(
        f"Sweep: {t['trials']} trials ({t['complete']} complete, {t['pruned']} pruned, {t['failed']} failed) in "
        f"{best['sweep_seconds'] / 60:.1f} min; best validation macro-F1 {best['best_val']:.4f} with "
        + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in best["best_params"].items())
    )
    return "\n".join(lines)


def main() -> None:
    from triagekit.route.config import parse_overrides

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="banking77,tickets", help=f"comma-separated: {', '.join(DATASETS)}")
    parser.add_argument("--config", default="minilm", help="the preset swept and compared (default: the default)")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--subsample", type=int, default=0, help="keep N rows of each split (quick checks only)")
    parser.add_argument("--set", action="append", default=[], help="key=value on every run (e.g. max_steps=20)")
    parser.add_argument("--out", type=Path, default=Path("results/sweep"))
    args = parser.parse_args()
    overrides = parse_overrides(args.set)
    report = []
    for name in args.datasets.split(","):
        started = time.perf_counter()
        rows = compare(name.strip(), args, args.out, overrides)
        table = markdown(rows)
        took = (time.perf_counter() - started) / 60
        report.append(f"### {name}\n\n{table}\n\nWhole comparison (sweep + 2 trainings + test): {took:.1f} min\n")
        print(report[-1], flush=True)
        (args.out / name / "rows.json").write_text(json.dumps(rows, indent=2, default=str))
    (args.out / "sweep.md").write_text("\n".join(report))


if __name__ == "__main__":
    main()
