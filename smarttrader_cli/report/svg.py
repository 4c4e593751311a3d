"""Hand-rolled inline SVG charts: no JavaScript, no CDN, viewable offline in any browser."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

WIDTH, HEIGHT = 760, 360
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 90, 150, 20, 50
TIER_COLORS = {"elite": "#d4a017", "strong": "#2e7d32", "promising": "#1565c0"}
SERIES_COLORS = (
    "#1565c0",
    "#c62828",
    "#2e7d32",
    "#6a1b9a",
    "#ef6c00",
    "#00838f",
    "#ad1457",
    "#4e342e",
    "#558b2f",
    "#283593",
    "#f9a825",
    "#37474f",
)


@dataclass(frozen=True)
class Point:
    """One scatter point with its hover label."""

    x: float
    y: float
    group: str
    label: str


class Scale:
    """Maps data values to pixels, linear or log10."""

    def __init__(self, lo: float, hi: float, px_lo: float, px_hi: float, log: bool = False):
        self.log = log
        if log:
            lo, hi = math.log10(max(lo, 1e-9)), math.log10(max(hi, 1e-9))
        if hi - lo < 1e-12:
            lo, hi = lo - 1, hi + 1
        self.lo, self.hi, self.px_lo, self.px_hi = lo, hi, px_lo, px_hi

    def __call__(self, value: float) -> float:
        v = math.log10(max(value, 1e-9)) if self.log else value
        return self.px_lo + (v - self.lo) / (self.hi - self.lo) * (self.px_hi - self.px_lo)

    def ticks(self, count: int = 5) -> list[float]:
        """Round tick values inside the domain (powers of ten on a log scale)."""
        if self.log:
            return [
                10.0**e
                for e in range(math.floor(self.lo), math.ceil(self.hi) + 1)
                if self.lo - 1e-9 <= e <= self.hi + 1e-9
            ]
        raw = (self.hi - self.lo) / max(count, 1)
        step = 10 ** math.floor(math.log10(raw))
        for mult in (1, 2, 2.5, 5, 10):
            if raw <= step * mult:
                step *= mult
                break
        first = math.ceil(self.lo / step) * step
        return [first + i * step for i in range(int((self.hi - first) / step + 1e-9) + 1)]


def fmt_number(value: float) -> str:
    """Compact axis label: 1.2k, 3.4M, 0.25."""
    a = abs(value)
    if a >= 1e9:
        return f"{value / 1e9:.3g}B"
    if a >= 1e6:
        return f"{value / 1e6:.3g}M"
    if a >= 1e3:
        return f"{value / 1e3:.3g}k"
    return f"{value:.3g}"


def _svg(body: list[str], chart: str, title: str) -> str:
    return (
        f'<svg class="chart" data-chart="{chart}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def _frame(x_label: str, y_label: str) -> list[str]:
    x0, x1, y0, y1 = MARGIN_L, WIDTH - MARGIN_R, HEIGHT - MARGIN_B, MARGIN_T
    return [
        f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" class="plot"/>',
        f'<text x="{(x0 + x1) / 2}" y="{HEIGHT - 8}" class="axis-label" '
        f'text-anchor="middle">{escape(x_label)}</text>',
        f'<text x="16" y="{(y0 + y1) / 2}" class="axis-label" text-anchor="middle" '
        f'transform="rotate(-90 16 {(y0 + y1) / 2})">{escape(y_label)}</text>',
    ]


def _x_ticks(scale: Scale, labels: Sequence[tuple[float, str]]) -> list[str]:
    out = []
    for value, text in labels:
        x = scale(value)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{MARGIN_T}" y2="{HEIGHT - MARGIN_B}" '
            'class="grid"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{HEIGHT - MARGIN_B + 16}" class="tick" '
            f'text-anchor="middle">{escape(text)}</text>'
        )
    return out


def _y_ticks(scale: Scale, labels: Sequence[tuple[float, str]]) -> list[str]:
    out = []
    for value, text in labels:
        y = scale(value)
        out.append(
            f'<line x1="{MARGIN_L}" x2="{WIDTH - MARGIN_R}" y1="{y:.1f}" y2="{y:.1f}" '
            'class="grid"/>'
        )
        out.append(
            f'<text x="{MARGIN_L - 6}" y="{y + 4:.1f}" class="tick" '
            f'text-anchor="end">{escape(text)}</text>'
        )
    return out


def _legend(items: Sequence[tuple[str, str]]) -> list[str]:
    out = []
    x = WIDTH - MARGIN_R + 14
    for i, (label, color) in enumerate(items):
        y = MARGIN_T + 14 + i * 18
        out.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{x + 16}" y="{y}" class="legend">{escape(label)}</text>')
    return out


def empty_chart(chart: str, title: str, message: str) -> str:
    """A placeholder with the reason a chart has no data."""
    return _svg(
        [
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="empty">'
            f"{escape(message)}</text>"
        ],
        chart,
        title,
    )


def distribution_chart(groups: dict[str, list[tuple[float, str]]], title: str) -> str:
    """Per group (tier): box (quartiles), median, whiskers (min–max) and every value as a dot,
    on a log10 x axis (PnL spans orders of magnitude). Values must be > 0."""
    values = [v for pts in groups.values() for v, _ in pts]
    if not values:
        return empty_chart("pnl-by-tier", title, "no ranked wallets")
    x = Scale(min(values), max(values), MARGIN_L + 10, WIDTH - MARGIN_R - 10, log=True)
    body = _frame("total PnL (USD, log scale)", "tier")
    body += _x_ticks(x, [(t, fmt_number(t)) for t in x.ticks()])
    names = list(groups)
    band = (HEIGHT - MARGIN_B - MARGIN_T) / max(len(names), 1)
    for i, name in enumerate(names):
        cy = MARGIN_T + band * (i + 0.5)
        color = TIER_COLORS.get(name, SERIES_COLORS[i % len(SERIES_COLORS)])
        pts = sorted(v for v, _ in groups[name])
        body.append(
            f'<text x="{MARGIN_L - 6}" y="{cy + 4:.1f}" class="tick" '
            f'text-anchor="end">{escape(name)} ({len(pts)})</text>'
        )
        if not pts:
            continue
        q1, med, q3 = (_quantile(pts, q) for q in (0.25, 0.5, 0.75))
        h = min(band * 0.5, 40)
        body.append(
            f'<line x1="{x(pts[0]):.1f}" x2="{x(pts[-1]):.1f}" y1="{cy:.1f}" '
            f'y2="{cy:.1f}" stroke="{color}" class="whisker"/>'
        )
        body.append(
            f'<rect x="{x(q1):.1f}" y="{cy - h / 2:.1f}" width="{max(x(q3) - x(q1), 1):.1f}" '
            f'height="{h:.1f}" fill="{color}" class="box"/>'
        )
        body.append(
            f'<line x1="{x(med):.1f}" x2="{x(med):.1f}" y1="{cy - h / 2:.1f}" '
            f'y2="{cy + h / 2:.1f}" class="median"/>'
        )
        for j, (value, label) in enumerate(groups[name]):
            jitter = ((j * 7919) % 21 - 10) / 10 * h / 2  # deterministic spread
            body.append(
                f'<circle class="point" data-value="{value:.2f}" cx="{x(value):.1f}" '
                f'cy="{cy + jitter:.1f}" r="3" fill="{color}">'
                f"<title>{escape(label)}</title></circle>"
            )
    return _svg(body, "pnl-by-tier", title)


def scatter_chart(points: Sequence[Point], x_label: str, y_label: str, title: str) -> str:
    """Points coloured by group, with a legend; hover shows each point's label."""
    if not points:
        return empty_chart("roi-vs-win-rate", title, "no ranked wallets")
    x = Scale(0.0, 1.0, MARGIN_L + 10, WIDTH - MARGIN_R - 10)
    ys = [p.y for p in points]
    y = Scale(min(0.0, min(ys)), max(ys) * 1.05, HEIGHT - MARGIN_B - 10, MARGIN_T + 10)
    body = _frame(x_label, y_label)
    body += _x_ticks(x, [(t, f"{t:.0%}") for t in x.ticks()])
    body += _y_ticks(y, [(t, f"{t:.0%}") for t in y.ticks()])
    present = {p.group for p in points}
    groups = [g for g in TIER_COLORS if g in present] + sorted(present - set(TIER_COLORS))
    for p in points:
        color = TIER_COLORS.get(p.group, "#555")
        body.append(
            f'<circle class="point" data-x="{p.x:.4f}" data-y="{p.y:.4f}" '
            f'cx="{x(p.x):.1f}" cy="{y(p.y):.1f}" r="4" fill="{color}" fill-opacity="0.75">'
            f"<title>{escape(p.label)}</title></circle>"
        )
    body += _legend([(g, TIER_COLORS.get(g, "#555")) for g in groups])
    return _svg(body, "roi-vs-win-rate", title)


