"""Numbers as the result pages print them (pure: no Django).

A difference reads in one of three units (`difference_unit`): a relative lift in percent
(`+12.3%`); an absolute difference of two proportions (conversion, retention and funnel
metrics, whose means print as percentages) in percentage points (`+1.71 pp`); any other
absolute difference in the metric's own units (`+0.234`).
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "PROPORTION_KINDS",
    "Unit",
    "difference_unit",
    "fmt_estimate",
    "fmt_interval",
    "fmt_mean",
    "fmt_number",
    "fmt_p",
    "fmt_risk",
    "fmt_share",
    "kind_words",
    "metric_title",
    "raw_unit",
    "unit_words",
]

Unit = Literal["percent", "pp", "units"]
# Metric kinds whose per-user mean is a share of users (printed as a percentage).
PROPORTION_KINDS = frozenset({"conversion", "retention", "funnel"})


def metric_title(name: str, kind: str, day: int | None) -> str:
    """A metric's name as the result pages title it: an LTV metric says what it sums and until
    when ("Revenue per user by day 30")."""
    if kind == "ltv" and day is not None:
        return f"{name} per user by day {day}"
    return name


def kind_words(kind: str, day: int | None) -> str:
    """What a metric measures, under its title; retention and LTV say which users count."""
    if kind == "ltv" and day is not None:
        unit = "day" if day == 1 else "days"
        return f"lifetime value: each user's total from exposure to day {day}; counts users exposed {day} {unit} " \
               "or more before the readout"
    if kind == "retention" and day is not None:
        unit = "day" if day == 0 else "days"
        return f"retention on day {day}; counts users exposed {day + 1} {unit} or more before the readout"
    return kind


def difference_unit(kind: str, difference_type: str) -> Unit:
    """The unit a difference of a metric of this kind reads in."""
    if difference_type == "relative":
        return "percent"
    return "pp" if kind in PROPORTION_KINDS else "units"


def unit_words(unit: Unit) -> str:
    """The unit as a column header or an axis says it."""
    return {"percent": "relative, %", "pp": "percentage points", "units": "metric units"}[unit]


def raw_unit(unit: Unit) -> str:
    """What an exported raw number (a fraction, not a formatted percentage) is measured in."""
    return {
        "percent": "relative: fraction of the control (0.05 = +5%)",
        "pp": "absolute: proportion (0.0171 = +1.71 pp)",
        "units": "absolute: metric units",
    }[unit]


def fmt_number(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude == 0:
        return "0"
    return f"{value:.{digits}g}" if magnitude < 1 else f"{value:.{max(digits - 1, 1)}f}"


def fmt_estimate(value: float | None, unit: Unit) -> str:
    """A difference with its sign: `+12.3%`, `+1.71 pp` or `+0.234`."""
    if value is None:
        return "—"
    if unit == "percent":
        return f"{value * 100:+.1f}%" if abs(value) >= 0.0005 else f"{value * 100:+.2f}%"
    if unit == "pp":
        points = value * 100
        if points == 0:
            return "0 pp"
        return f"{points:+.2f} pp" if abs(points) >= 0.005 else f"{points:+.1g} pp"
    return ("+" if value > 0 else "") + fmt_number(value)


def fmt_risk(value: float | None) -> str:
    """An expected loss as a share with two significant digits, so that thresholds such as
    0.25% read as set: `0.25%`, `1.2%`, `<0.01%`."""
    if value is None:
        return "—"
    points = abs(value) * 100
    if points < 0.01:
        return "<0.01%" if points > 0 else "0%"
    return f"{points:.2g}%" if points < 10 else f"{points:.0f}%"


def fmt_interval(low: float | None, high: float | None, unit: Unit) -> str:
    if low is None or high is None:
        return "—"
    return f"[{fmt_estimate(low, unit)}, {fmt_estimate(high, unit)}]"


def fmt_p(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 0.0001:
        return "<0.0001"
    if value < 0.001:
        return f"{value:.4f}"
    return f"{value:.3f}"


def fmt_share(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def fmt_mean(value: float | None, kind: str) -> str:
    if value is None:
        return "—"
    if kind in PROPORTION_KINDS:
        return f"{value * 100:.2f}%"
    return fmt_number(value, 4)
