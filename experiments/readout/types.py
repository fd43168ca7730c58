"""What a readout holds: frozen values, one type per part of the stored document.

Field names are the stored JSON keys (and the result API's), so that a document, its
OpenAPI schema and these types say the same thing. `codec.readout_to_json` writes the current
shape; `codec.readout_from_json` reads every stored shape (with `legacy`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import stats
from experiments.readout.settings import MODES, AnalysisSettings

# The version of the document shape `codec.readout_to_json` writes.
SCHEMA_VERSION = 3


@dataclass(frozen=True, slots=True)
class Comparison:
    """One treatment against the control, in one analysis and one difference type.

    `chance_to_win` is already flipped for lower-is-better metrics (the chance of being
    better). `p_value_adjusted` and `significant` are set in a metric's headline list only:
    the corrected p-value when a correction applies, and the readout's judgement.

    In a Bayesian analysis `estimate` is the posterior mean, the interval the credible
    interval, `p_value` None and `risk` the expected loss (of keeping the control, of
    choosing the variation) in the units of the difference type, already for the metric's
    direction (a loss is always a change for the worse).
    """

    variation: str
    difference_type: str
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
    significant: bool | None = None
    risk: tuple[float, float] | None = None

    @property
    def has_interval(self) -> bool:
        return self.error is None and self.ci_low is not None and self.ci_high is not None

    @property
    def excludes_zero(self) -> bool:
        """The interval lies on one side of zero."""
        low, high = self.ci_low, self.ci_high
        return self.error is None and low is not None and high is not None and (low > 0 or high < 0)


@dataclass(frozen=True, slots=True)
class ArmSummary:
    """Unadjusted per-unit mean and spread of one variation on one metric."""

    key: str
    users: int
    mean: float | None
    stddev: float | None


@dataclass(frozen=True, slots=True)
class MetricReadout:
    """One metric's results: every stored overall analysis, and the headline list.

    `comparisons` is the headline analysis in the experiment's own type, with the corrected
    p-values and the readout's significance. Each analysis (`fixed`, `cuped`, `sequential`,
    `sequential_unadjusted`, `bayesian`, `bayesian_unadjusted`) lists one comparison per
    treatment and difference type, the
    experiment's own type first; empty where the readout did not store it, as are
    `variations` for a metric not analysed (fewer than two variations). `guardrail` (ok,
    warning or failing) is set for guardrail metrics. `error` says what is wrong with the
    metric's sums when the statistics engine refused them: its comparisons then carry the
    error code `invalid_input` and no numbers, and the rest of the readout is computed.
    """

    key: str
    name: str
    kind: str
    role: str
    direction: str
    headline: str
    cap: float | None
    comparisons: tuple[Comparison, ...]
    variations: tuple[ArmSummary, ...] = ()
    fixed: tuple[Comparison, ...] = ()
    cuped: tuple[Comparison, ...] = ()
    sequential: tuple[Comparison, ...] = ()
    sequential_unadjusted: tuple[Comparison, ...] = ()
    guardrail: str | None = None
    error: str | None = None
    bayesian: tuple[Comparison, ...] = ()
    bayesian_unadjusted: tuple[Comparison, ...] = ()
    # Per treatment and slice attribute: does the effect differ across the attribute's values?
    heterogeneity: tuple[HeterogeneityTest, ...] = ()
    # Retention and LTV metrics: their day N (their users are those exposed long enough ago).
    day: int | None = None

    @property
    def higher_is_better(self) -> bool:
        return self.direction != "lower"

    def mode(self, mode: str) -> tuple[Comparison, ...]:
        """The stored comparisons of one analysis (both difference types); empty when not stored."""
        found: tuple[Comparison, ...] = getattr(self, mode) if mode in MODES else ()
        return found

    def views(self) -> dict[tuple[str, str], dict[str, Comparison]]:
        """Every stored view, (analysis, difference type) -> variation -> comparison.

        The headline list stands in for its own view's entries: it carries the corrected
        p-values and the readout's significance.
        """
        out: dict[tuple[str, str], dict[str, Comparison]] = {}
        for mode in MODES:
            for c in self.mode(mode):
                out.setdefault((mode, c.difference_type), {})[c.variation] = c
        for c in self.comparisons:
            out.setdefault((self.headline, c.difference_type), {})[c.variation] = c
        return out

    def numbers(self, mode: str, difference_type: str) -> dict[str, Comparison]:
        """One stored view by variation; empty when the readout did not store it."""
        return self.views().get((mode, difference_type), {})

    def arm(self, key: str) -> ArmSummary | None:
        return next((a for a in self.variations if a.key == key), None)

    def heterogeneity_of(self, variation: str, attribute: str) -> HeterogeneityTest | None:
        return next((h for h in self.heterogeneity if h.variation == variation and h.attribute == attribute), None)


@dataclass(frozen=True, slots=True)
class SliceDifference:
    """One value of a slice attribute against the rest of the attribute's values.
    `p_value` is None for a value left out of the test (too few units or no estimate)."""

    value: str
    difference: float | None
    p_value: float | None
    p_value_adjusted: float | None
    differs: bool


@dataclass(frozen=True, slots=True)
class HeterogeneityTest:
    """Cochran's Q over one attribute's values of one treatment's fixed-horizon lift (in the
    experiment's own difference type); `p_value_adjusted` is corrected (Holm) over every
    attribute and treatment of the metric, and `significant` judged on it. A value `differs`
    only in a significant attribute. `q` and the p-values are None with fewer than two
    values to compare."""

    variation: str
    attribute: str
    q: float | None
    degrees_of_freedom: int
    p_value: float | None
    p_value_adjusted: float | None
    i_squared: float | None
    significant: bool
    values: tuple[SliceDifference, ...]

    @property
    def flagged(self) -> tuple[SliceDifference, ...]:
        return tuple(v for v in self.values if v.differs)


@dataclass(frozen=True, slots=True)
class SliceArm:
    key: str
    users: int
    mean: float | None


@dataclass(frozen=True, slots=True)
class SliceMetric:
    """One metric within one slice: the headline analysis in the experiment's own type.
    `error` says what is wrong with its sums when the engine refused them."""

    key: str
    variations: tuple[SliceArm, ...]
    comparisons: tuple[Comparison, ...]
    error: str | None = None

    def numbers(self, difference_type: str) -> dict[str, Comparison]:
        return {c.variation: c for c in self.comparisons if c.difference_type == difference_type}

    def arm(self, key: str) -> SliceArm | None:
        return next((a for a in self.variations if a.key == key), None)


@dataclass(frozen=True, slots=True)
class SliceReadout:
    """The units of one value of one slice attribute, with its metrics' results."""

    attribute: str
    value: str
    units: tuple[int, ...]  # per variation
    metrics: tuple[SliceMetric, ...]

    def metric(self, key: str) -> SliceMetric | None:
        return next((m for m in self.metrics if m.key == key), None)


