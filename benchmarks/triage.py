"""Triage benchmark: LLM only vs router only vs router-guided, in one run.

Two data sets:
- ``--data synth`` (default): synthetic IT tickets (English and Spanish) with the default IT schema; SmolLM2-135M
  tuned for triage vs the untuned base (schema in its prompt) vs a TF-IDF router, JSON validity with and without
  the grammar, decoding speed with and without jump-forward.
- ``--data tickets``: the real support tickets in ``../shared/data/support-tickets`` (en/de) with a user schema
  built from their own fields: ``queue``, ``priority``, ``type`` enums and a free ``summary`` (the gold summary is
  the ticket's subject; the model reads the body). Split by the router's stratified split; the LLM tunes on
  ``--train-n`` of the training tickets, the router on all of them.

Every row reports per-field accuracy / macro-F1, JSON validity, summary ROUGE-L / embedding similarity and
tickets/s; the report breaks results down per language. Guided rows say, for the fields the router was unsure of,
whether the LLM's pick among the router's top-k beat the router's own top-1.

    python benchmarks/triage.py                                   # synth: synthesise, train, evaluate
    python benchmarks/triage.py --run runs/triage                 # synth: an existing triage run
    python benchmarks/triage.py --data tickets --train-n 300      # real tickets
    python benchmarks/triage.py --data tickets --base-model gemma3  # another (multilingual) base for the LLM
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TRIAGEKIT_SHARED", ROOT.parent / "shared"))
TICKET_FIELDS = ("queue", "priority", "type")


def _train_llm(args, schema, train_file: Path, val_file: Path, out: Path) -> tuple[Path, float]:
    from triagekit.sft import load_sft_config
    from triagekit.triage import train_triage

    overrides = {"num_threads": args.threads, "epochs": args.epochs}
    if args.base_model:
        overrides["base"] = args.base_model
    from triagekit.core.presets import preset_path

    cfg = load_sft_config(preset_path("triage", "smollm2"), **overrides)
    start = time.perf_counter()
    train_triage(cfg, train_file, out, schema=schema, val=val_file, overwrite=True)
    return out, time.perf_counter() - start


def _train_router(rows: list[dict], fields, out: Path) -> tuple[Path, float]:
    """A TF-IDF router (word + char n-grams, logistic regression per field) on the same training tickets; its
    review thresholds are fitted on a validation split for 90 % precision."""
    from triagekit.route import TrainConfig
    from triagekit.route.train import train

    flat = out.with_suffix(".jsonl")
    flat.parent.mkdir(parents=True, exist_ok=True)
    flat.write_text(
        "".join(json.dumps({"text": r["text"], **{f: r["triage"][f] for f in fields}}) + "\n" for r in rows)
    )
    cfg = TrainConfig(
        backbone="tfidf",
        labels=list(fields),
        text_fields=["text"],
        val_fraction=0.15,
        test_fraction=0.0,
        trackers=[],
    )
    start = time.perf_counter()
    train(cfg, flat, out, overwrite=True)
    return out, time.perf_counter() - start


def _timed(fn, n: int):
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    return out, {"seconds": seconds, "tickets_per_s": n / max(seconds, 1e-9)}


def _router_results(router, texts, fields) -> list[dict]:
    preds = router.predict([{"text": t} for t in texts])
    return [
        {"triage": {f: p[f]["label"] for f in fields}, "valid": False, "errors": ["router: enum fields only"]}
        for p in preds
    ]


def _topk_gain(results, gold) -> dict:
    """Over the (ticket, field) pairs where the LLM chose among the router's top-k: its accuracy vs the router's
    top-1 on the same pairs."""
    n = llm = router = 0
    for res, g in zip(results, gold):
        for field, meta in (res.get("_meta") or {}).items():
            if meta["source"] != "llm_topk" or not meta["top_k"]:
                continue
            n += 1
            llm += (res.get("triage") or {}).get(field) == g[field]
            router += meta["top_k"][0]["label"] == g[field]
    return {"pairs": n, "llm_topk_accuracy": llm / n if n else None, "router_top1_accuracy": router / n if n else None}


def _print_table(title, rows, fields, has_summary: bool) -> None:
    print(f"\n## {title}\n")
    print(
        "| model | valid JSON | "
        + " | ".join(f"{f} acc / F1" for f in fields)
        + (" | summary ROUGE-L | summary emb. sim." if has_summary else "")
        + " | tickets/s |"
    )
    print("|---" * (len(fields) + (4 if has_summary else 2)) + "|")
    for name, (m, speed) in rows.items():
        cells = [f"{100 * m['fields'][f]['accuracy']:.1f} / {100 * m['fields'][f]['macro_f1']:.1f}" for f in fields]
        valid = "n/a" if name.startswith("router only") else f"{100 * m['valid_rate']:.1f} %"
        summ = m.get("summary") or {}
        tail = (
            f" | {summ.get('rouge_l', 0):.3f} | {summ.get('embedding_similarity', 0):.3f}"
            if has_summary and not name.startswith("router only")
            else (" | - | -" if has_summary else "")
        )
        print(f"| {name} | {valid} | " + " | ".join(cells) + tail + f" | {speed['tickets_per_s']:.2f} |")


def _print_languages(rows, fields) -> None:
    langs = sorted({lang for m, _ in rows.values() for lang in m.get("by_language", {})})
    if len(langs) < 2:
        return
    print("\nPer language (accuracy %):\n")
    print("| model | language | n | valid | " + " | ".join(fields) + " |")
    print("|---" * (len(fields) + 4) + "|")
    for name, (m, _) in rows.items():
        for lang in langs:
            lm = m["by_language"].get(lang)
            if lm:
                valid = "n/a" if name.startswith("router only") else f"{100 * lm['valid_rate']:.1f}"
                print(
                    f"| {name} | {lang} | {lm['n']} | {valid} | "
                    + " | ".join(f"{100 * lm['fields'][f]['accuracy']:.1f}" for f in fields)
                    + " |"
                )


def _compare(args, triager, router_dir: Path, texts, gold, languages, schema, fields, rows: dict) -> dict:
    """LLM only, router only and guided rows on the same tickets."""
    from triagekit.route import Router
    from triagekit.triage.evaluate import evaluate_triage
    from triagekit.triage.guided import RouterGuide

    kw = dict(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    ev = dict(languages=languages, summary_field="summary")
    triager.constraint()  # compile once, outside the timings
    res, speed = _timed(lambda: triager.triage(texts, **kw), len(texts))
    rows["LLM only (tuned, grammar)"] = (evaluate_triage(res, gold, schema, **ev), speed)
    router = Router.load(router_dir)
    res, speed = _timed(lambda: _router_results(router, texts, fields), len(texts))
    rows["router only (TF-IDF)"] = (evaluate_triage(res, gold, schema, **ev), speed)
    gains = {}
    for unsure in ("router", "topk"):
        guide = RouterGuide(router, schema, unsure=unsure, top_k=args.router_top_k)
        res, speed = _timed(lambda g=guide: triager.triage(texts, guide=g, **kw), len(texts))
        name = (
            "guided: router fills every field"
            if unsure == "router"
            else (f"guided: LLM picks among the router's top-{args.router_top_k} when unsure")
        )
        rows[name] = (evaluate_triage(res, gold, schema, **ev), speed)
        if unsure == "topk":
            gains = _topk_gain(res, gold)
            gains["review_rate"] = sum(any(m["requires_review"] for m in r["_meta"].values()) for r in res) / len(res)
    return gains


def _decode_stats(triager, texts, **kw) -> dict:
    triager.triage(texts, **kw)
    s = triager.lm.last_stats
    return {
        "tokens": s.tokens,
        "forced": s.forced,
        "forwards": s.forwards,
        "seconds": s.seconds,
        "tokens_per_s": s.tokens / max(s.seconds, 1e-9),
        "tickets_per_s": len(texts) / max(s.seconds, 1e-9),
    }


def _ablations(args, tuned, texts, gold, schema, rows: dict, report: dict) -> None:
    """Free decoding, the untuned base with the schema in its prompt, and decoding speed with and without the
    grammar and jump-forward (the rows of the first triage benchmark)."""
    from triagekit.triage import Triager
    from triagekit.triage.evaluate import evaluate_triage

    kw = dict(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    res, speed = _timed(lambda: tuned.triage(texts, constrained=False, **kw), len(texts))
    rows["LLM only (tuned, free decoding)"] = (evaluate_triage(res, gold, schema), speed)
    base = Triager.load(args.base_model or "smollm2", schema=schema, device="cpu")
    base.constraint()
    res, speed = _timed(lambda: base.triage(texts, **kw), len(texts))
    rows["untuned base + schema prompt, grammar"] = (evaluate_triage(res, gold, schema), speed)
    n = min(args.speed_n, len(texts))
    speed_rows = {}
    for label, bs, c, j in [
        ("batch %d, free" % args.batch_size, args.batch_size, False, False),
        ("batch %d, grammar + jump-forward" % args.batch_size, args.batch_size, True, True),
        ("batch 1, free", 1, False, False),
        ("batch 1, grammar, no jump-forward", 1, True, False),
        ("batch 1, grammar + jump-forward", 1, True, True),
    ]:
        speed_rows[label] = _decode_stats(
            tuned, texts[:n], constrained=c, jump_forward=j, batch_size=bs, max_new_tokens=args.max_new_tokens
        )
    report["decoding_speed"] = speed_rows
    print(f"\n| decoding (tuned model, {n} tickets) | tokens/s | tickets/s | forced tokens | model calls |")
    print("|---|---|---|---|---|")
    for name, s in speed_rows.items():
        print(
            f"| {name} | {s['tokens_per_s']:.1f} | {s['tickets_per_s']:.2f} | {s['forced']}/{s['tokens']} | "
            f"{s['forwards']} |"
        )


def _synth(args, out: Path, report: dict) -> None:
    from triagekit.triage import Triager, load_schema, read_triage_rows, synth_tickets, write_triage_synth

    schema = load_schema()
    train_file = Path(args.train_data) if args.train_data else write_triage_synth(1000, out / "train.jsonl", seed=0)
    train_rows, _ = read_triage_rows(train_file, schema)
    if args.run:
        run = Path(args.run)
    else:
        run, report["llm_train_seconds"] = _train_llm(
            args, schema, train_file, write_triage_synth(80, out / "val.jsonl", seed=500), out / "run"
        )
    seen = {r["text"] for r in train_rows}
    test = [r for r in synth_tickets(4 * args.n_test, seed=1000) if r["text"] not in seen][: args.n_test]
    texts, gold, langs = [r["text"] for r in test], [r["triage"] for r in test], [r["language"] for r in test]
    fields = list(schema.enum_fields)
    router_dir, report["router_train_seconds"] = _train_router(train_rows, fields, out / "router")
    rows: dict = {}
    tuned = Triager.load(run, device="cpu")
    report["topk"] = _compare(args, tuned, router_dir, texts, gold, langs, schema, fields, rows)
    if args.ablations:
        _ablations(args, tuned, texts, gold, schema, rows, report)
    _report(
        args,
        report,
        rows,
        fields,
        f"{len(test)} held-out synthetic IT tickets ({len(train_rows)} training "
        "tickets; test tickets whose text occurs in training are dropped)",
        out,
    )


def _ticket_rows(args):
    """The shared tickets as triage rows (body -> queue/priority/type + summary = subject), split stratified by
    queue with the router's splitter; rows without a subject have no gold summary and are left out (counted)."""
    import pandas as pd

    from triagekit.data import split_rows

    df = pd.read_csv(SHARED / "data" / "support-tickets" / "tickets.csv")
    keep = df["subject"].notna() & df["body"].notna() & (df["subject"].astype(str).str.len() >= 3)
    rows = [
        {
            "id": int(r.Index),
            "text": str(r.body).strip(),
            "language": r.language,
            "queue": r.queue,
            "triage": {
                "queue": r.queue,
                "priority": r.priority,
                "type": r.type,
                "summary": str(r.subject).strip()[:120],
            },
        }
        for r in df[keep].itertuples()
    ]
    splits = split_rows(rows, "queue", val_fraction=0.1, test_fraction=0.15, seed=0)
    return splits, int((~keep).sum())


