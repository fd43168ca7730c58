"""Winner's-curse correction: empirical-Bayes shrinkage of experiment effects toward zero.

Each experiment's measured effect ``x_i`` (a relative lift, say) has a standard error ``s_i``.
Take the true effects to be drawn from a normal distribution centred on zero with variance
``tau2``, and each measurement to be ``x_i ~ N(theta_i, s_i^2)``. Then

    tau2     = max(0, mean(x_i^2 - s_i^2))                  (method of moments, centred on zero)
    shrunk_i = x_i * tau2 / (tau2 + s_i^2)                  (the posterior mean of theta_i)
    sd_i     = sqrt(tau2 * s_i^2 / (tau2 + s_i^2))          (its posterior standard deviation)

An effect measured precisely (small ``s_i`` against the spread ``tau2`` of all effects) keeps
most of its size; a noisy one, which is how winners are usually picked, is pulled toward zero.
When the effects spread no more than their noise explains (``tau2`` = 0), every estimate
shrinks to zero. The interval of a shrunk effect is ``shrunk_i +- z * sd_i``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import norm

__all__ = ["Shrinkage", "ShrunkEffect", "shrink_effects"]


@dataclass(frozen=True, slots=True)
class ShrunkEffect:
    estimate: float
    std_error: float
    shrunk: float
    shrunk_std: float
    ci_low: float
    ci_high: float
    # How much of the measured effect survives: tau2 / (tau2 + s^2), in [0, 1].
    factor: float


@dataclass(frozen=True, slots=True)
class Shrinkage:
    tau2: float
    effects: tuple[ShrunkEffect, ...]

    @property
    def spread(self) -> float:
        """The estimated standard deviation of the true effects."""
        return math.sqrt(self.tau2)


def shrink_effects(estimates: Sequence[float], std_errors: Sequence[float], *, alpha: float = 0.05) -> Shrinkage:
    """Shrink each estimate toward zero by the spread of all of them (see the module).

    `estimates` and `std_errors` pair up; standard errors must be finite and positive and
    estimates finite (ValueError otherwise). With no effects the result is empty."""
    if len(estimates) != len(std_errors):
        raise ValueError("Give one standard error per estimate.")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be between 0 and 1.")
    for x, s in zip(estimates, std_errors, strict=True):
        if not math.isfinite(x) or not math.isfinite(s) or s <= 0:
            raise ValueError("Estimates must be finite and standard errors finite and positive.")
    k = len(estimates)
    if k == 0:
        return Shrinkage(tau2=0.0, effects=())
    tau2 = max(0.0, sum(x * x - s * s for x, s in zip(estimates, std_errors, strict=True)) / k)
    z = float(norm.ppf(1 - alpha / 2))
    effects = []
    for x, s in zip(estimates, std_errors, strict=True):
        factor = tau2 / (tau2 + s * s)
        shrunk = x * factor
        sd = math.sqrt(tau2 * s * s / (tau2 + s * s))
        effects.append(ShrunkEffect(estimate=x, std_error=s, shrunk=shrunk, shrunk_std=sd, ci_low=shrunk - z * sd,
                                    ci_high=shrunk + z * sd, factor=factor))
    return Shrinkage(tau2=tau2, effects=tuple(effects))
