"""Cheap routing ablations on the support tickets, all on TF-IDF so they run in minutes on 2 cores.

Every setting is chosen on validation; the test split (the same stratified 75/10/15 split as
``benchmarks/router.py``) is only reported. Rows:

1. the baselines: unweighted C = 10 (the project's old baseline), balanced C = 10 (the issue's), balanced with C
   chosen per head on validation macro-F1 (the tuned baseline of every comparison), and that plus the prior
   correction fitted on validation;
2. the label audit: cleanlab suspects of the training split (val and test never audited), the tuned TF-IDF
   trained with and without the suspect labels;
3. how much of each ticket the router reads at 128 MiniLM tokens under each ``long_text`` mode.

Usage:
    python benchmarks/router_ablations.py --out results/ablations
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from router import prepare_tickets  # noqa: E402 - the same split as the main benchmark

HEADS = ["queue", "priority", "type"]
TEXT = ["subject", "body"]


def _scores(backend, heads, rows, calibration=None) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    from triagekit.route.heads import row_targets
    from triagekit.route.objective import apply_bias

    z = apply_bias(backend.logits(rows), calibration or {})
    y = row_targets(rows, heads)
    out = {}
    for h in heads:
        keep = y[h.name] >= 0
        pred = z[h.name][keep].argmax(1)
        out[h.name] = {
            "accuracy": accuracy_score(y[h.name][keep], pred),
            "macro_f1": f1_score(y[h.name][keep], pred, average="macro", zero_division=0),
        }
    return out


def baselines(splits, heads) -> list[dict]:
    from triagekit.route.heads import row_targets
    from triagekit.route.objective import fit_prior_correction
    from triagekit.route.tfidf import TfidfBackend

    rows = []
    for name, kwargs in [
        ("C=10, unweighted (old baseline)", dict(C=10.0)),
        ("C=10, balanced", dict(C=10.0, class_weight="balanced")),
        ("balanced, C on val macro-F1 (tuned baseline)", dict(C=None, class_weight="balanced")),
    ]:
        start = time.perf_counter()
        b = TfidfBackend().fit(
            splits["train"],
            heads,
            TEXT,
            C=kwargs.get("C"),
            class_weight=kwargs.get("class_weight"),
            val_rows=splits["val"],
        )
        rows.append(
            {
                "row": name,
                "seconds": time.perf_counter() - start,
                "C": b.chosen_C,
                "test": _scores(b, heads, splits["test"]),
            }
        )
    corr = fit_prior_correction(
        heads,
        b.logits(splits["val"]),
        row_targets(splits["val"], heads),
        row_targets(splits["train"], heads),
        "macro_f1",
    )
    cal = {h: {"logit_bias": c["logit_bias"]} for h, c in corr.items()}
    rows.append(
        {
            "row": "tuned + prior correction (tau on val)",
            "seconds": rows[-1]["seconds"],
            "tau": {h: c["tau"] for h, c in corr.items()},
            "test": _scores(b, heads, splits["test"], cal),
        }
    )
    return rows


def audit(splits, heads, out: Path) -> list[dict]:
    from triagekit.data.audit import audit_labels, drop_suspect_labels, write_suspects
    from triagekit.route.tfidf import TfidfBackend

    start = time.perf_counter()
    suspects = audit_labels(splits["train"], HEADS, TEXT)
    path = write_suspects(suspects, out / "suspects.csv")
    seconds = time.perf_counter() - start
    kept, dropped = drop_suspect_labels(splits["train"], path, TEXT)
    rows = []
    for name, train_rows in [("all training labels", splits["train"]), ("suspect labels excluded", kept)]:
        b = TfidfBackend.baseline(train_rows, heads, TEXT, val_rows=splits["val"])
        rows.append({"row": name, "test": _scores(b, heads, splits["test"]), "val": _scores(b, heads, splits["val"])})
    rows[1]["dropped"] = dropped
    rows[1]["audit_seconds"] = seconds
    return rows


def coverage(splits) -> dict:
    """Share of tokens read and share of tickets cut, at 128 MiniLM tokens, per long_text mode."""
    from transformers import AutoTokenizer

    from triagekit.core.backbones import minilm_path
    from triagekit.data.text import build_text

    tok = AutoTokenizer.from_pretrained(str(minilm_path()))
    texts = [build_text(r, TEXT) for r in splits["train"] + splits["val"] + splits["test"]]
    lengths = [len(ids) for ids in tok(texts, add_special_tokens=False, verbose=False)["input_ids"]]
    body = 126
    import numpy as np

    lengths = np.array(lengths)
    return {
        "tickets": len(lengths),
        "p50_tokens": float(np.percentile(lengths, 50)),
        "p90_tokens": float(np.percentile(lengths, 90)),
        "cut_at_128": float((lengths > body).mean()),
        "tokens_read": {
            "truncate": float(np.minimum(lengths, body).sum() / lengths.sum()),
            "head_tail": float(np.minimum(lengths, body).sum() / lengths.sum()),
            "chunks (stride 94, 4 windows)": float(np.minimum(lengths, body + 3 * 94).sum() / lengths.sum()),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="results/ablations")
    args = parser.parse_args()
    from triagekit.data import load_prepared
    from triagekit.route.heads import heads_from_rows

    out = Path(args.out)
    data, _, _ = prepare_tickets(out / "data")
    splits = load_prepared(data)
    heads = heads_from_rows(splits["train"], HEADS, [])
    result = {"baselines": baselines(splits, heads), "audit": audit(splits, heads, out), "coverage": coverage(splits)}
    (out / "ablations.json").write_text(json.dumps(result, indent=2))
    for section in ("baselines", "audit"):
        print(f"\n{section} (test split; acc / macro-F1 in %)")
        for r in result[section]:
            cells = " | ".join(
                f"{h} {100 * m['accuracy']:.2f} / {100 * m['macro_f1']:.2f}" for h, m in r["test"].items()
            )
            extra = {k: v for k, v in r.items() if k not in ("row", "test", "val")}
            print(f"| {r['row']} | {cells} | {extra}")
    print("\ncoverage:", json.dumps(result["coverage"], indent=2))


if __name__ == "__main__":
    main()
