"""Router presets vs the tuned TF-IDF baseline and SetFit, side by side, on real data, in one run.

Reads ``../shared/data`` (Banking77 and the en/de support tickets), trains every router on the same split and
prints, per head, test accuracy, macro-F1 and ECE, with training time, peak RSS of training and of prediction
(each phase runs in its own process, so the figures do not mix), tickets/s and the review operating point
(share auto-routed, accuracy of the auto-routed tickets vs the flagged ones).

Rows:
- each ``--config`` preset (default: ``minilm``, the MiniLM + TF-IDF hybrid; for a hybrid also its encoder alone);
- ``tfidf``: word 1-2 + char_wb 2-5 sublinear TF-IDF + logistic regression, ``class_weight="balanced"``, C chosen
  per head on validation macro-F1 (what a careful engineer would use, not an untuned C);
- ``setfit``: SetFit (contrastive fine-tuning of the same MiniLM body, then a class-balanced logistic head), one
  model per head.

Usage:
    python benchmarks/router.py                                   # both data sets, minilm + tfidf + setfit
    python benchmarks/router.py --datasets tickets --routers tfidf,setfit
    python benchmarks/router.py --datasets banking77 --config minilm --config smollm2-lora
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    """``$TRIAGEKIT_SHARED/data``, else ``<repo>/../shared/data``, else ``/work/shared/data``."""
    for base in (os.environ.get("TRIAGEKIT_SHARED"), ROOT.parent / "shared", Path("/work/shared")):
        if base and (Path(base) / "data").is_dir():
            return Path(base) / "data"
    raise FileNotFoundError("no shared data: set TRIAGEKIT_SHARED to the folder holding data/banking77")


def prepare_banking77(out: Path) -> tuple[Path, list[str], list[str]]:
    """Official train split -> train/val (5% val, stratified); official test split -> test."""
    from triagekit.data import load_records, prepare, write_jsonl

    shared = shared_data()
    prepare(
        shared / "banking77" / "train.csv",
        out,
        text_fields=["text"],
        label_fields=["category"],
        val_fraction=0.05,
        test_fraction=0.0,
        seed=0,
    )
    test, errors = load_records(shared / "banking77" / "test.csv", ["text"], ["category"])
    assert not errors, errors[:3]
    write_jsonl(out / "test.jsonl", test)
    return out, ["text"], ["category"]


def prepare_tickets(out: Path) -> tuple[Path, list[str], list[str]]:
    """Stratified 75/10/15 split of the 2,181 en/de tickets; the test split is never tuned on."""
    from triagekit.data import prepare

    labels = ["queue", "priority", "type"]
    prepare(
        shared_data() / "support-tickets" / "tickets.csv",
        out,
        text_fields=["subject", "body"],
        label_fields=labels,
        val_fraction=0.1,
        test_fraction=0.15,
        seed=0,
    )
    return out, ["subject", "body"], labels


DATASETS = {"banking77": prepare_banking77, "tickets": prepare_tickets}


# ---------------------------------------------------------------------------------------------------------------
# phases, each in a fresh process so its peak RSS is its own
def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _child(job):
    fn, args = job
    result = fn(*args)
    return result, _peak_rss_mb()


def in_child(fn, *args):
    """``fn(*args)`` in a spawned process; returns ``(result, peak RSS of that process in MB)``."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_child, ((fn, args),))


def _summary(metrics: dict) -> dict:
    heads = {
        h: {"accuracy": m.get("accuracy"), "macro_f1": m.get("macro_f1"), "ece": m.get("ece")}
        for h, m in metrics["heads"].items()
    }
    r = metrics.get("review") or {}
    review = {k: r.get(k) for k in ("auto_routed", "all_heads_auto_accuracy", "all_heads_review_accuracy", "budget")}
    return {"heads": heads, "review": review}


def train_phase(cfg_dict: dict, data: str, out: str, resume: bool) -> dict:
    from rich.console import Console

    from triagekit.route.config import TrainConfig
    from triagekit.route.train import train

    started = time.perf_counter()
    result = train(
        TrainConfig(**cfg_dict), data, out, resume=resume, overwrite=not resume, console=Console(stderr=True)
    )
    return {
        "train_seconds": result.train_seconds,
        "wall_seconds": time.perf_counter() - started,
        "trainable_parameters": result.parameters.get("trainable", 0),
    }


