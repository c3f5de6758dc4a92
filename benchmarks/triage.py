"""Triage benchmark: SmolLM2-135M tuned for triage vs the untuned base (same schema, schema in its prompt) vs a
TF-IDF router, on a held-out synthetic set; JSON validity with and without the grammar, per-field accuracy and
macro-F1, summary ROUGE-L / embedding similarity, and tokens/s constrained vs unconstrained in the same run.

    python benchmarks/triage.py                       # synthesise, train (the smollm2 triage preset), evaluate
    python benchmarks/triage.py --run runs/triage     # evaluate an existing `triage train` run

Test tickets whose text also occurs in the training data are dropped before the first ``--n-test`` are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]


def _train(args, train_file: Path, val_file: Path) -> tuple[Path, float]:
    from triagekit.core.presets import resolve_preset
    from triagekit.sft import load_sft_config
    from triagekit.triage import train_triage

    out = Path(args.out) / "run"
    cfg = load_sft_config(resolve_preset("smollm2", "triage"), num_threads=args.threads)
    start = time.perf_counter()
    train_triage(cfg, train_file, out, val=val_file, overwrite=True)
    return out, time.perf_counter() - start


def _router(train_rows, test_rows, fields, workdir: Path) -> dict[str, list[str]]:
    """A TF-IDF router (word + char n-grams, logistic regression per field) trained on the same tickets."""
    from triagekit.route.config import TrainConfig
    from triagekit.route.router import Router
    from triagekit.route.train import train

    flat = workdir / "router.jsonl"
    flat.write_text("".join(json.dumps({"text": r["text"], **r["triage"]}) + "\n" for r in train_rows))
    cfg = TrainConfig(backbone="tfidf", labels=list(fields), text_fields=["text"], split="none", tensorboard=False)
    train(cfg, flat, workdir / "router", overwrite=True)
    preds = Router.load(workdir / "router").predict([{"text": r["text"]} for r in test_rows])
    return {f: [p[f]["label"] for p in preds] for f in fields}


def _run(triager, texts, *, constrained, jump_forward=True, batch_size, max_new_tokens):
    results = triager.triage(texts, constrained=constrained, jump_forward=jump_forward, batch_size=batch_size,
                             max_new_tokens=max_new_tokens)
    s = triager.lm.last_stats
    return results, {"tokens": s.tokens, "forced": s.forced, "forwards": s.forwards, "seconds": s.seconds,
                     "tokens_per_s": s.tokens / max(s.seconds, 1e-9), "tickets_per_s": len(texts) / s.seconds}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default=None, help="an existing triage run (default: train one)")
    p.add_argument("--train-data", default=None, help="its training JSONL (default: synth 1000, seed 0)")
    p.add_argument("--n-test", type=int, default=300)
    p.add_argument("--base", default="smollm2")
    p.add_argument("--base-free-n", type=int, default=100, help="tickets for the base model without grammar")
    p.add_argument("--speed-n", type=int, default=40, help="tickets for the batch-1 speed comparison")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=160)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "runs" / "bench-triage"))
    args = p.parse_args()

    import torch

    from triagekit.triage import Triager, load_schema, read_triage_rows, synth_tickets, write_triage_synth
    from triagekit.triage.evaluate import evaluate_triage

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    schema = load_schema()
    train_file = Path(args.train_data) if args.train_data else write_triage_synth(1000, out / "train.jsonl", seed=0)
    train_rows, _ = read_triage_rows(train_file, schema)
    report: dict = {"train_examples": len(train_rows)}
    if args.run:
        run = Path(args.run)
    else:
        run, report["train_seconds"] = _train(args, train_file, write_triage_synth(80, out / "val.jsonl", seed=500))
    seen = {r["text"] for r in train_rows}
    candidates = synth_tickets(4 * args.n_test, seed=1000)
    test, dropped = [], 0
    for r in candidates:
        if len(test) == args.n_test:
            break
        if r["text"] in seen:
            dropped += 1
        else:
            test.append(r)
    report["test_dropped_as_seen_in_train"] = dropped
    texts, gold = [r["text"] for r in test], [r["triage"] for r in test]
    kw = dict(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)

    tuned, base = Triager.load(run, device="cpu"), Triager.load(args.base, schema=schema, device="cpu")
    tuned.constraint(), base.constraint()  # compile once, outside the timings
    rows = {}
    res, speed_c = _run(tuned, texts, constrained=True, **kw)
    rows["tuned, grammar"] = (evaluate_triage(res, gold, schema), speed_c)
    res, speed_u = _run(tuned, texts, constrained=False, **kw)
    rows["tuned, free"] = (evaluate_triage(res, gold, schema), speed_u)
    res, speed = _run(base, texts, constrained=True, **kw)
    rows["base + schema prompt, grammar"] = (evaluate_triage(res, gold, schema), speed)
    n_free = min(args.base_free_n, len(texts))
    res, speed = _run(base, texts[:n_free], constrained=False, **kw)
    rows[f"base + schema prompt, free ({n_free})"] = (evaluate_triage(res, gold[:n_free], schema), speed)

    speed_rows = {"batch %d: free" % args.batch_size: speed_u, "batch %d: grammar + jump-forward" % args.batch_size:
                  speed_c}
    n = min(args.speed_n, len(texts))
    _, speed_rows[f"batch {args.batch_size}: grammar, no jump-forward"] = _run(tuned, texts[:n], constrained=True,
                                                                              jump_forward=False, **kw)
    for label, c, j in [("free", False, False), ("grammar, no jump-forward", True, False),
                        ("grammar + jump-forward", True, True)]:
        _, speed_rows[f"batch 1: {label}"] = _run(tuned, texts[:n], constrained=c, jump_forward=j, batch_size=1,
                                                  max_new_tokens=args.max_new_tokens)

    with tempfile.TemporaryDirectory() as tmp:
        shared = ["category", "subcategory", "priority", "assignment_group", "request_type"]
        router = _router(train_rows, test, shared, Path(tmp))
    router_acc = {f: sum(a == g[f] for a, g in zip(router[f], gold)) / len(gold) for f in shared}

    fields = list(schema.enum_fields)
    print(f"\n## Triage: {len(test)} held-out synthetic tickets ({report['train_examples']} training tickets; "
          f"{dropped} generated test tickets dropped because their text occurs in training)\n")
    print("| model | valid JSON | exact match | " + " | ".join(f"{f} acc / F1" for f in fields)
          + " | summary ROUGE-L | summary emb. sim. |")
    print("|---" * (len(fields) + 5) + "|")
    for name, (m, _) in rows.items():
        cells = [f"{100 * m['fields'][f]['accuracy']:.1f} / {100 * m['fields'][f]['macro_f1']:.1f}" for f in fields]
        summ = m.get("summary", {})
        print(f"| {name} | {100 * m['valid_rate']:.1f}% | {100 * m['exact_match']:.1f} | " + " | ".join(cells)
              + f" | {summ.get('rouge_l', 0):.3f} | {summ.get('embedding_similarity', 0):.3f} |")
    print("| TF-IDF router (same training tickets) | n/a | - | "
          + " | ".join(f"{100 * router_acc[f]:.1f} / -" if f in router_acc else "-" for f in fields) + " | - | - |")
    print("\n| decoding (tuned model) | tokens/s | tickets/s | forced tokens | model calls | vs free |")
    print("|---|---|---|---|---|---|")
    for name, s in speed_rows.items():
        ref = speed_rows[f"batch {name.split(':')[0].split()[1]}: free"]["tokens_per_s"]
        print(f"| {name} | {s['tokens_per_s']:.1f} | {s['tickets_per_s']:.2f} | {s['forced']}/{s['tokens']} | "
              f"{s['forwards']} | {100 * s['tokens_per_s'] / ref:.0f}% |")
    if "train_seconds" in report:
        print(f"\ntraining: {report['train_seconds']:.0f} s")
    report.update(rows={k: {"metrics": m, "speed": s} for k, (m, s) in rows.items()}, speed=speed_rows,
                  router_accuracy=router_acc, n_test=len(test), run=str(run))
    (out / "results.json").write_text(json.dumps(report, indent=2))
    print(f"results: {out / 'results.json'}")


if __name__ == "__main__":
    main()
