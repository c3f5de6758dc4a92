"""``triagekit answer {prepare,synth,train,dpo,generate,eval}``: their options and the plain functions they run (see
``triagekit.core.cli`` for the table format). Importing this module is cheap: torch, transformers and TRL load
inside the verbs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from triagekit.core.cli import Alias, Group, Verb, console, training_arguments

__all__ = ["COMMANDS", "ALIASES", "cmd_prepare", "cmd_synth", "cmd_train", "cmd_dpo", "cmd_generate", "cmd_eval"]


def cmd_prepare(args: argparse.Namespace) -> int:
    from triagekit.answer import prepare_answers

    s = prepare_answers(
        args.input,
        args.out,
        question_fields=[f.strip() for f in args.question.split(",")],
        answer_field=args.answer,
        language=args.language,
        stratify=args.stratify,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        redact_pii=args.redact_pii,
        dedup=not args.keep_duplicates,
        limit=args.limit,
        grounded_only=args.grounded_only,
        seed=args.seed,
    )
    out = console()
    out.print(
        f"{s.kept} examples kept of {s.total} rows: {s.rejected} rejected, {s.duplicates} duplicates, "
        f"{s.filtered} filtered"
        + (f", {s.ungrounded} ungrounded" if args.grounded_only else "")
        + f"; splits {s.splits}"
        + (f"; PII replaced {s.pii}" if s.pii else "")
    )
    for w in s.warnings:
        out.print(f"[yellow]warning:[/] {w}")
    if s.ungrounded:
        out.print(f"training replies with unsupported claims, left out: {Path(args.out) / 'ungrounded.jsonl'}")
    if s.rejected:
        out.print(f"[yellow]rejected rows with file, line and reason: {Path(args.out) / 'rejected.jsonl'}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from triagekit.answer import write_answer_suite

    write_answer_suite(args.out, args.n, args.seed)
    console().print(f"wrote {args.n} synthetic questions with reference answers to {args.out} (seed {args.seed})")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """``triagekit answer train``: SFT of a chat model on a prepared answer folder or raw file."""
    from triagekit.answer.model import train_answer_model
    from triagekit.sft import load_sft_config, parse_sft_overrides

    overrides = {
        "base": args.backbone,
        "method": args.method,
        "epochs": args.epochs,
        "seed": args.seed,
        "device": args.device,
    }
    overrides.update(parse_sft_overrides(args.set or []))
    cfg = load_sft_config(args.config, **overrides)
    result = train_answer_model(
        cfg, args.data, args.output, resume=args.resume, overwrite=args.overwrite, console=console()
    )
    early = ", stopped early" if result.stopped_early else ""
    console().print(
        f"[green]done[/]: best val loss {result.best_val_loss:.4f} at step {result.best_step} "
        f"({result.steps} steps, {result.train_tokens} tokens, {result.train_seconds:.1f}s{early}) "
        f"-> {result.output}"
    )
    return 0


def cmd_dpo(args: argparse.Namespace) -> int:
    """``triagekit answer dpo --backbone RUN_OR_BASE``: DPO from chosen/rejected pairs (needs TRL)."""
    from triagekit.answer.dpo import DPOSettings, train_dpo
    from triagekit.core.config import parse_overrides

    kwargs = parse_overrides(args.set or [], schema=DPOSettings)
    if args.method:
        kwargs["lora"] = args.method == "lora"
    for name in ("epochs", "seed"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    train_dpo(args.backbone or "smollm2", args.data, args.output, overwrite=args.overwrite, console=console(), **kwargs)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from triagekit.answer.guardrails import Guardrails
    from triagekit.answer.model import AnswerModel

    if not 1 <= args.max_new_tokens <= 4096 or not 0 <= args.temperature <= 2:
        raise ValueError("--max-new-tokens must be in [1, 4096] and --temperature in [0, 2]")
    guard = Guardrails({"rules": []}) if args.no_guardrails else Guardrails.load(args.guardrails)
    model = AnswerModel.load(args.model, guardrails=guard, device=args.device)
    prompts = args.prompt or []
    if not prompts:
        text = sys.stdin.read().strip()
        if not text:
            raise ValueError("give --prompt TEXT (repeatable) or the prompt on standard input")
        prompts = [text]
    for prompt in prompts:
        for piece in model.stream(prompt, max_new_tokens=args.max_new_tokens, temperature=args.temperature):
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rich.console import Console

    from triagekit.answer.evaluate import evaluate_answers, render_summary

    summary = evaluate_answers(
        args.model,
        args.base,
        args.suite,
        out_dir=args.out,
        name=args.name,
        judge=args.judge,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        limit=args.limit,
        device=args.device,
    )
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        Console().print(render_summary(summary))
    console().print(f"per-question results: {Path(args.out) / (args.name + '.csv')}; summary: {summary['results']}")
    return 0


def _prepare_arguments(a: argparse.ArgumentParser) -> None:
    a.add_argument("--input", required=True, help="CSV/TSV/JSONL/JSON/Parquet: tickets, dialogs, Q&A or unified")
    a.add_argument("--out", required=True, help="output directory")
    a.add_argument("--question", default="subject,body", help="ticket columns joined into the question")
    a.add_argument("--answer", default="answer", help="ticket column holding the reply")
    a.add_argument("--language", default=None, help="keep only rows with this language (e.g. en)")
    a.add_argument("--stratify", choices=["tag", "source", "none"], default="tag")
    a.add_argument("--val-fraction", type=float, default=0.1)
    a.add_argument("--test-fraction", type=float, default=0.1)
    a.add_argument("--redact-pii", action="store_true")
    a.add_argument("--keep-duplicates", action="store_true")
    a.add_argument("--limit", type=int, default=None, help="keep at most N examples (after filtering)")
    a.add_argument(
        "--grounded-only",
        action="store_true",
        help="leave out training replies with claims their question does not back (to ungrounded.jsonl)",
    )
    a.add_argument("--seed", type=int, default=0)


def _synth_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--out", required=True, help="output .jsonl")
    s.add_argument("--n", type=int, default=100)
    s.add_argument("--seed", type=int, default=7)


def _train_arguments(p: argparse.ArgumentParser) -> None:
    training_arguments(p, "a prepared answer folder (`answer prepare`) or a raw file")
    p.add_argument(
        "--config", default=None, help="YAML preset (a name from `triagekit route presets --task answer`, or a path)"
    )
    p.add_argument("--backbone", default=None, help="smollm2 | HF id | local path")
    p.add_argument("--method", default=None, choices=["lora", "qlora", "full"])
    p.add_argument("--device", default=None, choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any config key (repeatable)")


def _dpo_arguments(p: argparse.ArgumentParser) -> None:
    training_arguments(p, "examples with a chosen and a rejected reply (e.g. Q&A rows with chosen/rejected columns)")
    p.add_argument(
        "--backbone",
        default=None,
        help="the run to start from (usually `answer train`'s), or a base model (default: smollm2)",
    )
    p.add_argument("--method", default=None, choices=["lora", "full"], help="lora (default) or every weight")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="a DPO setting (repeatable): the fields of triagekit.answer.dpo.DPOSettings, e.g. beta=0.1",
    )


def _generate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="run directory of `answer train`, or smollm2 / HF id / local folder")
    p.add_argument("--prompt", action="append", help="the customer's message (repeatable; default: stdin)")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    p.add_argument("--guardrails", default=None, help="YAML rules (default: presets/answer/guardrails.yaml)")
    p.add_argument("--no-guardrails", action="store_true")
    p.add_argument("--device", default=None)


def _eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="run directory of `answer train`")
    p.add_argument("--base", required=True, help="the untuned base: smollm2, an HF id or a local folder")
    p.add_argument(
        "--suite",
        required=True,
        help="questions with references (e.g. suites/answers-synth-100.jsonl, or a prepared folder: its test split)",
    )
    p.add_argument("--judge", default="reference", help="reference (default) or llm:MODEL (a local judge model)")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--limit", type=int, default=None, help="first N questions only")
    p.add_argument("--out", default="results", help="folder for NAME.csv and NAME.json")
    p.add_argument("--name", default="answers")
    p.add_argument("--device", default=None)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


COMMANDS = {
    "answer": Group(
        "prepare data for, tune, run and evaluate the models that draft support replies",
        {
            "prepare": Verb(
                cmd_prepare,
                _prepare_arguments,
                "validate, filter, redact, deduplicate and split answer examples (ticket->reply, dialogs, Q&A)",
            ),
            "synth": Verb(
                cmd_synth,
                _synth_arguments,
                "write synthetic questions with grounded reference answers (the shipped suite)",
            ),
            "train": Verb(cmd_train, _train_arguments, "SFT of a small chat model on support replies"),
            "dpo": Verb(cmd_dpo, _dpo_arguments, "preference tuning (DPO) from chosen/rejected replies (needs TRL)"),
            "generate": Verb(
                cmd_generate, _generate_arguments, "stream a reply from an answer model (tuned run or base) to stdout"
            ),
            "eval": Verb(
                cmd_eval, _eval_arguments, "tuned answer model vs its base: win rate, hallucination rate, ROUGE-L"
            ),
        },
    )
}

ALIASES = [
    Alias("answers prepare", "answer prepare"),
    Alias("answers synth", "answer synth"),
    Alias("train", "answer train", option="--task=answer"),
    Alias("train", "answer dpo", option="--task=answer-dpo"),
    Alias("generate", "answer generate"),
    Alias("eval-answers", "answer eval"),
]
