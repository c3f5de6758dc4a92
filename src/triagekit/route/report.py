"""Evaluation report: PNG plots and a Markdown summary built from the metrics dict of ``evaluate``.

matplotlib is imported inside the plot functions and drawn on an Agg canvas (no pyplot, no display), so
importing this module is free and plotting works on headless servers and in threads.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["plot_confusion", "plot_reliability", "plot_coverage", "write_report"]


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def plot_confusion(cm, labels: Sequence[str], path: str | Path, title: str) -> Path:
    """Row-normalised confusion matrix (each row: where that gold class went), readable up to ~80 classes.

    Args:
        cm: Counts, rows gold and columns predicted, in ``labels`` order.
        labels: Class names; tick labels are drawn only up to 40 classes, counts only up to 15.
        path: PNG file to write.
        title: Figure title.
    """
    cm = np.asarray(cm, dtype=np.float64)
    n = len(labels)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1.0)
    side = float(np.clip(3.0 + 0.22 * n, 5.0, 12.0))  # past 40 classes there are no tick labels to fit
    font = float(np.clip(11.0 - n / 8.0, 5.0, 10.0))
    fig = _figure(side + 1.5, side)
    ax = fig.add_subplot()
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of gold row")
    if n <= 40:
        ax.set_xticks(range(n), labels=list(labels), rotation=90, fontsize=font)
        ax.set_yticks(range(n), labels=list(labels), fontsize=font)
    if n <= 15:
        for (i, j), count in np.ndenumerate(cm):
            if count:
                color = "white" if norm[i, j] > 0.5 else "black"
                ax.text(j, i, f"{int(count)}", ha="center", va="center", fontsize=font, color=color)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    return _save(fig, path)


def plot_reliability(bins_before: Mapping, bins_after: Mapping | None, path: str | Path, title: str) -> Path:
    """Reliability diagram: accuracy against confidence per bin, before and after temperature scaling.

    Args:
        bins_before: ``reliability_bins`` output with T = 1.
        bins_after: ``reliability_bins`` output with the fitted temperature, or None.
        path: PNG file to write.
        title: Figure title.
    """
    fig = _figure(5.5, 5.0)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    for bins, name, color in ((bins_before, "before (T=1)", "tab:red"), (bins_after, "after", "tab:blue")):
        if bins is None:
            continue
        count = np.asarray(bins["count"])
        m = count > 0
        conf, acc = np.asarray(bins["confidence"])[m], np.asarray(bins["accuracy"])[m]
        # Marker area follows the bin's share of samples, so a lone outlier bin does not look important.
        size = 20 + 200 * count[m] / max(count.sum(), 1)
        ax.plot(conf, acc, color=color, linewidth=1, alpha=0.7)
        ax.scatter(conf, acc, s=size, color=color, alpha=0.8, label=name)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def plot_coverage(curve: Mapping, path: str | Path, title: str, threshold: float | None = None) -> Path:
    """Accuracy of the auto-routed tickets against the share auto-routed (``selective_curve`` output).

    Args:
        curve: ``coverage``, ``accuracy`` and ``threshold`` arrays.
        path: PNG file to write.
        title: Figure title.
        threshold: Review threshold to mark, if any.
    """
    cov, acc, thr = (np.asarray(curve[k], dtype=np.float64) for k in ("coverage", "accuracy", "threshold"))
    fig = _figure(5.5, 4.5)
    ax = fig.add_subplot()
    ax.plot(cov, acc, color="tab:blue", linewidth=1.5)
    if threshold is not None and cov.size:
        m = thr >= threshold
        at = float(cov[m][-1]) if m.any() else 0.0
        ax.axvline(at, color="tab:red", linestyle="--", linewidth=1, label=f"t={threshold:.3f}, coverage={at:.1%}")
        ax.legend(loc="lower left", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(max(0.0, float(acc.min()) - 0.05) if acc.size else 0.0, 1.01)
    ax.set_xlabel("coverage (share auto-routed)")
    ax.set_ylabel("accuracy of auto-routed")
    ax.set_title(title)
    return _save(fig, path)


def _fmt(x: Any, pct: bool = True) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "n/a"
    return f"{100 * x:.1f}" if pct else f"{x:.3f}"


def _delta(a: Any, b: Any) -> str:
    return "n/a" if a is None or b is None else f"{100 * (a - b):+.1f}"


def _summary(heads: Mapping[str, Mapping], base: Mapping[str, Mapping]) -> list[str]:
    cols = ["Head", "n", "Accuracy", "Macro-F1", "Weighted-F1", "Top-2", "Top-3", "ECE before→after", "T",
            "Review threshold", "Coverage (acc) at threshold"]  # fmt: skip
    if base:
        cols += ["TF-IDF acc (Δ)", "TF-IDF macro-F1 (Δ)"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for name, h in heads.items():
        topk = h.get("top_k_accuracy") or {}
        thr = h.get("review_threshold")
        row = [
            f"`{name}`" + (" (multi-label)" if h.get("multilabel") else ""),
            str(h.get("n", "")),
            _fmt(h.get("accuracy")),
            _fmt(h.get("macro_f1")),
            _fmt(h.get("weighted_f1")),
            _fmt(topk.get("2")),
            _fmt(topk.get("3")),
            f"{_fmt(h.get('ece_before'))} → {_fmt(h.get('ece'))}",
            _fmt(h.get("temperature"), pct=False),
            "none (does not flag)" if thr is None else f"{thr:.3f} ({h.get('threshold_source', '?')})",
            f"{_fmt(h.get('coverage_at_threshold'))} ({_fmt(h.get('accuracy_at_threshold'))})",
        ]
        if base:
            b = base.get(name, {})
            row += [
                f"{_fmt(b.get('accuracy'))} ({_delta(h.get('accuracy'), b.get('accuracy'))})",
                f"{_fmt(b.get('macro_f1'))} ({_delta(h.get('macro_f1'), b.get('macro_f1'))})",
            ]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _review(review: Mapping) -> list[str]:
    """The ticket-level operating point: how many tickets are automated and how good the automated ones are."""
    if not review.get("heads"):
        return []
    lines = [
        "## Review",
        "",
        f"**{_fmt(review.get('auto_routed'))} % of the {review.get('n')} test tickets are auto-routed** "
        f"(flagged when any of {', '.join(f'`{h}`' for h in review.get('review_heads', []))} is in doubt). "
        f"All heads right: {_fmt(review.get('all_heads_auto_accuracy'))} % of the auto-routed tickets vs "
        f"{_fmt(review.get('all_heads_review_accuracy'))} % of the flagged ones.",
        "",
        "| Head | Accuracy, auto-routed | Accuracy, flagged for review |",
        "|---|---|---|",
    ]
    lines += [
        f"| `{h}` | {_fmt(m.get('auto_accuracy'))} | {_fmt(m.get('review_accuracy'))} |"
        for h, m in review["heads"].items()
    ]
    lines.append("")
    for w in review.get("warnings") or []:
        lines += [f"> **Warning:** {w}", ""]
    return lines


def _out_of_scope(oos: Mapping[str, Mapping]) -> list[str]:
    """Share of test tickets each head's detector flags; open-class recall when some labels are unseen."""
    if not oos:
        return []
    lines = [
        "## Out of scope",
        "",
        "| Head | Detector | Flagged | In-scope flagged | Unseen-label tickets | Open-class recall | AUROC |",
        "|---|---|---|---|---|---|---|",
    ]
    for h, m in oos.items():
        lines.append(
            f"| `{h}` | {m['detector']} | {_fmt(m.get('oos_rate'))} | {_fmt(m.get('in_scope_flagged'))} | "
            f"{m.get('n_unseen_labels', 0)} | {_fmt(m.get('open_recall'))} | {_fmt(m.get('auroc'))} |"
        )
    lines += [
        "",
        "Flagged: share of all test tickets the head calls out of scope; in-scope flagged: of the tickets whose "
        "label is a trained class; open-class recall: of the tickets whose label is not (the open class).",
        "",
    ]
    return lines


