"""Small inline SVG charts rendered on the server (no JavaScript, no CDN, no inline styles: the page's CSP allows
neither). Every text is escaped; sizes are in SVG user units and scale with the page."""

from __future__ import annotations

from datetime import datetime
from typing import Optional, Sequence

from markupsafe import Markup, escape

__all__ = ["bar_chart", "line_chart"]


def bar_chart(
    rows: Sequence[tuple[str, Optional[float], str]],
    title: str,
    width: int = 460,
    bar_h: int = 18,
    high_is_good: bool = True,
) -> Markup:
    """Horizontal bars of fractions in [0, 1]: rows of (name, value or None, text shown after the bar), coloured
    green/amber/red by value (the other way round when ``high_is_good`` is False)."""
    label_w, gap, note_w = 150, 6, 120
    height = max(1, len(rows)) * (bar_h + gap) + 8
    plot_w = width - label_w - note_w
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for i, (name, value, note) in enumerate(rows):
        y = 4 + i * (bar_h + gap)
        short = name if len(name) <= 22 else name[:21] + "…"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar_h - 5}" text-anchor="end" class="axis">'
            f"{escape(short)}<title>{escape(name)}</title></text>"
        )
        parts.append(f'<rect x="{label_w}" y="{y}" width="{plot_w}" height="{bar_h}" class="track"/>')
        if value is not None:
            score = value if high_is_good else 1 - value
            cls = "bar good" if score >= 0.9 else "bar warn" if score >= 0.7 else "bar bad"
            parts.append(
                f'<rect x="{label_w}" y="{y}" width="{max(1.0, plot_w * value):.1f}" height="{bar_h}" class="{cls}"/>'
            )
        parts.append(f'<text x="{label_w + plot_w + 6}" y="{y + bar_h - 5}" class="value">{escape(note)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(points: Sequence[tuple[datetime, int]], title: str, width: int = 460, height: int = 160) -> Markup:
    """A line of counts over time with its first and last dates and the largest value on the axes."""
    left, right, top, bottom = 44, 10, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = max([v for _, v in points] + [1])
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" class="axisline"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" class="axisline"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" class="axis">{top_value}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" class="axis">0</text>',
    ]
    if points:
        step = plot_w / max(1, len(points) - 1)
        xy = [(left + i * step, top + plot_h - plot_h * v / top_value) for i, (_, v) in enumerate(points)]
        parts.append('<polyline class="line" points="' + " ".join(f"{x:.1f},{y:.1f}" for x, y in xy) + '"/>')
        for (x, y), (t, v) in zip(xy, points):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" class="dot"><title>'
                f"{escape(t.strftime('%Y-%m-%d %H:%M'))}: {v}</title></circle>"
            )
        for anchor, (t, _), x in (("start", points[0], left), ("end", points[-1], left + plot_w)):
            parts.append(
                f'<text x="{x}" y="{height - 8}" text-anchor="{anchor}" class="axis">'
                f"{escape(t.strftime('%b %d'))}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))
