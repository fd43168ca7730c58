"""The analysis settings of a readout, and the choices that follow from them.

Which stored analysis is the headline, which analyses a readout stores and in which order
the difference types come: every reader of a readout asks these objects, so each rule is
written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

Mode: TypeAlias = Literal["fixed", "cuped", "sequential", "sequential_unadjusted", "bayesian", "bayesian_unadjusted"]
DifferenceType: TypeAlias = Literal["relative", "absolute"]
CorrectionMethod: TypeAlias = Literal["holm", "bh"]
Engine: TypeAlias = Literal["frequentist", "bayesian"]

# The overall analyses a readout can store, in their stored order. `sequential` follows the
# experiment's CUPED setting (it is the headline of a sequential experiment); with CUPED on,
# `sequential_unadjusted` is the same test without it. `bayesian` and `bayesian_unadjusted`
# are the same pair for the Bayesian engine, which has no sequential test.
MODES: tuple[Mode, ...] = ("fixed", "cuped", "sequential", "sequential_unadjusted", "bayesian", "bayesian_unadjusted")
BAYESIAN_MODES: tuple[Mode, ...] = ("bayesian", "bayesian_unadjusted")
ENGINES: tuple[Engine, ...] = ("frequentist", "bayesian")
DIFFERENCE_TYPES: tuple[DifferenceType, ...] = ("relative", "absolute")
DEFAULT_ALPHA = 0.05
DEFAULT_SEQUENTIAL_TUNING = 5000.0
DEFAULT_CUPED_LOOKBACK_DAYS = 14
# GrowthBook's proper prior when one is enabled: N(0, 0.3^2) on the relative lift.
DEFAULT_PRIOR_MEAN = 0.0
DEFAULT_PRIOR_STDDEV = 0.3


@dataclass(frozen=True, slots=True)
class AnalysisSettings:
    """How the experiment asked to be analysed, as it was when the readout ran."""

    alpha: float = DEFAULT_ALPHA
    difference_type: str = "relative"
    sequential: bool = False
    sequential_tuning: float = DEFAULT_SEQUENTIAL_TUNING
    cuped: bool = False
    cuped_lookback_days: int = DEFAULT_CUPED_LOOKBACK_DAYS
    correction: str = "none"
    min_sample_per_arm: int = 0
    # The configured split, one weight per variation (the phase's weights when it has them).
    weights: tuple[float, ...] = ()
    # The statistics engine. With the Bayesian engine a proper prior on the relative lift,
    # N(prior_mean, prior_stddev^2), when both are set; a flat prior otherwise.
    engine: str = "frequentist"
    prior_mean: float | None = None
    prior_stddev: float | None = None

    @property
    def bayesian(self) -> bool:
        return self.engine == "bayesian"

    @property
    def has_prior(self) -> bool:
        return self.bayesian and self.prior_mean is not None and self.prior_stddev is not None

    @property
    def headline(self) -> Mode:
        """The analysis the experiment is judged by: the Bayesian posterior with that engine,
        sequential when asked for, else CUPED when on."""
        if self.bayesian:
            return "bayesian"
        if self.sequential:
            return "sequential"
        return "cuped" if self.cuped else "fixed"

    @property
    def own_type(self) -> DifferenceType:
        """The experiment's own difference type (relative unless it asked for absolute)."""
        return "absolute" if self.difference_type == "absolute" else "relative"

    @property
    def difference_types(self) -> tuple[DifferenceType, DifferenceType]:
        """Both difference types, the experiment's own first: a view's first comparison is its own."""
        own = self.own_type
        return (own, "relative" if own == "absolute" else "absolute")

    @property
    def modes(self) -> dict[Mode, tuple[bool, bool]]:
        """The overall analyses a readout with these settings stores: mode -> (CUPED, sequential).
        The fixed-horizon pair always; then the sequential pair, or with the Bayesian engine
        the Bayesian pair (whose engine `BAYESIAN_MODES` tells)."""
        modes: dict[Mode, tuple[bool, bool]] = {"fixed": (False, False), "cuped": (True, False)}
        if self.bayesian:
            modes["bayesian"] = (self.cuped, False)
            if self.cuped:
                modes["bayesian_unadjusted"] = (False, False)
            return modes
        modes["sequential"] = (self.cuped, True)
        if self.cuped:
            modes["sequential_unadjusted"] = (False, True)
        return modes

    @property
    def correction_method(self) -> CorrectionMethod | None:
        """The multiple-testing correction over the headline comparisons of goal metrics, if any
        (the Bayesian engine has none: its chance to win is not a p-value)."""
        if self.correction in ("", "none") or self.bayesian:
            return None
        return "holm" if self.correction == "holm" else "bh"

    def corrects(self, role: str) -> bool:
        """Whether a metric of this role takes part in the multiple-testing correction."""
        return self.correction_method is not None and role != "guardrail"
