"""A stored readout -> what the result pages show: rows, badges, words, chart inputs.

Pure: no Django, no database. Snapshots are read through the readout contract
(`experiments.readout.readout_from_json`, every stored version and any part of one); the
readout stores, per metric, the comparisons of each analysis ("fixed", "cuped",
"sequential", "sequential_unadjusted", or with the Bayesian engine "bayesian" and
"bayesian_unadjusted") and marks the headline; the pages only pick among
these stored numbers (the CUPED and absolute/relative toggles included) and never
recompute a statistic. Older readouts stored fewer views (one difference type, no
`sequential_unadjusted`): the pages then fall back to what is stored and say so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from experiments.readout import (
    BAYESIAN_MODES,
    AnalysisSettings,
    Comparison,
    MetricReadout,
    Readout,
    ReadoutWarning,
    SliceReadout,
    VariationResult,
    readout_from_json,
)
from pages.presentation.formatting import (
    Unit,
    difference_unit,
    fmt_estimate,
    fmt_interval,
    fmt_mean,
    fmt_number,
    fmt_p,
    fmt_share,
)

__all__ = [
    "HeterogeneityLine",
    "ResultRow",
    "SliceRow",
    "SnapshotData",
    "Toggles",
    "choose_toggles",
    "difference_unit",
    "fmt_estimate",
    "fmt_interval",
    "fmt_mean",
    "fmt_number",
    "fmt_p",
    "fmt_share",
    "heterogeneity_lines",
    "judge",
    "parse_snapshot",
    "result_rows",
    "slice_rows",
]

ANALYSES = ("fixed", "sequential", "bayesian")
ERROR_WORDS = {
    "no_users": "no users yet",
    "too_few_users": "too few users to compare",
    "zero_denominator": "the denominator is zero",
    "zero_variance": "no variation in the data yet",
    "zero_control_mean": "the control's mean is zero, so a relative lift is undefined",
    "numerical_error": "the numbers could not be computed",
    "invalid_input": "the data could not be analysed",
}


@dataclass(frozen=True, slots=True)
class SnapshotData:
    """One stored readout run as the pages show it: the run's facts and its readout."""

    id: int | None
    status: str
    created_at: datetime | None
    analysis_end: datetime | None
    error: str
    readout: Readout

    @property
    def settings(self) -> AnalysisSettings:
        return self.readout.analysis

    @property
    def arms(self) -> tuple[VariationResult, ...]:
        return self.readout.variations

    @property
    def metrics(self) -> tuple[MetricReadout, ...]:
        return self.readout.metrics

    @property
    def warnings(self) -> tuple[ReadoutWarning, ...]:
        return self.readout.warnings

    @property
    def units(self) -> int:
        units = self.readout.units
        return units if units is not None else sum(a.units for a in self.arms)

    @property
    def srm_p_value(self) -> float | None:
        return self.readout.srm_p_value

    @property
    def srm_warning(self) -> bool:
        return self.readout.srm_warning

    @property
    def multiple_exposure_units(self) -> int | None:
        return self.readout.multiple_exposure_units

    @property
    def multiple_exposure_share(self) -> float | None:
        return self.readout.multiple_exposure_share

    @property
    def guardrail_status(self) -> str:
        return self.readout.guardrail_status or ""

    @property
    def alpha(self) -> float:
        return self.settings.alpha

    @property
    def difference_type(self) -> str:
        return self.settings.own_type

    @property
    def headline(self) -> str:
        return self.readout.headline

    @property
    def min_sample(self) -> int:
        return self.settings.min_sample_per_arm

    @property
    def smallest_arm(self) -> int:
        return min((a.units for a in self.arms), default=0)

    @property
    def control(self) -> VariationResult | None:
        return self.arms[0] if self.arms else None

    def warning_codes(self) -> set[str]:
        return {w.code for w in self.warnings}

    @property
    def primary(self) -> MetricReadout | None:
        return self.readout.primary


def parse_snapshot(row: Mapping[str, Any]) -> SnapshotData:
    """`row`: the snapshot's columns by name (a model's fields or a values() row), whole or in part."""
    return SnapshotData(
        id=row.get("id"),
        status=str(row.get("status", "success")),
        created_at=row.get("created_at"),
        analysis_end=row.get("analysis_end"),
        error=str(row.get("error") or ""),
        readout=readout_from_json(row),
    )


