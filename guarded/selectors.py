"""Reads of guarded rollouts for the flag page: the state, the next step and when, each
guardrail's interval at every readout checked, and the decision history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flags.models import Flag
from guarded.documents import next_step
from guarded.models import GuardDecision, GuardedRollout

__all__ = ["GuardedRolloutView", "GuardrailPoint", "GuardrailTrack", "rollouts_of_flag"]

# Readouts shown per guardrail (the latest), and finished rollouts shown per environment.
MAX_POINTS = 30
MAX_FINISHED = 3


@dataclass(frozen=True, slots=True)
class GuardrailPoint:
    at: datetime
    percent: float
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    harmed: bool

    @property
    def interval_text(self) -> str:
        if self.ci_low is None or self.ci_high is None:
            return "not yet"
        return f"{self.ci_low:+.1%} to {self.ci_high:+.1%}".replace("-", "\u2212")


@dataclass(frozen=True, slots=True)
class Bar:
    """One readout's interval in the chart: x and the interval's ends in SVG units."""

    x: float
    y_low: float
    y_high: float
    harmed: bool


@dataclass(frozen=True, slots=True)
class GuardrailTrack:
    metric: str
    direction: str
    threshold: float | None
    points: tuple[GuardrailPoint, ...]  # newest first

    CHART_WIDTH, CHART_HEIGHT = 300.0, 80.0

    @property
    def bars(self) -> tuple[Bar, ...]:
        """The intervals oldest first, scaled to the chart (0 in the middle)."""
        shown = [p for p in reversed(self.points) if p.ci_low is not None and p.ci_high is not None]
        if not shown:
            return ()
        reach = max(0.01, *(max(abs(p.ci_low or 0.0), abs(p.ci_high or 0.0)) for p in shown))
        reach = min(reach, 1.0)
        step = self.CHART_WIDTH / (len(shown) + 1)

        def y(value: float) -> float:
            clipped = max(-reach, min(reach, value))
            return round(self.CHART_HEIGHT / 2 - clipped / reach * (self.CHART_HEIGHT / 2 - 4), 2)

        return tuple(Bar(x=round(step * (i + 1), 2), y_low=y(p.ci_low or 0.0), y_high=y(p.ci_high or 0.0),
                         harmed=p.harmed) for i, p in enumerate(shown))


@dataclass(frozen=True, slots=True)
class GuardedRolloutView:
    rollout: GuardedRollout
    next_percent: float | None
    next_at: datetime | None
    guardrails: tuple[GuardrailTrack, ...]
    decisions: tuple[GuardDecision, ...]  # oldest first, checks left out


def _view(rollout: GuardedRollout) -> GuardedRolloutView:
    upcoming = next_step(rollout)
    decisions = list(rollout.decisions.order_by("at", "id"))
    checks = [d for d in decisions if d.action == GuardDecision.Action.CHECKED][-MAX_POINTS:]
    tracks = []
    for guardrail in rollout.guardrails:
        points = []
        for check in reversed(checks):
            found = next((g for g in check.details.get("guardrails", []) if g.get("metric") == guardrail["metric"]),
                         None)
            if found is not None:
                points.append(GuardrailPoint(at=check.at, percent=check.percent, estimate=found.get("estimate"),
                                             ci_low=found.get("ci_low"), ci_high=found.get("ci_high"),
                                             harmed=bool(found.get("harmed"))))
        tracks.append(GuardrailTrack(metric=guardrail["metric"], direction=guardrail["direction"],
                                     threshold=guardrail.get("threshold"), points=tuple(points)))
    return GuardedRolloutView(
        rollout=rollout,
        next_percent=upcoming["percent"] if upcoming else None,
        next_at=datetime.fromisoformat(upcoming["earliest_at"]) if upcoming else None,
        guardrails=tuple(tracks),
        decisions=tuple(d for d in decisions if d.action != GuardDecision.Action.CHECKED),
    )


def rollouts_of_flag(*, flag: Flag) -> dict[str, list[GuardedRolloutView]]:
    """Environment key -> its guarded rollouts of the flag: those under way, then the latest finished."""
    found: dict[str, list[GuardedRolloutView]] = {}
    finished: dict[str, int] = {}
    rows = GuardedRollout.objects.filter(flag=flag).select_related("flag", "environment", "experiment").order_by(
        "-created_at", "-id")
    for rollout in sorted(rows, key=lambda r: not r.active):
        key = rollout.environment.key
        if not rollout.active:
            finished[key] = finished.get(key, 0) + 1
            if finished[key] > MAX_FINISHED:
                continue
        found.setdefault(key, []).append(_view(rollout))
    return found
