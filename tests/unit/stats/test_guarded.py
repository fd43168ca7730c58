"""Guarded rollouts: the harm rule, the split of the error budget, and the whole-rollout error
rates by simulation (all looks of all steps)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stats.guarded import (
    compared_steps,
    guardrail_harmed,
    rollout_alphas,
    share_mismatch,
    simulate_rollout,
)

PERCENTS = (1.0, 5.0, 25.0, 50.0, 100.0)


def test_harm_is_an_interval_wholly_on_the_bad_side_beyond_the_threshold() -> None:
    assert guardrail_harmed(-0.08, -0.01, direction="higher")
    assert not guardrail_harmed(-0.08, 0.01, direction="higher")
    assert not guardrail_harmed(-0.08, -0.01, direction="higher", threshold=0.02)
    assert guardrail_harmed(-0.08, -0.03, direction="higher", threshold=0.02)
    assert guardrail_harmed(0.01, 0.08, direction="lower")
    assert not guardrail_harmed(0.01, 0.08, direction="lower", threshold=0.05)
    assert not guardrail_harmed(math.nan, -0.5, direction="higher")


def test_budget_covers_every_step_guardrail_and_the_ratio_check() -> None:
    assert compared_steps(PERCENTS) == 4
    alphas = rollout_alphas(0.05, steps=4, guardrails=3)
    assert alphas.guardrail * 4 * 3 + alphas.srm * 4 == pytest.approx(0.05)
    with pytest.raises(ValueError):
        rollout_alphas(0.05, steps=0, guardrails=1)


def test_share_mismatch_flags_a_lopsided_split_only() -> None:
    assert not share_mismatch(9500, 500, 0.05, alpha=0.005)
    assert share_mismatch(9000, 1000, 0.05, alpha=0.005)
    assert not share_mismatch(0, 0, 0.05, alpha=0.005)


def test_false_alarms_over_the_whole_rollout_stay_within_alpha() -> None:
    result = simulate_rollout(np.random.default_rng(11), percents=PERCENTS, units_per_look=2000,
                              looks_per_step=24, alpha=0.05, rollouts=2000)
    # 2,000 rollouts: a true rate of 5% would be seen above 5.9% one time in a hundred.
    assert result.alarm_rate <= 0.05


def test_a_ten_percent_drop_is_caught_in_most_rollouts() -> None:
    result = simulate_rollout(np.random.default_rng(12), percents=PERCENTS, units_per_look=2000,
                              looks_per_step=24, alpha=0.05, lift=-0.10, rollouts=1000)
    assert result.guardrail_rate >= 0.75
    assert result.mean_stop_step < 3
