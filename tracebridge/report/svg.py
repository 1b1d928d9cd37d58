"""Inline SVG charts for the single-file report, generated as strings (no JS, no CDN, no
plotting library): interval (forest) plots, line charts and heatmaps. Pure functions.

Every chart is an ``<svg class="plot" data-kind="...">`` element so the report test can find it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
FONT = 'font-family="sans-serif" font-size="11"'


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def _finite(vals: Sequence[float | None]) -> list[float]:
    return [v for v in vals if v is not None and not math.isnan(v) and not math.isinf(v)]


def _open_plot(kind: str, title: str, width: float, height: float) -> list[str]:
    """A chart's first elements: its ``<svg>`` tag with the title, and the title drawn at the top left."""
    return [(f'<svg class="plot" data-kind="{kind}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height}" role="img"><title>{escape(title)}</title>'),
            f'<text x="4" y="14" {FONT} font-weight="bold">{escape(title)}</text>']


def _scale(lo: float, hi: float, a: float, b: float):
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def interval_plot(rows: Sequence[tuple[str, str, float, float, float]], title: str, zero_line: bool = False,
                  kind: str = "interval") -> str:
    """Dots with interval whiskers: one line per ``(label, series, value, lo, hi)``.

    Series (e.g. variants) get a colour each and a legend; ``zero_line`` marks 0 (differences).
    """
    series = list(dict.fromkeys(r[1] for r in rows))
    vals = _finite([v for r in rows for v in r[2:]])
    lo, hi = (min(vals + [0.0]), max(vals + [1.0 if not zero_line else 0.0])) if vals else (0.0, 1.0)
    if zero_line:
        m = max(abs(lo), abs(hi)) or 1.0
        lo, hi = -m, m
    left, width, rh = 190, 360, 18
    h = 40 + rh * len(rows) + 24
    x = _scale(lo, hi, left, left + width)
    out = _open_plot(kind, title, left + width + 150, h)
    for t in (lo, (lo + hi) / 2, hi):
        out.append(f'<line x1="{x(t):.1f}" y1="24" x2="{x(t):.1f}" y2="{h - 20}" stroke="#ddd"/>'
                   f'<text x="{x(t):.1f}" y="{h - 6}" {FONT} text-anchor="middle">{_fmt(t)}</text>')
    if zero_line:
        out.append(f'<line x1="{x(0):.1f}" y1="24" x2="{x(0):.1f}" y2="{h - 20}" stroke="#000" stroke-dasharray="3,3"/>')
    for i, (label, s, v, a, b) in enumerate(rows):
        y = 34 + i * rh
        c = PALETTE[series.index(s) % len(PALETTE)]
        out.append(f'<text x="4" y="{y + 4}" {FONT}>{escape(label)}</text>')
        if _finite([a, b]) == [a, b]:
            out.append(f'<line x1="{x(a):.1f}" y1="{y}" x2="{x(b):.1f}" y2="{y}" stroke="{c}" stroke-width="2"/>')
        if _finite([v]):
            out.append(f'<circle cx="{x(v):.1f}" cy="{y}" r="4" fill="{c}"><title>{escape(label)} {escape(s)}: '
                       f'{_fmt(v)} [{_fmt(a)}, {_fmt(b)}]</title></circle>')
    for j, s in enumerate(series):
        out.append(f'<rect x="{left + width + 14}" y="{28 + j * 16}" width="10" height="10" fill="{PALETTE[j % len(PALETTE)]}"/>'
                   f'<text x="{left + width + 28}" y="{37 + j * 16}" {FONT}>{escape(s)}</text>')
    out.append("</svg>")
    return "".join(out)