def predict_phase(out: str, data: str, encoder_only: bool) -> dict:
    from triagekit.data import load_prepared
    from triagekit.route.evaluate import evaluate
    from triagekit.route.router import Router

    router = Router.load(out)
    splits = load_prepared(data)
    test, val = splits["test"], splits.get("val")
    if encoder_only:  # the encoder of a hybrid run alone: lexical weights set to 0
        router.backend.weights = {h: 0.0 for h in router.backend.weights}
    texts = router.texts(test)
    router.logits(texts[:64])  # warm-up
    start = time.perf_counter()
    router.predict_proba(texts, batch_size=64)
    per_second = len(texts) / (time.perf_counter() - start)
    review = router.review or {}
    metrics = evaluate(
        router,
        test,
        Path(out) / ("eval-encoder-only" if encoder_only else "eval"),
        val_rows=val,
        plots=False,
        review_budget=review.get("budget"),
        review_heads=review.get("heads"),
        target_precision=review.get("target_precision", 0.9),
    )
    return {"tickets_per_second": per_second, **_summary(metrics)}


def setfit_train_phase(data: str, out: str, labels: list[str], text_fields: list[str], steps: int, seed: int) -> dict:
    """One SetFit model per head on the training split (same MiniLM body, class-balanced logistic head)."""
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from triagekit.core.backbones import minilm_path
    from triagekit.data import load_prepared
    from triagekit.data.text import build_text

    rows = load_prepared(data)["train"]
    started = time.perf_counter()
    for head in labels:
        kept = [r for r in rows if r.get(head) is not None]
        model = SetFitModel.from_pretrained(
            str(minilm_path()), head_params={"class_weight": "balanced", "max_iter": 2000}
        )
        model.model_body.max_seq_length = 128
        ds = Dataset.from_dict(
            {"text": [build_text(r, text_fields) for r in kept], "label": [str(r[head]) for r in kept]}
        )
        args = TrainingArguments(
            output_dir=str(Path(out) / "checkpoints"),
            batch_size=16,
            num_epochs=1,
            max_steps=steps,
            seed=seed,
            report_to="none",
            save_strategy="no",
        )
        Trainer(model=model, args=args, train_dataset=ds).train()
        model.save_pretrained(str(Path(out) / head))
    return {
        "train_seconds": time.perf_counter() - started,
        "wall_seconds": time.perf_counter() - started,
        "trainable_parameters": 22_700_000,
    }


def setfit_predict_phase(data: str, out: str, labels: list[str], text_fields: list[str]) -> dict:
    from setfit import SetFitModel
    from sklearn.metrics import accuracy_score, f1_score

    from triagekit.data import load_prepared
    from triagekit.data.text import build_text

    test = load_prepared(data)["test"]
    texts = [build_text(r, text_fields) for r in test]
    heads, seconds = {}, 0.0
    for head in labels:
        model = SetFitModel.from_pretrained(str(Path(out) / head))
        start = time.perf_counter()
        pred = [str(p) for p in model.predict(texts, batch_size=64, as_numpy=True)]
        seconds += time.perf_counter() - start
        gold = [str(r.get(head)) for r in test]
        heads[head] = {
            "accuracy": accuracy_score(gold, pred),
            "macro_f1": f1_score(gold, pred, average="macro", zero_division=0),
            "ece": None,
        }
    # one model per head: a ticket costs one forward pass per head
    return {"tickets_per_second": len(texts) / seconds, "heads": heads, "review": {}}


# ---------------------------------------------------------------------------------------------------------------
def run_router(name: str, kind: str, cfg, data: Path, out: Path, resume: bool) -> list[dict]:
    trained, train_rss = in_child(train_phase, cfg.to_dict(), str(data), str(out), resume)
    predicted, predict_rss = in_child(predict_phase, str(out), str(data), False)
    row = {
        "dataset": name,
        "router": kind,
        "device": device_name(),
        **trained,
        **predicted,
        "train_rss_mb": train_rss,
        "predict_rss_mb": predict_rss,
    }
    rows = [row]
    if cfg.hybrid:
        alone, rss = in_child(predict_phase, str(out), str(data), True)
        rows.append({**row, **alone, "router": kind.replace("+tfidf", ""), "predict_rss_mb": rss})
    return rows


def run_setfit(name: str, data: Path, out: Path, labels, text_fields, steps: int, seed: int) -> list[dict]:
    trained, train_rss = in_child(setfit_train_phase, str(data), str(out), labels, text_fields, steps, seed)
    predicted, predict_rss = in_child(setfit_predict_phase, str(data), str(out), labels, text_fields)
    return [
        {
            "dataset": name,
            "router": f"setfit ({steps} steps/head)",
            "device": device_name(),
            **trained,
            **predicted,
            "train_rss_mb": train_rss,
            "predict_rss_mb": predict_rss,
        }
    ]


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (torch {torch.__version__})"
    return f"CPU, {torch.get_num_threads()} threads (torch {torch.__version__})"


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.2f}"