# Table rows -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Toggles:
    """What the reader asked for and what the snapshot can show."""

    cuped: bool
    relative: bool
    mode: str
    difference_type: str
    cuped_available: bool
    cuped_note: str
    types_available: tuple[str, ...]
    type_note: str
    analysis: str = "fixed"  # fixed, sequential or bayesian
    analyses_available: tuple[str, ...] = ("fixed",)
    analysis_note: str = ""
    # The stored analysis the trend chart draws, matching the CUPED choice: the sequential one
    # (always valid), or the Bayesian one for a Bayesian experiment.
    sequential_mode: str = "sequential"

    @property
    def bayesian(self) -> bool:
        return self.mode in BAYESIAN_MODES


def _stored(snapshot: SnapshotData, mode: str) -> list[str]:
    return sorted({t for m in snapshot.metrics for (stored_mode, t) in m.views() if stored_mode == mode})


def choose_toggles(
    snapshot: SnapshotData, *, cuped: bool | None, relative: bool | None, analysis: str | None = None
) -> Toggles:
    """Map the reader's toggles onto stored analyses; unavailable choices fall back, with a note.

    Defaults are the experiment's configured analysis. The analysis (fixed horizon or
    sequential), CUPED and the difference type can each be switched when the readout stored
    that view; older readouts stored fewer views, so some choices fall back there.
    """
    headline = snapshot.headline
    settings_cuped = snapshot.settings.cuped
    own_analysis = ("sequential" if headline in ("sequential", "sequential_unadjusted")
                    else "bayesian" if headline in BAYESIAN_MODES else "fixed")
    analyses_available = tuple(a for a in ANALYSES if a == own_analysis or _stored(snapshot, a))
    chosen = analysis if analysis in analyses_available else own_analysis
    analysis_note = ""
    if analysis in ANALYSES and analysis != chosen:
        analysis_note = (f"This readout has no {analysis} results; showing the "
                         f"{'fixed-horizon' if chosen == 'fixed' else chosen} analysis.")
    notes: list[str] = []
    if not settings_cuped:
        use_cuped = False
        notes.append("CUPED is off in this experiment's settings, so there is no adjusted result.")
        mode = chosen
    else:
        use_cuped = True if cuped is None else cuped
        if chosen == "fixed":
            mode = "cuped" if use_cuped else "fixed"
        elif chosen == "bayesian":
            mode = "bayesian" if use_cuped else "bayesian_unadjusted"
        else:
            mode = "sequential" if use_cuped else "sequential_unadjusted"
            if mode == "sequential_unadjusted" and not _stored(snapshot, mode):
                mode, use_cuped = "sequential", True
                notes.append("Sequential results without CUPED are not available for this readout (it was "
                             "stored before they were kept); showing them with CUPED.")
    stored_types = _stored(snapshot, mode) or [snapshot.difference_type]
    want = snapshot.difference_type if relative is None else ("relative" if relative else "absolute")
    dtype = want if want in stored_types else snapshot.difference_type
    type_note = ""
    if len(stored_types) < 2:
        type_note = (
            f"This readout stored {dtype} results only (the experiment's setting); "
            "the other form is not available for it."
        )
    return Toggles(
        cuped=use_cuped,
        relative=dtype == "relative",
        mode=mode,
        difference_type=dtype,
        cuped_available=settings_cuped,
        cuped_note=" ".join(notes),
        types_available=tuple(stored_types),
        type_note=type_note,
        analysis=chosen,
        analyses_available=analyses_available,
        analysis_note=analysis_note,
        sequential_mode=_trend_mode(own_analysis, settings_cuped and not use_cuped),
    )


def _trend_mode(own_analysis: str, unadjusted: bool) -> str:
    if own_analysis == "bayesian":
        return "bayesian_unadjusted" if unadjusted else "bayesian"
    return "sequential_unadjusted" if unadjusted else "sequential"


@dataclass(frozen=True, slots=True)
class ResultRow:
    metric: MetricReadout
    variation: str
    variation_name: str
    control_mean: str
    treatment_mean: str
    users: str
    numbers: Comparison | None
    estimate: str
    interval: str
    p_value: str
    p_value_adjusted: str
    chance_to_win: str
    variance_reduction: str
    tone: str  # good, bad or neutral
    verdict: str  # plain words
    first_of_metric: bool
    span: int
    unit: Unit = "percent"  # what `estimate` and `interval` are in
    # Bayesian rows: the expected loss of choosing this variation, in the row's unit.
    risk: str = "—"


