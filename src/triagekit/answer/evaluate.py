"""``triagekit answer eval``: a tuned model against its base on a fixed question suite.

For each question both models reply (same system prompt, greedy, bounded length); then per reply: ROUGE-L F1 and
embedding cosine to the reference, the hallucination rubric (:mod:`triagekit.answer.rubric`); per question: a
pairwise verdict of the judge in both orders (:mod:`triagekit.answer.judge`). Results go to
``OUT/NAME.csv`` (one row per question) and ``OUT/NAME.json`` (the summary).
"""

from __future__ import annotations

import csv
import gc
import json
import time
from pathlib import Path
from statistics import mean
from typing import Any, Sequence

from triagekit.answer.guardrails import Guardrails
from triagekit.answer.judge import Case, ReferenceJudge, build_judge, judge_pair, tally
from triagekit.answer.model import AnswerModel, example_prompt
from triagekit.answer.prepare import load_split
from triagekit.answer.rubric import check_reply, hallucination_rate
from triagekit.answer.schema import AnswerExample
from triagekit.core.textsim import Embedder, rouge_l

__all__ = ["load_suite", "generate_replies", "score_replies", "evaluate_answers", "render_summary"]


def load_suite(path: str | Path, limit: int | None = None) -> list[AnswerExample]:
    """Questions with references: a prepared folder's ``test.jsonl`` or any file the answer loaders read."""
    examples = load_split(path, "test")
    return examples[:limit] if limit else examples


def generate_replies(
    model: str | Path,
    examples: Sequence[AnswerExample],
    *,
    system_prompt: str | None = None,
    max_new_tokens: int = 128,
    batch_size: int = 8,
    device: str | None = None,
) -> tuple[list[str], dict[str, Any]]:
    """Greedy replies of one model (guardrails off: the suite compares models, not rules) and timing info."""
    am = AnswerModel.load(model, guardrails=Guardrails({"rules": []}), device=device, system_prompt=system_prompt)
    start = time.perf_counter()
    out = am.answer([example_prompt(ex) for ex in examples], max_new_tokens=max_new_tokens, batch_size=batch_size)
    seconds = time.perf_counter() - start
    info = {
        "model": str(model),
        "tuned": am.tuned,
        "system_prompt": am.lm.system_prompt,
        "seconds": seconds,
        "new_tokens": am.lm.last_stats.tokens,
    }
    del am
    gc.collect()
    return [o["text"] for o in out], info


def _per_reply(examples, replies, embedder) -> list[dict[str, Any]]:
    sims = embedder.similarity(replies, [ex.outputs.answer for ex in examples])
    rows = []
    for ex, reply, sim in zip(examples, replies, sims):
        rubric = check_reply(reply, ex.inputs.question, ex.outputs.answer, ex.inputs.context)
        rows.append({"rouge_l": rouge_l(reply, ex.outputs.answer).f1, "embed_sim": sim, "rubric": rubric})
    return rows