def line_chart(series: Sequence[tuple[str, Sequence[tuple[float, float]]]], title: str, x_label: str = "step",
               y_label: str = "loss", kind: str = "lines") -> str:
    """Polylines, one per ``(name, [(x, y), ...])``, sharing axes."""
    pts = [p for _, s in series for p in s if _finite([p[1]])]
    w, h, pad = 520, 240, 44
    # the legend as wide as its longest name (~7 px a character at 11 px): a fixed 170 px cut names past ~25
    out = _open_plot(kind, title, w + max(170, 30 + 7 * max((len(n) for n, _ in series), default=0)), h)
    if not pts:  # each series named: "no data" said nothing of a curve of NaN losses
        out.append(f'<text x="{pad}" y="{h / 2}" {FONT}>no data</text>' if not series else "".join(
            f'<text x="{pad}" y="{40 + i * 16}" {FONT}>{escape(name)}: no finite {escape(y_label)}</text>'
            for i, (name, _) in enumerate(series)))
        out.append("</svg>")
        return "".join(out)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    fx = _scale(min(xs), max(xs), pad, w - 10)
    fy = _scale(min(ys), max(ys), h - pad + 10, 24)
    for t in (min(ys), (min(ys) + max(ys)) / 2, max(ys)):
        out.append(f'<line x1="{pad}" y1="{fy(t):.1f}" x2="{w - 10}" y2="{fy(t):.1f}" stroke="#eee"/>'
                   f'<text x="{pad - 4}" y="{fy(t) + 4:.1f}" {FONT} text-anchor="end">{_fmt(t)}</text>')
    for t in (min(xs), max(xs)):
        out.append(f'<text x="{fx(t):.1f}" y="{h - 16}" {FONT} text-anchor="middle">{_fmt(t)}</text>')
    out.append(f'<text x="{(pad + w) / 2:.0f}" y="{h - 2}" {FONT} text-anchor="middle">{escape(x_label)}</text>'
               f'<text x="10" y="{h / 2:.0f}" {FONT} transform="rotate(-90 10 {h / 2:.0f})">{escape(y_label)}</text>')
    for i, (name, s) in enumerate(series):
        c = PALETTE[i % len(PALETTE)]
        good = [(a, b) for a, b in s if _finite([b])]
        if good:
            path = " ".join(f"{fx(a):.1f},{fy(b):.1f}" for a, b in good)
            out.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.5" points="{path}"><title>{escape(name)}'
                       f'</title></polyline>')
        out.append(f'<rect x="{w + 4}" y="{24 + i * 16}" width="10" height="10" fill="{c}"/>'
                   f'<text x="{w + 18}" y="{33 + i * 16}" {FONT}>{escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def _colour(t: float) -> str:
    """White → blue for t in [0, 1]."""
    t = min(max(t, 0.0), 1.0)
    r, g, b = (int(255 + (c - 255) * t) for c in (31, 119, 180))
    return f"rgb({r},{g},{b})"


def heatmap(rows: Sequence[str], cols: Sequence[str], values: Sequence[Sequence[float | None]], title: str,
            row_label: str = "", col_label: str = "", kind: str = "heatmap") -> str:
    """A grid of coloured cells with their values printed (``None`` = not run)."""
    cw, ch, left, top = 90, 28, 150, 44
    vals = _finite([v for r in values for v in r])
    lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
    w, h = left + cw * len(cols) + 10, top + ch * len(rows) + 10
    out = [*_open_plot(kind, title, w, h),
           f'<text x="4" y="{top - 6}" {FONT} font-style="italic">{escape(row_label)} \\ {escape(col_label)}</text>']
    for j, c in enumerate(cols):
        out.append(f'<text x="{left + j * cw + cw / 2}" y="{top - 6}" {FONT} text-anchor="middle">{escape(str(c))}</text>')
    for i, r in enumerate(rows):
        y = top + i * ch
        out.append(f'<text x="4" y="{y + ch / 2 + 4}" {FONT}>{escape(str(r))}</text>')
        for j, v in enumerate(values[i]):
            fill = _colour((v - lo) / ((hi - lo) or 1.0)) if _finite([v]) else "#f4f4f4"
            dark = _finite([v]) and (v - lo) / ((hi - lo) or 1.0) > 0.6
            out.append(f'<rect x="{left + j * cw}" y="{y}" width="{cw - 2}" height="{ch - 2}" fill="{fill}"/>'
                       f'<text x="{left + j * cw + cw / 2}" y="{y + ch / 2 + 4}" {FONT} text-anchor="middle" '
                       f'fill="{"#fff" if dark else "#000"}">{_fmt(v) if v is not None else "–"}</text>')
    out.append("</svg>")
    return "".join(out)
