"""Default router (embedded MiniLM) vs the TF-IDF baseline, side by side, on real data.

Reads ``../shared/data`` (Banking77 and the multilingual support tickets), trains both routers on the same split,
and prints test accuracy, macro-F1 per head, training time and inference tickets/s in one table.

Usage:
    python benchmarks/router.py                          # both data sets, default config
    python benchmarks/router.py --datasets banking77 --config configs/router/banking77.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TRIAGEKIT_SHARED_DATA", ROOT.parent / "shared" / "data"))


def prepare_banking77(out: Path) -> tuple[Path, list[str], list[str]]:
    """Official train split -> train/val (5% val, stratified); official test split -> test."""
    from triagekit.data import load_records, prepare, write_jsonl

    prepare(SHARED / "banking77" / "train.csv", out, text_fields=["text"], label_fields=["category"],
            val_fraction=0.05, test_fraction=0.0, seed=0)
    test, errors = load_records(SHARED / "banking77" / "test.csv", ["text"], ["category"])
    assert not errors, errors[:3]
    write_jsonl(out / "test.jsonl", test)
    return out, ["text"], ["category"]


def prepare_tickets(out: Path) -> tuple[Path, list[str], list[str]]:
    from triagekit.data import prepare

    labels = ["queue", "priority", "type"]
    prepare(SHARED / "support-tickets" / "tickets.csv", out, text_fields=["subject", "body"], label_fields=labels,
            val_fraction=0.1, test_fraction=0.15, seed=0)
    return out, ["subject", "body"], labels


DATASETS = {"banking77": prepare_banking77, "tickets": prepare_tickets}


def run_one(name: str, kind: str, cfg, data: Path, out: Path, resume: bool = False) -> list[dict]:
    from rich.console import Console

    from triagekit.data import load_prepared
    from triagekit.route.evaluate import evaluate
    from triagekit.route.router import Router
    from triagekit.route.train import train

    result = train(cfg, data, out, resume=resume, overwrite=not resume, console=Console(stderr=True))
    router = Router.load(out)
    test = load_prepared(data)["test"]
    texts = router.texts(test)
    router.logits(texts[:64])  # warm-up
    start = time.perf_counter()
    router.predict_proba(texts, batch_size=64)
    per_second = len(texts) / (time.perf_counter() - start)
    val = load_prepared(data).get("val")
    metrics = evaluate(router, test, out / "eval", val_rows=val, plots=False)
    rows = [{
        "dataset": name, "router": kind + ("+tfidf" if cfg.hybrid else ""), "train_seconds": result.train_seconds,
        "tickets_per_second": per_second, "device": device_name(),
        "trainable_parameters": result.parameters.get("trainable", 0),
        "heads": {h: {"accuracy": m.get("accuracy"), "macro_f1": m.get("macro_f1")}
                  for h, m in metrics["heads"].items()},
    }]
    if cfg.hybrid:  # the encoder alone, from the same run: lexical weights set to 0
        router.backend.weights = {h: 0.0 for h in router.backend.weights}
        start = time.perf_counter()
        router.predict_proba(texts, batch_size=64)
        alone_per_second = len(texts) / (time.perf_counter() - start)
        alone = evaluate(router, test, out / "eval-encoder-only", val_rows=val, plots=False)
        rows.append({**rows[0], "router": kind, "tickets_per_second": alone_per_second,
                     "heads": {h: {"accuracy": m.get("accuracy"), "macro_f1": m.get("macro_f1")}
                               for h, m in alone["heads"].items()}})
    return rows


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (torch {torch.__version__})"
    return f"CPU, {torch.get_num_threads()} threads (torch {torch.__version__})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="banking77,tickets")
    parser.add_argument("--config", action="append", metavar="YAML",
                        help="a neural router preset; repeat it to put several beside the TF-IDF baseline "
                             "(default: configs/router/minilm.yaml)")
    parser.add_argument("--out", default=str(ROOT / "results" / "router"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--resume", action="store_true", help="continue killed runs from their checkpoints")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from triagekit.route.config import load_config, parse_overrides

    out = Path(args.out)
    rows = []
    for name in args.datasets.split(","):
        data, text_fields, labels = DATASETS[name](out / name / "data")
        base = dict(labels=labels, text_fields=text_fields, **parse_overrides(args.set))
        for config in args.config or [str(ROOT / "configs" / "router" / "minilm.yaml")]:
            neural = load_config(config, **base)
            run_dir = out / name / Path(config).stem
            rows += run_one(name, f"{neural.backbone}/{neural.method}", neural, data, run_dir, args.resume)
        # The baseline takes the data fields and seed from --set, never the neural backbone or the hybrid switch.
        tfidf = load_config(None, **{**base, "backbone": "tfidf", "method": "full", "hybrid": False})
        rows += run_one(name, "tfidf", tfidf, data, out / name / "tfidf")
        (out / "results.json").write_text(json.dumps(rows, indent=2))

    table = Table(title="router benchmark (test split)")
    for col in ["data set", "router", "head", "accuracy", "macro-F1", "train s", "trainable params", "tickets/s"]:
        table.add_column(col, justify="left" if col in ("data set", "router", "head") else "right")
    for r in rows:
        for head, m in r["heads"].items():
            table.add_row(r["dataset"], r["router"], head, f"{100 * m['accuracy']:.2f}", f"{100 * m['macro_f1']:.2f}",
                          f"{r['train_seconds']:.0f}", f"{r['trainable_parameters']:,}",
                          f"{r['tickets_per_second']:.0f}")
    Console().print(table)
    for name in args.datasets.split(","):
        t = next((r for r in rows if r["dataset"] == name and r["router"] == "tfidf"), None)
        for n in (r for r in rows if r["dataset"] == name and r is not t):
            deltas = ", ".join(
                f"{h} acc {100 * (m['accuracy'] - t['heads'][h]['accuracy']):+.2f} / macro-F1 "
                f"{100 * (m['macro_f1'] - t['heads'][h]['macro_f1']):+.2f}" for h, m in n["heads"].items())
            print(f"{name}: {n['router']} vs TF-IDF: {deltas}; train time ratio "
                  f"{n['train_seconds'] / max(t['train_seconds'], 1e-9):.1f}x, "
                  f"throughput ratio {n['tickets_per_second'] / t['tickets_per_second']:.2f}x")
    print(f"device: {device_name()}; results: {out / 'results.json'}")


if __name__ == "__main__":
    main()
