"""Rollout ramps: a percentage that rises on a schedule (e.g. 5% -> 25% -> 50% -> 100%).

A ramp is not a new kind of row. It is a run of ordinary rollout rules, one per step, each
with a time window [start of the step, start of the next step); the last step has no end.
Every step hashes with the same seed and attribute, so a unit that was in the 5% stays in
the 25%: GrowthBook's rollout inclusion is "hash <= coverage", monotone in the coverage.
The rules are written through `flags.services`, so validation, audit entries and the
config-version bump are the same as for any other rule change. The steps of one ramp are
recognised by a marker at the start of their description.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.types import Actor
from base.models import Environment
from base.reviews import reviewable
from config.errors import NotFound, ValidationFailed
from flags import services
from flags.engine.describe import EVERYONE, describe_condition, describe_hashing
from flags.models import Flag, Rule
from flags.reviews import flag_target, in_environment

__all__ = [
    "Ramp",
    "RampStep",
    "RampStepState",
    "ramp_cancel",
    "ramp_create",
    "ramp_list",
    "ramp_plan",
    "ramp_steps_from_rules",
]

MARKER = "ramp:"
_DESCRIPTION_RE = re.compile(r"^ramp:(?P<id>[a-z0-9]+) step (?P<index>\d+)/(?P<count>\d+)")
DEFAULT_PERCENTS: tuple[float, ...] = (5.0, 25.0, 50.0, 100.0)


@dataclass(frozen=True, slots=True)
class RampStep:
    """One planned step: serve the variant to `percent` of units from `starts_at`."""

    percent: float
    starts_at: datetime


@dataclass(frozen=True, slots=True)
class RampStepState:
    rule_id: str
    percent: float
    starts_at: datetime | None
    ends_at: datetime | None
    status: str  # "done", "current" or "planned"


def ramp_steps(items: Any) -> list[RampStep]:
    """A ramp's steps from their JSON (`{percent, starts_at}` each)."""
    return [RampStep(percent=float(i["percent"]), starts_at=datetime.fromisoformat(i["starts_at"])) for i in items]


@dataclass(frozen=True, slots=True)
class Ramp:
    id: str
    flag: str
    environment: str
    variant: str
    steps: tuple[RampStepState, ...]
    # Whom the steps serve, in words: "a rising share of users by id when plan is pro".
    audience: str = ""

    @property
    def current_percent(self) -> float:
        for step in self.steps:
            if step.status == "current":
                return step.percent
        return 0.0 if not self.steps or self.steps[0].status == "planned" else self.steps[-1].percent

    @property
    def finished(self) -> bool:
        return bool(self.steps) and self.steps[-1].status == "current" and self.steps[-1].ends_at is None

    @property
    def next_step(self) -> RampStepState | None:
        return next((s for s in self.steps if s.status == "planned"), None)


def ramp_plan(
    *, start: datetime, interval: timedelta, percents: Sequence[float] = DEFAULT_PERCENTS
) -> list[RampStep]:
    """Evenly spaced steps: the first at `start`, each next one `interval` later."""
    return [RampStep(percent=float(p), starts_at=start + i * interval) for i, p in enumerate(percents)]


def _check_steps(steps: Sequence[RampStep]) -> None:
    errors: dict[str, list[str]] = {}
    if not steps:
        errors["steps"] = ["A ramp needs at least one step."]
    previous: RampStep | None = None
    for i, step in enumerate(steps):
        if not 0.0 < step.percent <= 100.0:
            errors.setdefault(f"steps[{i}].percent", []).append("A step is a percentage above 0 and at most 100.")
        if previous is not None:
            if step.percent <= previous.percent:
                errors.setdefault(f"steps[{i}].percent", []).append("Each step must serve more units than the last.")
            if step.starts_at <= previous.starts_at:
                errors.setdefault(f"steps[{i}].starts_at", []).append("Each step must start after the last one.")
        previous = step
    if errors:
        raise ValidationFailed("The ramp is not valid.", code="invalid_ramp", details=errors)


@reviewable("flag.ramp_create", label="Ramp up flag", target=flag_target,
            refs={"flag": "flag", "environment": "environment"}, environments=in_environment,
            decoders={"steps": ramp_steps})
