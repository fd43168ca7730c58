"""Value types of the statistics engine.

Everything that crosses the package boundary is a frozen dataclass: the engine never
mutates what it is given, and callers (the readout task, the CLI, tests) can cache,
hash and compare results freely.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

MetricType: TypeAlias = Literal["mean", "binomial", "ratio"]
DifferenceType: TypeAlias = Literal["relative", "absolute"]
CorrectionMethod: TypeAlias = Literal["holm", "bh"]
Engine: TypeAlias = Literal["frequentist", "bayesian"]

FloatArray: TypeAlias = npt.NDArray[np.float64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
IntArray: TypeAlias = npt.NDArray[np.int64]

METRIC_TYPES: tuple[MetricType, ...] = ("mean", "binomial", "ratio")
DIFFERENCE_TYPES: tuple[DifferenceType, ...] = ("relative", "absolute")
CORRECTION_METHODS: tuple[CorrectionMethod, ...] = ("holm", "bh")
ENGINES: tuple[Engine, ...] = ("frequentist", "bayesian")

# The warning threshold for sample-ratio mismatch. A real imbalance is a bug in
# assignment or logging, so the bar is strict to keep false alarms rare.
DEFAULT_SRM_THRESHOLD = 0.001
DEFAULT_ALPHA = 0.05
# N*, the sample size at which the confidence sequence is tightest (GrowthBook default).
DEFAULT_SEQUENTIAL_TUNING_PARAMETER = 5000.0


class StatsError(Exception):
    """Base class of the engine's exceptions."""


