"""The Bayesian engine against gbstats 0.8.0's `EffectBayesianABTest` on random inputs.

Same numbers to 1e-6 where the methods are the same; where they differ (docs/statistics.md,
"Differences from gbstats 0.8.0"), a test shows that the difference is exactly the documented
one and nothing else.
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest

import stats
from stats import bayesian
from stats.types import AnalysisInput
from tests.unit.stats.factories import gb_bayesian_result, gb_statistic, random_analysis, sums, variation

try:
    import gbstats.bayesian.tests  # noqa: F401
    import gbstats.frequentist.tests as gb_frequentist
    import gbstats.models.statistics as gb_models
except ImportError:  # pragma: no cover - gbstats is a test dependency (make install-dev)
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("gbstats 0.8.0 is not installed", allow_module_level=True)

RTOL = 1e-6
# Where the methods are the same: every metric type in both difference types, CUPED on the
# absolute difference (relative CUPED is a documented difference, tested below).
SAME_METHOD = [
    ("mean", "absolute"), ("mean", "relative"), ("binomial", "absolute"), ("binomial", "relative"),
    ("ratio", "absolute"), ("ratio", "relative"), ("cuped", "absolute"),
]
CASES_PER_KIND = 40


def _random_prior(rng: np.random.Generator, a: AnalysisInput) -> AnalysisInput:
    """Flat, or a proper prior on the relative lift or on the absolute difference."""
    choice = int(rng.integers(0, 3))
    if choice == 0:
        return a
    control = a.variations[0]
    scale = abs(control.main_sum / (control.denominator_sum or control.users))
    mean, stddev = float(rng.uniform(-0.1, 0.1)), float(rng.uniform(0.005, 0.5))
    if choice == 1:
        return replace(a, prior_mean=mean, prior_stddev=stddev, prior_type="relative")
    return replace(a, prior_mean=mean * scale, prior_stddev=stddev * scale, prior_type="absolute")


def _ours(c: stats.Comparison) -> np.ndarray:
    assert c.error is None and c.risk is not None
    return np.array([c.estimate, c.ci_low, c.ci_high, c.chance_to_win, *c.risk], dtype=np.float64)


def _theirs(r: object) -> np.ndarray:
    assert r.error_message is None  # type: ignore[attr-defined]
    return np.array([r.expected, *r.ci, r.chance_to_win, *r.risk], dtype=np.float64)  # type: ignore[attr-defined]


def test_bayesian__random_inputs_vs_gbstats__equal_to_1e6_where_methods_are_the_same() -> None:
    rng = np.random.default_rng(2718)
    compared = 0
    for kind, difference_type in SAME_METHOD:
        for case in range(CASES_PER_KIND):
            alpha = float(rng.choice([0.01, 0.05, 0.1]))
            a = random_analysis(rng, kind, difference_type=difference_type, alpha=alpha, engine="bayesian")
            a = _random_prior(rng, a)
            ours = _ours(stats.analyze(a).comparisons[0])
            theirs = _theirs(gb_bayesian_result(a, kind))
            # Risks are compared on the scale of the posterior spread: gbstats takes the risk of
            # keeping the control as (1 - P(control better)) * E[X | X > 0], whose 1 - cdf keeps
            # only a few digits once the chance is within 1e-12 of 1 (we use the closed form).
            atol = 1e-12 * (ours[2] - ours[1])
            np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=atol, err_msg=f"{kind} {difference_type} #{case}")
            compared += 1
    assert compared >= 200


def test_bayesian__three_arms_vs_gbstats__every_treatment_against_the_control() -> None:
    rng = np.random.default_rng(31)
    for _ in range(10):
        a = _random_prior(rng, random_analysis(rng, "mean", arms=3, difference_type="relative", engine="bayesian"))
        for arm, c in enumerate(stats.analyze(a).comparisons, start=1):
            ours = _ours(c)
            atol = 1e-12 * (ours[2] - ours[1])
            np.testing.assert_allclose(ours, _theirs(gb_bayesian_result(a, "mean", arm)), rtol=RTOL, atol=atol)


def test_bayesian__lower_is_better_vs_gbstats_inverse__chance_flipped_and_risks_swapped() -> None:
    """The engine always reports P(treatment > control); gbstats' `inverse` flips it and swaps the
    risks, which the readout does for lower-is-better metrics."""
    rng = np.random.default_rng(41)
    for _ in range(20):
        a = _random_prior(rng, random_analysis(rng, "mean", difference_type="absolute", engine="bayesian"))
        estimate, low, high, chance, keep, choose = _ours(stats.analyze(a).comparisons[0])
        theirs = _theirs(gb_bayesian_result(a, "mean", inverse=True))
        np.testing.assert_allclose([estimate, low, high, 1 - chance, choose, keep], theirs, rtol=RTOL, atol=1e-12)


def test_bayesian_cuped_relative__vs_gbstats__differs_only_by_the_full_delta_method_variance() -> None:
    """Same estimate; 0.8.0 plugs adjusted variances into the plain relative formula. Given that
    plug-in variance, our posterior is gbstats' to 1e-9."""
    rng = np.random.default_rng(51)
    for _ in range(40):
        a = _random_prior(rng, random_analysis(rng, "cuped", difference_type="relative", engine="bayesian"))
        theirs = gb_bayesian_result(a, "cuped")
        stat_a, stat_b = gb_statistic(a.variations[0], "cuped"), gb_statistic(a.variations[1], "cuped")
        theta = gb_models.compute_theta(stat_a, stat_b)
        stat_a.theta = stat_b.theta = theta
        plug_in = gb_frequentist.frequentist_variance(
            stat_a.variance, stat_a.unadjusted_mean, stat_a.n, stat_b.variance, stat_b.unadjusted_mean, stat_b.n, True
        )
        flat = stats.analyze(replace(a, prior_mean=None, prior_stddev=None, prior_type=None)).comparisons[0]
        full_variance = ((flat.ci_high - flat.ci_low) / 2 / stats_z(a.alpha)) ** 2  # type: ignore[operator]
        assert full_variance != pytest.approx(plug_in, rel=1e-6)
        estimate = flat.estimate
        assert estimate is not None
        prior_mean, prior_variance = np.nan, np.nan
        if a.prior_mean is not None and a.prior_stddev is not None:
            scale = 1.0 if a.prior_type == "relative" else 1.0 / abs(stat_a.unadjusted_mean)
            prior_mean, prior_variance = a.prior_mean * scale, (a.prior_stddev * scale) ** 2
        with_plug_in = bayesian.analyse(estimate, plug_in, a.alpha, prior_mean, prior_variance)
        ours = [with_plug_in.mean, with_plug_in.ci_low, with_plug_in.ci_high, with_plug_in.chance_to_win,
                with_plug_in.risk_control, with_plug_in.risk_treatment]
        np.testing.assert_allclose(np.array(ours, dtype=np.float64), _theirs(theirs), rtol=1e-9, atol=1e-15)


