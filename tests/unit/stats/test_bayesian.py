"""The Bayesian engine: the normal model's formulas, its input checks and its CLI output."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as sps

import stats
from stats import bayesian
from stats.__main__ import main
from tests.unit.stats.test_parse_cli import COMPARISON_KEYS, OUTPUT_KEYS, _analysis

CONTROL = stats.VariationData("control", 4000, main_sum=40_000.0, main_sum_squares=4000 * 100.0 + 3999 * 9.0)
TREATMENT = stats.VariationData("treatment", 4100, main_sum=41_820.0, main_sum_squares=4100 * 10.2**2 + 4099 * 9.0)
BAYES = stats.AnalysisInput(metric="mean", variations=(CONTROL, TREATMENT), engine="bayesian")


def _run(payload: Any) -> tuple[int, Any, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["analyze"], io.StringIO(json.dumps(payload)), out)
    return code, (json.loads(out.getvalue()) if code == 0 else None), err.getvalue()


def test_posterior__proper_prior__precision_weighted_average() -> None:
    post = bayesian.posterior(0.04, 0.0001, 0.0, 0.0004)
    # Precisions 10,000 and 2,500: the estimate gets 4/5 of the weight.
    assert float(post.mean) == pytest.approx(0.032, rel=1e-12)
    assert float(post.variance) == pytest.approx(1 / 12_500, rel=1e-12)


def test_posterior__flat_prior__the_estimate_and_its_variance() -> None:
    post = bayesian.posterior([0.04, -1.0], [0.0001, 2.0], np.nan, np.nan)
    np.testing.assert_array_equal(post.mean, [0.04, -1.0])
    np.testing.assert_array_equal(post.variance, [0.0001, 2.0])


@pytest.mark.parametrize("t", [-40.0, -5.0, -1.0, 0.0, 0.3, 2.0, 7.5, 15.0, 30.0])
def test_normal_loss__against_numerical_integral__relative_error_below_1e_12(t: float) -> None:
    # g(t) = -t + g(-t): integrate over the upper tail only, where quadrature is accurate.
    upper = abs(t)
    tail, _ = integrate.quad(lambda z: (z - upper) * sps.norm.pdf(z), upper, np.inf, epsabs=0, epsrel=1e-13)
    expected = tail if t >= 0 else upper + tail
    assert float(bayesian.normal_loss(t)) == pytest.approx(expected, rel=1e-12)


def test_risk__difference_of_the_two_risks_is_the_posterior_mean() -> None:
    """E[max(X, 0)] - E[max(-X, 0)] = E[X]."""
    rng = np.random.default_rng(5)
    mean, variance = rng.normal(0, 1, 1000), rng.uniform(0.01, 4, 1000)
    keep, choose = bayesian.risk(mean, variance)
    np.testing.assert_allclose(keep - choose, mean, atol=1e-12)
    assert (keep >= 0).all() and (choose >= 0).all()
    # At a posterior mean of 0 both risks are sigma * phi(0).
    keep0, choose0 = bayesian.risk(0.0, 4.0)
    assert float(keep0) == float(choose0) == pytest.approx(2 * sps.norm.pdf(0), rel=1e-14)


def test_analyze__bayesian_flat__normal_credible_interval_around_the_estimate_no_p_value() -> None:
    frequentist = stats.analyze(replace(BAYES, engine="frequentist")).comparisons[0]
    c = stats.analyze(BAYES).comparisons[0]
    assert c.engine == "bayesian" and c.p_value is None and c.risk is not None
    assert c.estimate == pytest.approx(frequentist.estimate, rel=1e-12)
    assert c.chance_to_win == pytest.approx(frequentist.chance_to_win, rel=1e-12)
    se = (frequentist.ci_high - frequentist.ci_low) / 2 / sps.t.ppf(0.975, 8098)  # type: ignore[operator]
    assert [c.ci_low, c.ci_high] == pytest.approx(sps.norm.interval(0.95, c.estimate, se), rel=1e-6)


def test_analyze__strong_prior__posterior_pulled_to_prior_mean() -> None:
    flat = stats.analyze(BAYES).comparisons[0]
    tight = stats.analyze(replace(BAYES, prior_mean=0.0, prior_stddev=1e-4)).comparisons[0]
    assert flat.estimate is not None and tight.estimate is not None
    assert abs(tight.estimate) < 0.01 * abs(flat.estimate)
    assert tight.chance_to_win == pytest.approx(0.5, abs=0.05)


def test_analyze__relative_prior_on_absolute_difference__scaled_by_the_control_mean() -> None:
    """A prior N(m, s^2) on the lift is N(m |mean_A|, (s mean_A)^2) on the difference (gbstats)."""
    on_lift = replace(BAYES, difference_type="absolute", prior_mean=0.01, prior_stddev=0.02, prior_type="relative")
    on_difference = replace(on_lift, prior_mean=0.1, prior_stddev=0.2, prior_type="absolute")  # control mean 10
    a, b = stats.analyze(on_lift).comparisons[0], stats.analyze(on_difference).comparisons[0]
    assert [a.estimate, a.ci_low, a.ci_high, a.chance_to_win] == pytest.approx(
        [b.estimate, b.ci_low, b.ci_high, b.chance_to_win], rel=1e-12
    )


def test_analyze_many__frequentist_and_bayesian_in_one_batch__each_its_own() -> None:
    frequentist = replace(BAYES, engine="frequentist")
    results = stats.analyze_many([frequentist, BAYES, frequentist], correction="holm")
    assert results[0] == results[2]
    assert results[0].comparisons[0].p_value is not None and results[0].comparisons[0].risk is None
    bayes = results[1].comparisons[0]
    # No p-value, so not part of the correction's family.
    assert bayes.p_value is None and bayes.p_value_adjusted is None and bayes.risk is not None
    alone = stats.analyze_many([frequentist, frequentist], correction="holm")
    assert results[0].comparisons[0] == alone[0].comparisons[0]


def test_cli__bayesian__documented_keys_with_risk_and_no_p_value() -> None:
    code, out, _ = _run(_analysis(engine="bayesian", prior_mean=0.0, prior_stddev=0.3))
    assert code == 0 and set(out) == OUTPUT_KEYS
    [comparison] = out["comparisons"]
    assert set(comparison) == COMPARISON_KEYS | {"risk"}
    assert comparison["p_value"] is None and comparison["cuped_applied"] is True
    keep, choose = comparison["risk"]
    assert keep > choose >= 0 and 0.5 < comparison["chance_to_win"] < 1
    assert comparison["ci_low"] < comparison["estimate"] < comparison["ci_high"]


def test_cli__bayesian_undefined_comparison__risk_null() -> None:
    variations = [
        {"name": "c", "users": 1, "main_sum": 3, "main_sum_squares": 9},
        {"name": "t", "users": 10, "main_sum": 5, "main_sum_squares": 9},
    ]
    code, out, _ = _run({"metric": "mean", "engine": "bayesian", "variations": variations})
    assert code == 0
    assert out["comparisons"][0]["error"] == "too_few_users" and out["comparisons"][0]["risk"] is None


def test_cli__frequentist_explicit_engine__same_output_as_without() -> None:
    assert _run(_analysis(engine="frequentist")) == _run(_analysis())


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"engine": "bayes"}, "engine", "must be one of"),
        ({"engine": "bayesian", "sequential": True}, "sequential", "frequentist engine only"),
        ({"prior_mean": 0.0, "prior_stddev": 0.3}, "prior_mean", "bayesian engine only"),
        ({"engine": "bayesian", "prior_mean": 0.0}, "prior_stddev", "is required with prior_mean"),
        ({"engine": "bayesian", "prior_stddev": 0.3}, "prior_mean", "is required with prior_stddev"),
        ({"engine": "bayesian", "prior_mean": 0.0, "prior_stddev": 0}, "prior_stddev", "positive"),
        ({"engine": "bayesian", "prior_mean": 0.0, "prior_stddev": -1}, "prior_stddev", "positive"),
        ({"engine": "bayesian", "prior_mean": "0", "prior_stddev": 1}, "prior_mean", "must be a number"),
        ({"engine": "bayesian", "prior_type": "relative"}, "prior_type", "with prior_mean and prior_stddev"),
        ({"engine": "bayesian", "prior_mean": 0, "prior_stddev": 1, "prior_type": "ratio"}, "prior_type", "one of"),
    ],
)
def test_cli__bayesian_settings_malformed__exit_2_naming_field(overrides: dict[str, Any], field: str,
                                                                 message: str) -> None:
    code, _, err = _run(_analysis(**overrides))
    assert code == 2
    assert f"error: {field}:" in err and message in err


def test_analyze_many__isolated__bad_prior_refused_alone() -> None:
    bad = replace(BAYES, prior_mean=0.0, prior_stddev=float("nan"))
    results = stats.analyze_many([BAYES, bad], isolate_errors=True)
    assert results[0].comparisons[0].error is None
    assert results[1].input_error == "[1].prior_stddev: must be a positive number"
    assert results[1].comparisons[0].error == "invalid_input" and results[1].comparisons[0].engine == "bayesian"