def line_chart(series: dict[str, list[tuple[int, float]]], y_label: str, title: str) -> str:
    """Step-free polylines over unix time (x) with a date axis and a legend."""
    all_pts = [pt for pts in series.values() for pt in pts]
    if not all_pts:
        return empty_chart("cumulative-pnl", title, "no trade history for the top wallets")
    ts = [t for t, _ in all_pts]
    vs = [v for _, v in all_pts]
    x = Scale(min(ts), max(ts), MARGIN_L + 10, WIDTH - MARGIN_R - 10)
    y = Scale(
        min(0.0, min(vs)), max(0.0, max(vs)) * 1.05 or 1.0, HEIGHT - MARGIN_B - 10, MARGIN_T + 10
    )
    body = _frame("date (UTC)", y_label)
    body += _x_ticks(x, [(t, datetime.fromtimestamp(t, UTC).strftime("%b %d")) for t in x.ticks(6)])
    body += _y_ticks(y, [(t, fmt_number(t)) for t in y.ticks()])
    body.append(
        f'<line x1="{MARGIN_L}" x2="{WIDTH - MARGIN_R}" y1="{y(0):.1f}" y2="{y(0):.1f}" '
        'class="zero"/>'
    )
    legend = []
    for i, (name, pts) in enumerate(series.items()):
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in pts)
        body.append(
            f'<polyline class="series" data-series="{escape(name)}" '
            f'data-points="{len(pts)}" points="{coords}" stroke="{color}">'
            f"<title>{escape(name)}</title></polyline>"
        )
        if pts:
            t, v = pts[-1]
            body.append(
                f'<circle class="point" cx="{x(t):.1f}" cy="{y(v):.1f}" r="3" '
                f'fill="{color}"><title>{escape(name)}: {v:,.2f} USD</title></circle>'
            )
        legend.append((name, color))
    body += _legend(legend)
    return _svg(body, "cumulative-pnl", title)


def _quantile(sorted_values: list[float], q: float) -> float:
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)
