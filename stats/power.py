"""Power, sample size and minimum detectable effect for planning an experiment.

Two-sample normal approximation with the same per-unit variance in both arms (the
control's, from history), as GrowthBook's power calculator and statsmodels'
NormalIndPower. CUPED enters as the variance reduction it is expected to achieve,
sequential testing as the wider boundary of the confidence sequence at the final look.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy import optimize, special

from stats import frequentist, ratio
from stats.sequential import width_multiplier
from stats.types import DEFAULT_ALPHA, InputError, MetricType


def _critical(users: float, alpha: float, tuning: float | None) -> float:
    """Rejection boundary in standard errors at the final look."""
    if tuning is None:
        # z_{1-alpha/2}: fixed-horizon two-sided test.
        return float(special.ndtri(1.0 - alpha / 2.0))
    # h / se of the confidence sequence at N users; a single look, so the power it gives is a
    # lower bound for the always-valid test (GrowthBook power-technical docs).
    return float(width_multiplier(users, alpha, tuning))


def _power_at(delta: float, critical: float) -> float:
    # Phi(delta - c) + Phi(-delta - c): rejection in either direction when the true effect
    # is delta standard errors away from zero (statsmodels NormalIndPower).
    return float(special.ndtr(delta - critical) + special.ndtr(-delta - critical))


def _delta_needed(critical: float, power: float) -> float:
    """Effect in standard errors at which the two-sided test reaches `power`."""
    upper = critical + float(special.ndtri(power)) + 10.0
    return float(optimize.brentq(lambda d: _power_at(d, critical) - power, 0.0, upper, xtol=1e-14, rtol=1e-15))


def _shares(weights: Sequence[float]) -> tuple[float, float]:
    """Control share and the smallest treatment share of all traffic."""
    if len(weights) < 2 or any(not (math.isfinite(w) and w > 0) for w in weights):
        raise InputError("weights", "needs at least two positive weights")
    total = float(sum(weights))
    return weights[0] / total, min(weights[1:]) / total


def _unit_variance(variance: float, variance_reduction: float) -> float:
    if not (math.isfinite(variance) and variance > 0):
        raise InputError("variance", "must be a positive number")
    if not 0.0 <= variance_reduction < 1.0:
        raise InputError("variance_reduction", "must be in [0, 1)")
    # CUPED leaves sigma^2 (1 - r) of the variance, r = rho^2 at the optimal theta
    # (Deng et al. 2013).
    return variance * (1.0 - variance_reduction)


def _scaled_variance(
    users: float, w_a: float, w_b: float, var: float, mean: float | None, effect: float, relative: bool
) -> float:
    """Variance of the estimate (absolute difference or relative lift) at `users` in total."""
    n_a, n_b = users * w_a, users * w_b
    if not relative:
        # sigma^2 (1/n_A + 1/n_B): difference of two independent means.
        return var * (1.0 / n_a + 1.0 / n_b)
    if mean is None or mean == 0:
        raise InputError("mean", "a non-zero baseline mean is required for a relative effect")
    q = 1.0 + effect * math.copysign(1.0, mean)
    # sigma^2/mu_A^2 (1/n_B + (mu_B/mu_A)^2/n_A): delta-method variance of the lift with
    # mu_B = mu_A (1 + L) (GrowthBook power-technical docs).
    return var / mean**2 * (1.0 / n_b + q * q / n_a)


def detection_power(
    *,
    effect: float,
    variance: float,
    users: float,
    weights: Sequence[float] = (0.5, 0.5),
    alpha: float = DEFAULT_ALPHA,
    mean: float | None = None,
    relative: bool = False,
    variance_reduction: float = 0.0,
    sequential_tuning_parameter: float | None = None,
) -> float:
    """Probability that a test on `users` users in total detects a true `effect`.

    `effect` is absolute or, with `relative`, a lift (0.05 = +5%, needs `mean`).
    `variance` is the per-unit variance (p(1 - p) for binomial; see `baseline_moments`).
    """
    w_a, w_b = _shares(weights)
    var = _unit_variance(variance, variance_reduction)
    se = math.sqrt(_scaled_variance(users, w_a, w_b, var, mean, effect, relative))
    return _power_at(abs(effect) / se, _critical(users, alpha, sequential_tuning_parameter))


def users_needed(
    *,
    effect: float,
    variance: float,
    weights: Sequence[float] = (0.5, 0.5),
    alpha: float = DEFAULT_ALPHA,
    power: float = 0.8,
    mean: float | None = None,
    relative: bool = False,
    variance_reduction: float = 0.0,
    sequential_tuning_parameter: float | None = None,
) -> float:
    """Total users (all variations) needed to detect `effect` with the given power.

    Unrounded; plan for the next whole number above it.
    """
    if effect == 0 or not math.isfinite(effect):
        raise InputError("effect", "must be a non-zero number")
    if not alpha < power < 1.0:
        raise InputError("power", "must be between alpha and 1")
    w_a, w_b = _shares(weights)
    var = _unit_variance(variance, variance_reduction)
    # Variance of the estimate is (per-user constant) / N for every design here.
    per_user = _scaled_variance(1.0, w_a, w_b, var, mean, effect, relative)
    if sequential_tuning_parameter is None:
        delta = _delta_needed(_critical(1.0, alpha, None), power)
        # N = delta^2 * (variance at N = 1) / effect^2: solve |effect| / se(N) = delta.
        return delta * delta * per_user / (effect * effect)

    def shortfall(log_n: float) -> float:
        n = math.exp(log_n)
        return (
            _power_at(abs(effect) / math.sqrt(per_user / n), _critical(n, alpha, sequential_tuning_parameter)) - power
        )

    low = math.log(
        users_needed(
            effect=effect,
            variance=variance,
            weights=weights,
            alpha=alpha,
            power=power,
            mean=mean,
            relative=relative,
            variance_reduction=variance_reduction,
        )
    )
    high = low + 1.0
    while shortfall(high) < 0:
        high += 1.0
    return math.exp(optimize.brentq(shortfall, low, high, xtol=1e-13, rtol=1e-15))


def sequential_users_needed(
    *,
    effect: float,
    variance: float,
    weights: Sequence[float] = (0.5, 0.5),
    alpha: float = DEFAULT_ALPHA,
    power: float = 0.8,
    mean: float | None = None,
    relative: bool = False,
    variance_reduction: float = 0.0,
) -> float:
    """Total users N of an always-valid test tuned to its own size (N* = N) that detects `effect`.

    The planned sample and the tuning of the confidence sequence are then one number. With
    N* = N the product N rho^2 does not depend on N, so the boundary at the final look is a
    fixed multiple of the standard error and N has the closed form of the fixed-horizon case
    with that multiple in place of z_{1-alpha/2}. Unrounded.
    """
    if effect == 0 or not math.isfinite(effect):
        raise InputError("effect", "must be a non-zero number")
    if not alpha < power < 1.0:
        raise InputError("power", "must be between alpha and 1")
    w_a, w_b = _shares(weights)
    var = _unit_variance(variance, variance_reduction)
    per_user = _scaled_variance(1.0, w_a, w_b, var, mean, effect, relative)
    # Any N works for the multiple when N* = N; 1 keeps it simple.
    delta = _delta_needed(_critical(1.0, alpha, 1.0), power)
    return delta * delta * per_user / (effect * effect)


def minimum_detectable_effect(
    *,
    users: float,
    variance: float,
    weights: Sequence[float] = (0.5, 0.5),
    alpha: float = DEFAULT_ALPHA,
    power: float = 0.8,
    mean: float | None = None,
    relative: bool = False,
    variance_reduction: float = 0.0,
    sequential_tuning_parameter: float | None = None,
) -> float | None:
    """Smallest effect (absolute or relative lift) detectable with `users` in total.

    None when no relative lift is detectable: the control mean is too noisy at this size.
    """
    w_a, w_b = _shares(weights)
    var = _unit_variance(variance, variance_reduction)
    delta = _delta_needed(_critical(users, alpha, sequential_tuning_parameter), power)
    n_a, n_b = users * w_a, users * w_b
    if not relative:
        # MDE = delta * sigma sqrt(1/n_A + 1/n_B): the effect that sits delta SEs out.
        return delta * math.sqrt(var * (1.0 / n_a + 1.0 / n_b))
    if mean is None or mean == 0:
        raise InputError("mean", "a non-zero baseline mean is required for a relative effect")
    k = delta * delta * var / mean**2
    if n_a <= k:
        return None
    s = math.copysign(1.0, mean)
    # L = delta * se(L) with se depending on L through mu_B = mu_A (1 + L) is the quadratic
    # L^2 (1 - k/n_A) - 2 s k L / n_A - k (1/n_A + 1/n_B) = 0, k = delta^2 sigma^2/mu^2;
    # its positive root (GrowthBook power-technical docs; needs n_A > k).
    a = 1.0 - k / n_a
    b = s * k / n_a
    return (b + math.sqrt(b * b + a * k * (1.0 / n_a + 1.0 / n_b))) / a


def baseline_moments(
    metric: MetricType,
    *,
    users: float,
    main_sum: float,
    main_sum_squares: float | None = None,
    denominator_sum: float | None = None,
    denominator_sum_squares: float | None = None,
    main_denominator_sum_product: float | None = None,
) -> tuple[float, float]:
    """(mean, per-unit variance) of a metric from historical sufficient statistics."""
    if users < 2:
        raise InputError("users", "needs at least two users")
    if metric == "binomial":
        p = main_sum / users
        return p, float(frequentist.binomial_variance(p))
    if metric == "mean":
        if main_sum_squares is None:
            raise InputError("main_sum_squares", "is required")
        return main_sum / users, float(frequentist.sample_variance(users, main_sum, main_sum_squares))
    if denominator_sum is None or denominator_sum_squares is None or main_denominator_sum_product is None:
        raise InputError("denominator_sum", "ratio metrics need the denominator sums")
    if main_sum_squares is None:
        raise InputError("main_sum_squares", "is required")
    r = ratio.ratio_moments(
        users, main_sum, main_sum_squares, denominator_sum, denominator_sum_squares, main_denominator_sum_product
    )
    return float(r.ratio), float(r.variance)
