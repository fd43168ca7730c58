"""Golden numbers for the fixed-horizon tests against scipy and statsmodels (1e-6 relative)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

import stats
from stats import frequentist
from stats.types import AnalysisInput, VariationData

RTOL = 1e-6


def _random_summaries(rng: np.random.Generator, size: int) -> tuple[np.ndarray, ...]:
    n_a, n_b = rng.integers(2, 20000, size), rng.integers(2, 20000, size)
    m_a, m_b = rng.normal(10, 3, size), rng.normal(10, 3, size)
    s_a, s_b = rng.uniform(0.1, 20, size), rng.uniform(0.1, 20, size)
    return n_a, m_a, s_a, n_b, m_b, s_b


def test_welch_test__random_summaries__matches_scipy_ttest_ind_from_stats() -> None:
    rng = np.random.default_rng(1)
    n_a, m_a, s_a, n_b, m_b, s_b = _random_summaries(rng, 500)
    ours = frequentist.welch_test(m_a, s_a**2, n_a, m_b, s_b**2, n_b, alpha=0.05)
    ref = sps.ttest_ind_from_stats(m_b, s_b, n_b, m_a, s_a, n_a, equal_var=False)
    np.testing.assert_allclose(ours.p_value, ref.pvalue, rtol=RTOL, atol=1e-300)
    np.testing.assert_allclose(ours.estimate / np.sqrt(ours.variance), ref.statistic, rtol=RTOL)
    # Interval from scipy's own t quantile at Welch's df.
    df = (s_a**2 / n_a + s_b**2 / n_b) ** 2 / ((s_a**2 / n_a) ** 2 / (n_a - 1) + (s_b**2 / n_b) ** 2 / (n_b - 1))
    half = sps.t.ppf(0.975, df) * np.sqrt(s_a**2 / n_a + s_b**2 / n_b)
    np.testing.assert_allclose(ours.dof, df, rtol=RTOL)
    np.testing.assert_allclose(ours.ci_low, (m_b - m_a) - half, rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(ours.ci_high, (m_b - m_a) + half, rtol=RTOL, atol=1e-12)


def test_analyze_mean__raw_users__matches_scipy_ttest_ind_welch() -> None:
    rng = np.random.default_rng(2)
    y_a, y_b = rng.exponential(5.0, 800), rng.exponential(5.5, 1100)
    variations = tuple(
        VariationData(name, len(y), main_sum=float(y.sum()), main_sum_squares=float((y * y).sum()))
        for name, y in (("control", y_a), ("treatment", y_b))
    )
    result = stats.analyze(AnalysisInput(metric="mean", variations=variations, difference_type="absolute"))
    ref = sps.ttest_ind(y_b, y_a, equal_var=False)
    ci = ref.confidence_interval(0.95)
    c = result.comparisons[0]
    assert c.p_value == pytest.approx(ref.pvalue, rel=RTOL)
    assert c.estimate == pytest.approx(y_b.mean() - y_a.mean(), rel=RTOL)
    assert [c.ci_low, c.ci_high] == pytest.approx([ci.low, ci.high], rel=RTOL)
    assert result.variations[0].stddev == pytest.approx(y_a.std(ddof=1), rel=RTOL)


def test_analyze_binomial__random_counts__welch_with_bernoulli_variance() -> None:
    """Binomial readouts are Welch's test with s^2 = p(1-p) (GrowthBook's unpooled form)."""
    rng = np.random.default_rng(3)
    for _ in range(100):
        n_a, n_b = (int(v) for v in rng.integers(50, 50000, 2))
        c_a, c_b = (int(rng.binomial(n, rng.uniform(0.01, 0.9))) for n in (n_a, n_b))
        p_a, p_b = c_a / n_a, c_b / n_b
        a = AnalysisInput(
            metric="binomial",
            variations=(VariationData("control", n_a, float(c_a)), VariationData("t", n_b, float(c_b))),
            difference_type="absolute",
            alpha=0.1,
        )
        ours = stats.analyze(a).comparisons[0]
        if ours.error is not None:
            assert min(p_a, p_b) in (0.0, 1.0) or max(p_a, p_b) == 1.0
            continue
        ref = sps.ttest_ind_from_stats(
            p_b, np.sqrt(p_b * (1 - p_b)), n_b, p_a, np.sqrt(p_a * (1 - p_a)), n_a, equal_var=False
        )
        assert ours.p_value == pytest.approx(ref.pvalue, rel=RTOL, abs=1e-300)


def test_proportion_z_test__random_counts__matches_statsmodels() -> None:
    rng = np.random.default_rng(4)
    n_a, n_b = rng.integers(100, 50000, 200), rng.integers(100, 50000, 200)
    c_a = rng.binomial(n_a, rng.uniform(0.02, 0.9, 200))
    c_b = rng.binomial(n_b, rng.uniform(0.02, 0.9, 200))
    ours = frequentist.proportion_z_test(c_a, n_a, c_b, n_b, alpha=0.05)
    for i in range(200):
        z, p = proportions_ztest([c_b[i], c_a[i]], [n_b[i], n_a[i]])
        low, high = confint_proportions_2indep(c_b[i], n_b[i], c_a[i], n_a[i], method="wald", compare="diff")
        assert ours.z[i] == pytest.approx(z, rel=RTOL)
        assert ours.p_value[i] == pytest.approx(p, rel=RTOL, abs=1e-300)
        assert [ours.ci_low[i], ours.ci_high[i]] == pytest.approx([low, high], rel=RTOL, abs=1e-12)


def test_proportion_z_test__large_samples__agrees_with_engine_binomial_readout() -> None:
    """With large n the Welch readout and the pooled z-test tell the same story."""
    a = AnalysisInput(
        metric="binomial",
        variations=(VariationData("control", 200000, 20000.0), VariationData("t", 200000, 20500.0)),
        difference_type="absolute",
    )
    ours = stats.analyze(a).comparisons[0]
    z = frequentist.proportion_z_test(20000, 200000, 20500, 200000)
    assert ours.p_value == pytest.approx(float(z.p_value), rel=1e-2)


def test_relative_lift__delta_method__matches_hand_formula_and_simulation() -> None:
    rng = np.random.default_rng(5)
    n_a, n_b, mu_a, mu_b, sd = 4000, 4000, 10.0, 10.5, 6.0
    est = frequentist.welch_test(mu_a, sd**2, n_a, mu_b, sd**2, n_b, relative=True)
    hand = sd**2 / (n_b * mu_a**2) + mu_b**2 * sd**2 / (n_a * mu_a**4)
    assert float(est.variance) == pytest.approx(hand, rel=1e-12)
    assert float(est.estimate) == pytest.approx(0.05, rel=1e-12)
    # The delta-method SE matches the spread of the lift across 4,000 replications.
    means_a = rng.normal(mu_a, sd / np.sqrt(n_a), 4000)
    means_b = rng.normal(mu_b, sd / np.sqrt(n_b), 4000)
    assert np.std(means_b / means_a - 1) == pytest.approx(np.sqrt(hand), rel=0.05)


def test_t_interval__p_value_far_in_the_tail__uses_survival_function() -> None:
    ours = frequentist.t_interval(1.0, 1e-4, 50.0, 0.05)  # t = 100
    assert float(ours.p_value) == pytest.approx(2 * sps.t.sf(100.0, 50.0), rel=RTOL)
    assert 0.0 < float(ours.p_value) < 1e-40


def test_chance_to_win__swapped_arms__complements_to_one() -> None:
    rng = np.random.default_rng(6)
    est, var = rng.normal(0, 1, 100), rng.uniform(0.1, 2, 100)
    ctw = frequentist.chance_to_win(est, var)
    np.testing.assert_allclose(ctw, sps.norm.cdf(est / np.sqrt(var)), rtol=1e-12)
    np.testing.assert_allclose(ctw + frequentist.chance_to_win(-est, var), 1.0, rtol=1e-12)


def test_z_interval__random_inputs__matches_scipy_norm() -> None:
    ours = frequentist.z_interval([0.3, -1.2], [0.04, 0.25], 0.05)
    np.testing.assert_allclose(ours.ci_low, [0.3 - sps.norm.ppf(0.975) * 0.2, -1.2 - sps.norm.ppf(0.975) * 0.5])
    np.testing.assert_allclose(ours.p_value, 2 * sps.norm.sf([1.5, 2.4]), rtol=1e-12)
