"""Interval plots as inline SVG: a mean per position with its 95% interval, clipped to the
metric's range, optional single values as dots, and a dashed reference (chance / majority) line.

Inline SVG needs no image library and no script; it scales with the window and carries a
``<title>`` and ``<desc>`` for screen readers (the same figures are in a table beside it)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from lagaug.report.html import esc, num

W, H = 440, 270
LEFT, RIGHT, TOP, BOTTOM = 46, 14, 42, 58


@dataclass
class Point:
    label: str
    mean: float
    half: float = float("nan")
    dots: list[float] = field(default_factory=list)
    highlight: bool = False


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def interval_svg(plot_id: str, title: str, points: list[Point], lo: float = 0.0, hi: float = 1.0,
                 reference: tuple[float, str] | None = None, x_title: str = "") -> str:
    """One SVG plot; ``lo``/``hi`` is the metric's range: the axis spans it and every interval is
    clipped to it (a clipped end has no cap)."""
    inner_w, inner_h = W - LEFT - RIGHT, H - TOP - BOTTOM

    def y(v: float) -> float:
        return TOP + inner_h * (1 - (min(max(v, lo), hi) - lo) / (hi - lo))

    n = max(len(points), 1)
    step = inner_w / n

    def x(i: int) -> float:
        return LEFT + step * (i + 0.5)

    parts = [f'<rect x="{LEFT}" y="{TOP}" width="{inner_w}" height="{inner_h}" fill="#fbfcfd" stroke="#c7cfd8"/>']
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + inner_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e3e8ee"/>'
                     f'<text x="{LEFT - 5}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11" fill="#5a6470">'
                     f'{esc(num(v, 2))}</text>')
    if reference is not None and _finite(reference[0]):
        ry = y(reference[0])
        lx = LEFT + inner_w
        parts.append(f'<line class="reference" x1="{LEFT}" x2="{lx}" y1="{ry:.1f}" y2="{ry:.1f}" '
                     f'stroke="#a1261b" stroke-dasharray="5 4" stroke-width="1.5"/>'
                     f'<line x1="{lx - 150}" x2="{lx - 128}" y1="{TOP - 12}" y2="{TOP - 12}" stroke="#a1261b" '
                     f'stroke-dasharray="5 4" stroke-width="1.5"/>'
                     f'<text x="{lx - 124}" y="{TOP - 8}" font-size="11" fill="#a1261b">'
                     f'{esc(reference[1])} {esc(num(reference[0], 3))}</text>')
    rotate = any(len(p.label) > 9 for p in points) and n > 2
    for i, p in enumerate(points):
        cx = x(i)
        for j, d in enumerate(p.dots):
            if _finite(d):
                off = (j - (len(p.dots) - 1) / 2) * min(6.0, step / (2 * max(len(p.dots), 1)))
                parts.append(f'<circle cx="{cx + 14 + off:.1f}" cy="{y(d):.1f}" r="2.5" fill="#9aa5b1"/>')
        if _finite(p.mean):
            color = "#a1261b" if p.highlight else "#1f5fa8"
            if _finite(p.half):
                top_v, bot_v = p.mean + p.half, p.mean - p.half
                y1, y2 = y(top_v), y(bot_v)
                parts.append(f'<line class="interval" x1="{cx:.1f}" x2="{cx:.1f}" y1="{y1:.1f}" y2="{y2:.1f}" '
                             f'stroke="{color}" stroke-width="2"/>')
                for v, yy in ((top_v, y1), (bot_v, y2)):
                    if lo <= v <= hi:
                        parts.append(f'<line x1="{cx - 6:.1f}" x2="{cx + 6:.1f}" y1="{yy:.1f}" y2="{yy:.1f}" '
                                     f'stroke="{color}" stroke-width="2"/>')
            parts.append(f'<circle class="mean" cx="{cx:.1f}" cy="{y(p.mean):.1f}" r="4.5" fill="{color}"/>')
        label_y = TOP + inner_h + 16
        if rotate:
            parts.append(f'<text x="{cx:.1f}" y="{label_y:.1f}" font-size="11" text-anchor="end" '
                         f'transform="rotate(-30 {cx:.1f} {label_y:.1f})">{esc(p.label)}</text>')
        else:
            parts.append(f'<text x="{cx:.1f}" y="{label_y:.1f}" font-size="11" text-anchor="middle">'
                         f'{esc(p.label)}</text>')
    if x_title:
        parts.append(f'<text x="{LEFT + inner_w / 2:.1f}" y="{H - 6}" font-size="11" text-anchor="middle" '
                     f'fill="#5a6470">{esc(x_title)}</text>')
    parts.append(f'<text x="{LEFT}" y="16" font-size="13" font-weight="600">{esc(title)}</text>')
    desc = "; ".join(f"{p.label}: {num(p.mean)} ± {num(p.half)}" for p in points)
    if reference is not None:
        desc += f"; {reference[1]} {num(reference[0])}"
    return (f'<svg class="plot" id="{esc(plot_id)}" viewBox="0 0 {W} {H}" role="img" '
            f'aria-labelledby="{esc(plot_id)}-t {esc(plot_id)}-d">'
            f'<title id="{esc(plot_id)}-t">{esc(title)}</title><desc id="{esc(plot_id)}-d">{esc(desc)}</desc>'
            + "".join(parts) + "</svg>")


COLORS = ("#1f5fa8", "#c2571a", "#2e8540", "#7b3fa0", "#a1261b", "#4d5a66")


@dataclass
class Series:
    """One curve: ``ys`` over ``xs`` (e.g. a loss per epoch)."""

    name: str
    xs: list[float]
    ys: list[float]


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    return [lo + (hi - lo) * k / (n - 1) for k in range(n)]


def lines_svg(plot_id: str, title: str, series: list[Series], x_title: str = "epoch") -> str:
    """Curves over a shared x axis (a fit's history): one colour per series with a legend; the y
    axis spans the values (a log scale when they are positive and span more than 30×)."""
    inner_w, inner_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    points = [(x, v) for s in series for x, v in zip(s.xs, s.ys) if _finite(x) and _finite(v)]
    if not points:
        return ""
    x_lo, x_hi = min(p[0] for p in points), max(p[0] for p in points)
    y_lo, y_hi = min(p[1] for p in points), max(p[1] for p in points)
    log = y_lo > 0 and y_hi / y_lo > 30
    t = math.log10 if log else (lambda v: v)
    a, b = t(y_lo), t(y_hi)
    if b - a < 1e-12:
        a, b = a - 0.5, b + 0.5
    pad = 0.04 * (b - a)
    a, b = a - pad, b + pad
    x_span = (x_hi - x_lo) or 1.0

    def px(x: float) -> float:
        return LEFT + inner_w * (x - x_lo) / x_span

    def py(v: float) -> float:
        return TOP + inner_h * (1 - (t(v) - a) / (b - a))

    parts = [f'<rect x="{LEFT}" y="{TOP}" width="{inner_w}" height="{inner_h}" fill="#fbfcfd" stroke="#c7cfd8"/>']
    for k in _ticks(a, b):
        v = 10 ** k if log else k
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + inner_w}" y1="{py(v):.1f}" y2="{py(v):.1f}" stroke="#e3e8ee"/>'
                     f'<text x="{LEFT - 5}" y="{py(v) + 4:.1f}" text-anchor="end" font-size="11" fill="#5a6470">'
                     f'{esc(num(v, 2))}</text>')
    for x in sorted({round(v) for v in _ticks(x_lo, x_hi)}):
        parts.append(f'<text x="{px(x):.1f}" y="{TOP + inner_h + 16}" font-size="11" text-anchor="middle">'
                     f'{esc(num(x))}</text>')
    for i, s in enumerate(series):
        color = COLORS[i % len(COLORS)]
        pts = " ".join(f"{px(x):.1f},{py(v):.1f}" for x, v in zip(s.xs, s.ys) if _finite(x) and _finite(v))
        if pts:
            kind = "circle" if pts.count(" ") == 0 else "polyline"
            if kind == "circle":
                cx, cy = pts.split(",")
                parts.append(f'<circle class="series" cx="{cx}" cy="{cy}" r="3" fill="{color}"/>')
            else:
                parts.append(f'<polyline class="series" points="{pts}" fill="none" stroke="{color}" '
                             f'stroke-width="1.6"/>')
        lx = LEFT + 8 + 140 * (i % 3)
        ly = 32 + 12 * (i // 3)
        parts.append(f'<line x1="{lx}" x2="{lx + 16}" y1="{ly - 4}" y2="{ly - 4}" stroke="{color}" stroke-width="2"/>'
                     f'<text x="{lx + 20}" y="{ly}" font-size="11">{esc(s.name)}</text>')
    parts.append(f'<text x="{LEFT + inner_w / 2:.1f}" y="{H - 6}" font-size="11" text-anchor="middle" '
                 f'fill="#5a6470">{esc(x_title)}{" (values on a log scale)" if log else ""}</text>')
    parts.append(f'<text x="{LEFT}" y="16" font-size="13" font-weight="600">{esc(title)}</text>')
    desc = "; ".join(f"{s.name}: {len(s.ys)} values from {num(s.ys[0])} to {num(s.ys[-1])}, lowest "
                     f"{num(min(v for v in s.ys if _finite(v)))}" for s in series if any(_finite(v) for v in s.ys))
    return (f'<svg class="plot" id="{esc(plot_id)}" viewBox="0 0 {W} {H}" role="img" '
            f'aria-labelledby="{esc(plot_id)}-t {esc(plot_id)}-d">'
            f'<title id="{esc(plot_id)}-t">{esc(title)}</title><desc id="{esc(plot_id)}-d">{esc(desc)}</desc>'
            + "".join(parts) + "</svg>")