class InputError(StatsError, ValueError):
    """Malformed analysis input; `field` is the path of the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class ErrorCode:
    """Codes reported in `Comparison.error` when a result is undefined."""

    NO_USERS = "no_users"
    TOO_FEW_USERS = "too_few_users"
    ZERO_DENOMINATOR = "zero_denominator"
    ZERO_VARIANCE = "zero_variance"
    ZERO_CONTROL_MEAN = "zero_control_mean"
    NUMERICAL_ERROR = "numerical_error"
    # The analysis' sums were refused (`AnalysisResult.input_error` says why); analyses
    # run with `isolate_errors` report it instead of failing the whole batch.
    INVALID_INPUT = "invalid_input"


# Codes in order of precedence: the first that applies is reported.
ERROR_CODES: tuple[str, ...] = (
    ErrorCode.NO_USERS,
    ErrorCode.TOO_FEW_USERS,
    ErrorCode.ZERO_DENOMINATOR,
    ErrorCode.ZERO_VARIANCE,
    ErrorCode.ZERO_CONTROL_MEAN,
    ErrorCode.NUMERICAL_ERROR,
)


@dataclass(frozen=True, slots=True)
class VariationData:
    """Sufficient statistics of one variation, as the warehouse aggregates them.

    Field names follow GrowthBook's aggregate columns. `main_*` is the metric
    (numerator for ratio metrics) over the analysis window, `covariate_*` the same
    metric over the pre-exposure window (CUPED), `denominator_*` the ratio denominator.
    The `denominator_pre_*` and cross products are only needed for CUPED on ratios.
    Values are already capped upstream if the metric is capped.
    """

    name: str
    users: int
    main_sum: float
    main_sum_squares: float | None = None
    covariate_sum: float | None = None
    covariate_sum_squares: float | None = None
    main_covariate_sum_product: float | None = None
    denominator_sum: float | None = None
    denominator_sum_squares: float | None = None
    main_denominator_sum_product: float | None = None
    denominator_pre_sum: float | None = None
    denominator_pre_sum_squares: float | None = None
    main_post_denominator_pre_sum_product: float | None = None
    main_pre_denominator_post_sum_product: float | None = None
    main_pre_denominator_pre_sum_product: float | None = None
    denominator_post_denominator_pre_sum_product: float | None = None


# The numeric fields of VariationData in a fixed order (the engine's array columns).
NUMERIC_FIELDS: tuple[str, ...] = (
    "users",
    "main_sum",
    "main_sum_squares",
    "covariate_sum",
    "covariate_sum_squares",
    "main_covariate_sum_product",
    "denominator_sum",
    "denominator_sum_squares",
    "main_denominator_sum_product",
    "denominator_pre_sum",
    "denominator_pre_sum_squares",
    "main_post_denominator_pre_sum_product",
    "main_pre_denominator_post_sum_product",
    "main_pre_denominator_pre_sum_product",
    "denominator_post_denominator_pre_sum_product",
)
COVARIATE_FIELDS: tuple[str, ...] = (
    "covariate_sum",
    "covariate_sum_squares",
    "main_covariate_sum_product",
)
RATIO_FIELDS: tuple[str, ...] = (
    "denominator_sum",
    "denominator_sum_squares",
    "main_denominator_sum_product",
)
RATIO_COVARIATE_FIELDS: tuple[str, ...] = (
    "denominator_pre_sum",
    "denominator_pre_sum_squares",
    "main_post_denominator_pre_sum_product",
    "main_pre_denominator_post_sum_product",
    "main_pre_denominator_pre_sum_product",
    "denominator_post_denominator_pre_sum_product",
)


@dataclass(frozen=True, slots=True)
class AnalysisInput:
    """One metric of one experiment (or one slice of it): the first variation is the control."""

    metric: MetricType
    variations: tuple[VariationData, ...]
    alpha: float = DEFAULT_ALPHA
    difference_type: DifferenceType = "relative"
    sequential: bool = False
    sequential_tuning_parameter: float = DEFAULT_SEQUENTIAL_TUNING_PARAMETER
    cuped: bool = False
    # Configured traffic split, one weight per variation; None means an equal split.
    weights: tuple[float, ...] | None = None
    # Bayesian engine: a normal prior on the effect, N(prior_mean, prior_stddev^2), in the units
    # of `prior_type` (None: the comparison's difference type); both None is a flat prior.
    engine: Engine = "frequentist"
    prior_mean: float | None = None
    prior_stddev: float | None = None
    prior_type: DifferenceType | None = None


@dataclass(frozen=True, slots=True)
class VariationSummary:
    """Unadjusted per-unit mean and standard deviation of one variation."""

    name: str
    users: int
    mean: float | None
    stddev: float | None


@dataclass(frozen=True, slots=True)
class Comparison:
    """One treatment against the control.

    `estimate` is the absolute difference or the relative lift (treatment / control - 1,
    divided by |control| so the sign always means "treatment higher"). `chance_to_win`
    is P(treatment > control) under a flat prior; for a lower-is-better metric the caller
    shows 1 - chance_to_win. When `error` is set every number is None.

    With the Bayesian engine `estimate` is the posterior mean, `ci_low`/`ci_high` the
    credible interval, `chance_to_win` the posterior P(treatment > control), `p_value` None,
    and `risk` the expected loss (risk of keeping the control, risk of choosing the
    treatment), both in the units of the difference type.

    `standard_error` is the standard deviation of the estimate: of the data's estimate in
    the frequentist engine (also with the sequential test, whose interval is wider), of the
    posterior in the Bayesian engine. It is not part of the documented output.
    """

    variation: str
    difference_type: DifferenceType
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    chance_to_win: float | None
    cuped_applied: bool
    variance_reduction: float | None
    sequential: bool
    error: str | None
    p_value_adjusted: float | None = None
    engine: Engine = "frequentist"
    risk: tuple[float, float] | None = None
    standard_error: float | None = None


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    srm_p_value: float
    srm_warning: bool
    variations: tuple[VariationSummary, ...]
    comparisons: tuple[Comparison, ...]
    # Set (with every comparison's error `invalid_input`) when the analysis was refused.
    input_error: str | None = None


@dataclass(frozen=True, slots=True)
class SrmResult:
    p_value: float
    chi_square: float
    degrees_of_freedom: int
    warning: bool
