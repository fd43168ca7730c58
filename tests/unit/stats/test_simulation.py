"""Operating characteristics from simulated users (2,000 experiments of 10,000 users each)."""

from __future__ import annotations

import numpy as np
import pytest

import stats
from stats.simulation import LookSums, population_moments, simulate_arms

EXPERIMENTS, USERS_PER_ARM, LOOKS, ALPHA = 2000, 5000, 20, 0.05


@pytest.fixture(scope="module")
def revenue() -> tuple[LookSums, LookSums]:
    return simulate_arms(
        np.random.default_rng(61),
        experiments=EXPERIMENTS,
        users_per_arm=USERS_PER_ARM,
        looks=LOOKS,
        kind="revenue",
        rho=0.5,
    )


@pytest.fixture(scope="module")
def conversion() -> tuple[LookSums, LookSums]:
    return simulate_arms(
        np.random.default_rng(62), experiments=EXPERIMENTS, users_per_arm=USERS_PER_ARM, looks=LOOKS, kind="conversion"
    )


def _rejections(control: LookSums, treatment: LookSums, metric: str, **options: object) -> np.ndarray:
    """(experiments, looks) boolean: did the look reject at ALPHA?"""
    out = stats.compare_arrays(control.at(), treatment.at(), metric=metric, alpha=ALPHA, **options)  # type: ignore[arg-type]
    assert (out.error == -1).all()
    return (out.p_value < ALPHA).reshape(EXPERIMENTS, LOOKS)


@pytest.mark.parametrize("difference_type", ["absolute", "relative"])
def test_fixed_horizon__a_a_revenue__false_positive_rate_near_5_percent(
    revenue: tuple[LookSums, LookSums], difference_type: str
) -> None:
    out = stats.compare_arrays(revenue[0].at(-1), revenue[1].at(-1), metric="mean", difference_type=difference_type)  # type: ignore[arg-type]
    assert np.mean(out.p_value < ALPHA) == pytest.approx(0.05, abs=0.015)


def test_fixed_horizon__a_a_conversion__false_positive_rate_near_5_percent(
    conversion: tuple[LookSums, LookSums],
) -> None:
    out = stats.compare_arrays(conversion[0].at(-1), conversion[1].at(-1), metric="binomial")
    assert np.mean(out.p_value < ALPHA) == pytest.approx(0.05, abs=0.015)


@pytest.mark.parametrize("cuped", [False, True])
def test_fixed_horizon__revenue_lift_5_percent__interval_covers_true_lift_95_percent(
    revenue: tuple[LookSums, LookSums], cuped: bool
) -> None:
    control, treatment = revenue[0].at(-1), revenue[1].scaled(1.05).at(-1)
    relative = stats.compare_arrays(control, treatment, metric="mean", cuped=cuped)
    covered = (relative.ci_low <= 0.05) & (relative.ci_high >= 0.05)
    assert np.mean(covered) == pytest.approx(0.95, abs=0.015)
    absolute = stats.compare_arrays(control, treatment, metric="mean", difference_type="absolute", cuped=cuped)
    true_difference = 0.05 * population_moments("revenue")[0]
    covered = (absolute.ci_low <= true_difference) & (absolute.ci_high >= true_difference)
    assert np.mean(covered) == pytest.approx(0.95, abs=0.015)


def test_peeking__twenty_looks_plain_t_test__false_positives_far_above_5_percent(
    revenue: tuple[LookSums, LookSums],
) -> None:
    any_look = _rejections(*revenue, "mean").any(axis=1)
    assert np.mean(any_look) > 0.15


@pytest.mark.parametrize(("kind", "cuped"), [("revenue", False), ("revenue", True), ("conversion", False)])
def test_peeking__twenty_looks_confidence_sequence__false_positives_at_most_5_percent(
    revenue: tuple[LookSums, LookSums], conversion: tuple[LookSums, LookSums], kind: str, cuped: bool
) -> None:
    arms, metric = (revenue, "mean") if kind == "revenue" else (conversion, "binomial")
    any_look = _rejections(*arms, metric, sequential=True, cuped=cuped).any(axis=1)
    assert np.mean(any_look) <= 0.05


def test_cuped__revenue_with_rho_half__variance_reduction_near_rho_squared(
    revenue: tuple[LookSums, LookSums],
) -> None:
    out = stats.compare_arrays(revenue[0].at(-1), revenue[1].at(-1), metric="mean", cuped=True)
    plain = stats.compare_arrays(revenue[0].at(-1), revenue[1].at(-1), metric="mean")
    assert np.mean(out.variance_reduction) == pytest.approx(0.25, rel=0.10)
    assert np.var(out.estimate) / np.var(plain.estimate) == pytest.approx(0.75, rel=0.10)
