"""Open-intent detection on Banking77: out-of-scope detectors side by side, on the standard protocol.

Protocol (Shu et al., 2017; Zhang et al., 2021, "Deep open intent classification with adaptive decision
boundary"): keep a random ``--known`` share of the 77 intents as known, train on their training rows only (10 %
of them held out as validation), test on the whole official test split, where every other intent is the open
class. Each class split is drawn by its seed (``--splits`` of them).

One router is trained per split; every detector is then fitted post hoc on that router's outputs (training rows:
statistics; validation rows: the threshold for ``--target-rejection`` of in-scope tickets), so all detectors
score the same features. Per detector: known-class accuracy (known test tickets given their right intent and not
rejected), open-class recall / precision / F1, macro-F1 over the n + 1 classes, accuracy over the n + 1 classes
and the AUROC of the score (known vs open test tickets). ``closed_acc`` is the same router without rejection, the
closed-set reference on the same classes.

``--topics`` clusters the tickets the best detector flags (``route.topics``) and reports how well the clusters
recover the held-out intents (adjusted Rand index and purity over the flagged open-class tickets).

Usage:
    python benchmarks/open_intent.py                                   # 75/50/25 % known x 3 splits, minilm
    python benchmarks/open_intent.py --known 0.75 --splits 1 --config minilm-head
    python benchmarks/open_intent.py --known 67 --splits 1 --topics    # 10 intents held out, topic recovery
    python benchmarks/open_intent.py --known 0.75 --splits 1 --frozen  # no fine-tune: frozen MiniLM features
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from router import shared_data  # noqa: E402

OPEN = "<open>"
DETECTORS = ("msp", "energy", "mahalanobis", "knn")
SPLITS = ("train", "val", "test")


def known_intents(categories: list[str], known: float, seed: int) -> list[str]:
    """``known`` as a share (0.75) or a count (67) of the intents, drawn with ``seed``."""
    n = int(known) if known > 1 else round(known * len(categories))
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(sorted(categories), size=n, replace=False).tolist())


def prepare_split(work: Path, known: list[str], seed: int) -> Path:
    """Known-intent training rows -> train/val (10 % val, stratified); the whole official test split -> test."""
    from triagekit.data import load_records, prepare, write_jsonl

    shared = shared_data() / "banking77"
    data = work / "data"
    if (data / "test.jsonl").exists():
        return data
    work.mkdir(parents=True, exist_ok=True)
    keep = set(known)
    with (shared / "train.csv").open(newline="") as f, (work / "known.csv").open("w", newline="") as out:
        reader = csv.DictReader(f)
        writer = csv.DictWriter(out, fieldnames=reader.fieldnames)
        writer.writeheader()
        writer.writerows(r for r in reader if r["category"] in keep)
    prepare(
        work / "known.csv",
        data,
        text_fields=["text"],
        label_fields=["category"],
        val_fraction=0.1,
        test_fraction=0.0,
        seed=seed,
    )
    test, errors = load_records(shared / "test.csv", ["text"], ["category"])
    assert not errors, errors[:3]
    write_jsonl(data / "test.jsonl", test)
    return data


def train_router(args, data: Path, run: Path) -> None:
    from rich.console import Console

    from triagekit.route.config import load_config, parse_overrides
    from triagekit.route.train import train

    if (run / "router.json").exists():
        return
    overrides = parse_overrides(args.set)
    if args.epochs:
        overrides["epochs"] = args.epochs
    cfg = load_config(args.config, labels=["category"], text_fields=["text"], ood_detector="none", **overrides)
    train(cfg, data, run, overwrite=True, console=Console(stderr=True))


def cached_outputs(run: Path, data: Path) -> dict[str, dict[str, np.ndarray]]:
    """The router's outputs (corrected logits and pooled features) on every split, cached in the run folder."""
    from triagekit.data import load_prepared
    from triagekit.route.router import Router

    cache = run / "open_intent_outputs.npz"
    if cache.exists():
        with np.load(cache) as z:
            out: dict[str, dict[str, np.ndarray]] = {s: {} for s in SPLITS}
            for key in z.files:
                split, name = key.split("/", 1)
                out[split][name] = z[key]
            return out
    router = Router.load(run)
    splits = load_prepared(data)
    out = {s: router.outputs(splits[s], batch_size=64) for s in SPLITS}
    np.savez(cache, **{f"{s}/{k}": v for s, o in out.items() for k, v in o.items()})
    return out


