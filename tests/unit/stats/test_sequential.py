"""Sequential testing: constants, the interval/p-value duality and the mSPRT identity."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from stats import sequential


def test_rho_squared__alpha_005_tuning_5000__is_0_001587() -> None:
    assert float(sequential.rho_squared(0.05, 5000)) == pytest.approx(0.001587, abs=5e-7)


@pytest.mark.parametrize(("n", "ratio"), [(500, 1.97), (5000, 1.55), (10000, 1.56), (200000, 1.75)])
def test_width_multiplier__total_users__wider_than_z_interval_as_documented(n: int, ratio: float) -> None:
    z = sps.norm.ppf(0.975)
    assert float(sequential.width_multiplier(n, 0.05, 5000)) / z == pytest.approx(ratio, abs=0.006)


def test_width_multiplier__grid_of_sizes__tightest_near_tuning_parameter() -> None:
    n = np.geomspace(100, 1e6, 2001)
    widths = sequential.width_multiplier(n, 0.05, 5000)
    assert 2500 < n[np.argmin(widths)] < 10000


def test_sequential_p_value__random_estimates__below_alpha_iff_zero_outside_interval() -> None:
    rng = np.random.default_rng(21)
    est, var = rng.normal(0, 0.05, 5000), rng.uniform(1e-4, 1e-3, 5000)
    n, alpha = rng.integers(100, 100000, 5000), rng.choice([0.01, 0.05, 0.1], 5000)
    low, high = sequential.confidence_sequence(est, var, n, alpha, 5000)
    p = sequential.sequential_p_value(est, var, n, alpha, 5000)
    excludes_zero = (low > 0) | (high < 0)
    np.testing.assert_array_equal(p < alpha, excludes_zero)


def test_msprt__tau_squared_tied_to_rho__equals_confidence_sequence() -> None:
    """GrowthBook's sequence is an mSPRT with mixing variance tau^2 = rho^2 N V."""
    rng = np.random.default_rng(22)
    est, var = rng.normal(0, 0.05, 1000), rng.uniform(1e-5, 1e-3, 1000)
    n, alpha, tuning = rng.integers(100, 200000, 1000), 0.05, 5000.0
    tau2 = sequential.rho_squared(alpha, tuning) * n * var
    low, high = sequential.confidence_sequence(est, var, n, alpha, tuning)
    np.testing.assert_allclose(sequential.msprt_halfwidth(var, tau2, alpha), (high - low) / 2, rtol=1e-12)
    p = sequential.sequential_p_value(est, var, n, alpha, tuning)
    lr = sequential.msprt_likelihood_ratio(est, var, tau2)
    np.testing.assert_allclose(p, np.minimum(1.0, 1.0 / lr), rtol=1e-9)


def test_msprt_p_values__sequence_of_looks__never_increase() -> None:
    rng = np.random.default_rng(23)
    looks = np.arange(1, 21)
    est = np.cumsum(rng.normal(0, 1, (50, 20)), axis=1) / looks
    var = 1.0 / looks
    p = sequential.msprt_p_values(est, var, tau_squared=0.5, axis=1)
    assert (np.diff(p, axis=1) <= 0).all()
    assert ((p > 0) & (p <= 1)).all()


def test_running_path__noisy_intervals__nested_and_monotone() -> None:
    rng = np.random.default_rng(24)
    centre = rng.normal(0, 0.1, 20)
    low, high, p = centre - 1 / np.arange(1, 21), centre + 1 / np.arange(1, 21), rng.uniform(0, 1, 20)
    path = sequential.running_path(low, high, p)
    assert (np.diff(path.ci_low) >= 0).all() and (np.diff(path.ci_high) <= 0).all()
    assert (np.diff(path.p_value) <= 0).all()
    assert (path.ci_low >= low).all() and (path.ci_high <= high).all()
