"""The guided creation's plan: users and days needed for the target lift, and what to change
when that takes too long.

One computation gives one number: with sequential testing the confidence sequence is tuned to
the planned sample itself (`stats.sequential_users_needed`), so the users shown on the
power step, on the review, in the experiment's description and as its `sequential_tuning`
are the same. A plan longer than `MAX_PLANNED_DAYS` is underpowered; `advice` then says what
would bring it within that many days, with the numbers each change gives.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import stats

__all__ = ["CUPED_EXAMPLE_REDUCTION", "MAX_PLANNED_DAYS", "POWER", "Plan", "PlanInput", "plan_experiment"]

# Longer than eight weeks and an experiment is underpowered in practice: seasonality, novelty
# wearing off, cleared cookies and the next release change what is measured before it ends.
MAX_PLANNED_DAYS = 56
# The chance of detecting the target lift when it is real.
POWER = 0.8
# CUPED's variance reduction used to illustrate its effect on the plan (rho^2 of a metric
# whose pre-period explains 30% of its variance; often 10-50% for engagement metrics).
CUPED_EXAMPLE_REDUCTION = 0.3


@dataclass(frozen=True, slots=True)
class PlanInput:
    """The wizard's answers the plan needs (percentages as typed)."""

    mde_percent: float
    baseline: float  # a rate in percent for binary metrics, else the mean
    daily_users: float
    coverage_percent: float
    weights: Sequence[float]
    alpha: float
    binary: bool = True
    stddev: float | None = None
    sequential: bool = False
    cuped: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    users: int = 0
    fixed_users: int = 0
    per_day: float = 0.0
    days: int | None = None
    mde_percent: float = 0.0
    sequential: bool = False
    error: str = ""
    advice: tuple[str, ...] = field(default=())

    @property
    def users_text(self) -> str:
        return f"{self.users:,}"

    @property
    def fixed_text(self) -> str:
        return f"{self.fixed_users:,}"

    @property
    def per_day_text(self) -> str:
        return f"{self.per_day:,.0f}"

    @property
    def tuning(self) -> int | None:
        """The confidence sequence's N*: the planned sample (None for a fixed-horizon test)."""
        return self.users if self.sequential and self.users else None

    @property
    def underpowered(self) -> bool:
        return self.days is not None and self.days > MAX_PLANNED_DAYS

    @property
    def max_days(self) -> int:
        return MAX_PLANNED_DAYS


def _moments(inp: PlanInput) -> tuple[float, float]:
    mean = inp.baseline / 100 if inp.binary else inp.baseline
    variance = mean * (1 - mean) if inp.binary else float(inp.stddev or 0) ** 2
    return mean, variance


def _users(inp: PlanInput, *, weights: Sequence[float] | None = None, reduction: float = 0.0,
           sequential: bool | None = None) -> float:
    mean, variance = _moments(inp)
    solve = stats.sequential_users_needed if (inp.sequential if sequential is None else sequential) \
        else stats.users_needed
    return solve(effect=inp.mde_percent / 100, variance=variance, weights=list(weights or inp.weights),
                 alpha=inp.alpha, power=POWER, mean=mean, relative=True, variance_reduction=reduction)


def _days(users: float, per_day: float) -> int:
    return math.ceil(math.ceil(users) / per_day)


def _advice(inp: PlanInput, plan: Plan) -> tuple[str, ...]:
    """What brings an underpowered plan within `MAX_PLANNED_DAYS`, with the numbers."""
    mean, variance = _moments(inp)
    budget = plan.per_day * MAX_PLANNED_DAYS
    mde = stats.minimum_detectable_effect(
        users=budget, variance=variance, weights=list(inp.weights), alpha=inp.alpha, power=POWER, mean=mean,
        relative=True, sequential_tuning_parameter=budget if inp.sequential else None)
    if mde is not None:
        larger = (f"Aim for a larger lift: in {MAX_PLANNED_DAYS} days this traffic detects a lift of about "
                  f"{mde * 100:.3g}% (you asked for {inp.mde_percent:g}%).")
    else:
        larger = (f"Aim for a larger lift: in {MAX_PLANNED_DAYS} days this traffic cannot reliably detect any "
                  "relative lift of this metric.")
    advice = [larger]
    needed_daily = math.ceil(plan.users / MAX_PLANNED_DAYS / (inp.coverage_percent / 100))
    traffic = (f"Bring more traffic: {MAX_PLANNED_DAYS} days need about {needed_daily:,} eligible users a day "
               f"(you expect {inp.daily_users:,.0f})")
    if inp.coverage_percent < 100:
        full = _days(plan.users, inp.daily_users)
        traffic += (f"; or raise coverage from {inp.coverage_percent:g}% to 100%: about {full:,} "
                    f"day{'s' if full != 1 else ''}.")
    else:
        traffic += ", for example by targeting a page more users reach."
    advice.append(traffic)
    if len(inp.weights) > 2:
        two = _days(_users(inp, weights=(0.5, 0.5)), plan.per_day)
        advice.append(f"Test fewer variations: one treatment against the control (50/50) needs about "
                      f"{two:,} day{'s' if two != 1 else ''}.")
    with_cuped = _days(_users(inp, reduction=CUPED_EXAMPLE_REDUCTION), plan.per_day)
    if inp.cuped:
        advice.append(f"CUPED is on and this estimate does not count it: if each user's history explains "
                      f"{CUPED_EXAMPLE_REDUCTION:.0%} of the variance, about {with_cuped:,} days.")
    else:
        advice.append(f"Turn CUPED on: if each user's history explains {CUPED_EXAMPLE_REDUCTION:.0%} of the "
                      f"variance, about {with_cuped:,} days.")
    return tuple(advice)


def plan_experiment(inp: PlanInput) -> Plan:
    """Users (all variations) and days for `POWER` at the target lift; advice when too long."""
    try:
        needed = _users(inp)
        fixed = _users(inp, sequential=False)
    except stats.InputError as exc:
        return Plan(error=f"Cannot estimate: {exc.message}", mde_percent=inp.mde_percent)
    per_day = inp.daily_users * inp.coverage_percent / 100
    users = math.ceil(needed)
    plan = Plan(users=users, fixed_users=math.ceil(fixed), per_day=per_day,
                days=_days(users, per_day) if per_day > 0 else None, mde_percent=inp.mde_percent,
                sequential=inp.sequential)
    return replace(plan, advice=_advice(inp, plan)) if plan.underpowered else plan
