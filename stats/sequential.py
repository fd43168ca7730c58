"""Sequential testing: intervals and p-values that stay valid however often you look.

The engine uses GrowthBook's asymptotic confidence sequence (Waudby-Smith, Arbour,
Sinha, Kennedy & Ramdas 2023, "Time-uniform central limit theory and asymptotic
confidence sequences", arXiv 2103.06476v7): eq. 9 for the boundary, eq. 161 for the
mixing parameter rho tuned to a planned sample size N*, eq. 155 for the p-value. The
boundary is Robbins' two-sided normal mixture. Johari et al.'s mSPRT ("Peeking at A/B
tests", 2017) is the same mixture on the effect scale; the functions below expose it and
the tests check the identity between the two.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from stats.types import FloatArray


def _f(x: npt.ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def rho_squared(alpha: npt.ArrayLike, tuning_parameter: npt.ArrayLike) -> FloatArray:
    """Mixing parameter rho^2 that makes the sequence tightest near N* units."""
    log_a = np.log(_f(alpha))
    # rho^2 = (-2 ln a + ln(1 - 2 ln a)) / N*: minimises the boundary width at N = N*
    # (Waudby-Smith et al. 2023, eq. 161; GrowthBook SequentialTwoSidedTTest.rho).
    return (-2.0 * log_a + np.log(1.0 - 2.0 * log_a)) / _f(tuning_parameter)


def width_multiplier(n_total: npt.ArrayLike, alpha: npt.ArrayLike, tuning_parameter: npt.ArrayLike) -> FloatArray:
    """Half-width of the confidence sequence in units of the estimate's standard error."""
    a = _f(alpha)
    nr2 = _f(n_total) * rho_squared(a, tuning_parameter)
    with np.errstate(divide="ignore", invalid="ignore"):
        # sqrt(2 (N rho^2 + 1)/(N rho^2) * ln(sqrt(N rho^2 + 1)/a)): Robbins' normal-mixture
        # boundary divided by sqrt(N) to the scale of the estimate (Waudby-Smith eq. 9).
        return np.sqrt(2.0 * (nr2 + 1.0) / nr2 * np.log(np.sqrt(nr2 + 1.0) / a))


def confidence_sequence(
    estimate: npt.ArrayLike,
    variance: npt.ArrayLike,
    n_total: npt.ArrayLike,
    alpha: npt.ArrayLike,
    tuning_parameter: npt.ArrayLike,
) -> tuple[FloatArray, FloatArray]:
    """Always-valid interval (low, high) for an estimate with the given variance."""
    est = _f(estimate)
    # estimate +/- sigma_hat * multiplier; no t quantile (asymptotic in N).
    half = np.sqrt(_f(variance)) * width_multiplier(n_total, alpha, tuning_parameter)
    return est - half, est + half


def sequential_p_value(
    estimate: npt.ArrayLike,
    variance: npt.ArrayLike,
    n_total: npt.ArrayLike,
    alpha: npt.ArrayLike,
    tuning_parameter: npt.ArrayLike,
) -> FloatArray:
    """Always-valid p-value that matches the confidence sequence at level alpha."""
    nr2 = _f(n_total) * rho_squared(alpha, tuning_parameter)
    with np.errstate(divide="ignore", invalid="ignore"):
        z2 = _f(estimate) ** 2 / _f(variance)
        # p = min(1, sqrt(N rho^2 + 1) exp(-N rho^2 z^2 / (2 (N rho^2 + 1)))): the inverse of
        # the mixture martingale (an e-value), Ville's inequality (Waudby-Smith eq. 155).
        p: FloatArray = np.sqrt(nr2 + 1.0) * np.exp(-nr2 * z2 / (2.0 * (nr2 + 1.0)))
    return np.minimum(p, 1.0)


def msprt_likelihood_ratio(estimate: npt.ArrayLike, variance: npt.ArrayLike, tau_squared: npt.ArrayLike) -> FloatArray:
    """Mixture likelihood ratio of the effect against zero with a N(0, tau^2) mixture."""
    est, v, t2 = _f(estimate), _f(variance), _f(tau_squared)
    # Lambda = sqrt(V/(V+tau^2)) exp(est^2 tau^2 / (2 V (V+tau^2))): the normal likelihood
    # integrated over a N(0, tau^2) effect, over the likelihood at zero (Johari et al. 2017).
    return np.sqrt(v / (v + t2)) * np.exp(est * est * t2 / (2.0 * v * (v + t2)))


def msprt_halfwidth(variance: npt.ArrayLike, tau_squared: npt.ArrayLike, alpha: npt.ArrayLike) -> FloatArray:
    """Half-width of the mSPRT confidence sequence: the effects with Lambda < 1/alpha."""
    v, t2 = _f(variance), _f(tau_squared)
    # sqrt(2 V (V+tau^2)/tau^2 * ln(sqrt((V+tau^2)/V)/alpha)): solving Lambda = 1/alpha.
    return np.sqrt(2.0 * v * (v + t2) / t2 * np.log(np.sqrt((v + t2) / v) / _f(alpha)))


class RunningPath(NamedTuple):
    ci_low: FloatArray
    ci_high: FloatArray
    p_value: FloatArray


def running_path(ci_low: npt.ArrayLike, ci_high: npt.ArrayLike, p_value: npt.ArrayLike, axis: int = -1) -> RunningPath:
    """Intersect intervals and take the running minimum of p-values across looks.

    Valid for any always-valid sequence, and never wider than a single look; use it to
    draw a readout's history (looks along `axis`, in time order).
    """
    return RunningPath(
        np.maximum.accumulate(_f(ci_low), axis=axis),
        np.minimum.accumulate(_f(ci_high), axis=axis),
        np.minimum.accumulate(_f(p_value), axis=axis),
    )


def msprt_p_values(
    estimate: npt.ArrayLike, variance: npt.ArrayLike, tau_squared: npt.ArrayLike, axis: int = -1
) -> FloatArray:
    """Always-valid mSPRT p-values across looks: p_n = min(p_{n-1}, 1/Lambda_n)."""
    lr = msprt_likelihood_ratio(estimate, variance, tau_squared)
    return np.minimum.accumulate(np.minimum(1.0, 1.0 / lr), axis=axis)