def judge(metric: MetricReadout, numbers: Comparison | None, *, alpha: float, min_sample: int = 0,
          users: int | None = None, reason: str | None = None) -> tuple[str, str]:
    """(tone, words) for one comparison, from its interval and the metric's direction.
    `reason`: what is wrong with the analysis' data, when the engine refused it."""
    if numbers is None:
        return "neutral", "no result"
    if numbers.error == "invalid_input" and reason:
        return "neutral", f"no result: {ERROR_WORDS['invalid_input']} ({reason})"
    if numbers.error:
        return "neutral", f"no result: {ERROR_WORDS.get(numbers.error, numbers.error)}"
    if users is not None and users < min_sample:
        return "neutral", "not enough data yet"
    significant = numbers.excludes_zero
    if numbers.p_value_adjusted is not None:
        significant = significant and numbers.p_value_adjusted < alpha
    if numbers.significant is not None:
        significant = numbers.significant
    if not significant or numbers.estimate is None:
        return "neutral", "no clear difference"
    better = numbers.estimate > 0 if metric.higher_is_better else numbers.estimate < 0
    if numbers.risk is not None:
        # A Bayesian comparison: its credible interval excludes zero.
        return ("good", "probably better (credible)") if better else ("bad", "probably worse (credible)")
    return ("good", "better (significant)") if better else ("bad", "worse (significant)")


def result_rows(snapshot: SnapshotData, toggles: Toggles, roles: Iterable[str]) -> list[ResultRow]:
    """One row per metric and treatment, for the metrics whose role is in `roles`."""
    wanted = set(roles)
    names = {a.key: a.name for a in snapshot.arms}
    treatments = [a.key for a in snapshot.arms[1:]]
    rows: list[ResultRow] = []
    for metric in snapshot.metrics:
        if metric.role not in wanted:
            continue
        unit = difference_unit(metric.kind, toggles.difference_type)
        by_variation = metric.numbers(toggles.mode, toggles.difference_type)
        control = metric.variations[0] if metric.variations else None
        keys = treatments or [k for k in by_variation]
        for i, key in enumerate(keys):
            numbers = by_variation.get(key)
            arm = metric.arm(key)
            min_users = min(control.users if control else 0, arm.users if arm else 0)
            tone, words = judge(metric, numbers, alpha=snapshot.alpha, min_sample=snapshot.min_sample, users=min_users,
                                reason=metric.error)
            ok = numbers is not None and numbers.error is None
            rows.append(
                ResultRow(
                    metric=metric,
                    variation=key,
                    variation_name=names.get(key, key),
                    control_mean=fmt_mean(control.mean if control else None, metric.kind),
                    treatment_mean=fmt_mean(arm.mean if arm else None, metric.kind),
                    users=f"{control.users if control else 0:,} / {arm.users if arm else 0:,}",
                    numbers=numbers,
                    estimate=fmt_estimate(numbers.estimate, unit) if ok and numbers else "—",
                    interval=fmt_interval(numbers.ci_low, numbers.ci_high, unit) if ok and numbers else "—",
                    p_value=fmt_p(numbers.p_value) if numbers else "—",
                    p_value_adjusted=fmt_p(numbers.p_value_adjusted) if numbers else "—",
                    chance_to_win=fmt_share(numbers.chance_to_win) if numbers else "—",
                    variance_reduction=fmt_share(numbers.variance_reduction)
                    if numbers and numbers.cuped_applied
                    else "—",
                    tone=tone,
                    verdict=words,
                    first_of_metric=i == 0,
                    span=len(keys),
                    unit=unit,
                    risk=fmt_estimate(numbers.risk[1], unit).lstrip("+") if ok and numbers and numbers.risk else "—",
                )
            )
    return rows


@dataclass(frozen=True, slots=True)
class SliceRow:
    value: str
    variation: str
    variation_name: str
    units: str
    control_mean: str
    treatment_mean: str
    estimate: str
    interval: str
    p_value: str
    tone: str
    verdict: str
    numbers: Comparison | None
    first_of_value: bool
    span: int
    # The heterogeneity test's word on this value: "differs" (its lift differs from the rest of
    # the attribute's values), "noise" (tested, no difference shown) or "" (not tested).
    heterogeneity: str = ""
    chance_to_win: str = "—"


