"""Small inline-SVG charts for `mmcurate report`: histograms and bar charts with axes, ticks,
labels and counts.

Written here rather than with matplotlib: the report needs only bars, matplotlib would add
several dependencies (and a font cache) for them, and inline SVG keeps the page one
self-contained file that fetches nothing. Every text is escaped; every bar is a
`<rect class="bar" data-count="n">` with a `<title>` tooltip.
"""

from __future__ import annotations

import html
import math

WIDTH, HEIGHT = 480, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 14, 14, 42
FONT = 11
CHAR_W = 6.3  # rough width of one character at FONT px, for label spacing
ROW = 20  # horizontal bars: height of one row
MAX_BAR = 48  # widest bar of a bar chart with few categories


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def fmt(v: float) -> str:
    """Compact tick/count label: 1,234 → 1.23k; 0.25 → 0.25."""
    a = abs(v)
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= scale:
            return f"{v / scale:.3g}{suffix}"
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.3g}"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About `n` round tick values (steps of 1, 2 or 5 times a power of ten) covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9)
    return [round(k * step, 12) for k in range(first, math.floor(hi / step + 1e-9) + 1)]


def histogram(edges: list[float], counts: list[int], xlabel: str = "", ylabel: str = "samples") -> str:
    """Contiguous bars over numeric bins (`len(edges) == len(counts) + 1`), a numeric x axis."""
    if len(edges) != len(counts) + 1:
        raise ValueError(f"{len(edges)} edges for {len(counts)} bins")
    lo, hi = edges[0], edges[-1]
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    sx = lambda x: LEFT + (x - lo) / ((hi - lo) or 1) * pw  # noqa: E731
    parts, sy = _y_axis(max(counts, default=0), ph, ylabel)
    for i, c in enumerate(counts):
        x0, x1 = sx(edges[i]), sx(edges[i + 1])
        gap = 1 if x1 - x0 > 4 else 0
        tip = f"[{fmt(edges[i])}, {fmt(edges[i + 1])}): {c:,}"
        parts.append(_vbar(x0 + gap / 2, x1 - x0 - gap, sy(c), c, tip, show_count=x1 - x0 >= 18))
    for t in nice_ticks(lo, hi):
        if lo <= t <= hi:
            parts.append(_x_tick(sx(t), fmt(t)))
    return _svg(WIDTH, HEIGHT, parts, xlabel)


def bars(labels: list[str], values: list[int], xlabel: str = "", ylabel: str = "samples") -> str:
    """One vertical bar per label (labels thinned out when they would overlap)."""
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    band = pw / max(1, len(values))
    every = max(1, math.ceil((max((len(str(s)) for s in labels), default=1) * CHAR_W + 8) / band))
    parts, sy = _y_axis(max(values, default=0), ph, ylabel)
    for i, (label, v) in enumerate(zip(labels, values)):
        x, w = LEFT + i * band, min(band * 0.8, MAX_BAR)
        parts.append(_vbar(x + (band - w) / 2, w, sy(v), v, f"{label}: {v:,}", show_count=band >= 18))
        if i % every == 0:
            parts.append(_x_tick(x + band / 2, str(label)))
    return _svg(WIDTH, HEIGHT, parts, xlabel)


def hbars(labels: list[str], values: list[int], classes: list[str] | None = None) -> str:
    """One horizontal bar per label, its name at the left and its count at its end (for long
    category names)."""
    left = min(240, 12 + CHAR_W * max((len(str(s)) for s in labels), default=1))
    height = TOP + ROW * len(values) + 8
    pw = WIDTH - left - RIGHT - 40  # room for the count after the longest bar
    top = max(values, default=0) or 1
    parts = [f'<line class="axis" x1="{left}" y1="{TOP}" x2="{left}" y2="{TOP + ROW * len(values)}"/>']
    for i, (label, v) in enumerate(zip(labels, values)):
        y, w = TOP + i * ROW, v / top * pw
        cls = f"bar {classes[i]}" if classes else "bar"
        parts.append(
            f'<rect class="{esc(cls)}" data-count="{v}" x="{left}" y="{y + 3:.1f}" width="{w:.2f}" height="{ROW - 6}">'
            f"<title>{esc(label)}: {v:,}</title></rect>"
            f'<text class="label" x="{left - 6}" y="{y + ROW / 2 + 4:.1f}" text-anchor="end">{esc(label)}</text>'
            f'<text class="count" x="{left + w + 4:.2f}" y="{y + ROW / 2 + 4:.1f}">{v:,}</text>'
        )
    return _svg(WIDTH, height, parts)


def _y_axis(top: int, ph: float, ylabel: str):
    """Grid lines and labels for a count axis from 0; returns (svg parts, count → y)."""
    ticks = [t for t in nice_ticks(0, top or 1) if t == int(t)]  # counts are whole numbers
    ymax = top or 1
    sy = lambda v: TOP + ph - v / ymax * ph  # noqa: E731
    parts = [f'<line class="axis" x1="{LEFT}" y1="{TOP + ph}" x2="{WIDTH - RIGHT}" y2="{TOP + ph}"/>']
    for t in ticks:
        parts.append(
            f'<line class="grid" x1="{LEFT}" y1="{sy(t):.1f}" x2="{WIDTH - RIGHT}" y2="{sy(t):.1f}"/>'
            f'<text class="tick" x="{LEFT - 5}" y="{sy(t) + 4:.1f}" text-anchor="end">{fmt(t)}</text>'
        )
    parts.append(f'<text class="axis-label" transform="translate(13 {TOP + ph / 2:.1f}) rotate(-90)" text-anchor="middle">{esc(ylabel)}</text>')
    return parts, sy


def _vbar(x: float, w: float, y: float, count: int, tip: str, show_count: bool) -> str:
    base = HEIGHT - BOTTOM
    rect = (
        f'<rect class="bar" data-count="{count}" x="{x:.2f}" y="{y:.2f}" width="{max(w, 0.5):.2f}" height="{base - y:.2f}">'
        f"<title>{esc(tip)}</title></rect>"
    )
    if show_count and count:
        rect += f'<text class="count" x="{x + w / 2:.2f}" y="{y - 3:.2f}" text-anchor="middle">{fmt(count)}</text>'
    return rect


def _x_tick(x: float, label: str) -> str:
    base = HEIGHT - BOTTOM
    return (
        f'<line class="axis" x1="{x:.2f}" y1="{base}" x2="{x:.2f}" y2="{base + 4}"/>'
        f'<text class="tick" x="{x:.2f}" y="{base + 16}" text-anchor="middle">{esc(label)}</text>'
    )


def _svg(width: float, height: float, parts: list[str], xlabel: str = "") -> str:
    label = f'<text class="axis-label" x="{LEFT + (width - LEFT - RIGHT) / 2:.1f}" y="{height - 6}" text-anchor="middle">{esc(xlabel)}</text>' if xlabel else ""
    return (
        f'<svg class="chart" width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'role="img" font-size="{FONT}">{"".join(parts)}{label}</svg>'
    )
