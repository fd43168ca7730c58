"""Ratio metrics (sum of y over sum of d per variation) by the delta method.

A ratio metric such as revenue per session has the user, not the session, as its
independent unit, so its variance must come from per-user sums of numerator and
denominator and their covariance (Deng, Knoblich & Lu 2018, "Applying the Delta
Method in Metric Analytics"). Once a ratio's per-unit variance is known it is
compared exactly like a mean.
"""

from __future__ import annotations

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
