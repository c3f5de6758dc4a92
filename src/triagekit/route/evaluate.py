"""Evaluate a router on a test split: calibrated metrics, review thresholds, plots, metrics.json and report.md.

Any object with ``heads``, ``text_fields`` and ``logits(inputs, batch_size)`` (raw logits per head) can be
evaluated: a fine-tuned Router, an exported model, or the TF-IDF baseline.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from triagekit.route.calibration import (
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
    selective_curve,
    sigmoid,
    softmax,
)
from triagekit.route.heads import HeadSpec, row_labels
from triagekit.route.metrics import critical_recall, group_metrics, head_metrics, multilabel_metrics
from triagekit.route.report import plot_confusion, plot_coverage, plot_reliability, write_report
from triagekit.route.review import (
    check_budget,
    check_review_heads,
    decision_confidence,
    fit_operating_point,
    review_summary,
    ticket_flags,
    unreachable_message,
)

__all__ = ["evaluate", "gold_labels"]


@dataclass
class _Split:
    """One split's rows and the router's raw logits for them (computed once, shared by all heads)."""

    rows: list[dict]
    logits: dict[str, np.ndarray]


def gold_labels(rows: Sequence[Mapping], head: HeadSpec) -> tuple[np.ndarray, np.ndarray, int]:
    """The evaluable rows of ``head`` and their gold targets.

    A row is left out when its label is missing or not in ``head.labels`` (for a multi-label head: the field is
    missing, malformed, or holds a tag outside ``head.labels``), since no output column can be right for it.

    Args:
        rows: Rows with the head's label field.
        head: The head.

    Returns:
        ``(kept_row_indices, y, n_left_out)``; ``y`` is class ids (n,) or a 0/1 matrix (n, len(labels)).
    """
    index = {lab: i for i, lab in enumerate(head.labels)}
    keep, ys = [], []
    for i, row in enumerate(rows):
        raw = row.get(head.name)
        if raw is None or (isinstance(raw, float) and math.isnan(raw)):
            continue
        try:
            gold = row_labels(row, head)
        except TypeError:  # e.g. a number where a tag list belongs
            continue
        if head.multilabel and all(t in index for t in gold):
            ys.append([index[t] for t in gold])
        elif not head.multilabel and gold in index:
            ys.append(index[gold])
        else:
            continue
        keep.append(i)
    if head.multilabel:
        y = np.zeros((len(ys), len(head.labels)), dtype=np.int64)
        for r, tags in enumerate(ys):
            y[r, tags] = 1
    else:
        y = np.asarray(ys, dtype=np.int64)
    return np.asarray(keep, dtype=np.int64), y, len(rows) - len(keep)


def _decisions(probs: np.ndarray, y: np.ndarray, multilabel: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-row confidence and correctness of the prediction that would be applied automatically.

    For a multi-label head the whole tag set is applied or reviewed together, so its confidence is that of
    the least certain tag decision (max(p, 1 - p)) and it is correct only if every tag is.
    """
    if multilabel:
        if probs.shape[1] == 0:
            return np.ones(len(probs)), np.ones(len(probs), dtype=bool)
        conf = np.maximum(probs, 1.0 - probs).min(axis=1)
        return conf, np.all((probs >= 0.5) == (y == 1), axis=1)
    if len(probs) == 0:
        return np.zeros(0), np.zeros(0, dtype=bool)
    return probs.max(axis=1), probs.argmax(axis=1) == y


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "head"


def _fit_on_val(head: HeadSpec, val: _Split | None) -> tuple[float, dict | None]:
    """The head's temperature, and the calibrated validation decisions its review threshold is chosen on.

    Fitting both on validation keeps the test numbers unbiased; without validation rows T = 1 and the caller
    falls back to the test decisions.

    Returns:
        ``(temperature, None or {"conf": confidence of every val row, "keep": labelled rows, "correct": ...})``.
    """
    if val is None:
        return 1.0, None
    keep, y, _ = gold_labels(val.rows, head)
    if len(keep) == 0:
        return 1.0, None
    z = val.logits[head.name][keep]
    temperature = fit_temperature(z, y, multilabel=head.multilabel)
    act = sigmoid if head.multilabel else softmax
    _, correct = _decisions(act(z, temperature), y, head.multilabel)
    conf = decision_confidence(act(val.logits[head.name], temperature), head.multilabel)
    return temperature, {"conf": conf, "keep": keep, "correct": correct}


def _plots(head, out_dir: Path, metrics, bins_before, bins_after, curve, threshold) -> dict[str, str]:
    stem = _safe_name(head.name)
    rel = {"reliability": f"plots/{stem}_reliability.png", "coverage": f"plots/{stem}_coverage.png"}
    plot_reliability(bins_before, bins_after, out_dir / rel["reliability"], f"{head.name}: reliability")
    plot_coverage(curve, out_dir / rel["coverage"], f"{head.name}: accuracy vs coverage", threshold)
    if not head.multilabel:
        rel["confusion"] = f"plots/{stem}_confusion.png"
        cm_title = f"{head.name}: confusion (row-normalised)"
        plot_confusion(metrics["confusion_matrix"], head.labels, out_dir / rel["confusion"], cm_title)
    return rel


