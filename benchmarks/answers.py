"""Support answers: SmolLM2-135M-Instruct tuned (LoRA) on English ticket→reply pairs vs the untuned base.

Data: ``../shared/data/support-tickets/tickets.csv`` (English rows, PII redacted, split stratified by first tag);
the tuned model trains on the train split's grounded replies (``--grounded-only``: replies whose claims the question
backs, see ``triagekit answer prepare --grounded-only``; ``--n-train`` caps them), both models answer the first
``--n-test``
questions of the held-out test split with the same system prompt (greedy, ``--max-new-tokens``). Reported: win
rate of the tuned model vs the base (reference judge, position-swapped, ties = 1/2), hallucination rate (rubric in
``triagekit.answer.rubric``), ROUGE-L F1, embedding cosine, train time. Targets: win rate >= 60%, hallucination
rate >= 30% lower than the base's.

    flock /tmp/triagekit-cpu.lock python benchmarks/answers.py
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "support-tickets" / "tickets.csv"


def _subset(prepared: Path, out: Path, n_train: int, n_val: int) -> Path:
    """A folder with the first ``n_train`` train and ``n_val`` val examples (the split is already shuffled)."""
    from triagekit.data.prepare import read_jsonl, write_jsonl

    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "train.jsonl", read_jsonl(prepared / "train.jsonl")[:n_train])
    write_jsonl(out / "val.jsonl", read_jsonl(prepared / "val.jsonl")[:n_val])
    return out


def _examples(rows: list[dict], k: int = 2) -> list[dict]:
    """Before/after examples: questions the tuned model won where the base made unsupported claims, shortest first."""
    won = [r for r in rows if r["winner"] == "model" and r["base_hallucinated"] and not r["model_hallucinated"]]
    won = won or [r for r in rows if r["winner"] == "model"]
    return sorted(won, key=lambda r: len(r["question"]))[:k]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--work", default="/tmp/triagekit-bench/answers", help="prepared data and the tuned run")
    from triagekit.core.presets import resolve_preset

    ap.add_argument("--config", default=str(resolve_preset("smollm2-lora", "answer")))
    ap.add_argument("--n-train", type=int, default=0, help="cap on training examples (0: the whole train split)")
    ap.add_argument(
        "--grounded-only",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train only on replies whose claims their question backs (default: on)",
    )
    ap.add_argument("--n-val", type=int, default=48)
    ap.add_argument("--n-test", type=int, default=100)
    ap.add_argument("--max-new-tokens", type=int, default=80)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads for training and generation (1 is much faster when other jobs share the "
        "cores: idle OpenMP threads spin on a busy core)",
    )
    ap.add_argument("--reuse", action="store_true", help="reuse a finished run in --work instead of training")
    ap.add_argument(
        "--rescore",
        action="store_true",
        help="score the replies saved in OUT/answers-benchmark.csv again (after a rubric or judge change) "
        "instead of training and generating",
    )
    ap.add_argument("--out", default=str(ROOT / "results"))
    args = ap.parse_args()

    import torch
    from rich.console import Console

    from triagekit.answer import prepare_answers
    from triagekit.answer.evaluate import generate_replies, load_suite, score_replies, write_results
    from triagekit.answer.model import train_answer_model
    from triagekit.sft import load_sft_config

    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console()
    work = Path(args.work)
    if args.rescore:
        return _rescore(Path(args.out), work, console)
    t0 = time.perf_counter()
    summary = prepare_answers(
        args.data,
        work / "data",
        language="en",
        redact_pii=True,
        stratify="tag",
        val_fraction=0.05,
        test_fraction=0.1,
        grounded_only=args.grounded_only,
        seed=0,
    )
    console.print(
        f"prepared: {summary.kept} English examples ({summary.rejected} rejected, {summary.duplicates} "
        f"duplicates, {summary.filtered} other-language rows left out, {summary.ungrounded} ungrounded "
        f"training replies left out), splits {summary.splits}"
    )
    n_train = min(args.n_train or summary.splits["train"], summary.splits["train"])
    sub = _subset(work / "data", work / "subset", n_train, args.n_val)
    run = work / "run"
    if not (args.reuse and (run / "sft.json").exists()):
        cfg = load_sft_config(args.config, device="cpu", num_threads=args.threads or 0)
        result = train_answer_model(cfg, sub, run, overwrite=True, console=console)
        train_info = {
            "seconds": result.train_seconds,
            "tokens": result.train_tokens,
            "steps": result.steps,
            "best_val_loss": result.best_val_loss,
        }
    else:
        meta = json.loads((run / "sft.json").read_text())
        train_info = {
            "seconds": meta["train_seconds"],
            "tokens": meta["train_tokens"],
            "steps": meta["steps"],
            "best_val_loss": meta["best_val_loss"],
        }
    train_info["tokens_per_s"] = train_info["tokens"] / max(train_info["seconds"], 1e-9)

    test = load_suite(work / "data", args.n_test)
    tuned, tuned_info = generate_replies(
        run, test, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, device="cpu"
    )
    base, base_info = generate_replies(
        "smollm2",
        test,
        system_prompt=tuned_info["system_prompt"],
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        device="cpu",
    )
    rows, result = score_replies(test, tuned, base)
    result.update(
        benchmark="answers",
        n_train=n_train,
        grounded_only=args.grounded_only,
        ungrounded_left_out=summary.ungrounded,
        max_new_tokens=args.max_new_tokens,
        train=train_info,
        generation={"model": tuned_info, "base": base_info},
        threads=torch.get_num_threads(),
        total_seconds=time.perf_counter() - t0,
    )
    write_results(rows, result, args.out, "answers-benchmark")
    _report(rows, result, args.out, console)


def _rescore(out: Path, work: Path, console) -> None:
    """Score the saved replies again with the current rubric and judge (no training, no generation)."""
    import csv

    from triagekit.answer.evaluate import load_suite, score_replies, write_results

    previous = json.loads((out / "answers-benchmark.json").read_text())
    with open(out / "answers-benchmark.csv", encoding="utf-8") as f:
        saved = {r["id"]: r for r in csv.DictReader(f)}
    test = [ex for ex in load_suite(work / "data") if ex.id in saved]
    rows, result = score_replies(
        test, [saved[ex.id]["model_reply"] for ex in test], [saved[ex.id]["base_reply"] for ex in test]
    )
    keep = (
        "benchmark",
        "n_train",
        "grounded_only",
        "ungrounded_left_out",
        "max_new_tokens",
        "train",
        "generation",
        "threads",
        "total_seconds",
    )
    result.update({k: previous[k] for k in keep if k in previous}, rescored=True)
    write_results(rows, result, out, "answers-benchmark")
    _report(rows, result, out, console)


def _report(rows: list[dict], result: dict, out, console) -> None:
    from triagekit.answer.evaluate import render_summary

    train_info, tuned_info, base_info = result["train"], result["generation"]["model"], result["generation"]["base"]
    console.print(
        render_summary(
            result,
            title=f"SmolLM2-135M: LoRA-tuned on {result['n_train']} English tickets"
            f"{' (grounded replies)' if result.get('grounded_only') else ''} "
            f"vs base, {result['n']} held-out questions",
        )
    )
    console.print(
        f"train: {train_info['seconds']:.0f}s for {train_info['tokens']} tokens "
        f"({train_info['tokens_per_s']:.0f} tokens/s, {train_info['steps']} steps, best val loss "
        f"{train_info['best_val_loss']:.3f}); generation: tuned {tuned_info['seconds']:.0f}s, base "
        f"{base_info['seconds']:.0f}s ({result['threads']} threads); total "
        f"{result['total_seconds']:.0f}s"
    )
    m, b = result["model"]["hallucination"]["rate"], result["base"]["hallucination"]["rate"]
    checks = [
        (f"win rate >= 60%: {100 * result['win_rate']:.1f}%", result["win_rate"] >= 0.6),
        (
            f"hallucination rate >= 30% lower than base: {100 * m:.1f}% vs {100 * b:.1f}% "
            f"({100 * result['hallucination_reduction']:.0f}% lower)",
            result["hallucination_reduction"] >= 0.3,
        ),
    ]
    for text, ok in checks:
        console.print(("[green]MET  [/] " if ok else "[red]UNMET[/] ") + text)
    for r in _examples(rows):
        console.rule(f"example {r['id']}")
        console.print(
            f"[bold]question:[/] {r['question']}\n[bold]reference:[/] {r['reference']}\n"
            f"[bold]base:[/] {r['base_reply']}\n  unsupported: {r['base_unsupported'] or '-'}\n"
            f"[bold]tuned:[/] {r['model_reply']}\n  unsupported: {r['model_unsupported'] or '-'}"
        )
    console.print(
        f"results: {Path(out) / 'answers-benchmark.csv'} and .json"
        + (" (saved replies scored again)" if result.get("rescored") else "")
    )


if __name__ == "__main__":
    main()
