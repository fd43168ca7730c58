"""Fixed-horizon two-sample tests, vectorised over any number of comparisons.

Every function takes array-likes and returns float64 arrays of the broadcast shape, so
one call handles all metrics x variations x slices of a readout. Invalid inputs give
NaN or inf; the engine decides which comparisons are undefined before calling these.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from scipy import special

from stats.types import FloatArray


def _f(x: npt.ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


class IntervalTest(NamedTuple):
    """Interval and two-sided p-value of a test of `estimate` against zero."""

    ci_low: FloatArray
    ci_high: FloatArray
    p_value: FloatArray


class WelchResult(NamedTuple):
    estimate: FloatArray
    variance: FloatArray
    dof: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    p_value: FloatArray


def sample_covariance(
    n: npt.ArrayLike, sum_a: npt.ArrayLike, sum_b: npt.ArrayLike, sum_ab: npt.ArrayLike
) -> FloatArray:
    """Unbiased covariance of two per-unit quantities from their sums."""
    n_ = _f(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        # c = (sum ab - sum a * sum b / n) / (n - 1): sample covariance from moments.
        return (_f(sum_ab) - _f(sum_a) * _f(sum_b) / n_) / (n_ - 1.0)


def sample_variance(n: npt.ArrayLike, total: npt.ArrayLike, sum_squares: npt.ArrayLike) -> FloatArray:
    """Unbiased per-unit variance from n, the sum and the sum of squares (s^2 = c_yy)."""
    return sample_covariance(n, total, total, sum_squares)


def binomial_variance(proportion: npt.ArrayLike) -> FloatArray:
    """Per-unit variance of a 0/1 metric."""
    p = _f(proportion)
    # p(1 - p): Bernoulli variance, as GrowthBook's ProportionStatistic uses (no n - 1).
    return p * (1.0 - p)


def welch_dof(var_a: npt.ArrayLike, n_a: npt.ArrayLike, var_b: npt.ArrayLike, n_b: npt.ArrayLike) -> FloatArray:
    """Welch-Satterthwaite degrees of freedom from per-unit variances and sizes."""
    va, na, vb, nb = _f(var_a), _f(n_a), _f(var_b), _f(n_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        ua, ub = va / na, vb / nb
        # nu = V^2 / sum (s_i^2/n_i)^2/(n_i-1): matches the t spread of a difference of
        # means with unequal variances (Welch 1947; scipy ttest_ind equal_var=False).
        return (ua + ub) ** 2 / (ua * ua / (na - 1.0) + ub * ub / (nb - 1.0))


def absolute_variance(var_a: npt.ArrayLike, n_a: npt.ArrayLike, var_b: npt.ArrayLike, n_b: npt.ArrayLike) -> FloatArray:
    """Variance of the difference of two independent means."""
    with np.errstate(divide="ignore", invalid="ignore"):
        # V = s_B^2/n_B + s_A^2/n_A: independent arms, variances add.
        return _f(var_b) / _f(n_b) + _f(var_a) / _f(n_a)


def relative_lift(mean_a: npt.ArrayLike, difference: npt.ArrayLike) -> FloatArray:
    """Relative lift: the difference over the magnitude of the control mean."""
    with np.errstate(divide="ignore", invalid="ignore"):
        # L = (B - A) / |A|: dividing by |A| keeps "positive = treatment higher" even for
        # negative means (GrowthBook after 0.8.0; STATISTICS.md section 11.2).
        return _f(difference) / np.abs(_f(mean_a))


def relative_variance(
    mean_a: npt.ArrayLike,
    var_a: npt.ArrayLike,
    n_a: npt.ArrayLike,
    mean_b: npt.ArrayLike,
    var_b: npt.ArrayLike,
    n_b: npt.ArrayLike,
) -> FloatArray:
    """Delta-method variance of the relative lift B/A - 1 (no covariate)."""
    ma, va, na, mb, vb, nb = _f(mean_a), _f(var_a), _f(n_a), _f(mean_b), _f(var_b), _f(n_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        ma2 = ma * ma
        # V = s_B^2/(n_B A^2) + B^2 s_A^2/(n_A A^4): first-order Taylor expansion of B/A
        # (delta method; Deng, Knoblich & Lu 2018, GrowthBook frequentist_variance).
        return vb / (nb * ma2) + va * mb * mb / (na * ma2 * ma2)


def t_interval(
    estimate: npt.ArrayLike, variance: npt.ArrayLike, dof: npt.ArrayLike, alpha: npt.ArrayLike
) -> IntervalTest:
    """Two-sided t interval and p-value of an estimate with a known standard error."""
    est, var, nu, a = _f(estimate), _f(variance), _f(dof), _f(alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(var)
        # est +/- t_{1-alpha/2, nu} * se: Student-t interval with Welch's nu.
        half = special.stdtrit(nu, 1.0 - a / 2.0) * se
        # p = 2 * P(T > |est/se|), taken from the upper tail so it never rounds to 0
        # below 1e-16 the way 2 * (1 - cdf) does (STATISTICS.md section 11.4).
        p = 2.0 * special.stdtr(nu, -np.abs(est / se))
    return IntervalTest(est - half, est + half, np.minimum(p, 1.0))


def z_interval(estimate: npt.ArrayLike, variance: npt.ArrayLike, alpha: npt.ArrayLike) -> IntervalTest:
    """Two-sided normal interval and p-value."""
    est, var, a = _f(estimate), _f(variance), _f(alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(var)
        # est +/- z_{1-alpha/2} * se, p = 2 * Phi(-|z|): large-sample normal test.
        half = special.ndtri(1.0 - a / 2.0) * se
        p = 2.0 * special.ndtr(-np.abs(est / se))
    return IntervalTest(est - half, est + half, np.minimum(p, 1.0))


def chance_to_win(estimate: npt.ArrayLike, variance: npt.ArrayLike) -> FloatArray:
    """P(treatment > control) under a flat prior and a normal likelihood."""
    with np.errstate(divide="ignore", invalid="ignore"):
        # Phi(est / se): with a flat prior the posterior of the effect is N(est, se^2),
        # so this is its mass above zero (normal approximation, as in GrowthBook).
        return _f(special.ndtr(_f(estimate) / np.sqrt(_f(variance))))


def welch_test(
    mean_a: npt.ArrayLike,
    var_a: npt.ArrayLike,
    n_a: npt.ArrayLike,
    mean_b: npt.ArrayLike,
    var_b: npt.ArrayLike,
    n_b: npt.ArrayLike,
    *,
    alpha: npt.ArrayLike = 0.05,
    relative: bool = False,
) -> WelchResult:
    """Welch's two-sample test from per-arm means, per-unit variances and sizes.

    For proportions pass var = p(1 - p) (the unpooled Wald form GrowthBook uses).
    """
    diff = _f(mean_b) - _f(mean_a)
    dof = welch_dof(var_a, n_a, var_b, n_b)
    if relative:
        est = relative_lift(mean_a, diff)
        var = relative_variance(mean_a, var_a, n_a, mean_b, var_b, n_b)
    else:
        est, var = diff, absolute_variance(var_a, n_a, var_b, n_b)
    ci = t_interval(est, var, dof, alpha)
    return WelchResult(est, var, dof, ci.ci_low, ci.ci_high, ci.p_value)


class ProportionTest(NamedTuple):
    difference: FloatArray
    z: FloatArray
    p_value: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray


def proportion_z_test(
    conversions_a: npt.ArrayLike,
    n_a: npt.ArrayLike,
    conversions_b: npt.ArrayLike,
    n_b: npt.ArrayLike,
    *,
    alpha: npt.ArrayLike = 0.05,
) -> ProportionTest:
    """Classical two-proportion z-test (pooled under H0) with the Wald interval.

    The engine's binomial readout is the Welch form above (as GrowthBook's); this is the
    textbook test, kept for reports that must quote it.
    """
    ca, na, cb, nb = _f(conversions_a), _f(n_a), _f(conversions_b), _f(n_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        pa, pb = ca / na, cb / nb
        pooled = (ca + cb) / (na + nb)
        diff = pb - pa
        # z = (p_B - p_A) / sqrt(pbar(1-pbar)(1/n_A + 1/n_B)): under H0 both arms share
        # one rate, so its pooled estimate gives the null SE (statsmodels proportions_ztest).
        z = diff / np.sqrt(pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb))
        p = 2.0 * special.ndtr(-np.abs(z))
        # Wald interval uses the unpooled SE, since it is not computed under H0
        # (statsmodels confint_proportions_2indep method="wald").
        half = special.ndtri(1.0 - _f(alpha) / 2.0) * np.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
    return ProportionTest(diff, z, p, diff - half, diff + half)
