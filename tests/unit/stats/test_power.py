"""Power, sample size and MDE against statsmodels and against each other."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.power import NormalIndPower

import stats

RTOL = 1e-6


@pytest.mark.parametrize(("w_a", "w_b"), [(0.5, 0.5), (0.7, 0.3), (0.2, 0.8)])
def test_power__random_designs__matches_statsmodels_normal_ind_power(w_a: float, w_b: float) -> None:
    rng = np.random.default_rng(41)
    for _ in range(30):
        sigma, delta, users = rng.uniform(0.5, 20), rng.uniform(0.01, 2), rng.uniform(100, 1e5)
        alpha = float(rng.choice([0.01, 0.05, 0.1]))
        ours = stats.detection_power(effect=delta, variance=sigma**2, users=users, weights=(w_a, w_b), alpha=alpha)
        ref = NormalIndPower().power(effect_size=delta / sigma, nobs1=users * w_a, alpha=alpha, ratio=w_b / w_a)
        assert ours == pytest.approx(ref, rel=RTOL)


@pytest.mark.parametrize(("w_a", "w_b"), [(0.5, 0.5), (0.7, 0.3)])
def test_users_needed__random_designs__matches_statsmodels_solve_power(w_a: float, w_b: float) -> None:
    rng = np.random.default_rng(42)
    for _ in range(20):
        sigma, delta = rng.uniform(0.5, 20), rng.uniform(0.05, 2)
        target = float(rng.choice([0.8, 0.9]))
        ours = stats.users_needed(effect=delta, variance=sigma**2, weights=(w_a, w_b), power=target)
        ref = NormalIndPower().solve_power(effect_size=delta / sigma, alpha=0.05, power=target, ratio=w_b / w_a)
        assert ours * w_a == pytest.approx(ref, rel=RTOL)


def test_minimum_detectable_effect__random_sizes__statsmodels_power_there_is_target() -> None:
    rng = np.random.default_rng(43)
    for _ in range(20):
        sigma, users = rng.uniform(0.5, 20), rng.uniform(200, 1e5)
        ours = stats.minimum_detectable_effect(users=users, variance=sigma**2, power=0.8)
        assert ours is not None
        achieved = NormalIndPower().power(effect_size=ours / sigma, nobs1=users / 2, alpha=0.05, ratio=1.0)
        assert achieved == pytest.approx(0.8, rel=1e-9)
        # statsmodels' own effect-size solver stops early (errors up to ~1e-4 seen).
        ref = NormalIndPower().solve_power(nobs1=users / 2, alpha=0.05, power=0.8, ratio=1.0)
        assert ours == pytest.approx(ref * sigma, rel=1e-3)


def test_users_needed__textbook_equal_split__two_sigma_squared_k_squared_over_delta_squared() -> None:
    # n per arm = 2 sigma^2 (z_{.975} + z_{.8})^2 / delta^2 = 15.70 sigma^2/delta^2, ignoring the far tail.
    n_total = stats.users_needed(effect=0.1, variance=1.0)
    assert n_total / 2 == pytest.approx(2 * (1.959964 + 0.841621) ** 2 / 0.01, rel=1e-4)


def test_users_needed__cuped_reduction__scales_by_one_minus_r() -> None:
    plain = stats.users_needed(effect=0.2, variance=4.0)
    reduced = stats.users_needed(effect=0.2, variance=4.0, variance_reduction=0.36)
    assert reduced == pytest.approx(plain * 0.64, rel=1e-12)


@pytest.mark.parametrize("metric", ["mean", "binomial", "ratio"])
def test_relative_mde__any_metric__power_at_mde_equals_target(metric: str) -> None:
    moments = {
        "mean": (20.0, 400.0),
        "binomial": stats.baseline_moments("binomial", users=10000, main_sum=1200),
        "ratio": stats.baseline_moments(
            "ratio",
            users=1000,
            main_sum=5000,
            main_sum_squares=40000,
            denominator_sum=2500,
            denominator_sum_squares=8000,
            main_denominator_sum_product=15000,
        ),
    }[metric]
    mean, variance = moments
    for users in (2000, 20000, 200000):
        mde = stats.minimum_detectable_effect(users=users, variance=variance, mean=mean, relative=True)
        assert mde is not None and mde > 0
        achieved = stats.detection_power(effect=mde, variance=variance, users=users, mean=mean, relative=True)
        assert achieved == pytest.approx(0.8, rel=1e-9)
        needed = stats.users_needed(effect=mde, variance=variance, mean=mean, relative=True)
        assert needed == pytest.approx(users, rel=1e-9)


def test_relative_mde__tiny_sample_noisy_mean__none() -> None:
    assert stats.minimum_detectable_effect(users=10, variance=400.0, mean=1.0, relative=True) is None


def test_sequential_power__same_design__needs_more_users_and_hits_target() -> None:
    fixed = stats.users_needed(effect=0.1, variance=1.0)
    seq = stats.users_needed(effect=0.1, variance=1.0, sequential_tuning_parameter=5000)
    assert seq > 1.5 * fixed
    assert stats.detection_power(
        effect=0.1, variance=1.0, users=seq, sequential_tuning_parameter=5000
    ) == pytest.approx(0.8)
    mde = stats.minimum_detectable_effect(users=seq, variance=1.0, sequential_tuning_parameter=5000)
    assert mde == pytest.approx(0.1, rel=1e-6)


def test_baseline_moments__binomial_counts__p_and_bernoulli_variance() -> None:
    assert stats.baseline_moments("binomial", users=1000, main_sum=250) == pytest.approx((0.25, 0.1875))


def test_power__unequal_multi_arm_weights__uses_smallest_treatment_share() -> None:
    three = stats.detection_power(effect=0.1, variance=1.0, users=9000, weights=(0.5, 0.3, 0.2))
    two = stats.detection_power(effect=0.1, variance=1.0, users=9000 * 0.7, weights=(0.5, 0.2))
    assert three == pytest.approx(two, rel=1e-12)


def test_power__bad_inputs__raise_input_error() -> None:
    with pytest.raises(stats.InputError):
        stats.detection_power(effect=0.1, variance=-1.0, users=100)
    with pytest.raises(stats.InputError):
        stats.detection_power(effect=0.1, variance=1.0, users=100, relative=True)
    with pytest.raises(stats.InputError):
        stats.users_needed(effect=0.0, variance=1.0)
    assert math.isfinite(stats.detection_power(effect=0.0, variance=1.0, users=100))


@pytest.mark.parametrize(("alpha", "relative"), [(0.05, True), (0.01, False), (0.1, True)])
def test_sequential_users_needed__tuned_to_itself__fixed_point_of_users_needed_and_power_there(
    alpha: float, relative: bool
) -> None:
    p = 0.12
    kwargs: dict[str, float | bool | None] = {"effect": 0.05 if relative else 0.006, "variance": p * (1 - p),
                                              "alpha": alpha, "mean": p if relative else None, "relative": relative}
    n = stats.sequential_users_needed(**kwargs)  # type: ignore[arg-type]
    # Iterating "tune to the last answer" converges to the same N.
    guess = stats.users_needed(**kwargs)  # type: ignore[arg-type]
    for _ in range(30):
        guess = stats.users_needed(**kwargs, sequential_tuning_parameter=guess)  # type: ignore[arg-type]
    assert n == pytest.approx(guess, rel=1e-9)
    power = stats.detection_power(**kwargs, users=n, sequential_tuning_parameter=n)  # type: ignore[arg-type]
    assert power == pytest.approx(0.8, rel=1e-9)
    assert n > stats.users_needed(**kwargs)  # type: ignore[arg-type]


def test_sequential_users_needed__bad_effect__input_error() -> None:
    with pytest.raises(stats.InputError):
        stats.sequential_users_needed(effect=0.0, variance=1.0)