def frozen_outputs(work: Path, data: Path, known: list[str]) -> tuple[dict, list[str], float]:
    """``--frozen``: the head-only router's features (the untuned MiniLM, mean-pooled, as ``method: head``
    reads them) with a multinomial logistic regression head fitted on the training features, its temperature on
    validation. One forward pass per ticket instead of a fine-tune: for CPU-starved runs."""
    from sklearn.linear_model import LogisticRegression

    from triagekit.core.backbones import minilm_path
    from triagekit.data import load_prepared
    from triagekit.route.calibration import fit_temperature
    from triagekit.route.heads import HeadSpec, build_text
    from triagekit.route.modeling import MultiHeadModel, load_backbone
    from triagekit.route.oos import FEATURES
    from triagekit.route.router import EncoderBackend

    labels = sorted(known)
    cache = work / "frozen_outputs.npz"
    rows = load_prepared(data)
    if cache.exists():
        with np.load(cache) as z:
            feats = {s: z[s] for s in SPLITS}
    else:
        from transformers import AutoTokenizer

        head = HeadSpec("category", labels)
        model = MultiHeadModel(load_backbone(str(minilm_path())), [head], pooling="mean", dropout=0.0).eval()
        backend = EncoderBackend(model, AutoTokenizer.from_pretrained(str(minilm_path())), [head], 128)
        feats = {s: backend.outputs([build_text(r, ["text"]) for r in rows[s]])[FEATURES] for s in SPLITS}
        np.savez(cache, **feats)
    index = {c: i for i, c in enumerate(labels)}
    y = np.array([index[r["category"]] for r in rows["train"]])
    clf = LogisticRegression(C=10.0, max_iter=3000).fit(feats["train"], y)
    out = {s: {"category": clf.decision_function(feats[s]), FEATURES: feats[s]} for s in SPLITS}
    vy = np.array([index[r["category"]] for r in rows["val"]])
    return out, labels, float(fit_temperature(out["val"]["category"], vy))


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / max(2 * tp + fp + fn, 1)


def open_metrics(pred: list[str], gold: list[str], known: set[str], scores: np.ndarray) -> dict[str, float]:
    """Known accuracy, open recall / precision / F1, macro-F1 over n + 1 classes, n+1 accuracy, AUROC."""
    from sklearn.metrics import f1_score

    from triagekit.route.oos import auroc

    pred_a, gold_a = np.array(pred), np.array(gold)
    is_open = gold_a == OPEN
    flagged = pred_a == OPEN
    tp = int((flagged & is_open).sum())
    labels = sorted(known) + [OPEN]
    per_class = f1_score(gold_a, pred_a, labels=labels, average=None, zero_division=0)
    return {
        "known_acc": float((pred_a[~is_open] == gold_a[~is_open]).mean()),
        "open_recall": tp / max(int(is_open.sum()), 1),
        "open_precision": tp / max(int(flagged.sum()), 1),
        "open_f1": _f1(tp, int((flagged & ~is_open).sum()), int((~flagged & is_open).sum())),
        "known_f1": float(per_class[:-1].mean()),
        "macro_f1": float(per_class.mean()),
        "accuracy": float((pred_a == gold_a).mean()),
        "auroc": auroc(scores[~is_open], scores[is_open]),
    }


def router_outputs(run: Path, data: Path) -> tuple[dict, list[str], float]:
    """The trained router's outputs on every split, its class labels and temperature."""
    from triagekit.route.heads import HeadSpec

    info = json.loads((run / "router.json").read_text())
    head = HeadSpec.from_dict(info["heads"][0])
    return cached_outputs(run, data), head.labels, float(info["calibration"].get(head.name, {}).get("temperature", 1))


def evaluate_split(args, outputs: tuple[dict, list[str], float], data: Path, known: list[str]) -> dict:
    """Every detector (and rejection target) on one router's outputs; plus the closed-set accuracy."""
    from triagekit.data import load_prepared
    from triagekit.route.heads import HeadSpec, row_targets
    from triagekit.route.oos import FEATURES, fit_out_of_scope

    out, labels, temperature = outputs
    head = HeadSpec("category", labels)
    rows = load_prepared(data)
    gold = [r["category"] if r["category"] in set(known) else OPEN for r in rows["test"]]
    is_known = np.array([g != OPEN for g in gold])
    argmax = [head.labels[i] for i in out["test"][head.name].argmax(1)]
    closed_acc = float(np.mean([p == g for p, g, k in zip(argmax, gold, is_known) if k]))
    targets = {s: row_targets(rows[s], [head]) for s in ("train", "val")}
    result = {"closed_acc": closed_acc, "detectors": {}}
    for detector in args.detectors:
        for rate in args.target_rejection:
            oos = fit_out_of_scope(
                detector,
                [head],
                out["train"],
                targets["train"],
                out["val"],
                targets["val"],
                {head.name: temperature},
                rate,
            )
            scores, flags = oos.flags(head.name, out["test"][head.name], out["test"].get(FEATURES), temperature)
            pred = [OPEN if f else p for p, f in zip(argmax, flags)]
            m = open_metrics(pred, gold, set(known), scores)
            result["detectors"][f"{detector}@{rate:g}"] = m
            if detector == args.topic_detector and rate == args.target_rejection[0]:
                result["_flags"] = flags
    if args.topics:
        result["topics"] = topic_recovery(rows["test"], out["test"], result.pop("_flags"), gold)
    result.pop("_flags", None)
    return result