def _per_language(heads: Mapping[str, Mapping]) -> list[str]:
    lines = []
    for name, h in heads.items():
        groups = h.get("per_language")
        if not groups:
            continue
        lines += [f"**`{name}`**", "", "| Language | n | Accuracy | Macro-F1 |", "|---|---|---|---|"]
        lines += [
            f"| {_cell(g)} | {m['n']} | {_fmt(m['accuracy'])} | {_fmt(m['macro_f1'])} |" for g, m in groups.items()
        ]
        lines.append("")
    return lines


def _cell(text: Any) -> str:
    """A table cell from untrusted text (a language value from the data file): no markup, no column breaks."""
    return html.escape(str(text)).replace("|", "&#124;").replace("\n", " ")


def _language_mix(languages: Mapping | None) -> list[str]:
    if not languages:
        return []
    train, test = languages.get("train") or {}, languages.get("test") or {}
    lines = ["| Language | train rows | test rows |", "|---|---|---|"]
    lines += [f"| {_cell(g)} | {train.get(g, 0)} | {test.get(g, 0)} |" for g in dict.fromkeys([*train, *test])]
    lines.append("")
    for warning in languages.get("warnings") or []:
        lines += [f"> **Warning:** {_cell(warning)}", ""]
    return lines


def _critical(heads: Mapping[str, Mapping]) -> list[str]:
    rows = [(name, lab, rec) for name, h in heads.items() for lab, rec in (h.get("critical_recall") or {}).items()]
    if not rows:
        return []
    lines = ["| Head | Class | Recall |", "|---|---|---|"]
    return lines + [f"| `{name}` | {lab} | {_fmt(rec)} |" for name, lab, rec in rows] + [""]