def markdown(rows: list[dict], dataset: str) -> str:
    """The rows of one data set as a markdown table (one line per router, heads side by side)."""
    rows = [r for r in rows if r["dataset"] == dataset]
    if not rows:
        return ""
    heads = list(rows[0]["heads"])
    cols = (
        ["router"]
        + [f"{h} acc / F1" for h in heads]
        + ["train s", "train RSS MB", "predict RSS MB", "tickets/s", "auto-routed (acc auto vs flagged)"]
    )
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        rv = r.get("review") or {}
        review = (
            f"{_pct(rv.get('auto_routed'))} % ({_pct(rv.get('all_heads_auto_accuracy'))} vs "
            f"{_pct(rv.get('all_heads_review_accuracy'))})"
            if rv.get("auto_routed") is not None
            else "–"
        )
        cells = [r["router"]] + [
            f"{_pct(r['heads'][h]['accuracy'])} / {_pct(r['heads'][h]['macro_f1'])}" for h in heads
        ]
        cells += [
            f"{r['train_seconds']:.0f}",
            f"{r['train_rss_mb']:.0f}",
            f"{r['predict_rss_mb']:.0f}",
            f"{r['tickets_per_second']:.0f}",
            review,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="banking77,tickets")
    parser.add_argument(
        "--config",
        action="append",
        metavar="PRESET",
        help="a neural router preset name or YAML; repeatable (default: minilm)",
    )
    parser.add_argument("--routers", default="neural,tfidf,setfit", help="which rows to run, comma-separated")
    parser.add_argument(
        "--setfit-steps",
        type=int,
        default=0,
        help="SetFit contrastive steps per head (0: 1,000 for Banking77, 500 for the tickets)",
    )
    parser.add_argument("--out", default=str(ROOT / "results" / "router"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--resume", action="store_true", help="continue killed runs from their checkpoints")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from triagekit.route.config import load_config, parse_overrides

    out = Path(args.out)
    routers = set(args.routers.split(","))
    rows = []
    for name in args.datasets.split(","):
        data, text_fields, labels = DATASETS[name](out / name / "data")
        base = dict(labels=labels, text_fields=text_fields, **parse_overrides(args.set))
        if "neural" in routers:
            for config in args.config or ["minilm"]:
                neural = load_config(config, **base)
                kind = f"{Path(config).stem}: {neural.backbone}/{neural.method}" + ("+tfidf" if neural.hybrid else "")
                rows += run_router(name, kind, neural, data, out / name / Path(config).stem, args.resume)
                (out / "results.json").write_text(json.dumps(rows, indent=2))
        if "tfidf" in routers:
            # The baseline takes the data fields and seed from --set, never the neural backbone or the hybrid switch;
            # no prior correction: it is the plain balanced, C-tuned model the comparison promises.
            tfidf = load_config(
                "tfidf",
                **{
                    **base,
                    "backbone": "tfidf",
                    "method": "full",
                    "hybrid": False,
                    "prior_correction": False,
                    "objective": "macro_f1",
                    "tfidf_C": None,
                },
            )
            rows += run_router(name, "tfidf (balanced, C on val)", tfidf, data, out / name / "tfidf", False)
        if "setfit" in routers:
            steps = args.setfit_steps or (1000 if name == "banking77" else 500)
            rows += run_setfit(name, data, out / name / "setfit", labels, text_fields, steps, base.get("seed", 0))
        (out / "results.json").write_text(json.dumps(rows, indent=2))

    table = Table(title="router benchmark (test split; %, F1 = macro-F1)")
    for col in [
        "data set",
        "router",
        "head",
        "acc",
        "F1",
        "ECE",
        "train s",
        "train RSS MB",
        "pred RSS MB",
        "tickets/s",
    ]:
        table.add_column(col, justify="left" if col in ("data set", "router", "head") else "right")
    for r in rows:
        for head, m in r["heads"].items():
            table.add_row(
                r["dataset"],
                r["router"],
                head,
                _pct(m["accuracy"]),
                _pct(m["macro_f1"]),
                "–" if m.get("ece") is None else f"{m['ece']:.3f}",
                f"{r['train_seconds']:.0f}",
                f"{r['train_rss_mb']:.0f}",
                f"{r['predict_rss_mb']:.0f}",
                f"{r['tickets_per_second']:.0f}",
            )
    Console().print(table)
    for name in args.datasets.split(","):
        print(f"\n{name}:\n{markdown(rows, name)}")
        t = next((r for r in rows if r["dataset"] == name and r["router"].startswith("tfidf")), None)
        for n in (r for r in rows if r["dataset"] == name and r is not t and t is not None):
            deltas = ", ".join(
                f"{h} acc {100 * (m['accuracy'] - t['heads'][h]['accuracy']):+.2f} / macro-F1 "
                f"{100 * (m['macro_f1'] - t['heads'][h]['macro_f1']):+.2f}"
                for h, m in n["heads"].items()
            )
            print(
                f"{name}: {n['router']} vs tuned TF-IDF: {deltas}; train time "
                f"{n['train_seconds']:.0f} s vs {t['train_seconds']:.0f} s"
            )
    print(f"device: {device_name()}; results: {out / 'results.json'}")


if __name__ == "__main__":
    main()
