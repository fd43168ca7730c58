"""Ratio metrics with CUPED, relative lift: the delta method with the gradient at the observed
values of both arms (STATISTICS.md section 11.7), and theta that is zero up to rounding."""

from __future__ import annotations

import numpy as np
import pytest

from stats import AnalysisInput, analyze, compare_arrays
from stats.engine import ArmArrays
from stats.frequentist import sample_covariance
from tests.unit.stats.factories import sums, variation

MEANS = ("main_sum", "denominator_sum", "covariate_sum", "denominator_pre_sum")


def _arm(rng: np.random.Generator, n: int, lift: float) -> dict[str, float]:
    sessions_pre = rng.poisson(4.0, n) + 1.0
    sessions = sessions_pre + rng.poisson(1.0, n)
    spend_pre = rng.gamma(2.0, 3.0, n) * sessions_pre / 4
    spend = (0.6 * spend_pre + rng.gamma(2.0, 2.0, n)) * (1 + lift)
    return sums(spend, spend_pre, sessions, sessions_pre)


def _lift(means_a: np.ndarray, means_b: np.ndarray, theta: float) -> float:
    ma, da, pa, qa = means_a
    mb, db, pb, qb = means_b
    return float(((mb / db - theta * pb / qb) - (ma / da - theta * pa / qa)) / abs(ma / da))


def _covariance(arm: dict[str, float]) -> np.ndarray:
    names = {(0, 0): "main_sum_squares", (1, 1): "denominator_sum_squares", (2, 2): "covariate_sum_squares",
             (3, 3): "denominator_pre_sum_squares", (0, 1): "main_denominator_sum_product",
             (0, 2): "main_covariate_sum_product", (0, 3): "main_post_denominator_pre_sum_product",
             (1, 2): "main_pre_denominator_post_sum_product", (1, 3): "denominator_post_denominator_pre_sum_product",
             (2, 3): "main_pre_denominator_pre_sum_product"}
    out = np.zeros((4, 4))
    for (i, j), name in names.items():
        out[i, j] = out[j, i] = sample_covariance(arm["users"], arm[MEANS[i]], arm[MEANS[j]], arm[name])
    return out


def _numeric_variance(a: dict[str, float], b: dict[str, float], theta: float) -> float:
    """g' Lambda g / n per arm with the gradient by central differences at the observed means."""
    means_a = np.array([a[k] / a["users"] for k in MEANS])
    means_b = np.array([b[k] / b["users"] for k in MEANS])
    total = 0.0
    for arm, own in ((a, "a"), (b, "b")):
        grad = np.zeros(4)
        base = means_a if own == "a" else means_b
        for i in range(4):
            h = 1e-6 * abs(base[i])
            up, down = base.copy(), base.copy()
            up[i] += h
            down[i] -= h
            if own == "a":
                grad[i] = (_lift(up, means_b, theta) - _lift(down, means_b, theta)) / (2 * h)
            else:
                grad[i] = (_lift(means_a, up, theta) - _lift(means_a, down, theta)) / (2 * h)
        total += float(grad @ _covariance(arm) @ grad) / arm["users"]
    return total


@pytest.mark.parametrize("seed", range(5))
def test_ratio_cuped_relative__variance__equals_the_delta_method_at_observed_values(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = _arm(rng, 3000, 0.0), _arm(rng, 2500, 0.03)
    result = compare_arrays(ArmArrays(**{k: [v] for k, v in a.items()}), ArmArrays(**{k: [v] for k, v in b.items()}),
                            metric="ratio", cuped=True)
    assert bool(result.cuped_applied[0])
    theta = float(result.theta[0])
    assert result.variance[0] == pytest.approx(_numeric_variance(a, b, theta), rel=1e-6)
    assert result.estimate[0] == pytest.approx(_lift(
        np.array([a[k] / a["users"] for k in MEANS]), np.array([b[k] / b["users"] for k in MEANS]), theta), rel=1e-12)


def test_ratio_cuped_relative__many_experiments__interval_covers_the_truth() -> None:
    """Under no effect, 95% intervals of the CUPED relative lift contain 0 about 95% of the time."""
    rng = np.random.default_rng(7)
    experiments, n = 2000, 400
    def draw() -> dict[str, np.ndarray]:
        pre_sessions = rng.poisson(4.0, (experiments, n)) + 1.0
        sessions = pre_sessions + rng.poisson(1.0, (experiments, n))
        spend_pre = rng.gamma(2.0, 3.0, (experiments, n)) * pre_sessions / 4
        spend = 0.6 * spend_pre + rng.gamma(2.0, 2.0, (experiments, n))
        return sums(spend, spend_pre, sessions, pre_sessions, axis=1)

    result = compare_arrays(ArmArrays(**draw()), ArmArrays(**draw()), metric="ratio", cuped=True)
    covered = np.mean((result.ci_low < 0) & (result.ci_high > 0))
    assert 0.935 <= covered <= 0.965, covered


def test_cuped__theta_zero_up_to_rounding__not_applied() -> None:
    # The covariate is made orthogonal to the metric: the exact covariance is 0, the one computed
    # from the sums is rounding noise (theta of about 1e-15).
    rng = np.random.default_rng(2)
    y = rng.normal(10.0, 1.0, 1000)
    x = rng.normal(5.0, 1.0, 1000)
    centred = y - y.mean()
    x = x - (centred @ (x - x.mean())) / (centred @ centred) * centred
    control = variation("control", sums(y, x))
    treatment = variation("treatment", sums(y + 0.1, x))
    result = analyze(AnalysisInput(metric="mean", variations=(control, treatment), cuped=True))
    comparison = result.comparisons[0]
    assert comparison.cuped_applied is False and comparison.variance_reduction is None
    plain = analyze(AnalysisInput(metric="mean", variations=(control, treatment), cuped=False)).comparisons[0]
    assert comparison.estimate == plain.estimate and comparison.ci_low == plain.ci_low