def stats_z(alpha: float) -> float:
    from scipy import stats as sps

    return float(sps.norm.ppf(1 - alpha / 2))


def test_bayesian_relative__negative_control_mean_vs_gbstats__sign_follows_treatment_higher() -> None:
    """We divide by |control mean|; 0.8.0 divides the data's lift by the signed mean (and its
    prior rescaling by the absolute one), so with a flat prior its whole posterior is mirrored."""
    rng = np.random.default_rng(61)
    for _ in range(20):
        n = int(rng.integers(300, 2000))
        control = variation("control", sums(rng.normal(-10.0, 3.0, n)))
        treatment = variation("t", sums(rng.normal(-9.0, 3.0, n)))
        a = AnalysisInput(metric="mean", variations=(control, treatment), engine="bayesian")
        estimate, low, high, chance, keep, choose = _ours(stats.analyze(a).comparisons[0])
        assert estimate > 0  # the treatment is higher (less negative)
        theirs = _theirs(gb_bayesian_result(a, "mean"))
        np.testing.assert_allclose([-estimate, -high, -low, 1 - chance, choose, keep], theirs, rtol=1e-9,
                                   atol=1e-12 * (high - low))


def test_bayesian__zero_control_mean__error_code_where_gbstats_reports_a_default_result() -> None:
    """gbstats returns chance 0.5 and zeros (with a message); we report an undefined comparison."""
    control = variation("control", {"users": 100, "main_sum": 0.0, "main_sum_squares": 4.0})
    treatment = variation("t", {"users": 100, "main_sum": 3.0, "main_sum_squares": 5.0})
    a = AnalysisInput(metric="mean", variations=(control, treatment), engine="bayesian")
    theirs = gb_bayesian_result(a, "mean")
    assert theirs.error_message is not None and theirs.chance_to_win == 0.5
    assert stats.analyze(a).comparisons[0].error == stats.ErrorCode.ZERO_CONTROL_MEAN
    # A relative prior on an absolute comparison needs the control mean too.
    absolute = replace(a, difference_type="absolute", prior_mean=0.0, prior_stddev=0.3, prior_type="relative")
    assert stats.analyze(absolute).comparisons[0].error == stats.ErrorCode.ZERO_CONTROL_MEAN
    assert stats.analyze(replace(absolute, prior_type="absolute")).comparisons[0].error is None
