"""Charts drawn on the server as inline SVG: lines over time, stacked bars over time, and a
call's per-second class strip.

Pure functions from numbers to markup, no scripts: each point and bar carries a ``<title>``
the browser shows on hover, and the figure scales with its container (``viewBox``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

from agent.labels import LABELS

#: Colours of series (Tableau 10), in order.
PALETTE: tuple[str, ...] = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                            "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
#: Colour of each early-media class.
CLASS_COLOURS: dict[str, str] = {"announcement": "#e15759", "ringback": "#4e79a7",
                                 "music": "#59a14f", "silence": "#bab0ac"}
_W, _H = 600, 190
_LEFT, _RIGHT, _TOP, _BOTTOM = 46, 10, 10, 26


@dataclass(frozen=True, slots=True)
class Series:
    """One line or one layer of bars: its name, colour and a value per bucket."""

    name: str
    colour: str
    values: Sequence[float | None]


def _nice_max(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k that is at least ``value`` (at least 1)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def _fmt(value: float, percent: bool) -> str:
    return f"{value:.0%}" if percent else f"{value:g}"


def _time_label(t: datetime, span_s: float) -> str:
    t = t.astimezone(UTC)
    return f"{t:%H:%M}" if span_s <= 86400 else f"{t:%m-%d %H:%M}" if span_s <= 3 * 86400 \
        else f"{t:%m-%d}"


def _frame(edges: Sequence[datetime], y_max: float, percent: bool) -> tuple[str, float, float]:
    """Axes, grid and labels; returns them with the plot's width and height."""
    pw, ph = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    parts = []
    for frac in (0.0, 0.5, 1.0):
        y = _TOP + ph * (1 - frac)
        parts.append(f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                     'stroke="#e3e6ea"/>')
        parts.append(f'<text x="{_LEFT - 5}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{_fmt(y_max * frac, percent)}</text>")
    span = (edges[-1] - edges[0]).total_seconds()
    n = len(edges) - 1
    ticks = sorted({0, n // 3, 2 * n // 3, n}) if n >= 3 else list(range(n + 1))
    for i in ticks:
        x = _LEFT + pw * i / n
        anchor = "start" if i == 0 else "end" if i == n else "middle"
        parts.append(f'<text x="{x:.1f}" y="{_H - 8}" text-anchor="{anchor}">'
                     f"{_time_label(edges[i], span)}</text>")
    parts.append(f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{_TOP + ph}" y2="{_TOP + ph}" '
                 'stroke="#9aa3ad"/>')
    return "".join(parts), pw, ph


def _legend(series: Sequence[Series], extra: str = "") -> str:
    return ('<ul class="legend">'
            + "".join(f'<li><span class="sw" style="background:{s.colour}"></span>'
                      f"{escape(s.name)}</li>" for s in series) + extra + "</ul>")


def _figure(title: str, svg: str, series: Sequence[Series]) -> str:
    return (f"<figure><figcaption>{escape(title)}</figcaption>"
            f'<svg viewBox="0 0 {_W} {_H}" role="img" aria-label="{escape(title, quote=True)}"'
            f' font-size="11" fill="#555">{svg}</svg>{_legend(series)}</figure>')


def _bucket_title(edges: Sequence[datetime], i: int) -> str:
    return f"{edges[i].astimezone(UTC):%Y-%m-%d %H:%M}–{edges[i + 1].astimezone(UTC):%H:%M} UTC"


def line_chart(title: str, edges: Sequence[datetime], series: Sequence[Series], *,
               percent: bool = False) -> str:
    """Lines over time, one point per bucket (``len(edges) - 1`` values per series); a
    None value breaks the line. ``percent`` draws 0–100 % (values are fractions)."""
    top = max((v for s in series for v in s.values if v is not None), default=0.0)
    y_max = 1.0 if percent else _nice_max(top)
    frame, pw, ph = _frame(edges, y_max, percent)
    n = len(edges) - 1
    parts = [frame]
    for s in series:
        runs: list[list[str]] = [[]]
        for i, v in enumerate(s.values):
            if v is None:
                runs.append([])
                continue
            x, y = _LEFT + pw * (i + 0.5) / n, _TOP + ph * (1 - v / y_max)
            runs[-1].append(f"{x:.1f},{y:.1f}")
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.2" fill="{s.colour}">'
                         f"<title>{escape(s.name)}, {_bucket_title(edges, i)}: "
                         f"{_fmt(v, percent) if percent else f'{v:g}'}</title></circle>")
        for run in runs:
            if len(run) > 1:
                parts.append(f'<polyline points="{" ".join(run)}" fill="none" '
                             f'stroke="{s.colour}" stroke-width="1.6"/>')
    return _figure(title, "".join(parts), series)


def stacked_bars(title: str, edges: Sequence[datetime], series: Sequence[Series]) -> str:
    """Bars over time, one per bucket, each stacking every series' count."""
    n = len(edges) - 1
    totals = [sum(s.values[i] or 0 for s in series) for i in range(n)]
    y_max = _nice_max(max(totals, default=0))
    frame, pw, ph = _frame(edges, y_max, False)
    parts = [frame]
    width = pw / n
    for i in range(n):
        base = 0.0
        for s in series:
            v = s.values[i] or 0
            if not v:
                continue
            h = ph * v / y_max
            y = _TOP + ph * (1 - (base + v) / y_max)
            parts.append(f'<rect x="{_LEFT + width * i + width * 0.1:.1f}" y="{y:.1f}" '
                         f'width="{width * 0.8:.1f}" height="{h:.1f}" fill="{s.colour}">'
                         f"<title>{escape(s.name)}, {_bucket_title(edges, i)}: {v:g}</title>"
                         "</rect>")
            base += v
    return _figure(title, "".join(parts), series)


def second_strip(seconds: Sequence[tuple[int, str, dict[str, float]]], *,
                 marks: Sequence[tuple[float, str]] = ()) -> str:
    """A call's seconds: one column per second stacking the four class probabilities, the
    winning class as a band below; ``marks`` are (seconds, text) drawn as vertical lines
    (class decisions, tones)."""
    if not seconds:
        return ""
    n = max(t for t, _, _ in seconds) + 1
    col, ph, band = 16, 80, 10
    width = _LEFT + n * col + _RIGHT
    height = _TOP + ph + 4 + band + 22
    parts = [f'<text x="{_LEFT - 5}" y="{_TOP + 8}" text-anchor="end">p=1</text>',
             f'<text x="{_LEFT - 5}" y="{_TOP + ph}" text-anchor="end">0</text>',
             f'<text x="{_LEFT - 5}" y="{_TOP + ph + 4 + band}" text-anchor="end">class</text>']
    for t, label, p in seconds:
        x = _LEFT + t * col
        base = 0.0
        for name in LABELS:
            v = max(0.0, float(p.get(name, 0.0)))
            if v <= 0:
                continue
            h = ph * min(v, 1.0 - base)
            parts.append(f'<rect x="{x + 1}" y="{_TOP + ph * (1 - base) - h:.1f}" '
                         f'width="{col - 2}" height="{h:.1f}" fill="{CLASS_COLOURS[name]}"/>')
            base = min(1.0, base + v)
        detail = ", ".join(f"{k} {v:.2f}" for k, v in sorted(p.items(), key=lambda kv: -kv[1]))
        parts.append(f'<rect x="{x + 1}" y="{_TOP + ph + 4}" width="{col - 2}" height="{band}" '
                     f'fill="{CLASS_COLOURS.get(label, "#000")}"><title>{t}–{t + 1} s: '
                     f"{escape(label)} ({escape(detail)})</title></rect>")
        if t % 5 == 0:
            parts.append(f'<text x="{x + 1}" y="{height - 4}">{t}s</text>')
    for at_s, what in marks:
        mx = _LEFT + at_s * col
        parts.append(f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{_TOP - 4}" '
                     f'y2="{_TOP + ph + band + 6}" stroke="#1f2328" stroke-dasharray="3 2">'
                     f"<title>{escape(what)} at {at_s:g} s</title></line>")
    legend = _legend([Series(name, CLASS_COLOURS[name], []) for name in LABELS],
                     '<li class="muted">- - - decision or tone</li>')
    return (f'<figure style="max-width:{width * 1.6:.0f}px"><figcaption>Class per second'
            "</figcaption>"
            f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="class per second" '
            f'font-size="11" fill="#555">{"".join(parts)}</svg>{legend}</figure>')
