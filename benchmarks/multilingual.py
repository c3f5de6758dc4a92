"""Multilingual routing on the en/de support tickets: tuned TF-IDF vs MiniLM vs the Gemma 3 preset, in one run.

Two comparisons, each on a test split never tuned on:
- ``crosslingual``: train (and validate) on the English tickets only, test on every German ticket.
- ``mixed``: the 2,181 en/de tickets split like ``benchmarks/router.py`` (val 10 %, test 15 %, seed 0); the neural
  row is what ``--backbone auto`` picks for them.

Every neural training runs as its own ``triagekit train`` process under ``/usr/bin/time``, so its wall time and
peak RSS are its own. Results are written to ``--out/results.json`` after each model, so a stopped run keeps what
it measured.

Usage (heavy: run under the shared CPU lock):
    flock /tmp/triagekit-cpu.lock python benchmarks/multilingual.py --set num_threads=2
    python benchmarks/multilingual.py --sections mixed --models tfidf,auto
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TRIAGEKIT_SHARED", ROOT.parent / "shared"))
if not (SHARED / "data").exists():
    SHARED = Path("/work/shared")
TICKETS = SHARED / "data" / "support-tickets" / "tickets.csv"
LABELS = ["queue", "priority", "type"]
TEXT = ["subject", "body"]
MODELS = {  # row name -> triagekit train arguments
    "minilm": ["--config", "minilm"],
    "gemma3": ["--config", "gemma3-lora"],
    "auto": ["--backbone", "auto"],
}


# ---------------------------------------------------------------------------------------------------------------
# data
def prepare_sections(out: Path) -> dict[str, Path]:
    """Prepared folders (train/val/test.jsonl) for both comparisons."""
    from triagekit.data import load_records, prepare, split_rows, write_jsonl

    mixed = out / "data-mixed"
    prepare(TICKETS, mixed, text_fields=TEXT, label_fields=LABELS, val_fraction=0.1, test_fraction=0.15, seed=0)
    rows, errors = load_records(TICKETS, TEXT, LABELS)
    assert not errors, errors[:3]
    cross = out / "data-crosslingual"
    cross.mkdir(parents=True, exist_ok=True)
    english = [r for r in rows if r.get("language") == "en"]
    splits = split_rows(english, "queue", val_fraction=0.1, test_fraction=0.0, seed=0)
    write_jsonl(cross / "train.jsonl", splits["train"])
    write_jsonl(cross / "val.jsonl", splits["val"])
    write_jsonl(cross / "test.jsonl", [r for r in rows if r.get("language") == "de"])
    return {"crosslingual": cross, "mixed": mixed}


# ---------------------------------------------------------------------------------------------------------------
# models
def scores(y_true: list[str], y_pred: list[str]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }


def tuned_tfidf(data: Path) -> dict:
    """The product's tuned baseline (``TfidfBackend.baseline``: word 1-2 + char_wb 2-5 sublinear TF-IDF, logistic
    regression with balanced classes, C per head on validation macro-F1), the same one ``route eval`` shows."""
    from triagekit.data import load_prepared
    from triagekit.data.text import build_text
    from triagekit.route.heads import heads_from_rows
    from triagekit.route.tfidf import TfidfBackend

    splits = load_prepared(data)
    heads = heads_from_rows(splits["train"], LABELS, [])
    started = time.perf_counter()
    model = TfidfBackend.baseline(splits["train"], heads, TEXT, val_rows=splits["val"])
    seconds = time.perf_counter() - started
    logits = model.logits([build_text(r, TEXT) for r in splits["test"]])
    out: dict = {"heads": {}, "C": dict(model.chosen_C), "train_seconds": seconds}
    for h in heads:
        pred = [h.labels[i] for i in logits[h.name].argmax(1)]
        out["heads"][h.name] = scores([str(r[h.name]) for r in splits["test"]], pred)
    return out


def neural(name: str, data: Path, run: Path, overrides: list[str]) -> dict:
    """``triagekit train`` in a child process under /usr/bin/time, then the saved router on the test split."""
    from triagekit.data import load_prepared
    from triagekit.route.router import Router

    timing = run.with_suffix(".time")
    cmd = [
        "/usr/bin/time",
        "-f",
        "%M %e",
        "-o",
        str(timing),
        sys.executable,
        "-m",
        "triagekit",
        "train",
        "--data",
        str(data),
        "--output",
        str(run),
        "--labels",
        ",".join(LABELS),
        "--overwrite",
        *MODELS[name],
    ]
    for pair in overrides:
        cmd += ["--set", pair]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    (run.parent / f"{run.name}.log").write_text(log)
    if proc.returncode:
        raise RuntimeError(f"{name} training failed ({proc.returncode}):\n{log[-3000:]}")
    peak_kb, wall = timing.read_text().split()[-2:]
    info = json.loads((run / "router.json").read_text())
    test = load_prepared(data)["test"]
    router = Router.load(run)
    started = time.perf_counter()
    predictions = router.predict(test, batch_size=32)
    predict_seconds = time.perf_counter() - started
    heads = {h: scores([r[h] for r in test], [p[h]["label"] for p in predictions]) for h in LABELS}
    picked = next((line for line in log.splitlines() if "backbone auto ->" in line), "")
    return {
        "heads": heads,
        "train_seconds": _train_seconds(log),
        "process_seconds": float(wall),
        "peak_rss_gb": int(peak_kb) / 2**20,
        "predict_seconds": predict_seconds,
        "backbone": info.get("meta", {}).get("backbone") or info.get("backbone"),
        "auto": picked.strip(),
    }


def _train_seconds(log: str) -> float | None:
    """The training loop's seconds from the CLI's summary line (``... steps, 123.4s) -> ...``)."""
    import re

    match = re.search(r"steps, ([\d.]+)s", log)
    return float(match.group(1)) if match else None


# ---------------------------------------------------------------------------------------------------------------
# report
def table(section: str, results: dict) -> str:
    lines = [
        f"{section}: test macro-F1 / accuracy (%); seconds of the training loop and of the whole `train` "
        "process (load, loop, validation, hybrid, save); peak RSS of that process",
        f"{'model':<8} "
        + " ".join(f"{h + ' F1/acc':>16}" for h in LABELS)
        + f" {'loop s':>7} {'total s':>8} {'RSS GB':>7}",
    ]
    for name, r in results.items():
        cells = " ".join(
            f"{100 * r['heads'][h]['macro_f1']:7.1f}/{100 * r['heads'][h]['accuracy']:<7.1f}" for h in LABELS
        )
        loop = r.get("train_seconds") or 0.0
        total = r.get("process_seconds") or loop
        rss = f"{r['peak_rss_gb']:.2f}" if "peak_rss_gb" in r else "-"
        lines.append(f"{name:<8} {cells} {loop:7.0f} {total:8.0f} {rss:>7}")
    return "\n".join(lines)


def goals(results: dict) -> list[str]:
    """Issue 13's goals on what was measured, one line each (a goal whose rows are missing is skipped)."""
    out = []
    cross, mixed = results.get("crosslingual", {}), results.get("mixed", {})

    def f1(r: dict, h: str) -> float:
        return r["heads"][h]["macro_f1"]

    if {"gemma3", "tfidf", "minilm"} <= set(cross):
        ok = all(f1(cross["gemma3"], h) > max(f1(cross["tfidf"], h), f1(cross["minilm"], h)) for h in LABELS)
        out.append(f"crosslingual: gemma3 beats TF-IDF and MiniLM on every head's macro-F1: {ok}")
        out.append(
            f"crosslingual: type macro-F1 {f1(cross['gemma3'], 'type'):.3f} >= 0.60: "
            f"{f1(cross['gemma3'], 'type') >= 0.60}"
        )
    if {"auto", "tfidf"} <= set(mixed):
        auto, base = mixed["auto"], mixed["tfidf"]
        gaps = {h: round(f1(auto, h) - f1(base, h), 3) for h in LABELS}
        acc = all(auto["heads"][h]["accuracy"] >= base["heads"][h]["accuracy"] for h in LABELS)
        out.append(
            f"mixed: auto - TF-IDF macro-F1 {gaps}, >= 0.03 on every head: {min(gaps.values()) >= 0.03}; "
            f"accuracy not worse on any head: {acc}"
        )
        out.append(
            f"mixed: auto trains in {auto['process_seconds']:.0f} s (TF-IDF {base['train_seconds']:.1f} s), "
            f"<= 1200 s: {auto['process_seconds'] <= 1200}; peak RSS {auto['peak_rss_gb']:.2f} GB < 4: "
            f"{auto['peak_rss_gb'] < 4}"
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="/tmp/triagekit-multilingual")
    ap.add_argument("--sections", default="mixed,crosslingual")
    ap.add_argument(
        "--models",
        default="tfidf,auto,minilm,gemma3",
        help="rows per section; auto runs in `mixed`, gemma3 in `crosslingual`, minilm in both",
    )
    ap.add_argument("--set", action="append", default=[], help="key=value for every neural training")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = prepare_sections(out)
    wanted = args.models.split(",")
    plan = {
        "mixed": [m for m in wanted if m in ("tfidf", "auto", "minilm")],
        "crosslingual": [m for m in wanted if m in ("tfidf", "gemma3", "minilm")],
    }
    results_file = out / "results.json"
    results: dict = json.loads(results_file.read_text()) if results_file.exists() else {}
    for section in args.sections.split(","):
        results.setdefault(section, {})
        for name in plan[section]:
            print(f"[{time.strftime('%H:%M:%S')}] {section}: {name}", flush=True)
            results[section][name] = (
                tuned_tfidf(data[section])
                if name == "tfidf"
                else neural(name, data[section], out / f"run-{section}-{name}", args.set)
            )
            results_file.write_text(json.dumps(results, indent=2))
            print(table(section, results[section]), flush=True)
    for section, rows in results.items():
        print("\n" + table(section, rows))
    print("\n" + "\n".join(goals(results)))
    print(f"\nresults: {results_file}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