@dataclass(frozen=True, slots=True)
class HeterogeneityLine:
    """One treatment's heterogeneity test over one slice attribute, in words."""

    variation: str
    significant: bool
    sentence: str
    detail: str
    flagged: tuple[str, ...]


def heterogeneity_lines(metric: MetricReadout, attribute: str, names: Mapping[str, str]) -> list[HeterogeneityLine]:
    """Per treatment: does the lift on `metric` differ across the values of `attribute`?"""
    lines: list[HeterogeneityLine] = []
    for test in metric.heterogeneity:
        if test.attribute != attribute:
            continue
        name = names.get(test.variation, test.variation)
        if test.q is None or test.p_value is None:
            lines.append(HeterogeneityLine(
                test.variation, False,
                f"{name}: too few {attribute} values with enough users to compare their effects.", "", ()))
            continue
        detail = (f"Cochran's Q = {test.q:.2f} on {test.degrees_of_freedom} df, p = {fmt_p(test.p_value)}, "
                  f"{fmt_p(test.p_value_adjusted)} after the correction over every slice attribute and variation")
        flagged = tuple(v.value for v in test.flagged)
        if test.significant and flagged:
            which = ", ".join(flagged)
            verb = "differs" if len(flagged) == 1 else "differ"
            sentence = f"{name}: the effect in {which} {verb} from the rest; the other {attribute} values are noise."
        elif test.significant:
            sentence = (f"{name}: the effect differs across {attribute}, but no single value stands out from the "
                        "rest.")
        else:
            sentence = (f"{name}: no evidence that the effect differs across {attribute}; the differences between "
                        "its slices are noise.")
        lines.append(HeterogeneityLine(test.variation, test.significant, sentence, detail, flagged))
    return lines


def slice_rows(
    slices: Sequence[SliceReadout], *, metric: MetricReadout, snapshot: SnapshotData
) -> list[SliceRow]:
    """Rows of one slice dimension for one metric. `slices` are the snapshot's slices of that
    dimension, each holding at least the chosen metric."""
    names = {a.key: a.name for a in snapshot.arms}
    unit = difference_unit(metric.kind, snapshot.difference_type)
    treatments = [a.key for a in snapshot.arms[1:]]
    control_key = snapshot.arms[0].key if snapshot.arms else ""
    rows: list[SliceRow] = []
    for entry in slices:
        entry_metric = entry.metric(metric.key)
        units = list(entry.units)
        by_variation = entry_metric.numbers(snapshot.difference_type) if entry_metric else {}
        control = entry_metric.arm(control_key) if entry_metric else None
        for i, key in enumerate(treatments):
            numbers = by_variation.get(key)
            arm = entry_metric.arm(key) if entry_metric else None
            tone, words = judge(metric, numbers, alpha=snapshot.alpha, min_sample=snapshot.min_sample,
                                users=min(units) if units else 0, reason=entry_metric.error if entry_metric else None)
            ok = numbers is not None and numbers.error is None
            test = metric.heterogeneity_of(key, entry.attribute)
            value = next((v for v in test.values if v.value == entry.value), None) if test else None
            rows.append(
                SliceRow(
                    value=entry.value,
                    variation=key,
                    variation_name=names.get(key, key),
                    units=" / ".join(f"{u:,}" for u in units),
                    control_mean=fmt_mean(control.mean if control else None, metric.kind),
                    treatment_mean=fmt_mean(arm.mean if arm else None, metric.kind),
                    estimate=fmt_estimate(numbers.estimate, unit) if ok and numbers else "—",
                    interval=fmt_interval(numbers.ci_low, numbers.ci_high, unit) if ok and numbers else "—",
                    p_value=fmt_p(numbers.p_value) if numbers else "—",
                    tone=tone,
                    verdict=words,
                    numbers=numbers,
                    first_of_value=i == 0,
                    span=len(treatments),
                    heterogeneity="" if value is None or value.p_value is None
                    else "differs" if value.differs else "noise",
                    chance_to_win=fmt_share(numbers.chance_to_win) if numbers else "—",
                )
            )
    return rows
