"""Ratio metrics (sum of y over sum of d per variation) by the delta method.

A ratio metric such as revenue per session has the user, not the session, as its
independent unit, so its variance must come from per-user sums of numerator and
denominator and their covariance (Deng, Knoblich & Lu 2018, "Applying the Delta
Method in Metric Analytics"). Once a ratio's per-unit variance is known it is
compared exactly like a mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from stats.frequentist import sample_covariance, sample_variance
from stats.types import FloatArray


def _f(x: npt.ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


class RatioMoments(NamedTuple):
    ratio: FloatArray
    variance: FloatArray  # per unit: Var(ratio estimate) = variance / n


def ratio_moments(
    n: npt.ArrayLike,
    main_sum: npt.ArrayLike,
    main_sum_squares: npt.ArrayLike,
    denominator_sum: npt.ArrayLike,
    denominator_sum_squares: npt.ArrayLike,
    main_denominator_sum_product: npt.ArrayLike,
) -> RatioMoments:
    """Ratio and its per-unit delta-method variance for each arm."""
    n_ = _f(n)
    sy, sd = _f(main_sum), _f(denominator_sum)
    var_y = sample_variance(n_, sy, main_sum_squares)
    var_d = sample_variance(n_, sd, denominator_sum_squares)
    cov = sample_covariance(n_, sy, sd, main_denominator_sum_product)
    with np.errstate(divide="ignore", invalid="ignore"):
        ybar, dbar = sy / n_, sd / n_
        ratio = sy / sd
        # s_R^2 = s_y^2/d^2 - 2 c_yd y/d^3 + y^2 s_d^2/d^4: delta method for y/d
        # (Deng, Knoblich & Lu 2018, eq. 4; GrowthBook RatioStatistic).
        var = var_y / dbar**2 - 2.0 * cov * ybar / dbar**3 + ybar**2 * var_d / dbar**4
    return RatioMoments(ratio, var)


class RatioCovariateMoments(NamedTuple):
    ratio_post: FloatArray
    variance_post: FloatArray
    ratio_pre: FloatArray
    variance_pre: FloatArray
    covariance: FloatArray  # per unit, between the post and pre ratio estimates


def ratio_covariate_moments(
    n: npt.ArrayLike,
    main_sum: npt.ArrayLike,
    main_sum_squares: npt.ArrayLike,
    denominator_sum: npt.ArrayLike,
    denominator_sum_squares: npt.ArrayLike,
    main_denominator_sum_product: npt.ArrayLike,
    covariate_sum: npt.ArrayLike,
    covariate_sum_squares: npt.ArrayLike,
    main_covariate_sum_product: npt.ArrayLike,
    denominator_pre_sum: npt.ArrayLike,
    denominator_pre_sum_squares: npt.ArrayLike,
    main_post_denominator_pre_sum_product: npt.ArrayLike,
    main_pre_denominator_post_sum_product: npt.ArrayLike,
    main_pre_denominator_pre_sum_product: npt.ArrayLike,
    denominator_post_denominator_pre_sum_product: npt.ArrayLike,
) -> RatioCovariateMoments:
    """Post- and pre-period ratios with their per-unit variances and covariance.

    The four per-unit means (numerator and denominator, after and before exposure) have a
    4x4 covariance matrix; the delta method turns it into the covariance of the two ratios,
    which is all CUPED needs (GrowthBook RegressionAdjustedRatioStatistic).
    """
    n_ = _f(n)
    m, d = _f(main_sum), _f(denominator_sum)
    mp, dp = _f(covariate_sum), _f(denominator_pre_sum)
    post = ratio_moments(n_, m, main_sum_squares, d, denominator_sum_squares, main_denominator_sum_product)
    pre = ratio_moments(
        n_, mp, covariate_sum_squares, dp, denominator_pre_sum_squares, main_pre_denominator_pre_sum_product
    )
    cov_mp = sample_covariance(n_, m, mp, main_covariate_sum_product)
    cov_mq = sample_covariance(n_, m, dp, main_post_denominator_pre_sum_product)
    cov_dp = sample_covariance(n_, d, mp, main_pre_denominator_post_sum_product)
    cov_dq = sample_covariance(n_, d, dp, denominator_post_denominator_pre_sum_product)
    with np.errstate(divide="ignore", invalid="ignore"):
        mbar, dbar, pbar, qbar = m / n_, d / n_, mp / n_, dp / n_
        # Gradients of m/d and p/q at the means, (1/d, -m/d^2) and (1/q, -p/q^2), around
        # the post-pre block of the 4x4 covariance: g' Lambda_12 h (delta method).
        g1, g2 = 1.0 / dbar, -mbar / dbar**2
        h1, h2 = 1.0 / qbar, -pbar / qbar**2
        cov = g1 * h1 * cov_mp + g1 * h2 * cov_mq + g2 * h1 * cov_dp + g2 * h2 * cov_dq
    return RatioCovariateMoments(post.ratio, post.variance, pre.ratio, pre.variance, cov)


def cuped_relative_variance(
    control: Mapping[str, FloatArray], treatment: Mapping[str, FloatArray], theta: npt.ArrayLike
) -> FloatArray:
    """Variance of the CUPED relative lift of a ratio metric, L = (a_B - a_A) / |R_A|.

    Each arm's adjusted ratio is a = m/d - theta p/q, over its per-unit means of the numerator
    and denominator after (m, d) and before (p, q) exposure; R_A = m_A/d_A is the control's
    unadjusted ratio. The delta method takes the gradient of L at the observed means of both
    arms, the control's including its term in the denominator, and sums g' Lambda g / n over
    the arms, Lambda being the arm's 4x4 per-unit covariance of (m, d, p, q) (GrowthBook's
    "CUPED technical" notes, ratio metric, relative case; STATISTICS.md section 11.7).
    `control` and `treatment` map NUMERIC_FIELDS names to one value per comparison.
    """
    t = _f(theta)
    with np.errstate(divide="ignore", invalid="ignore"):
        ma, da, pa, qa = (control[k] / control["users"] for k in _MEANS)
        mb, db, pb, qb = (treatment[k] / treatment["users"] for k in _MEANS)
        r_a = ma / da
        size = np.abs(r_a)
        sign = np.sign(r_a)
        lift = ((mb / db - t * pb / qb) - (ma / da - t * pa / qa)) / size
        # dL/d(m, d, p, q) of the treatment: its adjusted ratio's gradient over |R_A|.
        grad_b = (1.0 / db / size, -mb / db**2 / size, -t / qb / size, t * pb / qb**2 / size)
        # Of the control: -grad(a_A)/|R_A| - L sign(R_A) grad(R_A)/|R_A|; R_A has no p or q.
        grad_a = (
            -1.0 / da / size - lift * sign / da / size,
            ma / da**2 / size + lift * sign * ma / da**2 / size,
            t / qa / size,
            -t * pa / qa**2 / size,
        )
        return _quadratic_form(grad_b, treatment) / treatment["users"] + _quadratic_form(grad_a, control) / control[
            "users"
        ]


# The per-unit means of an arm's (m, d, p, q) come from these sums.
_MEANS = ("main_sum", "denominator_sum", "covariate_sum", "denominator_pre_sum")
# Lambda's entries: (i, j) -> the sum of products of the i-th and j-th quantity.
_PRODUCTS = {
    (0, 0): "main_sum_squares",
    (1, 1): "denominator_sum_squares",
    (2, 2): "covariate_sum_squares",
    (3, 3): "denominator_pre_sum_squares",
    (0, 1): "main_denominator_sum_product",
    (0, 2): "main_covariate_sum_product",
    (0, 3): "main_post_denominator_pre_sum_product",
    (1, 2): "main_pre_denominator_post_sum_product",
    (1, 3): "denominator_post_denominator_pre_sum_product",
    (2, 3): "main_pre_denominator_pre_sum_product",
}


def _quadratic_form(gradient: tuple[FloatArray, ...], arm: Mapping[str, FloatArray]) -> FloatArray:
    """g' Lambda g with Lambda the arm's unbiased per-unit covariance of (m, d, p, q)."""
    n = arm["users"]
    total = np.zeros_like(n)
    for (i, j), field in _PRODUCTS.items():
        c = sample_covariance(n, arm[_MEANS[i]], arm[_MEANS[j]], arm[field])
        total = total + (1.0 if i == j else 2.0) * gradient[i] * gradient[j] * c
    return total
