"""Numbers as the result pages print them (pure: no Django)."""

from __future__ import annotations

__all__ = ["fmt_estimate", "fmt_interval", "fmt_mean", "fmt_number", "fmt_p", "fmt_share"]

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


def fmt_estimate(value: float | None, relative: bool) -> str:
    if value is None:
        return "—"
    if relative:
        return f"{value * 100:+.1f}%" if abs(value) >= 0.0005 else f"{value * 100:+.2f}%"
    return ("+" if value > 0 else "") + fmt_number(value)


def fmt_interval(low: float | None, high: float | None, relative: bool) -> str:
    if low is None or high is None:
        return "—"
    return f"[{fmt_estimate(low, relative)}, {fmt_estimate(high, relative)}]"


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
    if kind in ("conversion", "retention", "funnel"):
        return f"{value * 100:.2f}%"
    return fmt_number(value, 4)