def _head_details(name: str, h: Mapping) -> list[str]:
    lines = [f"### `{name}`", ""]
    if h.get("unknown_labels"):
        lines += [f"{h['unknown_labels']} test rows had a missing or unknown `{name}` label and were left out.", ""]
    for kind, rel in (h.get("plots") or {}).items():
        lines += [f"![{name} {kind}]({rel})", ""]
    if h.get("classification_report"):
        lines += ["```", h["classification_report"].rstrip(), "```", ""]
    return lines


def write_report(
    out_dir: str | Path, metrics: Mapping, baseline: Mapping | None = None, title: str = "Evaluation report"
) -> Path:
    """Write ``out_dir/report.md`` from the metrics dict of ``evaluate``.

    Args:
        out_dir: Folder of the report; plot paths in ``metrics`` are relative to it.
        metrics: Dict with ``heads`` (per-head metrics) and optionally ``n_test`` and ``target_precision``.
        baseline: Dict with ``heads`` of the baseline; defaults to ``metrics["baseline"]`` when present.
        title: Report title.

    Returns:
        The path of the report.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    heads = metrics.get("heads", {})
    baseline = baseline if baseline is not None else metrics.get("baseline")
    base = (baseline or {}).get("heads", {})
    lines = [f"# {title}", ""]
    if "n_test" in metrics:
        lines += [f"Test rows: {metrics['n_test']}. Metrics in %, on temperature-calibrated probabilities.", ""]
    if metrics.get("review_budget") is not None:
        lines += [
            f"Review thresholds: fitted on validation so that at most {metrics['review_budget']:.0%} of tickets "
            f"are flagged for human review (the least confident ones across the review heads).",
            "",
        ]
    elif "target_precision" in metrics:
        lines += [f"Review threshold: the lowest confidence at which auto-routed tickets reach "
                  f"{metrics['target_precision']:.0%} accuracy; tickets below it go to human review.", ""]  # fmt: skip
    lines += ["## Summary", ""] + _summary(heads, base) + [""]
    lines += _review(metrics.get("review") or {})
    lines += _out_of_scope(metrics.get("out_of_scope") or {})
    if base:
        lines += ["Δ: model minus the TF-IDF + logistic regression baseline, in points.", ""]
    if any(h.get("multilabel") for h in heads.values()):
        lines += ["Multi-label heads: accuracy is the exact tag-set match, ECE is over (ticket, tag) pairs, and a "
                  "ticket's confidence is that of its least certain tag.", ""]  # fmt: skip
    mix = _language_mix(metrics.get("languages"))
    if mix:
        lines += ["## Language mix (training vs test)", ""] + mix
    per_lang = _per_language(heads)
    if per_lang:
        lines += ["## Per language", ""] + per_lang
    critical = _critical(heads)
    if critical:
        lines += ["## Critical classes (recall)", ""] + critical
    lines += ["## Heads", ""]
    for name, h in heads.items():
        lines += _head_details(name, h)
    path = out_dir / "report.md"
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path
