"""The growth page's view model (pure): shipped experiments with their measured and corrected
lifts on the north star, their naive sum beside the lift the holdout measured, the gap in
plain words, the experiments still running and the north star's level as a chart."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from scipy.stats import norm

from pages.presentation.charts import nice_ticks
from pages.presentation.formatting import fmt_estimate, fmt_interval
from stats import shrink_effects

__all__ = ["Effect", "GrowthView", "Measured", "Running", "ShippedRow", "growth_view", "level_chart"]


@dataclass(frozen=True, slots=True)
class Effect:
    """One experiment's relative lift on the north star (its fixed-horizon interval)."""

    key: str
    name: str
    estimate: float
    ci_low: float
    ci_high: float
    alpha: float
    shipped: bool
    decided_at: datetime | None = None

    @property
    def std_error(self) -> float:
        return (self.ci_high - self.ci_low) / (2 * float(norm.ppf(1 - self.alpha / 2)))


@dataclass(frozen=True, slots=True)
class Measured:
    """The holdout's lift on the north star: everyone else against the held-out users."""

    holdout: str
    estimate: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True, slots=True)
class Running:
    key: str
    name: str
    started_at: datetime | None
    decision_at: datetime | None
    note: str


@dataclass(frozen=True, slots=True)
class ShippedRow:
    key: str
    name: str
    decided_at: datetime | None
    lift: str
    interval: str
    corrected: str
    corrected_interval: str
    kept: str  # share of the measured lift the correction keeps


@dataclass(frozen=True, slots=True)
class GrowthView:
    shipped: tuple[ShippedRow, ...]
    naive_sum: str
    corrected_sum: str
    measured: str
    measured_interval: str
    gap_words: str
    spread: str
    running: tuple[Running, ...]


def _sum(values: Sequence[float]) -> float:
    return sum(values)


def _gap_words(naive: float | None, corrected: float | None, measured: Measured | None) -> str:
    if naive is None:
        return "No experiment has shipped with a readout on the north star yet, so there is nothing to add up."
    if measured is None:
        return (f"The shipped lifts add up to {fmt_estimate(naive, 'percent')}, but no holdout measures them "
                "together yet: read the sum as an upper estimate of what shipping delivered.")
    inside = measured.ci_low <= naive <= measured.ci_high
    said = (f"The shipped lifts add up to {fmt_estimate(naive, 'percent')}; the holdout "
            f"{measured.holdout} measures {fmt_estimate(measured.estimate, 'percent')} "
            f"({fmt_interval(measured.ci_low, measured.ci_high, 'percent')}). ")
    if inside:
        return said + ("The sum lies inside the holdout's interval: the shipped changes held up together, as "
                       "far as this holdout can tell.")
    if naive > measured.ci_high:
        return said + (f"The sum overstates the growth the holdout measured by "
                       f"{fmt_estimate(naive - measured.estimate, 'percent').lstrip('+')}. The usual reasons: "
                       "winners are picked because their estimates came out high (the winner's curse; corrected, "
                       f"they add up to {fmt_estimate(corrected, 'percent')}), lifts fade once the change is no "
                       "longer new, changes that reach the same users do not simply add up, and during the "
                       "experiments only part of everyone else had each change.")
    return said + ("The holdout measures more than the sum: the changes may reinforce each other, or their "
                   "effects may build up over time.")


def growth_view(*, effects: Sequence[Effect], measured: Measured | None, running: Sequence[Running]) -> GrowthView:
    """Rows and words for the page. `effects` are every experiment's lift on the north star
    (their spread sets the winner's-curse correction); the shipped ones are listed and summed."""
    shrinkage = shrink_effects([e.estimate for e in effects], [e.std_error for e in effects]) if effects else None
    rows = []
    naive: list[float] = []
    corrected: list[float] = []
    for i, effect in enumerate(effects):
        if not effect.shipped:
            continue
        shrunk = shrinkage.effects[i] if shrinkage is not None else None
        naive.append(effect.estimate)
        if shrunk is not None:
            corrected.append(shrunk.shrunk)
        rows.append(ShippedRow(
            key=effect.key, name=effect.name, decided_at=effect.decided_at,
            lift=fmt_estimate(effect.estimate, "percent"),
            interval=fmt_interval(effect.ci_low, effect.ci_high, "percent"),
            corrected=fmt_estimate(shrunk.shrunk, "percent") if shrunk else "—",
            corrected_interval=fmt_interval(shrunk.ci_low, shrunk.ci_high, "percent") if shrunk else "—",
            kept=f"{shrunk.factor * 100:.0f}%" if shrunk else "—",
        ))
    naive_sum = _sum(naive) if naive else None
    corrected_sum = _sum(corrected) if corrected else None
    return GrowthView(
        shipped=tuple(rows),
        naive_sum=fmt_estimate(naive_sum, "percent"),
        corrected_sum=fmt_estimate(corrected_sum, "percent"),
        measured=fmt_estimate(measured.estimate if measured else None, "percent"),
        measured_interval=fmt_interval(measured.ci_low, measured.ci_high, "percent") if measured else "—",
        gap_words=_gap_words(naive_sum, corrected_sum, measured),
        spread=fmt_estimate(shrinkage.spread, "percent").lstrip("+") if shrinkage is not None else "—",
        running=tuple(running),
    )


def level_chart(points: Sequence[tuple[date, float]], *, width: int = 720, height: int = 220,
                label: str = "North-star level per day") -> str:
    """The north star's daily level as an SVG line (a message when there is no data)."""
    title = html.escape(label)
    if not points:
        return (f'<svg class="level-chart" role="img" aria-label="{title}" width="{width}" height="60">'
                '<text x="8" y="30" fill="#475569">No events of the north star yet.</text></svg>')
    left, right, top, bottom = 56, 12, 10, 26
    values = [v for _, v in points]
    ticks = nice_ticks(min(0.0, min(values)), max(values) or 1.0)
    lo, hi = ticks[0], ticks[-1]
    n = len(points)

    def x(i: int) -> float:
        return left + (width - left - right) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - (v - lo) / ((hi - lo) or 1.0))

    parts = [f'<svg class="level-chart" role="img" aria-label="{title}" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}">']
    for tick in ticks:
        parts.append(f'<line x1="{left}" y1="{y(tick):.1f}" x2="{width - right}" y2="{y(tick):.1f}" stroke="#e2e8f0"/>')
        text = f"{tick:.3g}" if not math.isclose(tick, 0.0) else "0"
        parts.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="#475569">{text}</text>')
    for i, anchor in ((0, "start"), (n - 1, "end")) if n > 1 else ((0, "middle"),):
        parts.append(f'<text x="{x(i):.1f}" y="{height - 6}" text-anchor="{anchor}" fill="#475569">'
                     f'{points[i][0].isoformat()}</text>')
    line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, (_, v) in enumerate(points))
    parts.append(f'<polyline class="level-line" fill="none" stroke="#2563eb" stroke-width="2" points="{line}"/>')
    parts.append("</svg>")
    return "".join(parts)