def _ticket_schema(rows):
    from triagekit.triage import TriageSchema

    props = {f: {"enum": sorted({r["triage"][f] for r in rows})} for f in TICKET_FIELDS}
    props["summary"] = {"type": "string", "minLength": 3, "maxLength": 120, "description": "the ticket's subject line"}
    return TriageSchema(
        {"type": "object", "properties": props, "required": list(props), "additionalProperties": False},
        "support-tickets schema",
    )


def _tickets(args, out: Path, report: dict) -> None:
    from triagekit.triage import Triager

    splits, report["left_out_without_subject"] = _ticket_rows(args)
    schema = _ticket_schema([r for s in splits.values() for r in s])
    train, val, test = splits["train"], splits["val"], splits["test"][: args.n_test]
    for name, rows in (("train", train[: args.train_n]), ("val", val[: args.val_n])):
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    if args.run:
        run = Path(args.run)
    else:
        run, report["llm_train_seconds"] = _train_llm(args, schema, out / "train.jsonl", out / "val.jsonl", out / "run")
    router_dir, report["router_train_seconds"] = _train_router(train, TICKET_FIELDS, out / "router")
    rows: dict = {}
    tuned = Triager.load(run, device="cpu")
    texts, gold, langs = [r["text"] for r in test], [r["triage"] for r in test], [r["language"] for r in test]
    report["topk"] = _compare(args, tuned, router_dir, texts, gold, langs, schema, list(TICKET_FIELDS), rows)
    _report(
        args,
        report,
        rows,
        list(TICKET_FIELDS),
        f"{len(test)} held-out real support tickets (LLM tuned on {min(args.train_n, len(train))} training "
        f"tickets, router on {len(train)})",
        out,
    )


