"""``triagekit route retrain``: a candidate router from the base's data plus reviewers' corrections, compared with
the base on the same held-out test split and on a held-out slice of the corrections, promoted only past a gate.

Training set: the base's train and validation splits, where a correction overrides the label of the same ticket
(same model input text), plus the corrected tickets the data did not have. A share of the corrected tickets
(``--holdout``, chosen by hash so reruns agree) is held out of training to compare candidate and base on; so are
corrections of test-split tickets, which never enter training. The test split is the base's, unchanged.

New labels (a correction naming a class the base does not know, e.g. a new queue): with ``--new-labels grow``
(default) the candidate's head simply has that class, learned from the corrections; ``--new-labels refuse`` stops
before training and names them.

Exit codes: 0 promoted (or, without ``--promote-if-better``, trained and reported); 3 the gate kept the candidate
out (reasons printed); 4 no usable correction (nothing trained); 2 bad input.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from triagekit.route.feedback import Corrections, feedback_url, merge_corrections, read_feedback, ticket_key

__all__ = [
    "retrain_command",
    "gate",
    "build_training_rows",
    "label_metrics",
    "EXIT_PROMOTED",
    "EXIT_NOT_PROMOTED",
    "EXIT_NO_FEEDBACK",
]

EXIT_PROMOTED = 0
EXIT_NOT_PROMOTED = 3
EXIT_NO_FEEDBACK = 4
REPORT = "retrain_report"


def _held_out(key: str, fraction: float, seed: int) -> bool:
    h = int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16)
    return h / 0xFFFFFFFF < fraction


def split_corrections(
    corr: Corrections, test_keys: set[str], fraction: float, seed: int
) -> tuple[dict[str, dict], dict[str, dict]]:
    """(train, held-out) corrected tickets; test-split tickets always held out; at least one of each when there
    are two or more tickets."""
    train, held = {}, {}
    for key in sorted(corr.tickets):
        (held if key in test_keys or _held_out(key, fraction, seed) else train)[key] = corr.tickets[key]
    if not held and len(train) > 1 and fraction > 0:
        key = sorted(train)[0]
        held[key] = train.pop(key)
    if not train and len(held) > 1:
        key = next(k for k in sorted(held) if k not in test_keys) if set(held) - test_keys else None
        if key is not None:
            train[key] = held.pop(key)
    return train, held


def build_training_rows(
    rows: Sequence[Mapping[str, Any]],
    train_corr: Mapping[str, dict],
    held_keys: set[str],
    text_fields: Sequence[str],
    changed: list[dict],
    counts: dict,
) -> list[dict]:
    """``rows`` with corrections applied, held-out tickets dropped; records each changed label in ``changed``."""
    out = []
    for row in rows:
        key = ticket_key(row, text_fields)
        if key in held_keys:
            counts["held_out_rows_removed"] = counts.get("held_out_rows_removed", 0) + 1
            continue
        fix = train_corr.get(key)
        row = dict(row)
        if fix:
            counts["rows_overridden"] = counts.get("rows_overridden", 0) + 1
            for head, label in fix["labels"].items():
                if row.get(head) != label:
                    changed.append(
                        {
                            "key": key[:12],
                            "text": _snippet(row, text_fields),
                            "head": head,
                            "old": row.get(head),
                            "new": label,
                        }
                    )
                row[head] = label
            fix["seen"] = True
        out.append(row)
    return out


def _snippet(row: Mapping[str, Any], text_fields: Sequence[str], n: int = 100) -> str:
    from triagekit.data.text import build_text

    text = " ".join(build_text(row, text_fields).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _new_rows(train_corr: Mapping[str, dict], text_fields: Sequence[str], changed: list[dict]) -> list[dict]:
    """Corrected tickets the base's data did not have, as training rows."""
    rows = []
    for key, t in train_corr.items():
        if t.get("seen"):
            continue
        rows.append({**t["inputs"], **t["labels"]})
        for head, label in t["labels"].items():
            changed.append(
                {
                    "key": key[:12],
                    "text": _snippet(t["inputs"], text_fields),
                    "head": head,
                    "old": t["predicted"].get(head),
                    "new": label,
                    "added": True,
                }
            )
    return rows


