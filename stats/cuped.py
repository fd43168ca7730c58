"""CUPED: regression adjustment on a pre-exposure covariate.

Deng, Xu, Kohavi & Walker (2013), "Improving the Sensitivity of Online Controlled
Experiments by Utilizing Pre-Experiment Data". Each arm's mean y is replaced by
y - theta * x, where x is the same metric measured before exposure. Because x cannot be
affected by the treatment, any theta fixed across arms leaves the difference unbiased;
theta only changes the variance, which is smallest at the regression slope of y on x and
then shrinks by the factor 1 - rho^2.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from stats.types import BoolArray, FloatArray


def _f(x: npt.ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def pooled_theta(
    n: npt.ArrayLike,
    main_sum: npt.ArrayLike,
    main_sum_squares: npt.ArrayLike,
    covariate_sum: npt.ArrayLike,
    covariate_sum_squares: npt.ArrayLike,
    main_covariate_sum_product: npt.ArrayLike,
    binomial: npt.ArrayLike = False,
) -> FloatArray:
    """Theta from sums already pooled over the variations of an analysis.

    Returns 0 (no adjustment) where either pooled variance is zero or undefined.
    """
    n_ = _f(n)
    sy, sx = _f(main_sum), _f(covariate_sum)
    is_bin: BoolArray = np.asarray(binomial, dtype=np.bool_)
    with np.errstate(divide="ignore", invalid="ignore"):
        py, px = sy / n_, sx / n_
        # Binomial y and x: Bernoulli variances p(1-p) and covariance E[xy] - p_x p_y,
        # all with n in the denominator so they are mutually consistent
        # (GrowthBook compute_covariance; STATISTICS.md section 11.3).
        var_y_bin, var_x_bin = py * (1.0 - py), px * (1.0 - px)
        cov_bin = _f(main_covariate_sum_product) / n_ - px * py
        # Otherwise unbiased sample moments with n - 1.
        var_y_num = (_f(main_sum_squares) - sy * sy / n_) / (n_ - 1.0)
        var_x_num = (_f(covariate_sum_squares) - sx * sx / n_) / (n_ - 1.0)
        cov_num = (_f(main_covariate_sum_product) - sx * sy / n_) / (n_ - 1.0)
        var_y = np.where(is_bin, var_y_bin, var_y_num)
        var_x = np.where(is_bin, var_x_bin, var_x_num)
        cov = np.where(is_bin, cov_bin, cov_num)
        # theta = cov(y, x) / var(x): the OLS slope of y on x over all arms pooled, one
        # theta for every arm (Deng et al. 2013, eq. 4; GrowthBook compute_theta).
        theta = cov / var_x
    usable = (var_x > 0) & (var_y > 0) & np.isfinite(theta)
    return np.where(usable & ~_negligible(theta, var_x, var_y), theta, 0.0)


def ratio_theta(
    covariance_sum: npt.ArrayLike, variance_pre_sum: npt.ArrayLike, variance_post_sum: npt.ArrayLike
) -> FloatArray:
    """Theta for ratio metrics from per-arm delta-method pieces summed over arms."""
    c, v, w = _f(covariance_sum), _f(variance_pre_sum), _f(variance_post_sum)
    with np.errstate(divide="ignore", invalid="ignore"):
        # theta = sum cov(R_post, R_pre) / sum var(R_pre): the same slope, with ratios'
        # per-unit delta-method (co)variances in place of sample moments (GrowthBook
        # compute_theta_regression_adjusted_ratio).
        theta = c / v
    return np.where((v > 0) & np.isfinite(theta) & ~_negligible(theta, v, w), theta, 0.0)


# A slope this small relative to the spreads is rounding noise of a zero covariance.
NEGLIGIBLE_THETA = 1e-10


def _negligible(theta: FloatArray, var_x: FloatArray, var_y: FloatArray) -> BoolArray:
    """|theta| s_x / s_y below NEGLIGIBLE_THETA: theta is zero up to rounding, and CUPED is not
    applied (STATISTICS.md section 11.8), rather than reporting a "CUPED" result that is the
    plain one plus noise."""
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.abs(theta) * np.sqrt(var_x / var_y)
    return np.asarray(scaled < NEGLIGIBLE_THETA, dtype=np.bool_)


def adjusted_variance(
    variance_post: npt.ArrayLike,
    variance_pre: npt.ArrayLike,
    covariance: npt.ArrayLike,
    theta: npt.ArrayLike,
) -> FloatArray:
    """Per-unit variance of y - theta x."""
    t = _f(theta)
    with np.errstate(invalid="ignore", over="ignore"):
        # Var(y - theta x) = s_y^2 + theta^2 s_x^2 - 2 theta c_xy (Deng et al. 2013, eq. 3).
        return _f(variance_post) + t * t * _f(variance_pre) - 2.0 * t * _f(covariance)


def relative_variance(
    mean_a: npt.ArrayLike,
    variance_post_a: npt.ArrayLike,
    variance_pre_a: npt.ArrayLike,
    covariance_a: npt.ArrayLike,
    n_a: npt.ArrayLike,
    mean_b: npt.ArrayLike,
    adjusted_variance_b: npt.ArrayLike,
    n_b: npt.ArrayLike,
    theta: npt.ArrayLike,
) -> FloatArray:
    """Full delta-method variance of the CUPED relative lift (adj_B - adj_A) / |y_A|.

    The control's unadjusted mean appears in both numerator (through adj_A) and
    denominator, so its covariance with the control covariate is kept. With theta = 0
    this is the plain relative-lift variance.
    """
    ma, mb, t = _f(mean_a), _f(mean_b), _f(theta)
    with np.errstate(divide="ignore", invalid="ignore"):
        ma2 = ma * ma
        r = mb / ma
        # V = v_B/(n_B A^2) + (s_yA^2 (B/A)^2 - 2 theta c_A B/A + theta^2 s_xA^2)/(n_A A^2):
        # gradient of the lift w.r.t. (y_A, x_A) is (-B/A^2, theta/A) using E[x_B] = E[x_A]
        # (GrowthBook frequentist_variance_relative_cuped; STATISTICS.md section 11.1).
        control = _f(variance_post_a) * r * r - 2.0 * t * _f(covariance_a) * r + t * t * _f(variance_pre_a)
        return _f(adjusted_variance_b) / (_f(n_b) * ma2) + control / (_f(n_a) * ma2)


def variance_reduction(variance_adjusted: npt.ArrayLike, variance_plain: npt.ArrayLike) -> FloatArray:
    """Share of the estimate's variance that CUPED removed."""
    with np.errstate(divide="ignore", invalid="ignore"):
        # 1 - V_cuped / V_plain; about rho^2 when theta is the regression slope.
        return 1.0 - _f(variance_adjusted) / _f(variance_plain)
