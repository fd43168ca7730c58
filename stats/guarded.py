"""Guarded rollouts: when is a guardrail harmed, how the error budget is split, and a simulation
of a whole rollout under no harm and under a given harm.

A guarded rollout compares the units a rollout serves (treatment) with the units it has not
reached yet (control): both come from the same hash, so the split is randomised. Each step of
the ramp is one phase, analysed on its own with the always-valid (sequential) interval, looked
at as often as readouts come. The budget `alpha` covers the whole rollout: every step with a
control, every guardrail and the sample-ratio check (`rollout_alphas`), so by the union bound
the chance of any false alarm, at any look of any step, is at most `alpha`.

Pure: numpy and scipy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from stats.engine import ArmArrays, compare_arrays
from stats.sequential import confidence_sequence
from stats.types import BoolArray, FloatArray

__all__ = [
    "SRM_SHARE",
    "RolloutAlphas",
    "RolloutSimulation",
    "compared_steps",
    "guardrail_harmed",
    "rollout_alphas",
    "share_mismatch",
    "simulate_rollout",
]

# Part of the budget given to the sample-ratio check; the guardrails share the rest.
SRM_SHARE = 0.1

Direction = Literal["higher", "lower"]


def compared_steps(percents: Sequence[float]) -> int:
    """Steps that have a control to compare with (every step below 100%)."""
    return sum(1 for p in percents if p < 100.0)


@dataclass(frozen=True, slots=True)
class RolloutAlphas:
    """Level of each test so that the whole rollout stays within `total`."""

    total: float
    guardrail: float  # per guardrail, per step, over all its looks
    srm: float  # per step, over all its looks


def rollout_alphas(total: float, *, steps: int, guardrails: int) -> RolloutAlphas:
    """Split `total` over the compared steps, the guardrails and the sample-ratio check."""
    if not 0.0 < total < 1.0 or steps < 1 or guardrails < 1:
        raise ValueError("alpha in (0, 1), at least one compared step and one guardrail")
    return RolloutAlphas(
        total=total,
        guardrail=total * (1.0 - SRM_SHARE) / (steps * guardrails),
        srm=total * SRM_SHARE / steps,
    )


def guardrail_harmed(low: float, high: float, *, direction: Direction, threshold: float = 0.0) -> bool:
    """True when the interval of (treatment - control) lies wholly on the harmful side, beyond
    `threshold` (on the interval's own scale, e.g. 0.02 for a 2% relative drop tolerated).

    `direction` is what is good for the metric: for "higher" a fall is harm, for "lower" a rise.
    A missing interval (NaN) is never harm.
    """
    if not (np.isfinite(low) and np.isfinite(high)):
        return False
    if direction == "higher":
        return high < -threshold
    return low > threshold


def share_mismatch(control_units: float, treatment_units: float, share: float, *, alpha: float,
                   tuning: float = 5000.0) -> bool:
    """Sequential sample-ratio check: the always-valid interval of the treatment's share of units
    excludes the configured `share`. Valid however often it is looked at (unlike a chi-square
    test repeated at every readout)."""
    return bool(_share_mismatch(np.asarray(control_units, dtype=np.float64),
                                np.asarray(treatment_units, dtype=np.float64), share, alpha, tuning))


def _share_mismatch(control: FloatArray, treatment: FloatArray, share: float, alpha: float,
                    tuning: float) -> BoolArray:
    n = control + treatment
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = treatment / n
        # Under the configured split the share's variance is share (1 - share) / n.
        variance = share * (1.0 - share) / n
    low, high = confidence_sequence(observed - share, variance, n, alpha, tuning)
    found: BoolArray = (n > 0) & ((low > 0.0) | (high < 0.0))
    return found


@dataclass(frozen=True, slots=True)
class RolloutSimulation:
    rollouts: int
    alarm_rate: float  # rollouts stopped at any look of any step, for any reason
    guardrail_rate: float  # ... by the guardrail
    srm_rate: float  # ... by the sample-ratio check
    mean_stop_step: float  # among the stopped rollouts, the average step index (0-based) they stopped at


def simulate_rollout(
    rng: np.random.Generator,
    *,
    percents: Sequence[float],
    units_per_look: int,
    looks_per_step: int,
    alpha: float = 0.05,
    rate: float = 0.1,
    lift: float = 0.0,
    tuning: float = 5000.0,
    min_units: int = 500,
    rollouts: int = 2000,
) -> RolloutSimulation:
    """Simulate `rollouts` guarded rollouts of one conversion guardrail (higher is better).

    Each step below 100% is a phase: `units_per_look` new units arrive between looks, each in
    the rollout with the step's share; control units convert with `rate`, units in the rollout
    with `rate * (1 + lift)` (a negative lift is harm). At every look the relative lift's
    always-valid interval (once both sides have `min_units`) and the sequential sample-ratio
    check run at the levels `rollout_alphas` gives; the first alarm stops the rollout.
    """
    steps = [p for p in percents if p < 100.0]
    alphas = rollout_alphas(alpha, steps=len(steps), guardrails=1)
    alive = np.ones(rollouts, dtype=bool)
    by_guardrail = np.zeros(rollouts, dtype=bool)
    by_srm = np.zeros(rollouts, dtype=bool)
    stop_step = np.full(rollouts, -1)
    for index, percent in enumerate(steps):
        share = percent / 100.0
        looks = looks_per_step
        treated = rng.binomial(units_per_look, share, (rollouts, looks)).astype(np.float64)
        control = units_per_look - treated
        conv_t = rng.binomial(treated.astype(np.int64), rate * (1.0 + lift)).astype(np.float64)
        conv_c = rng.binomial(control.astype(np.int64), rate).astype(np.float64)
        n_t, n_c = np.cumsum(treated, axis=1), np.cumsum(control, axis=1)
        s_t, s_c = np.cumsum(conv_t, axis=1), np.cumsum(conv_c, axis=1)
        result = compare_arrays(
            ArmArrays(users=n_c.reshape(-1), main_sum=s_c.reshape(-1)),
            ArmArrays(users=n_t.reshape(-1), main_sum=s_t.reshape(-1)),
            metric="binomial", alpha=alphas.guardrail, sequential=True, sequential_tuning_parameter=tuning,
        )
        enough = (np.minimum(n_t, n_c) >= min_units).reshape(-1)
        harmed = (enough & (np.nan_to_num(result.ci_high, nan=np.inf) < 0.0)).reshape(rollouts, looks)
        srm = _share_mismatch(n_c, n_t, share, alphas.srm, tuning)
        harm_any, srm_any = harmed.any(axis=1) & alive, srm.any(axis=1) & alive
        # Whichever came first stops the rollout; at the same look the guardrail is named.
        first_harm = np.where(harmed.any(axis=1), harmed.argmax(axis=1), looks)
        first_srm = np.where(srm.any(axis=1), srm.argmax(axis=1), looks)
        stopped = harm_any | srm_any
        by_guardrail |= stopped & (first_harm <= first_srm)
        by_srm |= stopped & (first_srm < first_harm)
        stop_step[stopped] = index
        alive &= ~stopped
    stopped_all = ~alive
    return RolloutSimulation(
        rollouts=rollouts,
        alarm_rate=float(stopped_all.mean()),
        guardrail_rate=float(by_guardrail.mean()),
        srm_rate=float(by_srm.mean()),
        mean_stop_step=float(stop_step[stopped_all].mean()) if stopped_all.any() else float("nan"),
    )
