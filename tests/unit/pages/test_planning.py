"""The guided creation's plan: one number of users, days at the coverage, and remedies that
each bring an underpowered plan back within the limit they quote."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

import stats
from pages.presentation.planning import MAX_PLANNED_DAYS, PlanInput, plan_experiment

BASE = PlanInput(mde_percent=5, baseline=12, daily_users=4000, coverage_percent=100, weights=(0.5, 0.5),
                 alpha=0.05, sequential=True, cuped=True)


def test_plan__sequential__users_are_the_tuning_and_the_self_tuned_sample() -> None:
    plan = plan_experiment(BASE)
    expected = stats.sequential_users_needed(effect=0.05, variance=0.12 * 0.88, mean=0.12, relative=True)
    assert plan.users == -(-expected // 1)
    assert plan.tuning == plan.users
    assert plan.fixed_users < plan.users
    assert plan.days == -(-plan.users // 4000)
    assert not plan.underpowered and plan.advice == ()


def test_plan__fixed_horizon__no_tuning() -> None:
    plan = plan_experiment(replace(BASE, sequential=False))
    assert plan.tuning is None and plan.users == plan.fixed_users


def test_plan__days_count_only_the_covered_share() -> None:
    plan = plan_experiment(replace(BASE, coverage_percent=25))
    assert plan.per_day == 1000
    assert plan.days == -(-plan.users // 1000)


def test_plan__one_day_over_the_limit__underpowered_and_at_the_limit_not() -> None:
    users = plan_experiment(BASE).users
    over = plan_experiment(replace(BASE, daily_users=users / (MAX_PLANNED_DAYS + 0.5)))
    assert over.days == MAX_PLANNED_DAYS + 1 and over.underpowered
    at = plan_experiment(replace(BASE, daily_users=users / MAX_PLANNED_DAYS))
    assert at.days == MAX_PLANNED_DAYS and not at.underpowered


def _days_in(line: str) -> int:
    match = re.search(r"about ([0-9,]+) days?\.?$", line)
    assert match is not None, line
    return int(match.group(1).replace(",", ""))


def test_plan__underpowered__each_remedy_with_numbers_that_hold() -> None:
    inp = PlanInput(mde_percent=2, baseline=3, daily_users=1000, coverage_percent=50, weights=(0.4, 0.3, 0.3),
                    alpha=0.05, sequential=True, cuped=False)
    plan = plan_experiment(inp)
    assert plan.underpowered
    larger, traffic, fewer, cuped = plan.advice
    # A larger lift: the quoted lift is planned within the limit.
    lift = float(re.search(r"lift of about ([0-9.]+)%", larger).group(1))  # type: ignore[union-attr]
    assert plan_experiment(replace(inp, mde_percent=lift * 1.01)).days <= MAX_PLANNED_DAYS  # type: ignore[operator]
    # More traffic: the quoted daily users fit in the limit; full coverage gives the quoted days.
    daily = int(re.search(r"about ([0-9,]+) eligible", traffic).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert plan_experiment(replace(inp, daily_users=daily)).days <= MAX_PLANNED_DAYS  # type: ignore[operator]
    assert _days_in(traffic) == plan_experiment(replace(inp, coverage_percent=100)).days
    # Fewer variations: one treatment, 50/50.
    assert _days_in(fewer) == plan_experiment(replace(inp, weights=(0.5, 0.5))).days
    assert "Turn CUPED on" in cuped and _days_in(cuped) < plan.days  # type: ignore[operator]


def test_plan__two_variations_full_coverage_cuped_on__no_remedy_that_does_not_apply() -> None:
    plan = plan_experiment(replace(BASE, daily_users=200))
    assert plan.underpowered
    text = " ".join(plan.advice)
    assert "fewer variations" not in text and "raise coverage" not in text
    assert "CUPED is on" in text


@pytest.mark.parametrize("changes", [{"baseline": 0.0}, {"mde_percent": 0.0}])
def test_plan__impossible_inputs__an_error_not_an_exception(changes: dict[str, float]) -> None:
    plan = plan_experiment(replace(BASE, **changes))  # type: ignore[arg-type]
    assert plan.error.startswith("Cannot estimate")