def _evaluate_head(head: HeadSpec, test: _Split, val: _Split | None, opts: Mapping[str, Any]) -> dict:
    keep, y, n_unknown = gold_labels(test.rows, head)
    z = test.logits[head.name][keep]
    temperature, val_decisions = _fit_on_val(head, val)
    act = sigmoid if head.multilabel else softmax
    p_before, probs = act(z), act(z, temperature)

    if head.multilabel:
        out = multilabel_metrics(y, probs, head.labels)
        out["accuracy"] = out["subset_accuracy"]
    else:
        out = head_metrics(y, probs, head.labels)
    out.update(multilabel=head.multilabel, unknown_labels=n_unknown, temperature=temperature)
    out["ece_before"] = expected_calibration_error(p_before, y)
    out["ece"] = expected_calibration_error(probs, y)

    conf, correct = _decisions(probs, y, head.multilabel)
    curve = selective_curve(conf, correct)
    source = "val" if val_decisions is not None else "test"
    # The review threshold is fitted later, across heads (a review budget is shared by the review heads).
    on_test = {
        "conf": decision_confidence(act(test.logits[head.name], temperature), head.multilabel),
        "keep": keep,
        "correct": correct,
    }
    opts["_review"][head.name] = {"val": val_decisions or on_test, "test": on_test}
    out.update(threshold_source=source)

    lang = opts["language_field"]
    if any(lang in r for r in test.rows):
        groups = [str(test.rows[i].get(lang) or "unknown") for i in keep]
        out["per_language"] = group_metrics(y, probs, groups)
    if opts["critical"].get(head.name):
        out["critical_recall"] = critical_recall(y, probs, head.labels, opts["critical"][head.name])
    out["_plot_data"] = ((reliability_bins(p_before, y), reliability_bins(probs, y)), curve)
    return out


def _apply_review(heads: list[HeadSpec], results: dict[str, dict], opts: Mapping[str, Any]) -> dict:
    """Fit the review thresholds on validation (budget or target precision), apply them to test, and summarise
    the ticket-level flag: share auto-routed and per-head accuracy of the auto-routed vs the flagged tickets."""
    side = opts["_review"]
    names = [h.name for h in heads if h.name in results]
    review_heads = check_review_heads(opts["review_heads"], [h for h in heads if h.name in results])
    points = fit_operating_point(
        {n: side[n]["val"]["conf"] for n in names},
        {n: (side[n]["val"]["keep"], side[n]["val"]["correct"]) for n in names},
        review_heads,
        opts["review_budget"],
        opts["target_precision"],
    )
    warnings = []
    for n in names:
        thr = points[n]["review_threshold"]
        test = side[n]["test"]
        accepted = test["conf"][test["keep"]] >= thr if thr is not None else np.ones(len(test["keep"]), bool)
        m = results[n]
        m.update(review_threshold=thr, review_rule=points[n]["rule"], precision_target=points[n]["precision_target"])
        m["coverage_at_threshold"] = float(accepted.mean()) if len(accepted) else 0.0
        m["accuracy_at_threshold"] = float(test["correct"][accepted].mean()) if accepted.any() else None
        if points[n]["rule"] == "target_precision" and not points[n]["precision_target"]["reachable"]:
            warnings.append(unreachable_message(n, opts["target_precision"], points[n]["precision_target"]))
    flags = ticket_flags(
        {n: side[n]["test"]["conf"] for n in names}, {n: points[n]["review_threshold"] for n in names}, review_heads
    )
    summary = review_summary(flags, {n: (side[n]["test"]["keep"], side[n]["test"]["correct"]) for n in names})
    summary.update(
        budget=opts["review_budget"],
        review_heads=review_heads,
        target_precision=opts["target_precision"],
        warnings=warnings,
    )
    return summary