@transaction.atomic
def ramp_create(
    *,
    actor: Actor,
    flag: Flag,
    environment: Environment,
    variant: str,
    steps: Sequence[RampStep],
    condition: Mapping[str, Any] | None = None,
    segments: Sequence[str] = (),
    hash_attribute: str = "id",
    position: int | None = None,
) -> Ramp:
    """Write one rollout rule per step, all or none (one audit entry per rule)."""
    _check_steps(steps)
    ramp_id = uuid.uuid4().hex[:10]
    seed = f"{flag.key}:ramp:{ramp_id}"
    count = len(steps)
    for i, step in enumerate(steps):
        ends_at = steps[i + 1].starts_at if i + 1 < count else None
        services.flag_rule_create(
            actor=actor,
            flag=flag,
            environment=environment,
            position=None if position is None else position + i,
            kind=Rule.Kind.ROLLOUT,
            description=f"{MARKER}{ramp_id} step {i + 1}/{count}: {step.percent:g}% of units",
            variant=variant,
            coverage=step.percent / 100.0,
            condition=dict(condition or {}),
            segments=list(segments),
            hash_attribute=hash_attribute,
            seed=seed,
            starts_at=step.starts_at,
            ends_at=ends_at,
        )
    ramps = [r for r in ramp_list(flag=flag, environment=environment) if r.id == ramp_id]
    return ramps[0]


def _step_status(rule: Rule, now: datetime) -> str:
    if rule.starts_at is not None and now < rule.starts_at:
        return "planned"
    if rule.ends_at is not None and now >= rule.ends_at:
        return "done"
    return "current"


def ramp_steps_from_rules(rules: Iterable[Rule], *, now: datetime | None = None) -> list[Ramp]:
    """Group ramp rules (rows already in memory, with `state` loaded) into ramps."""
    moment = now or timezone.now()
    grouped: dict[tuple[int, str], list[Rule]] = {}
    for rule in rules:
        match = _DESCRIPTION_RE.match(rule.description or "")
        if match is None or rule.kind != Rule.Kind.ROLLOUT:
            continue
        grouped.setdefault((rule.state_id, match["id"]), []).append(rule)
    ramps: list[Ramp] = []
    for (_, ramp_id), members in grouped.items():
        members.sort(key=lambda r: (r.starts_at or datetime.min.replace(tzinfo=moment.tzinfo), r.position))
        first = members[0]
        ramps.append(
            Ramp(
                id=ramp_id,
                flag=first.state.flag.key,
                environment=first.state.environment.key,
                variant=first.variant,
                audience=_audience(first),
                steps=tuple(
                    RampStepState(
                        rule_id=r.uid,
                        percent=round(r.coverage * 100.0, 6),
                        starts_at=r.starts_at,
                        ends_at=r.ends_at,
                        status=_step_status(r, moment),
                    )
                    for r in members
                ),
            )
        )
    ramps.sort(key=lambda r: (r.environment, r.steps[0].starts_at is None, r.steps[0].starts_at or moment))
    return ramps


def _audience(rule: Rule) -> str:
    """The units a ramp's steps serve, in words (every step has the same targeting)."""
    share = f"a rising share of users {describe_hashing(rule.hash_attribute, rule.fallback_attribute)}"
    who = describe_condition(rule.condition, segments=rule.segments or ())
    return share if who == EVERYONE else f"{share} when {who}"


def ramp_list(*, flag: Flag, environment: Environment | None = None, now: datetime | None = None) -> list[Ramp]:
    rules = Rule.objects.filter(state__flag=flag, description__startswith=MARKER).select_related(
        "state__flag", "state__environment"
    )
    if environment is not None:
        rules = rules.filter(state__environment=environment)
    return ramp_steps_from_rules(rules, now=now)


@reviewable("flag.ramp_cancel", label="Stop a ramp of flag", target=flag_target,
            refs={"flag": "flag", "environment": "environment"}, environments=in_environment)
@transaction.atomic
def ramp_cancel(
    *, actor: Actor, flag: Flag, environment: Environment, ramp_id: str, hold: bool = True
) -> None:
    """Stop a ramp.

    With `hold` the units already in keep the variant: the planned steps are deleted and
    the current step no longer ends. Without it every step is deleted, which takes the
    variant away from everyone the ramp served (the flag falls back to its other rules).
    """
    now = timezone.now()
    ramps = [r for r in ramp_list(flag=flag, environment=environment, now=now) if r.id == ramp_id]
    if not ramps:
        raise NotFound(f"Ramp '{ramp_id}' does not exist.", code="ramp_not_found")
    by_uid = {
        r.uid: r
        for r in Rule.objects.filter(uid__in=[s.rule_id for s in ramps[0].steps]).select_related(
            "state__flag", "state__environment"
        )
    }
    for step in ramps[0].steps:
        rule = by_uid[step.rule_id]
        if hold and step.status == "current":
            if rule.ends_at is not None:
                services.flag_rule_update(actor=actor, rule=rule, ends_at=None)
        elif hold and step.status == "done":
            continue
        else:
            services.flag_rule_delete(actor=actor, rule=rule)
