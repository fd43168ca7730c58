"""CUPED: theta, adjusted tests, relative variance, ratio CUPED, fallbacks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

import stats
from stats import cuped
from stats.types import AnalysisInput
from tests.unit.stats.factories import correlated, sums, variation


def _two_arms(rng: np.random.Generator, n_a: int, n_b: int, rho: float, effect: float = 0.0):  # type: ignore[no-untyped-def]
    x_a, e_a = correlated(rng, (n_a,), rho)
    x_b, e_b = correlated(rng, (n_b,), rho)
    return (10 + 2 * x_a, 10 + 2 * e_a), (10 + 2 * x_b, 10 + 2 * e_b + effect)


def test_pooled_theta__pooled_sample__equals_ols_slope() -> None:
    rng = np.random.default_rng(11)
    (x_a, y_a), (x_b, y_b) = _two_arms(rng, 700, 900, 0.6, effect=0.3)
    x, y = np.concatenate([x_a, x_b]), np.concatenate([y_a, y_b])
    s = sums(y, x)
    theta = cuped.pooled_theta(
        s["users"],
        s["main_sum"],
        s["main_sum_squares"],
        s["covariate_sum"],
        s["covariate_sum_squares"],
        s["main_covariate_sum_product"],
    )
    assert float(theta) == pytest.approx(np.polyfit(x, y, 1)[0], rel=1e-9)


def test_cuped_absolute__per_user_adjusted_values__matches_scipy_welch() -> None:
    """CUPED is Welch's test on y - theta x with theta fixed from the pooled data."""
    rng = np.random.default_rng(12)
    (x_a, y_a), (x_b, y_b) = _two_arms(rng, 1500, 1300, 0.7, effect=0.2)
    theta = np.polyfit(np.concatenate([x_a, x_b]), np.concatenate([y_a, y_b]), 1)[0]
    a = AnalysisInput(
        metric="mean",
        variations=(variation("control", sums(y_a, x_a)), variation("t", sums(y_b, x_b))),
        difference_type="absolute",
        cuped=True,
    )
    ours = stats.analyze(a).comparisons[0]
    adj_a, adj_b = y_a - theta * x_a, y_b - theta * x_b
    ref = sps.ttest_ind(adj_b, adj_a, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert ours.cuped_applied
    assert ours.estimate == pytest.approx(adj_b.mean() - adj_a.mean(), rel=1e-9)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-6)
    assert [ours.ci_low, ours.ci_high] == pytest.approx([ci.low, ci.high], rel=1e-6)
    plain = adj_a.var(ddof=1) / 1500 + adj_b.var(ddof=1) / 1300
    unadjusted = y_a.var(ddof=1) / 1500 + y_b.var(ddof=1) / 1300
    assert ours.variance_reduction == pytest.approx(1 - plain / unadjusted, rel=1e-9)


def test_cuped_binomial__theta__uses_bernoulli_moments_with_n() -> None:
    rng = np.random.default_rng(13)
    x = (rng.random(4000) < 0.3).astype(float)
    y = np.where(rng.random(4000) < 0.8, x, (rng.random(4000) < 0.3).astype(float))
    s = sums(y, x)
    theta = cuped.pooled_theta(
        4000,
        s["main_sum"],
        s["main_sum"],
        s["covariate_sum"],
        s["covariate_sum"],
        s["main_covariate_sum_product"],
        binomial=True,
    )
    expected = (np.mean(x * y) - x.mean() * y.mean()) / (x.mean() * (1 - x.mean()))
    assert float(theta) == pytest.approx(expected, rel=1e-12)


def test_cuped_relative__simulated_replications__full_delta_se_matches_spread() -> None:
    """The full delta-method SE of the CUPED lift matches its spread across replications."""
    rng = np.random.default_rng(14)
    reps, n = 3000, 500
    x_a, y_a = correlated(rng, (reps, n), 0.7)
    x_b, y_b = correlated(rng, (reps, n), 0.7)
    control = stats.ArmArrays(**{k: v for k, v in sums(5 + y_a, 5 + x_a).items()})
    treatment = stats.ArmArrays(**{k: v for k, v in sums(5 + y_b, 5 + x_b).items()})
    out = stats.compare_arrays(control, treatment, metric="mean", difference_type="relative", cuped=True)
    se = np.sqrt(out.variance)
    assert np.std(out.estimate) == pytest.approx(np.mean(se), rel=0.04)
    # Coverage of the true lift (0) by the 95% interval.
    assert np.mean((out.ci_low <= 0) & (out.ci_high >= 0)) == pytest.approx(0.95, abs=0.015)