def _report(args, report, rows, fields, title, out: Path) -> None:
    _print_table(title, rows, fields, has_summary=True)
    _print_languages(rows, fields)
    t = report.get("topk") or {}
    if t.get("pairs"):
        print(
            f"\nWhere the router was unsure ({t['pairs']} ticket-fields; {100 * t['review_rate']:.1f} % of tickets "
            f"had one): the LLM's pick among the top-{args.router_top_k} was right "
            f"{100 * t['llm_topk_accuracy']:.1f} % of the time, the router's top-1 "
            f"{100 * t['router_top1_accuracy']:.1f} %."
        )
    print(f"\ntraining: LLM {report.get('llm_train_seconds', 0):.0f} s, router {report['router_train_seconds']:.1f} s")
    report["rows"] = {k: {"metrics": m, "speed": s} for k, (m, s) in rows.items()}
    (out / "results.json").write_text(json.dumps(report, indent=2))
    print(f"results: {out / 'results.json'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", choices=["synth", "tickets"], default="synth")
    p.add_argument("--run", default=None, help="an existing triage run for this data (default: train one)")
    p.add_argument("--train-data", default=None, help="synth: its training JSONL (default: synth 1000, seed 0)")
    p.add_argument("--train-n", type=int, default=300, help="tickets: training tickets for the LLM")
    p.add_argument("--val-n", type=int, default=60, help="tickets: validation tickets for the LLM")
    p.add_argument("--n-test", type=int, default=300)
    p.add_argument("--epochs", type=float, default=1)
    p.add_argument("--base-model", default=None, help="the LLM to tune (default: the preset's, SmolLM2-135M)")
    p.add_argument("--router-top-k", type=int, default=3)
    p.add_argument(
        "--ablations",
        action="store_true",
        help="synth: also free decoding, the untuned base and decoding speed with/without grammar and jump-forward",
    )
    p.add_argument("--speed-n", type=int, default=40, help="tickets for the decoding-speed rows (--ablations)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=160)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None)
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out or ROOT / "runs" / f"bench-triage-{args.data}")
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"data": args.data, "args": vars(args)}
    (_synth if args.data == "synth" else _tickets)(args, out, report)


if __name__ == "__main__":
    main()
