"""The Bayesian engine: a normal model of the effect, vectorised over any number of comparisons.

The data give an estimate of the effect (absolute difference or relative lift, CUPED-adjusted
where CUPED applies) with variance V, as for the frequentist tests. With the likelihood
N(estimate, V) and a normal prior N(mu0, tau^2) on the effect, the posterior is normal
(conjugate update); a flat prior (tau = infinity) gives the posterior N(estimate, V).
Credible interval, chance to win and risk are then read off the posterior. This is the model
of GrowthBook's `EffectBayesianABTest` (gbstats 0.8.0); docs/statistics.md gives the formulas.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from scipy import special

from stats.types import FloatArray

_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)
_SQRT_HALF = np.sqrt(0.5)


def _f(x: npt.ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


class Posterior(NamedTuple):
    mean: FloatArray
    variance: FloatArray


class BayesianResult(NamedTuple):
    mean: FloatArray  # posterior mean of the effect
    variance: FloatArray  # posterior variance
    ci_low: FloatArray
    ci_high: FloatArray
    chance_to_win: FloatArray
    risk_control: FloatArray  # expected loss of keeping the control
    risk_treatment: FloatArray  # expected loss of choosing the treatment


def posterior(
    estimate: npt.ArrayLike, variance: npt.ArrayLike, prior_mean: npt.ArrayLike, prior_variance: npt.ArrayLike
) -> Posterior:
    """Normal-normal update; a prior variance that is not finite (NaN or inf) is a flat prior."""
    est, var, mu0, tau2 = _f(estimate), _f(variance), _f(prior_mean), _f(prior_variance)
    proper = np.isfinite(tau2) & np.isfinite(mu0)
    with np.errstate(divide="ignore", invalid="ignore"):
        # Precisions add: 1/V_post = 1/V + 1/tau^2, and the posterior mean is the
        # precision-weighted average of the estimate and the prior mean.
        prior_precision = np.where(proper, 1.0 / tau2, 0.0)
        precision = 1.0 / var + prior_precision
        mean = np.where(proper, (est / var + np.where(proper, mu0, 0.0) * prior_precision) / precision, est)
        return Posterior(mean, np.where(proper, 1.0 / precision, var))


def normal_loss(t: npt.ArrayLike) -> FloatArray:
    """The standard normal loss function g(t) = E[max(Z - t, 0)] = phi(t) - t * Phi(-t), Z ~ N(0, 1).

    For X ~ N(m, s^2): E[max(-X, 0)] = s * g(m/s) and E[max(X, 0)] = s * g(-m/s). For large
    positive t both terms
    nearly cancel; there the scaled complementary error function keeps the absolute error at
    rounding level (erfcx(x) = exp(x^2) erfc(x)).
    """
    x = _f(t)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        direct = _INV_SQRT_2PI * np.exp(-0.5 * x * x) - x * special.ndtr(-x)
        scaled = np.exp(-0.5 * x * x) * (_INV_SQRT_2PI - 0.5 * x * special.erfcx(x * _SQRT_HALF))
    return _f(np.maximum(np.where(x > 0, scaled, direct), 0.0))


def risk(mean: npt.ArrayLike, variance: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Expected loss of each decision under the posterior N(mean, variance) of the effect X.

    Keeping the control loses X when the treatment is better: E[max(X, 0)]. Choosing the
    treatment loses -X when it is worse: E[max(-X, 0)]. (gbstats' `get_risk` order.)
    """
    m, v = _f(mean), _f(variance)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.sqrt(v)
        z = m / s
        return s * normal_loss(-z), s * normal_loss(z)


def analyse(
    estimate: npt.ArrayLike,
    variance: npt.ArrayLike,
    alpha: npt.ArrayLike,
    prior_mean: npt.ArrayLike = np.nan,
    prior_variance: npt.ArrayLike = np.nan,
) -> BayesianResult:
    """Posterior, equal-tailed 1 - alpha credible interval, chance to win and risk."""
    post = posterior(estimate, variance, prior_mean, prior_variance)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.sqrt(post.variance)
        # Quantiles alpha/2 and 1 - alpha/2 of N(mean, s^2).
        half = special.ndtri(1.0 - _f(alpha) / 2.0) * s
        # P(X > 0) = Phi(mean / s).
        chance = _f(special.ndtr(post.mean / s))
    risk_control, risk_treatment = risk(post.mean, post.variance)
    return BayesianResult(
        post.mean, post.variance, post.mean - half, post.mean + half, chance, risk_control, risk_treatment
    )