def topic_recovery(rows: list[dict], outputs: dict, flags: np.ndarray, gold: list[str]) -> dict:
    """Cluster the flagged tickets; ARI and purity of the clusters against the true intents of the flagged
    open-class tickets (each held-out intent should be one topic)."""
    from sklearn.metrics import adjusted_rand_score

    from triagekit.route.oos import FEATURES
    from triagekit.route.topics import find_topics

    idx = np.flatnonzero(flags)
    topics, assign = find_topics([rows[i]["text"] for i in idx], outputs[FEATURES][idx])
    true = [rows[i]["category"] for i in idx]
    open_mask = np.array([gold[i] == "<open>" for i in idx])
    a, t = np.asarray(assign)[open_mask], np.asarray(true)[open_mask]
    clustered = a >= 0
    purity = 0.0
    for c in set(a[clustered].tolist()):
        members = t[a == c]
        purity += max(np.unique(members, return_counts=True)[1])
    held_out = sorted(set(t.tolist()))
    # An intent is recovered when some topic is mostly it (majority) and holds at least a third of its flagged
    # tickets.
    recovered = 0
    for intent in held_out:
        n = int((t == intent).sum())
        for c in set(a[clustered].tolist()):
            members = t[a == c]
            hits = int((members == intent).sum())
            if hits * 2 > len(members) and hits * 3 >= n:
                recovered += 1
                break
    return {
        "flagged": len(idx),
        "flagged_open": int(open_mask.sum()),
        "topics": len(topics),
        "ari": float(adjusted_rand_score(t[clustered], a[clustered])) if clustered.any() else 0.0,
        "purity": purity / max(int(clustered.sum()), 1),
        "held_out_intents_flagged": len(held_out),
        "held_out_intents_recovered": recovered,
        "examples": [{"size": tp["size"], "terms": tp["terms"][:6]} for tp in topics[:8]],
    }


def summarise(results: list[dict]) -> dict:
    """Mean and standard deviation over the class splits of each (known share, detector)."""
    table: dict = {}
    for r in results:
        for det, m in r["detectors"].items():
            for k, v in m.items():
                table.setdefault((r["known"], det), {}).setdefault(k, []).append(v)
        table.setdefault((r["known"], "closed"), {}).setdefault("known_acc", []).append(r["closed_acc"])
    return {
        f"{known}|{det}": {k: (float(np.mean(v)), float(np.std(v)), len(v)) for k, v in ms.items()}
        for (known, det), ms in table.items()
    }


def print_table(summary: dict) -> None:
    cols = ("known_acc", "open_recall", "open_f1", "known_f1", "macro_f1", "accuracy", "auroc")
    print(f"\n{'known':>6} {'detector':<18}" + "".join(f"{c:>13}" for c in cols))
    for key, ms in summary.items():
        known, det = key.split("|")
        cells = "".join(f"{100 * ms[c][0]:>8.2f}±{100 * ms[c][1]:<4.1f}" if c in ms else f"{'':>13}" for c in cols)
        print(f"{known:>6} {det:<18}{cells}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--known", default="0.75,0.5,0.25", help="known intents: shares (0.75) or counts (67)")
    p.add_argument("--splits", type=int, default=3, help="random class splits (seeds 0..n-1)")
    p.add_argument("--seeds", default=None, help="explicit seeds instead of --splits, e.g. 1,2")
    p.add_argument("--config", default="minilm", help="router preset or YAML")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--frozen", action="store_true", help="untuned MiniLM features + logistic head (no fine-tune)")
    p.add_argument("--set", action="append", default=[], help="config override key=value (repeatable)")
    p.add_argument("--detectors", default=",".join(DETECTORS))
    p.add_argument("--target-rejection", default="0.05", help="in-scope validation rejection rates, e.g. 0.05,0.1")
    p.add_argument("--topics", action="store_true", help="cluster the flagged test tickets (route.topics)")
    p.add_argument("--topic-detector", default="mahalanobis")
    p.add_argument("--work", default="/tmp/triagekit-open-intent", help="runs and caches (reused when present)")
    p.add_argument("--json", default=None, help="write every figure here")
    args = p.parse_args(argv)
    args.detectors = args.detectors.split(",")
    args.target_rejection = [float(x) for x in args.target_rejection.split(",")]
    categories = json.loads((shared_data() / "banking77" / "categories.json").read_text())
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else list(range(args.splits))
    results = []
    for known_share in [float(k) for k in args.known.split(",")]:
        for seed in seeds:
            known = known_intents(categories, known_share, seed)
            tag = f"{args.config}-e{args.epochs or 'preset'}-k{known_share:g}-s{seed}"
            work = Path(args.work) / ("frozen-minilm" + tag[tag.index("-k") :] if args.frozen else tag)
            data = prepare_split(work, known, seed)
            started = time.perf_counter()
            if args.frozen:
                outputs = frozen_outputs(work, data, known)
            else:
                train_router(args, data, work / "run")
                outputs = router_outputs(work / "run", data)
            seconds = time.perf_counter() - started
            r = evaluate_split(args, outputs, data, known)
            r.update(known=f"{known_share:g}", seed=seed, n_known=len(known), fit_seconds=round(seconds, 1))
            results.append(r)
            print(json.dumps({k: v for k, v in r.items() if k != "detectors"}, default=str), flush=True)
    summary = summarise(results)
    print_table(summary)
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results, "summary": summary}, indent=2, default=str))


if __name__ == "__main__":
    main()
