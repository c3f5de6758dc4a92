"""Active learning on Banking77: does choosing which tickets to label beat labelling at random?

Start from a stratified 10 % of the training labels; 4 rounds, each labels 500 more tickets chosen by the strategy
(the gold label plays the reviewer), retrain, evaluate on the official test split. Every strategy of
``triagekit.route.select`` runs against random choice of the same size, in the same run, from the same start set,
for each seed.

The learner retrains in seconds so the whole benchmark fits on two shared cores: the embedded MiniLM
(all-MiniLM-L6-v2) is run once over all texts as a frozen encoder (mean-pooled sentence embeddings, cached), and a
multinomial logistic regression is fitted on the labelled embeddings each round, i.e. the router's ``--method
head`` on a frozen MiniLM, fitted with scikit-learn. The diverse strategy clusters the same embeddings.

Usage (time it under the shared lock)::

    flock /tmp/triagekit-cpu.lock python benchmarks/active_learning.py --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def _shared() -> Path:
    """``$TRIAGEKIT_SHARED`` (default ``<repo>/../shared``, falling back to ``/work/shared``)."""
    env = os.environ.get("TRIAGEKIT_SHARED")
    for base in [Path(env)] if env else [ROOT.parent / "shared", Path("/work/shared")]:
        if (base / "data" / "banking77").is_dir():
            return base
    raise SystemExit("Banking77 not found: set TRIAGEKIT_SHARED to the folder holding data/banking77")


def load_split(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], np.array([r["category"] for r in rows])


def embeddings(texts: list[str], cache: Path) -> np.ndarray:
    """Frozen MiniLM sentence embeddings of ``texts``, cached by the texts' hash."""
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    file = cache / f"minilm-{key}.npy"
    if file.exists():
        return np.load(file)
    from triagekit.core.textsim import Embedder

    started = time.perf_counter()
    x = Embedder(max_length=64, batch_size=128).encode(texts)
    print(f"embedded {len(texts)} texts in {time.perf_counter() - started:.0f}s", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(file, x)
    return x


def fit(x: np.ndarray, y: np.ndarray, c: float, seed: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=3000, random_state=seed).fit(x, y)


def run_strategy(strategy: str, start: np.ndarray, x, y, xt, yt, args, seed: int) -> list[dict]:
    """Accuracy after the start set and after each round of ``strategy``."""
    from triagekit.route.select import select

    labelled = list(start)
    curve = []
    for round_ in range(args.rounds + 1):
        started = time.perf_counter()
        model = fit(x[labelled], y[labelled], args.C, seed)
        acc = float((model.predict(xt) == yt).mean())
        curve.append({"round": round_, "labels": len(labelled), "accuracy": acc})
        print(
            f"  seed {seed} {strategy:16s} round {round_}: {acc:.4f} with {len(labelled)} labels "
            f"({time.perf_counter() - started:.1f}s)",
            flush=True,
        )
        if round_ == args.rounds:
            break
        pool = np.setdiff1d(np.arange(len(y)), labelled)
        probs = {"category": model.predict_proba(x[pool])}
        picked = select(probs, args.batch, strategy, embeddings=x[pool], seed=seed * 1000 + round_)
        labelled += [int(i) for i in pool[picked]]
    return curve


def stratified_start(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    start, _ = train_test_split(idx, train_size=fraction, stratify=y, random_state=seed)
    return np.sort(start)


def summarise(results: dict, full: float, n_train: int, target_drop: float) -> dict:
    """Mean curves over seeds, and whether the goal is met."""
    strategies = list(results)
    rounds = len(next(iter(results.values()))[0])
    mean = {s: [float(np.mean([c[r]["accuracy"] for c in results[s]])) for r in range(rounds)] for s in strategies}
    std = {s: [float(np.std([c[r]["accuracy"] for c in results[s]])) for r in range(rounds)] for s in strategies}
    labels = [next(iter(results.values()))[0][r]["labels"] for r in range(rounds)]
    others = [s for s in strategies if s != "random"]
    best = max(others, key=lambda s: mean[s][-1])
    beats = all(mean[best][r] > mean["random"][r] for r in range(1, rounds))
    target = full - target_drop / 100
    reached = [labels[r] for r in range(rounds) if mean[best][r] >= target]
    return {
        "labels": labels,
        "mean": mean,
        "std": std,
        "full_data_accuracy": full,
        "target": target,
        "best_strategy": best,
        "best_beats_random_every_round": beats,
        "best_reaches_target_at_labels": reached[0] if reached else None,
        "half_of_training_labels": n_train // 2,
        "goal_met": beats and bool(reached) and reached[0] <= n_train // 2,
    }


def table(summary: dict) -> str:
    labels = summary["labels"]
    lines = ["| strategy | " + " | ".join(f"{n} labels" for n in labels) + " |", "|---|" + "---:|" * len(labels)]
    for s, curve in summary["mean"].items():
        cells = [f"{100 * m:.2f} ± {100 * sd:.2f}" for m, sd in zip(curve, summary["std"][s])]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(summary: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s, curve in summary["mean"].items():
        ax.errorbar(
            summary["labels"],
            [100 * v for v in curve],
            yerr=[100 * v for v in summary["std"][s]],
            marker="o",
            capsize=3,
            label=s,
            linestyle="--" if s == "random" else "-",
        )
    ax.axhline(100 * summary["full_data_accuracy"], color="k", lw=1, label="all labels")
    ax.axhline(100 * summary["target"], color="k", lw=1, ls=":", label="all labels - 1.5 pt")
    ax.set_xlabel("labelled training tickets")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Active learning on Banking77 (frozen MiniLM + logistic regression)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main(argv: list[str] | None = None) -> int:
    from triagekit.route.select import STRATEGIES

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--start-fraction", type=float, default=0.1)
    p.add_argument("--strategies", default=",".join(s for s in STRATEGIES if s != "random"))
    p.add_argument("--C", type=float, default=20.0, help="inverse L2 strength of the logistic regression")
    p.add_argument("--out", default=str(ROOT / "results" / "active_learning"))
    p.add_argument("--cache", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "triagekit-al-cache"))
    p.add_argument("--limit", type=int, default=None, help="first N training rows only (a quick check)")
    args = p.parse_args(argv)
    data = _shared() / "data" / "banking77"
    texts, y = load_split(data / "train.csv")
    test_texts, yt = load_split(data / "test.csv")
    if args.limit:
        texts, y = texts[: args.limit], y[: args.limit]
    started = time.perf_counter()
    x = embeddings(texts, Path(args.cache))
    xt = embeddings(test_texts, Path(args.cache))
    seeds = [int(s) for s in args.seeds.split(",")]
    full = float((fit(x, y, args.C, seeds[0]).predict(xt) == yt).mean())
    print(f"all {len(y)} labels: {100 * full:.2f} % test accuracy", flush=True)
    strategies = ["random"] + [s for s in args.strategies.split(",") if s != "random"]
    results: dict[str, list] = {s: [] for s in strategies}
    for n, seed in enumerate(seeds, 1):
        start = stratified_start(y, args.start_fraction, seed)
        for s in strategies:
            results[s].append(run_strategy(s, start, x, y, xt, yt, args, seed))
        summary = write(results, full, y, yt, seeds[:n], args, started)  # after every seed: a long run keeps its part
    print(table(summary))
    print(
        f"full data {100 * full:.2f} %, target {100 * summary['target']:.2f} %; best {summary['best_strategy']}: "
        f"beats random every round: {summary['best_beats_random_every_round']}, reaches the target at "
        f"{summary['best_reaches_target_at_labels']} labels (half = {summary['half_of_training_labels']}); "
        f"goal met: {summary['goal_met']}; {summary['seconds']:.0f}s -> {args.out}"
    )
    return 0


def write(results: dict, full: float, y, yt, seeds: list[int], args, started: float) -> dict:
    """Summarise the seeds done so far into OUT/active_learning.{json,md,png}."""
    summary = summarise(results, full, len(y), 1.5)
    summary.update(
        seeds=seeds,
        C=args.C,
        batch=args.batch,
        rounds=args.rounds,
        n_train=len(y),
        n_test=len(yt),
        seconds=round(time.perf_counter() - started, 1),
        runs=results,
        learner="frozen all-MiniLM-L6-v2 mean-pooled embeddings + multinomial logistic regression",
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "active_learning.json").write_text(json.dumps(summary, indent=2))
    plot(summary, out / "active_learning.png")
    (out / "active_learning.md").write_text(table(summary) + "\n")
    return summary


if __name__ == "__main__":
    sys.exit(main())
