"""Inline SVG charts for report.html, drawn in Python (no JavaScript, no network).

Two shapes cover the report: horizontal stacked bars (counts by category and outcome) and
a time chart (lines and/or bars over the run's seconds). Every text is escaped here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from itertools import pairwise

from provision.report.values import ThroughputSample

__all__ = ["Series", "TimeSeries", "rates", "stacked_bars", "time_chart"]

_FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif"'
_AXIS = "#6b7280"
_GRID = "#e5e7eb"


@dataclass(frozen=True, slots=True)
class Series:
    """One stacked segment kind: a key into each bar's counts, its label and colour."""

    key: str
    label: str
    colour: str


@dataclass(frozen=True, slots=True)
class TimeSeries:
    label: str
    colour: str
    points: tuple[tuple[float, float], ...]  # (t seconds, value)
    style: str = "line"  # line | dashed | bars


def _ink_on(colour: str) -> str:
    """Black or white text, whichever reads better on a ``#rrggbb`` fill."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return "#111827" if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "#ffffff"


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 4, 6 or 8 x 10^k at or above ``value``: quarters of it read well."""
    if value <= 0:
        return 1.0
    exp = math.floor(math.log10(value))
    for m in (1, 2, 4, 6, 8, 10):
        top = m * 10**exp
        if top >= value * (1 - 1e-9):
            return float(top)
    return float(10 ** (exp + 1))


def _fmt(v: float) -> str:
    if v == int(v):
        return f"{int(v):,}"
    return f"{v:,.1f}" if abs(v) >= 10 else f"{v:,.2f}".rstrip("0").rstrip(".")


def _text_w(text: str, size: float) -> float:
    """A generous width estimate for ``text`` in the chart's sans-serif font: SVG text
    doesn't wrap or grow its box, so a column sized from this never clips a label."""
    return 0.62 * size * len(text)


def _legend_w(series: Sequence[tuple[str, str]]) -> float:
    return sum(24 + _text_w(label, 12) for label, _ in series)


def _legend(series: Sequence[tuple[str, str]], x: float, y: float) -> list[str]:
    out = []
    for label, colour in series:
        out.append(f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" rx="2" fill="{colour}" '
                   f'stroke="#9ca3af" stroke-width="0.5"/>')
        out.append(f'<text x="{x + 17:.1f}" y="{y:.1f}" font-size="12" fill="#374151">{escape(label)}</text>')
        x += 24 + _text_w(label, 12)
    return out


def stacked_bars(
    bars: Sequence[tuple[str, Mapping[str, int]]],
    series: Sequence[Series],
    *,
    title: str,
    width: int = 900,
) -> str:
    """Horizontal bars, one per (label, counts), split into ``series`` segments."""
    bar_h, gap, top = 24, 10, 34
    biggest = max((sum(c.get(s.key, 0) for s in series) for _, c in bars), default=0) or 1
    # The label column fits the longest label, the right margin the largest total and the
    # width the legend, so none is clipped by the viewBox.
    label_w = max(120.0, 16 + max((_text_w(label, 13) for label, _ in bars), default=0.0))
    right = 16 + _text_w(f"{biggest:,}", 12)
    legend = [(s.label, s.colour) for s in series]
    width = max(width, round(label_w + max(_legend_w(legend), 300.0) + right))
    height = top + len(bars) * (bar_h + gap) + 20
    plot_w = width - label_w - right
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{escape(title)}" {_FONT}>',
        f"<title>{escape(title)}</title>",
    ]
    parts += _legend(legend, label_w, 16)
    y = top
    for label, counts in bars:
        parts.append(f'<text x="{label_w - 8:.1f}" y="{y + bar_h / 2 + 4:.1f}" font-size="13" text-anchor="end" '
                     f'fill="#111827">{escape(label)}</text>')
        x = float(label_w)
        total = 0
        for s in series:
            n = counts.get(s.key, 0)
            if n <= 0:
                continue
            w = max(plot_w * n / biggest, 1.5)
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{s.colour}" '
                         f'stroke="#ffffff" stroke-width="1"><title>{escape(label)}: {n:,} '
                         f'{escape(s.label)}</title></rect>')
            if w > 34:
                parts.append(f'<text x="{x + w / 2:.1f}" y="{y + bar_h / 2 + 4:.1f}" font-size="11" '
                             f'text-anchor="middle" fill="{_ink_on(s.colour)}">{n:,}</text>')
            x += w
            total += n
        parts.append(f'<text x="{x + 6:.1f}" y="{y + bar_h / 2 + 4:.1f}" font-size="12" fill="{_AXIS}">'
                     f"{total:,}</text>")
        y += bar_h + gap
    parts.append("</svg>")
    return "".join(parts)