@dataclass(frozen=True, slots=True)
class VariationResult:
    """One variation: its configured weight and the units analysed; the first is the control."""

    key: str
    name: str
    weight: float | None
    units: int
    share: float | None


@dataclass(frozen=True, slots=True)
class ReadoutWarning:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Rollup:
    """How the job brought its per-unit rollup up to date for this readout."""

    mode: str
    units_recomputed: int


@dataclass(frozen=True, slots=True)
class MetricSums:
    """The sufficient statistics one metric was analysed from, overall and per slice value."""

    overall: tuple[stats.VariationData, ...]
    # attribute -> value -> one entry per variation
    slices: Mapping[str, Mapping[str, tuple[stats.VariationData, ...]]] | None = None


@dataclass(frozen=True, slots=True)
class ReadoutSums:
    """What the analysis was computed from (stored as the document's `inputs`)."""

    analysis_end: str | None = None
    phase: int | None = None
    caps: Mapping[str, float | None] = field(default_factory=dict)
    rollup: Rollup | None = None
    metrics: Mapping[str, MetricSums] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Readout:
    """One readout of an experiment.

    `settings` and `inputs` are None where the document holds none: a run that produced no
    readout, or the part of a readout a page selected.
    """

    schema_version: int = SCHEMA_VERSION
    units: int | None = None
    multiple_exposure_units: int | None = None
    multiple_exposure_share: float | None = None
    srm_p_value: float | None = None
    srm_warning: bool = False
    # ok, warning or failing; None when the experiment has no guardrail metric.
    guardrail_status: str | None = None
    variations: tuple[VariationResult, ...] = ()
    metrics: tuple[MetricReadout, ...] = ()
    slices: tuple[SliceReadout, ...] = ()
    warnings: tuple[ReadoutWarning, ...] = ()
    settings: AnalysisSettings | None = None
    inputs: ReadoutSums | None = None

    @property
    def analysis(self) -> AnalysisSettings:
        """The settings, or the defaults where the document holds none."""
        return self.settings if self.settings is not None else AnalysisSettings()

    @property
    def headline(self) -> str:
        """The analysis the readout judged by, as stored with its metrics (the settings' rule
        where the document holds no metric)."""
        return self.metrics[0].headline if self.metrics else self.analysis.headline

    @property
    def primary(self) -> MetricReadout | None:
        return next((m for m in self.metrics if m.role == "primary"), None)

    def metric(self, key: str) -> MetricReadout | None:
        return next((m for m in self.metrics if m.key == key), None)


# The keys of a readout document, which are also the result columns of a stored snapshot.
READOUT_FIELDS: tuple[str, ...] = tuple(Readout.__dataclass_fields__)
