"""``triagekit triage {synth,train,run,eval}``: their options and the plain functions they run (see
``triagekit.core.cli`` for the table format). Importing this module is cheap: torch and xgrammar load inside the
verbs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from triagekit.core.cli import Alias, Group, Verb, console, training_arguments

__all__ = ["COMMANDS", "ALIASES", "cmd_synth", "cmd_train", "cmd_run", "cmd_eval"]


def cmd_synth(args: argparse.Namespace) -> int:
    from triagekit.triage import load_schema, write_triage_synth

    write_triage_synth(args.n, args.out, seed=args.seed, schema=load_schema(args.schema))
    console().print(f"wrote {args.n} synthetic IT tickets with gold triage JSON to {args.out} (seed {args.seed})")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from triagekit.sft import load_sft_config, parse_sft_overrides
    from triagekit.triage import load_schema, train_triage

    default = Path(__file__).resolve().parents[1] / "presets" / "triage" / "smollm2.yaml"
    overrides: dict[str, Any] = {
        "base": args.backbone,
        "method": args.method,
        "epochs": args.epochs,
        "device": args.device,
        "seed": args.seed,
    }
    overrides.update(parse_sft_overrides(args.set or []))
    cfg = load_sft_config(args.config or (default if default.exists() else None), **overrides)
    result = train_triage(
        cfg,
        args.data,
        args.output,
        schema=load_schema(args.schema),
        val=args.val,
        resume=args.resume,
        overwrite=args.overwrite,
        console=console(),
    )
    early = ", stopped early" if result.stopped_early else ""
    console().print(
        f"[green]done[/]: best val loss {result.best_val_loss:.4f} at step {result.best_step} "
        f"({result.steps} steps, {result.train_seconds:.1f}s, {result.train_tokens} tokens{early}) "
        f"-> {result.output}"
    )
    return 0


def _read_inputs(path: str) -> list[dict[str, Any]]:
    """Tickets from JSONL (``text`` or ``subject``/``body``, optional ``id`` and gold) or a text file (one per
    line); a malformed line is an error with its line number."""
    from triagekit.triage.model import row_text

    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            if not path.endswith((".jsonl", ".ndjson")):
                rows.append({"id": n, "text": line.rstrip("\n")})
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict) or not row_text(row):
                raise ValueError(f"{path}:{n}: no ticket text (need 'text' or 'subject'/'body')")
            rows.append({**row, "id": row.get("id", n), "text": row_text(row)})
    return rows


def cmd_run(args: argparse.Namespace) -> int:
    """``triage run``: JSON records for ``--text`` (to stdout) or ``--input`` (to ``--output``)."""
    return _triage(args, score=False)


def cmd_eval(args: argparse.Namespace) -> int:
    """``triage eval``: ``triage run`` on gold-labelled tickets, scored (metrics to stdout and OUTPUT.metrics.json)."""
    return _triage(args, score=True)


def _triage(args: argparse.Namespace, score: bool) -> int:
    from triagekit.triage import Triager

    triager = Triager.load(
        args.model,
        schema=args.schema,
        device=args.device,
        router=args.router,
        field_map=args.field_map,
        unsure=args.unsure,
        top_k=args.router_top_k,
    )
    kwargs = dict(constrained=not args.no_constrain, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    if getattr(args, "text", None):  # triage eval has no --text
        for text, res in zip(args.text, triager.triage(args.text, **kwargs)):
            print(json.dumps({"text": text, **res}, ensure_ascii=False))
        return 0
    if not args.input or not args.output:
        raise ValueError("give --text TEXT, or --input FILE with --output FILE.jsonl")
    rows = _read_inputs(args.input)
    results = triager.triage([r["text"] for r in rows], **kwargs)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        for row, res in zip(rows, results):
            f.write(json.dumps({"id": row["id"], **res}, ensure_ascii=False) + "\n")
    stats = triager.lm.last_stats
    console().print(
        f"{len(rows)} tickets -> {args.output}: {sum(r['valid'] for r in results)} valid; "
        f"{stats.tokens} tokens ({stats.forced} forced) in {stats.seconds:.1f}s"
    )
    gold = [r.get("triage") for r in rows]
    if score:
        from triagekit.triage.evaluate import evaluate_triage

        if not all(isinstance(g, dict) for g in gold):
            raise ValueError(f"triage eval needs a gold 'triage' record on every line of {args.input}")
        languages = [r.get("language") for r in rows]
        metrics = evaluate_triage(
            results, gold, triager.schema, languages=[str(x) for x in languages] if all(languages) else None
        )
        Path(args.output).with_suffix(".metrics.json").write_text(json.dumps(metrics, indent=2))
        print(json.dumps(metrics, indent=2))
    return 0


def _synth_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--out", required=True, help="output .jsonl")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--schema", default=None, help="JSON Schema with x-taxonomy (default: the IT schema)")


def _train_arguments(p: argparse.ArgumentParser) -> None:
    training_arguments(p, "JSONL of tickets with gold 'triage' records")
    p.add_argument("--val", default=None, help="explicit validation file")
    p.add_argument("--config", default=None, help="YAML preset (name or path; default: the smollm2 triage preset)")
    p.add_argument("--backbone", default=None, help="smollm2 | HF id | local path")
    p.add_argument("--method", default=None, choices=["lora", "full", "qlora"])
    p.add_argument("--device", default=None, choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--schema", default=None, help="JSON Schema of the output (default: the IT schema)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any config key (repeatable)")


def _model_arguments(p: argparse.ArgumentParser) -> None:
    """What ``triage run`` and ``triage eval`` share."""
    p.add_argument("model", help="a `triage train` run, or an untuned model (smollm2, HF id, path)")
    p.add_argument("--schema", default=None, help="JSON Schema file (default: the run's, or the IT schema)")
    p.add_argument("--no-constrain", action="store_true", help="free generation (for comparison)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=160)
    p.add_argument("--device", default=None)
    p.add_argument(
        "--router",
        default=None,
        help="a router run that fills the schema's enum fields (the LLM "
        "writes only the free ones); fields map to heads by name",
    )
    p.add_argument("--field-map", default=None, help="JSON/YAML file of schema_field: router_head (with --router)")
    # triage.guided's UNSURE_MODES and DEFAULT_UNSURE, spelled out to keep numpy out of start-up (a test ties them).
    p.add_argument(
        "--unsure",
        choices=["topk", "router", "llm"],
        default="router",
        help="a field the router is unsure of: the router's top-1 anyway, marked for review (router, the "
        "default), the LLM picks among the router's top-k (topk), or the LLM picks freely (llm)",
    )
    p.add_argument("--router-top-k", type=int, default=3, help="labels the LLM may choose among (--unsure topk)")


def _run_arguments(p: argparse.ArgumentParser) -> None:
    _model_arguments(p)
    p.add_argument("--text", action="append", help="a ticket text (repeatable)")
    p.add_argument("--input", default=None, help="JSONL (text or subject/body) or a text file, one ticket per line")
    p.add_argument("--output", default=None, help="JSONL results")


def _eval_arguments(p: argparse.ArgumentParser) -> None:
    _model_arguments(p)
    p.add_argument("--input", required=True, help="JSONL of tickets, each with its gold 'triage' record")
    p.add_argument("--output", required=True, help="JSONL results; the metrics go to OUTPUT.metrics.json")


COMMANDS = {
    "triage": Group(
        "structure raw IT tickets as schema-valid JSON with a grammar-constrained small LLM",
        {
            "synth": Verb(cmd_synth, _synth_arguments, "write synthetic IT tickets with gold triage JSON"),
            "train": Verb(cmd_train, _train_arguments, "fine-tune a small LLM (SFT) to write the triage JSON"),
            "run": Verb(cmd_run, _run_arguments, "triage tickets with a trained (or untuned) model"),
            "eval": Verb(cmd_eval, _eval_arguments, "triage gold-labelled tickets and score validity and per-field F1"),
        },
    )
}

ALIASES = [
    Alias("data synth", "triage synth", option="--task=triage"),
    Alias("train", "triage train", option="--task=triage"),
    Alias("triage", "triage eval", option="--eval"),
    Alias("triage", "triage run"),
]