def label_metrics(router, tickets: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Per head, accuracy and macro-F1 (over the gold labels) of ``router`` on ``tickets`` (``{"inputs", "labels"}``).

    A gold label the router does not know counts as an error: ``evaluate`` skips such rows, which would make a
    model that lost a class (or a base that never had the new one) look better than it is.
    """
    from sklearn.metrics import f1_score

    preds = router.predict([t["inputs"] for t in tickets], top_k=1) if tickets else []
    out = {}
    for head in router.heads:
        pairs = [
            (t["labels"][head.name], p[head.name])
            for t, p in zip(tickets, preds)
            if t["labels"].get(head.name) not in (None, [])
        ]
        if not pairs:
            continue
        gold = [json.dumps(sorted(g)) if head.multilabel else str(g) for g, _ in pairs]
        got = [json.dumps(sorted(p["labels"])) if head.multilabel else p["label"] for _, p in pairs]
        out[head.name] = {
            "n": len(pairs),
            "accuracy": sum(g == p for g, p in zip(gold, got)) / len(pairs),
            "macro_f1": float(f1_score(gold, got, labels=sorted(set(gold)), average="macro", zero_division=0)),
        }
    return out


def _as_tickets(rows: Sequence[Mapping[str, Any]], heads) -> list[dict[str, Any]]:
    return [{"inputs": r, "labels": {h.name: r.get(h.name) for h in heads}} for r in rows]


def gate(base: Mapping[str, Any], cand: Mapping[str, Any], max_regression: float) -> tuple[bool, list[str]]:
    """Not worse than the base by more than ``max_regression`` macro-F1 points on any test head, and better on the
    held-out corrections (mean accuracy over their heads). Returns (passed, reasons it did not)."""
    reasons = []
    for head, b in base["test"].items():
        c = cand["test"].get(head)
        if c is None or c.get("macro_f1") is None:
            reasons.append(f"{head}: the candidate has no test metrics")
            continue
        drop = 100 * (b["macro_f1"] - c["macro_f1"])
        if drop > max_regression:
            reasons.append(
                f"{head}: test macro-F1 {100 * b['macro_f1']:.2f} -> {100 * c['macro_f1']:.2f} "
                f"(-{drop:.2f} points, more than --max-regression {max_regression})"
            )
    heads = sorted(set(base["corrections"]) & set(cand["corrections"]))
    if not heads:
        reasons.append("no held-out corrections to compare on (more corrections, or a larger --holdout)")
    else:
        mb = sum(base["corrections"][h]["accuracy"] for h in heads) / len(heads)
        mc = sum(cand["corrections"][h]["accuracy"] for h in heads) / len(heads)
        if mc <= mb:
            reasons.append(
                f"held-out corrections: candidate accuracy {100 * mc:.2f} % is not better than the "
                f"base's {100 * mb:.2f} %"
            )
    return not reasons, reasons


def _test_summary(metrics: Mapping[str, Any], labelled: Mapping[str, dict]) -> dict[str, dict[str, Any]]:
    """Accuracy and macro-F1 from ``label_metrics`` (every test row counts); ECE and review rate from ``evaluate``."""
    out = {}
    for head, m in metrics["heads"].items():
        cov = m.get("coverage_at_threshold")
        own = labelled.get(head, {})
        out[head] = {
            "accuracy": own.get("accuracy", m.get("accuracy")),
            "macro_f1": own.get("macro_f1", m.get("macro_f1")),
            "ece": m.get("ece"),
            "review_rate": None if cov is None else 1 - cov,
            "unknown_labels": m.get("unknown_labels"),
        }
    return out


def _base_config(base_files: Path, args: argparse.Namespace, heads) -> Any:
    import yaml

    from triagekit.route.config import TrainConfig, load_config, parse_overrides

    overrides = parse_overrides(args.set or [])
    overrides.update(
        labels=[h.name for h in heads if not h.multilabel],
        multilabel=[h.name for h in heads if h.multilabel],
        seed=args.seed,
    )
    if args.config:
        return load_config(args.config, **overrides)
    saved = base_files / "config.yaml"
    if not saved.exists():
        raise FileNotFoundError(f"the base has no config.yaml ({saved}); give the training preset with --config")
    known = set(TrainConfig.__dataclass_fields__)
    cfg = {k: v for k, v in (yaml.safe_load(saved.read_text()) or {}).items() if k in known}
    return TrainConfig(**{**cfg, **overrides})


def _base_data(base, args: argparse.Namespace) -> dict[str, list[dict]]:
    from triagekit.data import load_prepared

    data = Path(args.data) if args.data else Path(base.meta.get("data_dir") or "")
    if not (data / "train.jsonl").exists() or not (data / "test.jsonl").exists():
        raise FileNotFoundError(
            f"the base's prepared data ({data}) has no train.jsonl and test.jsonl; give it with "
            f"--data DIR (a `triagekit data prepare` output)"
        )
    return load_prepared(data)


def _prepare_output(output: Path, overwrite: bool) -> None:
    from triagekit.core.training import check_output
    from triagekit.route.train import RUN_ARTIFACTS

    check_output(output, False, overwrite, RUN_ARTIFACTS + (REPORT + ".json", REPORT + ".md", "retrain"))
    output.mkdir(parents=True, exist_ok=True)


def retrain_command(args: argparse.Namespace) -> int:
    """The whole of ``triagekit route retrain``; returns the exit code."""
    from rich.console import Console

    from triagekit.data.io import write_jsonl
    from triagekit.route.router import Router, resolve_model_path
    from triagekit.route.train import train

    console = Console(stderr=True)
    if not 0 <= args.holdout < 1:
        raise ValueError(f"--holdout must be in [0, 1), got {args.holdout}")
    base = Router.load(args.base)
    base_files, _ = resolve_model_path(args.base)
    corr = merge_corrections(read_feedback(feedback_url(args.feedback)), base.heads, base.text_fields)
    if not corr.tickets:
        console.print(f"[red]no usable correction[/] in {args.feedback}: {json.dumps(corr.summary())}; nothing trained")
        return EXIT_NO_FEEDBACK
    if corr.new_labels and args.new_labels == "refuse":
        raise ValueError(
            f"corrections name labels the base does not know: {corr.summary()['new_labels']}. To add "
            f"them, rerun with --new-labels grow (the head learns them from the corrections), or add "
            f"labelled examples to the data and train a new base"
        )
    splits = _base_data(base, args)
    output = Path(args.output)
    _prepare_output(output, args.overwrite)
    test_keys = {ticket_key(r, base.text_fields) for r in splits["test"]}
    train_corr, held = split_corrections(corr, test_keys, args.holdout, args.seed)
    counts: dict[str, int] = {}
    changed: list[dict] = []
    rows = {
        s: build_training_rows(splits.get(s) or [], train_corr, set(held), base.text_fields, changed, counts)
        for s in ("train", "val")
    }
    rows["train"] += _new_rows(train_corr, base.text_fields, changed)
    for split in ("train", "val"):
        write_jsonl(output / "data" / f"{split}.jsonl", rows[split])
    write_jsonl(output / "data" / "test.jsonl", splits["test"])
    cfg = _base_config(base_files, args, base.heads)
    console.print(
        f"retrain: {len(corr.tickets)} corrected tickets ({len(train_corr)} to train on, {len(held)} held "
        f"out); {json.dumps(corr.summary())}"
    )
    train(cfg, output / "data", output, console=console)
    candidate = Router.load(output)
    report = _compare(base, candidate, splits, rows["val"], held, output)
    passed, reasons = gate(report["base"], report["candidate"], args.max_regression)
    report.update(
        base_model=base.model_version,
        feedback=corr.summary(),
        data=counts,
        changed=changed,
        gate={"passed": passed, "reasons": reasons, "max_regression": args.max_regression},
    )
    code = EXIT_PROMOTED
    if args.promote_if_better:
        code = _maybe_promote(args, base, output, report, passed, console)
    _write_report(output, report)
    verdict = "passes the gate" if passed else "does not pass the gate: " + "; ".join(reasons)
    console.print(f"candidate {verdict}; report: {output / (REPORT + '.md')}")
    return code


def _compare(base, candidate, splits, val_rows, held, output: Path) -> dict[str, Any]:
    from triagekit.route.evaluate import evaluate

    out = {}
    for name, router, where in (
        ("base", base, output / "retrain" / "base-eval"),
        ("candidate", candidate, output / "eval"),
    ):
        metrics = evaluate(router, splits["test"], where, val_rows=val_rows or None, plots=False)
        test = _test_summary(metrics, label_metrics(router, _as_tickets(splits["test"], router.heads)))
        out[name] = {"test": test, "corrections": label_metrics(router, list(held.values()))}
    return out


def _maybe_promote(args, base, output: Path, report: dict, passed: bool, console) -> int:
    from triagekit.core.registry import Registry, is_registry_ref, parse_ref

    if not passed:
        console.print("[yellow]not promoted[/]: " + "; ".join(report["gate"]["reasons"]))
        return EXIT_NOT_PROMOTED
    ref = parse_ref(args.base) if is_registry_ref(args.base) else None
    root = args.registry or (ref.root if ref else None)
    name = args.name or (ref.name if ref else None)
    if root is None or name is None:
        raise ValueError("--promote-if-better with a base that is not registry:NAME@alias needs --registry and --name")
    reg = Registry(root, create=True)
    summary = {k: report[k] for k in ("base", "candidate", "gate", "feedback", "data")}
    meta = reg.register(output, name, parent=base.model_version, extra={"retrain": summary})
    reg.promote(name, meta["version"], args.alias)
    report["promoted"] = {"name": name, "version": meta["version"], "alias": args.alias}
    console.print(f"[green]promoted[/] {name}@v{meta['version']} to {args.alias} (parent {base.model_version})")
    return EXIT_PROMOTED


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _write_report(output: Path, report: dict) -> None:
    (output / f"{REPORT}.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    b, c = report["base"], report["candidate"]
    lines = [
        f"# Retrain report: candidate vs {report['base_model']}",
        "",
        f"Gate: **{'passed' if report['gate']['passed'] else 'not passed'}**"
        + "".join(f"\n- {r}" for r in report["gate"]["reasons"]),
        "",
    ]
    if report.get("promoted"):
        p = report["promoted"]
        lines += [f"Promoted as {p['name']}@v{p['version']} ({p['alias']}).", ""]
    lines += [
        "## Test split (the base's, unchanged)",
        "",
        "| head | acc base | acc cand | macro-F1 base | macro-F1 cand | ECE base | ECE cand | review base | "
        "review cand |",
        "|---|" + "---:|" * 8,
    ]
    for head, m in b["test"].items():
        n = c["test"].get(head, {})
        lines.append(
            f"| {head} | "
            + " | ".join(_pct(v) if k != "ece" else f"{v:.3f}" if v is not None else "-" for k, v in _pairs(m, n))
            + " |"
        )
    lines += [
        "",
        "## Held-out corrections",
        "",
        "| head | n | acc base | acc cand | macro-F1 base | macro-F1 cand |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for head, m in c["corrections"].items():
        o = b["corrections"].get(head, {})
        lines.append(
            f"| {head} | {m['n']} | {_pct(o.get('accuracy'))} | {_pct(m['accuracy'])} | "
            f"{_pct(o.get('macro_f1'))} | {_pct(m['macro_f1'])} |"
        )
    lines += [
        "",
        "## Feedback",
        "",
        "```",
        json.dumps({**report["feedback"], **report["data"]}, indent=1),
        "```",
        "",
        f"## Tickets whose label changed ({len(report['changed'])})",
        "",
        "| ticket | head | old | new |",
        "|---|---|---|---|",
    ]
    for ch in report["changed"][:200]:
        text = str(ch["text"]).replace("|", "\\|")
        lines.append(f"| {text} | {ch['head']} | {ch['old']} | {ch['new']}{' (added)' if ch.get('added') else ''} |")
    (output / f"{REPORT}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _pairs(m: Mapping[str, Any], n: Mapping[str, Any]):
    for key in ("accuracy", "macro_f1", "ece", "review_rate"):
        yield key, m.get(key)
        yield key, n.get(key)
