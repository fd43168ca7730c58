"""Charts drawn on the server as SVG strings: no JavaScript library, nothing fetched at run time.

- `forest_plot`: one horizontal interval per metric and variation around a zero line.
- `trend_chart`: cumulative lift over time with its confidence-sequence band.
- `users_chart`: users per arm over time, with the split the experiment asked for.

Pure functions of plain numbers. Every text is escaped; every mark carries a <title>
so that hovering it shows the exact value.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from pages.presentation.formatting import Unit

__all__ = [
    "ForestRow",
    "Series",
    "TrendPoint",
    "forest_plot",
    "nice_ticks",
    "trend_chart",
    "users_chart",
]

PALETTE = ("#64748b", "#2563eb", "#d97706", "#7c3aed", "#0d9488", "#db2777", "#65a30d", "#dc2626")
TONE_COLOURS = {"good": "#15803d", "bad": "#b91c1c", "neutral": "#475569", "muted": "#94a3b8"}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


@dataclass(frozen=True, slots=True)
class ForestRow:
    label: str
    estimate: float | None
    low: float | None
    high: float | None
    tone: str = "neutral"  # good, bad, neutral or muted
    group: str = ""  # a heading row is drawn when the group changes
    note: str = ""  # shown in the tooltip


@dataclass(frozen=True, slots=True)
class TrendPoint:
    at: datetime
    estimate: float
    low: float | None
    high: float | None


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    points: tuple[tuple[datetime, float], ...]
    dashed: bool = False


def _fmt(value: float, unit: Unit) -> str:
    """An axis tick or a tooltip number: `+1.5%`, `+0.25 pp` or `0.02`."""
    if unit == "percent":
        return f"{value * 100:+.1f}%" if value else "0%"
    if unit == "pp":
        return f"{'+' if value > 0 else ''}{_plain(value * 100)} pp" if value else "0 pp"
    return _plain(value)


def _plain(value: float) -> str:
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _count(value: float) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if abs(value) >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value:,.0f}"


def nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Round tick values covering [low, high]: steps of 1, 2 or 5 times a power of ten."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0]
    if high < low:
        low, high = high, low
    if high == low:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(target, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    ticks: list[float] = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def _scale(lo: float, hi: float, a: float, b: float) -> tuple[float, float]:
    """Slope and offset mapping [lo, hi] onto pixels [a, b]."""
    span = hi - lo or 1.0
    slope = (b - a) / span
    return slope, a - lo * slope


def _open(width: int, height: int, css: str, label: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {css}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" preserveAspectRatio="xMinYMin meet" role="img" '
        f'aria-label="{escape(label)}" '
        f'font-family="{FONT}" font-size="12">',
        f"<title>{escape(label)}</title>",
    ]


def _empty(width: int, height: int, css: str, label: str, message: str) -> str:
    parts = _open(width, height, css, label)
    parts.append(
        f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" fill="#64748b">{escape(message)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def forest_plot(rows: Sequence[ForestRow], *, unit: Unit, width: int = 1100, label: str = "Forest plot") -> str:
    """Intervals of every comparison on one shared axis, zero marked; dot = estimate."""
    drawable = [r for r in rows if r.estimate is not None and r.low is not None and r.high is not None]
    if not drawable:
        return _empty(width, 80, "forest-plot", label, "No intervals to draw yet.")
    label_w, right_pad, row_h, top, bottom = 250, 24, 24, 10, 34
    lines: list[tuple[str, ForestRow | None]] = []
    group: str | None = None
    for row in rows:
        if row.group and row.group != group:
            lines.append((row.group, None))
            group = row.group
        lines.append((row.label, row))
    height = top + row_h * len(lines) + bottom
    values = [v for r in drawable for v in (r.low, r.high, r.estimate) if v is not None]
    ticks = nice_ticks(min(*values, 0.0), max(*values, 0.0))
    slope, offset = _scale(ticks[0], ticks[-1], label_w, width - right_pad)

    def x(v: float) -> float:
        return v * slope + offset

    parts = _open(width, height, "forest-plot", label)
    axis_y = height - bottom + 6
    for tick in ticks:
        tx = x(tick)
        parts.append(f'<line x1="{tx:.1f}" y1="{top}" x2="{tx:.1f}" y2="{axis_y}" stroke="#e2e8f0"/>')
        parts.append(
            f'<text x="{tx:.1f}" y="{axis_y + 16}" text-anchor="middle" fill="#475569">{escape(_fmt(tick, unit))}'
            "</text>"
        )
    zero = x(0.0)
    parts.append(
        f'<line class="zero" x1="{zero:.1f}" y1="{top}" x2="{zero:.1f}" y2="{axis_y}" stroke="#0f172a" '
        'stroke-width="1.2" stroke-dasharray="4 3"/>'
    )
    for i, (text, line_row) in enumerate(lines):
        cy = top + row_h * i + row_h / 2
        if line_row is None:
            parts.append(
                f'<text x="4" y="{cy + 4:.1f}" font-weight="600" fill="#0f172a">{escape(_clip(text, 38))}</text>'
            )
            continue
        row = line_row
        parts.append(
            f'<text x="16" y="{cy + 4:.1f}" fill="#334155">{escape(_clip(text, 36))}'
            f"<title>{escape(text)}</title></text>"
        )
        if row.estimate is None or row.low is None or row.high is None:
            parts.append(f'<text x="{zero + 6:.1f}" y="{cy + 4:.1f}" fill="#94a3b8">no result</text>')
            continue
        colour = TONE_COLOURS.get(row.tone, TONE_COLOURS["neutral"])
        tip = (
            f"{row.label}: {_fmt(row.estimate, unit)} "
            f"(interval {_fmt(row.low, unit)} to {_fmt(row.high, unit)})"
            + (f". {row.note}" if row.note else "")
        )
        parts.append(
            f'<g class="interval" data-tone="{escape(row.tone)}"><title>{escape(tip)}</title>'
            f'<line x1="{x(row.low):.1f}" y1="{cy:.1f}" x2="{x(row.high):.1f}" y2="{cy:.1f}" '
            f'stroke="{colour}" stroke-width="3" stroke-linecap="round"/>'
            f'<circle cx="{x(row.estimate):.1f}" cy="{cy:.1f}" r="5" fill="{colour}" stroke="#fff" stroke-width="1.5"/>'
            "</g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _date_ticks(start: float, end: float, target: int = 8) -> list[float]:
    span = end - start
    if span <= 0:
        return [start]
    day = 86400.0
    choices = (3600.0, 3 * 3600.0, 6 * 3600.0, 12 * 3600.0, day, 2 * day, 7 * day, 14 * day, 30 * day, 91 * day)
    step = next((c for c in choices if span / c <= target), 182 * day)
    first = math.ceil(start / step) * step
    ticks = []
    value = first
    while value <= end:
        ticks.append(value)
        value += step
    return ticks or [start]


def _date_label(ts: float, span: float) -> str:
    moment = datetime.fromtimestamp(ts).astimezone()
    return moment.strftime("%d %b %H:%M") if span < 3 * 86400 else moment.strftime("%d %b")


def trend_chart(
    series: Sequence[tuple[str, Sequence[TrendPoint]]],
    *,
    unit: Unit,
    width: int = 1100,
    height: int = 280,
    label: str = "Cumulative lift over time",
) -> str:
    """One line per treatment with its shaded interval band; zero dashed."""
    points = [p for _, pts in series for p in pts]
    if not points:
        return _empty(width, 120, "trend-chart", label, "The trend appears after the first readout.")
    left, right, top, bottom = 64, 16, 12, 30
    times = [p.at.timestamp() for p in points]
    t0, t1 = min(times), max(times)
    if t1 == t0:
        t0, t1 = t0 - 3600, t1 + 3600
    # The axis covers every estimate, but only the intervals after the first quarter of the time
    # span: the first readouts' intervals are so wide that they would flatten everything else.
    # Earlier bands are cut at the plot's edge.
    settled = t0 + (t1 - t0) / 4
    values = [
        v for p in points
        for v in ((p.estimate, p.low, p.high) if p.at.timestamp() >= settled else (p.estimate,))
        if v is not None and math.isfinite(v)
    ]
    ticks = nice_ticks(min(*values, 0.0), max(*values, 0.0))
    ys, yo = _scale(ticks[0], ticks[-1], height - bottom, top)
    xs, xo = _scale(t0, t1, left, width - right)
    parts = _open(width, height, "trend-chart", label)
    clip = f"trend-clip-{zlib.crc32(label.encode()):08x}"
    parts.append(
        f'<clipPath id="{clip}"><rect x="{left}" y="{top}" width="{width - left - right}" '
        f'height="{height - top - bottom}"/></clipPath>'
    )
    for tick in ticks:
        ty = tick * ys + yo
        parts.append(f'<line x1="{left}" y1="{ty:.1f}" x2="{width - right}" y2="{ty:.1f}" stroke="#e2e8f0"/>')
        parts.append(
            f'<text x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end" fill="#475569">{escape(_fmt(tick, unit))}'
            "</text>"
        )
    for ts in _date_ticks(t0, t1):
        tx = ts * xs + xo
        parts.append(
            f'<text x="{tx:.1f}" y="{height - 10}" text-anchor="middle" fill="#475569">'
            f"{escape(_date_label(ts, t1 - t0))}</text>"
        )
    zero_y = yo
    parts.append(
        f'<line class="zero" x1="{left}" y1="{zero_y:.1f}" x2="{width - right}" y2="{zero_y:.1f}" stroke="#0f172a" '
        'stroke-dasharray="4 3"/>'
    )
    for index, (name, pts) in enumerate(series):
        ordered = sorted(pts, key=lambda p: p.at)
        colour = PALETTE[(index + 1) % len(PALETTE)]
        band = [p for p in ordered if p.low is not None and p.high is not None]
        if len(band) >= 2:
            upper = " ".join(f"{p.at.timestamp() * xs + xo:.1f},{(p.high or 0) * ys + yo:.1f}" for p in band)
            lower = " ".join(
                f"{p.at.timestamp() * xs + xo:.1f},{(p.low or 0) * ys + yo:.1f}" for p in reversed(band)
            )
            parts.append(
                f'<polygon class="band" points="{upper} {lower}" fill="{colour}" fill-opacity="0.15" stroke="none" '
                f'clip-path="url(#{clip})">'
                f"<title>{escape(name)}: always-valid interval over time</title></polygon>"
            )
        path = " ".join(f"{p.at.timestamp() * xs + xo:.1f},{p.estimate * ys + yo:.1f}" for p in ordered)
        parts.append(
            f'<polyline class="line" points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
        )
        for p in ordered:
            tip = f"{name} at {p.at:%d %b %H:%M}: {_fmt(p.estimate, unit)}"
            if p.low is not None and p.high is not None:
                tip += f" ({_fmt(p.low, unit)} to {_fmt(p.high, unit)})"
            parts.append(
                f'<circle cx="{p.at.timestamp() * xs + xo:.1f}" cy="{p.estimate * ys + yo:.1f}" r="3" '
                f'fill="{colour}"><title>{escape(tip)}</title></circle>'
            )
        parts.append(_legend(index, name, colour, width, right, top))
    parts.append("</svg>")
    return "".join(parts)


def _legend(index: int, name: str, colour: str, width: int, right: int, top: int, dashed: bool = False) -> str:
    lx = width - right - 160
    ly = top + 6 + index * 16
    dash = ' stroke-dasharray="5 3"' if dashed else ""
    return (
        f'<g class="legend"><line x1="{lx}" y1="{ly}" x2="{lx + 18}" y2="{ly}" stroke="{colour}" '
        f'stroke-width="2"{dash}/>'
        f'<text x="{lx + 24}" y="{ly + 4}" fill="#334155">{escape(_clip(name, 22))}</text></g>'
    )


def users_chart(
    series: Sequence[Series], *, width: int = 560, height: int = 240, label: str = "Users per arm over time"
) -> str:
    """Cumulative users per arm; dashed lines, when given, are what the configured split expects."""
    points = [pt for s in series for pt in s.points]
    if not points:
        return _empty(width, 100, "users-chart", label, "No users yet.")
    left, right, top, bottom = 64, 16, 12, 30
    times = [t.timestamp() for t, _ in points]
    t0, t1 = min(times), max(times)
    if t1 == t0:
        t0, t1 = t0 - 3600, t1 + 3600
    ticks = nice_ticks(0.0, max(v for _, v in points) or 1.0)
    ys, yo = _scale(ticks[0], ticks[-1], height - bottom, top)
    xs, xo = _scale(t0, t1, left, width - right)
    parts = _open(width, height, "users-chart", label)
    for tick in ticks:
        ty = tick * ys + yo
        parts.append(f'<line x1="{left}" y1="{ty:.1f}" x2="{width - right}" y2="{ty:.1f}" stroke="#e2e8f0"/>')
        parts.append(f'<text x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end" fill="#475569">{_count(tick)}</text>')
    for ts in _date_ticks(t0, t1):
        parts.append(
            f'<text x="{ts * xs + xo:.1f}" y="{height - 10}" text-anchor="middle" fill="#475569">'
            f"{escape(_date_label(ts, t1 - t0))}</text>"
        )
    solid = 0
    for s in series:
        index = solid if not s.dashed else max(solid - 1, 0)
        colour = PALETTE[index % len(PALETTE)] if not s.dashed else "#94a3b8"
        ordered = sorted(s.points)
        path = " ".join(f"{t.timestamp() * xs + xo:.1f},{v * ys + yo:.1f}" for t, v in ordered)
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        parts.append(
            f'<polyline class="line" points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}>'
            f"<title>{escape(s.label)}</title></polyline>"
        )
        if not s.dashed:
            for t, v in ordered:
                parts.append(
                    f'<circle cx="{t.timestamp() * xs + xo:.1f}" cy="{v * ys + yo:.1f}" r="2.5" fill="{colour}">'
                    f"<title>{escape(s.label)} at {t:%d %b %H:%M}: {_count(v)} users</title></circle>"
                )
            parts.append(_legend(solid, s.label, colour, width, right, top))
            solid += 1
    parts.append("</svg>")
    return "".join(parts)