@pytest.mark.parametrize("rho", [0.3, 0.5, 0.7])
def test_cuped_variance_reduction__correlation_rho__close_to_rho_squared(rho: float) -> None:
    rng = np.random.default_rng(int(rho * 100))
    reps, n = 2000, 1000
    x_a, y_a = correlated(rng, (reps, n), rho)
    x_b, y_b = correlated(rng, (reps, n), rho)
    arrays = [stats.ArmArrays(**{k: v for k, v in sums(y, x).items()}) for x, y in ((x_a, y_a), (x_b, y_b))]
    adjusted = stats.compare_arrays(*arrays, metric="mean", difference_type="absolute", cuped=True)
    plain = stats.compare_arrays(*arrays, metric="mean", difference_type="absolute")
    assert np.mean(adjusted.variance_reduction) == pytest.approx(rho**2, rel=0.10)
    # The realised spread of the estimates shrinks by 1 - rho^2 as well.
    assert np.var(adjusted.estimate) / np.var(plain.estimate) == pytest.approx(1 - rho**2, rel=0.10)


def test_cuped__constant_covariate__falls_back_to_plain_test() -> None:
    rng = np.random.default_rng(15)
    y_a, y_b = rng.normal(5, 1, 500), rng.normal(5, 1, 500)
    ones = np.ones(500)
    cuped_input = AnalysisInput(
        metric="mean", variations=(variation("c", sums(y_a, ones)), variation("t", sums(y_b, ones))), cuped=True
    )
    plain_input = AnalysisInput(metric="mean", variations=(variation("c", sums(y_a)), variation("t", sums(y_b))))
    with_cov, without = stats.analyze(cuped_input).comparisons[0], stats.analyze(plain_input).comparisons[0]
    assert not with_cov.cuped_applied and with_cov.variance_reduction is None
    assert with_cov.estimate == pytest.approx(without.estimate, rel=1e-12)
    assert with_cov.p_value == pytest.approx(without.p_value, rel=1e-12)


def test_cuped__setting_off__ignores_covariate() -> None:
    rng = np.random.default_rng(16)
    (x_a, y_a), (x_b, y_b) = _two_arms(rng, 300, 300, 0.8)
    a = AnalysisInput(metric="mean", variations=(variation("c", sums(y_a, x_a)), variation("t", sums(y_b, x_b))))
    c = stats.analyze(a).comparisons[0]
    assert not c.cuped_applied
    assert c.estimate == pytest.approx((y_b.mean() - y_a.mean()) / y_a.mean(), rel=1e-12)


def test_ratio_cuped__per_user_linearisation__matches_covariance() -> None:
    """Delta-method covariance of two ratios equals the sample covariance of their linearisations."""
    from stats.ratio import ratio_covariate_moments

    rng = np.random.default_rng(17)
    n = 3000
    d, q = rng.poisson(3, n) + 1.0, rng.poisson(3, n) + 1.0
    x = rng.gamma(2, 1, n) * q
    y = 0.6 * x * d / q + rng.gamma(2, 1, n) * d
    s = sums(y, x, d, q)
    m = ratio_covariate_moments(s.pop("users"), **s)
    r_post, r_pre = y.sum() / d.sum(), x.sum() / q.sum()
    lin_post = (y - r_post * d) / d.mean()
    lin_pre = (x - r_pre * q) / q.mean()
    assert float(m.covariance) == pytest.approx(np.cov(lin_post, lin_pre)[0, 1], rel=1e-9)
    assert float(m.variance_post) == pytest.approx(lin_post.var(ddof=1), rel=1e-9)
    assert float(m.variance_pre) == pytest.approx(lin_pre.var(ddof=1), rel=1e-9)


def test_ratio_cuped__a_a_replications__unbiased_narrower_and_covering() -> None:
    rng = np.random.default_rng(18)
    reps, n = 2000, 500

    def arm() -> stats.ArmArrays:
        d, q = rng.poisson(3, (reps, n)) + 1.0, rng.poisson(3, (reps, n)) + 1.0
        base = rng.gamma(2, 1, (reps, n))
        x = base * q
        y = (0.8 * base + 0.4 * rng.gamma(2, 1, (reps, n))) * d
        return stats.ArmArrays(**sums(y, x, d, q))

    a, b = arm(), arm()
    adjusted = stats.compare_arrays(a, b, metric="ratio", difference_type="relative", cuped=True)
    plain = stats.compare_arrays(a, b, metric="ratio", difference_type="relative")
    assert adjusted.cuped_applied.all()
    assert abs(np.mean(adjusted.estimate)) < 3 * np.std(adjusted.estimate) / np.sqrt(reps)
    assert np.mean(adjusted.variance) < 0.7 * np.mean(plain.variance)
    assert np.std(adjusted.estimate) == pytest.approx(np.mean(np.sqrt(adjusted.variance)), rel=0.05)
    assert np.mean(adjusted.p_value < 0.05) == pytest.approx(0.05, abs=0.015)