def _evaluate_router(router, test_rows, val_rows, opts: Mapping[str, Any]) -> dict:
    bs = opts["batch_size"]
    # One pass gives the logits and, for a router with an out-of-scope detector, the features it scores.
    outputs = router.outputs(test_rows, batch_size=bs) if getattr(router, "oos", None) else None
    logits = {h.name: outputs[h.name] for h in router.heads} if outputs else router.logits(test_rows, batch_size=bs)
    test = _Split(test_rows, logits)
    val = _Split(val_rows, router.logits(val_rows, batch_size=bs)) if val_rows else None
    heads, calibration = {}, {}
    opts = {**opts, "_review": {}}
    for head in router.heads:
        if not head.labels:  # nothing to predict (e.g. a tag field never filled in training)
            continue
        heads[head.name] = _evaluate_head(head, test, val, opts)
    review = _apply_review(router.heads, heads, opts) if heads else {}
    for head in router.heads:
        if head.name not in heads:
            continue
        m = heads[head.name]
        bins, curve = m.pop("_plot_data")
        if opts["out_dir"] is not None:
            m["plots"] = _plots(head, opts["out_dir"], m, *bins, curve, m["review_threshold"])
        calibration[head.name] = {"temperature": m["temperature"], "review_threshold": m["review_threshold"]}
    result = {"heads": heads, "calibration": calibration, "review": review}
    if outputs is not None:
        from triagekit.route.oos import out_of_scope_report

        result["out_of_scope"] = out_of_scope_report(router, test_rows, outputs)
    return result


def _languages(train_rows, test_rows, text_fields, language_field: str) -> dict[str, Any] | None:
    """Language mix of training vs test and the warnings about it (also sent to Python's warnings); None when rows
    lack a language value and the detector (the ``multilingual`` extra) is not installed."""
    from triagekit.data.language import language_mix, mix_warnings, row_languages

    try:
        train = language_mix(row_languages(train_rows, text_fields, language_field))
        test = language_mix(row_languages(test_rows, text_fields, language_field))
    except ImportError as exc:
        warnings.warn(f"no language mix in the report: {exc}", stacklevel=3)
        return None
    notes = mix_warnings(train, test)
    for note in notes:
        warnings.warn(note, stacklevel=3)
    return {"train": train, "test": test, "warnings": notes}


def _jsonable(x: Any) -> Any:
    """Plain JSON types; NaN and inf become null so the file stays valid JSON."""
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    return x


def evaluate(
    router,
    test_rows: list[dict],
    out_dir: str | Path,
    *,
    val_rows: list[dict] | None = None,
    target_precision: float = 0.9,
    review_budget: float | None = None,
    review_heads: Sequence[str] | None = None,
    critical: dict[str, list[str]] | None = None,
    language_field: str = "language",
    baseline=None,
    batch_size: int = 64,
    plots: bool = True,
    train_rows: list[dict] | None = None,
) -> dict:
    """Evaluate ``router`` (and optionally a baseline) on ``test_rows``; write metrics.json, report.md, plots.

    Args:
        router: Object with ``heads``, ``text_fields`` and ``logits(inputs, batch_size)`` returning raw logits.
        test_rows: Test rows (dicts with text and label fields).
        out_dir: Output folder.
        val_rows: Validation rows to fit each head's temperature and review threshold on. Without them T = 1
            and the threshold is fitted on test (optimistic; ``threshold_source`` says "test").
        target_precision: Accuracy the auto-routed predictions must reach; sets each head's review threshold
            when there is no ``review_budget``.
        review_budget: Share of tickets that may be flagged for review (e.g. 0.3), shared by ``review_heads``;
            the report states the accuracy of the auto-routed rest.
        review_heads: Heads whose doubt flags the ticket (None: every head).
        critical: Per head name, the classes whose recall is reported separately.
        language_field: Row field for the per-language breakdown (skipped if no test row has it).
        baseline: Another router-like object (e.g. a fitted ``TfidfBackend``) evaluated the same way, no plots.
        batch_size: Passed to ``logits``.
        plots: Write PNG plots under ``out_dir/plots``.
        train_rows: The training rows; when given, ``languages`` holds the training vs test language mix (the
            ``language_field`` value, or the detector's guess where there is none) and a warning for every test
            language never seen in training.

    Returns:
        The metrics dict written to ``out_dir/metrics.json``: ``n_test``, ``heads``, ``calibration``
        (``{head: {"temperature", "review_threshold"}}``, to store with the model) and ``baseline`` if given.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    test_rows, val_rows = list(test_rows), list(val_rows) if val_rows else None
    check_budget(review_budget)
    opts = {
        "target_precision": target_precision,
        "review_budget": review_budget,
        "review_heads": list(review_heads) if review_heads is not None else None,
        "critical": critical or {},
        "language_field": language_field,
        "batch_size": batch_size,
        "out_dir": out_dir if plots else None,
    }
    result: dict[str, Any] = {
        "n_test": len(test_rows),
        "n_val": len(val_rows) if val_rows else 0,
        "target_precision": target_precision,
        "review_budget": review_budget,
    }
    languages = _languages(train_rows, test_rows, router.text_fields, language_field) if train_rows else None
    if languages:
        result["languages"] = languages
    result.update(_evaluate_router(router, test_rows, val_rows, opts))
    if baseline is not None:
        result["baseline"] = _evaluate_router(baseline, test_rows, val_rows, {**opts, "out_dir": None})
    result = _jsonable(result)
    (out_dir / "metrics.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    write_report(out_dir, result)
    return result