def rates(timeline: Sequence[ThroughputSample]) -> dict[str, tuple[tuple[float, float], ...]]:
    """Per-interval rates from the cumulative samples: operations/s, changes/s, 429s/interval.

    Also the pacer's rate limit where the samples carry one. Intervals of zero length are
    skipped (two samples at the same instant say nothing about a rate).
    """
    samples = sorted(timeline, key=lambda s: s.t)
    ops, done, throttled, limit = [], [], [], []
    prev_t, prev_ops, prev_done, prev_thr = 0.0, 0, 0, 0
    for s in samples:
        dt = s.t - prev_t
        if s.rate_limit is not None:
            limit.append((s.t, float(s.rate_limit)))
        if dt <= 0:
            continue
        ops.append((s.t, max(0, s.operations - prev_ops) / dt))
        done.append((s.t, max(0, s.succeeded - prev_done) / dt))
        throttled.append((s.t, float(max(0, s.throttled - prev_thr))))
        prev_t, prev_ops, prev_done, prev_thr = s.t, s.operations, s.succeeded, s.throttled
    return {"operations": tuple(ops), "succeeded": tuple(done), "throttled": tuple(throttled),
            "rate_limit": tuple(limit)}


def time_chart(
    series: Sequence[TimeSeries],
    *,
    title: str,
    y_label: str,
    width: int = 900,
    height: int = 260,
) -> str:
    """Lines (or bars) against seconds since the run started, with gridlines and a legend."""
    left, right, top, bottom = 64, 20, 34, 42
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [t for s in series for t, _ in s.points]
    ys = [v for s in series for _, v in s.points]
    x_max = _nice_ceiling(max(xs, default=1.0))
    y_max = _nice_ceiling(max(ys, default=1.0))

    def px(t: float) -> float:
        return left + plot_w * t / x_max

    def py(v: float) -> float:
        return top + plot_h * (1 - v / y_max)

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{escape(title)}" {_FONT}>',
        f"<title>{escape(title)}</title>",
    ]
    parts += _legend([(s.label, s.colour) for s in series], left, 16)
    for i in range(5):
        v = y_max * i / 4
        y = py(v)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="{_GRID}"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
                     f'fill="{_AXIS}">{_fmt(v)}</text>')
    for i in range(6):
        t = x_max * i / 5
        x = px(t)
        parts.append(f'<line x1="{x:.1f}" y1="{top + plot_h}" x2="{x:.1f}" y2="{top + plot_h + 4}" '
                     f'stroke="{_AXIS}"/>')
        parts.append(f'<text x="{x:.1f}" y="{top + plot_h + 17}" font-size="11" text-anchor="middle" '
                     f'fill="{_AXIS}">{_fmt(t)}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" font-size="12" text-anchor="middle" '
                 f'fill="{_AXIS}">seconds since the run started</text>')
    parts.append(f'<text x="14" y="{top + plot_h / 2:.1f}" font-size="12" text-anchor="middle" fill="{_AXIS}" '
                 f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{escape(y_label)}</text>')
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
                 f'stroke="{_AXIS}"/>')
    for s in series:
        if not s.points:
            continue
        if s.style == "bars":
            ts = sorted(t for t, _ in s.points)
            step = min((b - a for a, b in pairwise(ts) if b > a), default=x_max / 50)
            bw = max(plot_w * step / x_max * 0.8, 1.5)
            for t, v in s.points:
                if v <= 0:
                    continue
                parts.append(f'<rect x="{px(t) - bw:.1f}" y="{py(v):.1f}" width="{bw:.1f}" '
                             f'height="{top + plot_h - py(v):.1f}" fill="{s.colour}">'
                             f"<title>{_fmt(t)} s: {_fmt(v)} {escape(s.label)}</title></rect>")
            continue
        coords = " ".join(f"{px(t):.1f},{py(v):.1f}" for t, v in s.points)
        dash = ' stroke-dasharray="6 4"' if s.style == "dashed" else ""
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{s.colour}" stroke-width="2"'
                     f'{dash} stroke-linejoin="round"/>')
    parts.append("</svg>")
    return "".join(parts)