def score_replies(
    examples: Sequence[AnswerExample],
    model_replies: Sequence[str],
    base_replies: Sequence[str],
    judge: Any = "reference",
    embedder: Embedder | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-question rows and the summary: win rate (position-swapped judge), hallucination rate, ROUGE-L, cosine."""
    embedder = embedder or Embedder()
    judge = build_judge(judge) if isinstance(judge, str) else judge
    if isinstance(judge, ReferenceJudge) and judge._embedder is None:
        judge._embedder = embedder
    cases = [Case(ex.inputs.question, ex.outputs.answer, ex.inputs.context) for ex in examples]
    if hasattr(judge, "warm"):
        judge.warm(cases + cases, list(model_replies) + list(base_replies))
    model_rows, base_rows = _per_reply(examples, model_replies, embedder), _per_reply(examples, base_replies, embedder)
    outcomes = [judge_pair(judge, c, m, b) for c, m, b in zip(cases, model_replies, base_replies)]
    rows = []
    for ex, m, b, mr, br, outcome in zip(examples, model_replies, base_replies, model_rows, base_rows, outcomes):
        row: dict[str, Any] = {
            "id": ex.id,
            "question": ex.inputs.question,
            "reference": ex.outputs.answer,
            "model_reply": m,
            "base_reply": b,
            "winner": outcome,
        }
        for prefix, r in (("model", mr), ("base", br)):
            row.update(
                {
                    f"{prefix}_rouge_l": round(r["rouge_l"], 4),
                    f"{prefix}_embed_sim": round(r["embed_sim"], 4),
                    f"{prefix}_hallucinated": r["rubric"].hallucinated,
                    f"{prefix}_unsupported": "; ".join(f"{c.kind}:{c.text}" for c in r["rubric"].unsupported),
                }
            )
        rows.append(row)
    summary = {"n": len(rows), "judge": type(judge).__name__, **tally(outcomes)}
    for prefix, rs in (("model", model_rows), ("base", base_rows)):
        summary[prefix] = {
            "rouge_l": mean(r["rouge_l"] for r in rs) if rs else 0.0,
            "embed_sim": mean(r["embed_sim"] for r in rs) if rs else 0.0,
            "hallucination": hallucination_rate(r["rubric"] for r in rs),
            "mean_words": mean(len(t.split()) for t in (model_replies if prefix == "model" else base_replies))
            if rs
            else 0.0,
        }
    b, m = summary["base"]["hallucination"]["rate"], summary["model"]["hallucination"]["rate"]
    summary["hallucination_reduction"] = (b - m) / b if b else 0.0
    return rows, summary


def write_results(rows: list[dict[str, Any]], summary: dict[str, Any], out_dir: str | Path, name: str) -> Path:
    """``OUT/NAME.csv`` and ``OUT/NAME.json``; returns the JSON path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["id"])
        writer.writeheader()
        writer.writerows(rows)
    (out / f"{name}.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out / f"{name}.json"


def evaluate_answers(
    model: str | Path,
    base: str | Path,
    suite: str | Path,
    *,
    out_dir: str | Path = "results",
    name: str = "answers",
    judge: str = "reference",
    max_new_tokens: int = 128,
    batch_size: int = 8,
    limit: int | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Reply with ``model`` and ``base`` to every suite question, score, judge, write and return the summary."""
    examples = load_suite(suite, limit)
    if not examples:
        raise ValueError(f"{suite} holds no questions")
    model_replies, model_info = generate_replies(
        model, examples, max_new_tokens=max_new_tokens, batch_size=batch_size, device=device
    )
    base_replies, base_info = generate_replies(
        base,
        examples,
        system_prompt=model_info["system_prompt"],
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        device=device,
    )
    rows, summary = score_replies(examples, model_replies, base_replies, judge)
    summary.update(suite=str(suite), max_new_tokens=max_new_tokens, generation={"model": model_info, "base": base_info})
    summary["results"] = str(write_results(rows, summary, out_dir, name))
    return summary


def render_summary(summary: dict[str, Any], title: str | None = None):
    """A rich table: tuned vs base side by side."""
    from rich.table import Table

    m, b = summary["model"], summary["base"]
    table = Table(title=title or f"{summary['n']} questions, judge {summary['judge']} (position-swapped)")
    for col in ("metric", "tuned", "base"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    table.add_row("win rate vs base (ties = 1/2)", f"{100 * summary['win_rate']:.1f}%", "-")
    table.add_row("wins / ties / losses", f"{summary['wins']} / {summary['ties']} / {summary['losses']}", "-")
    table.add_row(
        "hallucination rate", f"{100 * m['hallucination']['rate']:.1f}%", f"{100 * b['hallucination']['rate']:.1f}%"
    )
    table.add_row(
        "unsupported claims / reply",
        f"{m['hallucination']['mean_unsupported']:.2f}",
        f"{b['hallucination']['mean_unsupported']:.2f}",
    )
    table.add_row("ROUGE-L F1", f"{m['rouge_l']:.3f}", f"{b['rouge_l']:.3f}")
    table.add_row("embedding cosine", f"{m['embed_sim']:.3f}", f"{b['embed_sim']:.3f}")
    table.add_row("mean words / reply", f"{m['mean_words']:.0f}", f"{b['mean_words']:.0f}")
    return table
