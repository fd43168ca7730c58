"""Snapshot JSON -> what the result pages show: rows, badges, words, chart inputs.

Pure: no Django, no database. The readout stores, per metric, the comparisons of three
analyses ("fixed", "cuped", "sequential") and marks one as the headline; the pages only
pick among these stored numbers (the CUPED and absolute/relative toggles included) and
never recompute a statistic.

Snapshot shape read here (written by `experiments.readout_jobs`):
- `variations`: [{key, name, weight, units, share}], the first is the control;
- `metrics`: [{key, name, kind, role, direction, headline, cap,
  variations: [{key, users, mean, stddev}], fixed|cuped|sequential|sequential_unadjusted: [comparison],
  comparisons: [headline comparison + p_value_adjusted + significant], guardrail}];
- a comparison: {variation, difference_type, estimate, ci_low, ci_high, p_value,
  chance_to_win (already flipped for lower-is-better metrics), cuped_applied,
  variance_reduction, sequential, error};
- `slices`: [{attribute, value, units: [per variation], metrics: [{key, variations, comparisons}]}];
- `settings`: {alpha, difference_type, sequential, cuped, correction, min_sample_per_arm, weights, ...};
- `warnings`: [{code, message}].
`sequential` is the sequential analysis with the experiment's CUPED setting; with CUPED on,
`sequential_unadjusted` is the same without CUPED. Readouts since both difference types are
kept hold comparisons of both types in each mode's list (the experiment's own type first);
older readouts hold one type, and no `sequential_unadjusted`: the pages then fall back to
what is stored and say so. A mode may also be a mapping {"relative": [...], "absolute": [...]};
both forms are read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pages.presentation.formatting import fmt_estimate, fmt_interval, fmt_mean, fmt_number, fmt_p, fmt_share

__all__ = [
    "MODES",
    "Arm",
    "ArmStats",
    "MetricResult",
    "Numbers",
    "ResultRow",
    "SliceRow",
    "SnapshotData",
    "Toggles",
    "choose_toggles",
    "fmt_estimate",
    "fmt_interval",
    "fmt_mean",
    "fmt_number",
    "fmt_p",
    "fmt_share",
    "parse_metric",
    "parse_snapshot",
    "result_rows",
    "slice_rows",
]

MODES = ("fixed", "cuped", "sequential", "sequential_unadjusted")
ANALYSES = ("fixed", "sequential")
DIFFERENCE_TYPES = ("relative", "absolute")
ERROR_WORDS = {
    "no_users": "no users yet",
    "too_few_users": "too few users to compare",
    "zero_denominator": "the denominator is zero",
    "zero_variance": "no variation in the data yet",
    "zero_control_mean": "the control's mean is zero, so a relative lift is undefined",
    "numerical_error": "the numbers could not be computed",
}


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _int(value: Any) -> int:
    number = _float(value)
    return int(number) if number is not None else 0


@dataclass(frozen=True, slots=True)
class Numbers:
    """One treatment against the control, in one analysis and one difference type."""

    variation: str
    difference_type: str
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    chance_to_win: float | None
    variance_reduction: float | None
    cuped_applied: bool
    sequential: bool
    error: str | None
    p_value_adjusted: float | None = None
    significant: bool | None = None  # as the readout judged it (headline only)

    @classmethod
    def parse(cls, raw: Mapping[str, Any], default_type: str) -> Numbers:
        significant = raw.get("significant")
        return cls(
            variation=str(raw.get("variation", "")),
            difference_type=str(raw.get("difference_type") or default_type),
            estimate=_float(raw.get("estimate")),
            ci_low=_float(raw.get("ci_low")),
            ci_high=_float(raw.get("ci_high")),
            p_value=_float(raw.get("p_value")),
            chance_to_win=_float(raw.get("chance_to_win")),
            variance_reduction=_float(raw.get("variance_reduction")),
            cuped_applied=bool(raw.get("cuped_applied")),
            sequential=bool(raw.get("sequential")),
            error=str(raw["error"]) if raw.get("error") else None,
            p_value_adjusted=_float(raw.get("p_value_adjusted")),
            significant=bool(significant) if isinstance(significant, bool) else None,
        )

    @property
    def has_interval(self) -> bool:
        return self.error is None and self.ci_low is not None and self.ci_high is not None

    @property
    def excludes_zero(self) -> bool:
        return self.has_interval and (self.ci_low > 0 or self.ci_high < 0)  # type: ignore[operator]


@dataclass(frozen=True, slots=True)
class ArmStats:
    key: str
    users: int
    mean: float | None
    stddev: float | None


@dataclass(frozen=True, slots=True)
class Arm:
    key: str
    name: str
    weight: float | None
    units: int
    share: float | None


@dataclass(frozen=True, slots=True)
class MetricResult:
    key: str
    name: str
    kind: str
    role: str
    direction: str
    headline: str
    cap: float | None
    arms: tuple[ArmStats, ...]
    # (mode, difference type) -> variation key -> numbers
    results: Mapping[tuple[str, str], Mapping[str, Numbers]]
    guardrail: str

    @property
    def higher_is_better(self) -> bool:
        return self.direction != "lower"

    def numbers(self, mode: str, difference_type: str) -> Mapping[str, Numbers]:
        return self.results.get((mode, difference_type), {})

    def arm(self, key: str) -> ArmStats | None:
        return next((a for a in self.arms if a.key == key), None)

    @property
    def stored_types(self) -> set[str]:
        return {t for (_, t) in self.results}


@dataclass(frozen=True, slots=True)
class SnapshotData:
    id: int | None
    status: str
    created_at: datetime | None
    analysis_end: datetime | None
    units: int
    arms: tuple[Arm, ...]
    srm_p_value: float | None
    srm_warning: bool
    multiple_exposure_units: int | None
    multiple_exposure_share: float | None
    guardrail_status: str
    metrics: tuple[MetricResult, ...]
    warnings: tuple[tuple[str, str], ...]
    settings: Mapping[str, Any]
    error: str = ""

    @property
    def alpha(self) -> float:
        return _float(self.settings.get("alpha")) or 0.05

    @property
    def difference_type(self) -> str:
        value = str(self.settings.get("difference_type") or "relative")
        return value if value in DIFFERENCE_TYPES else "relative"

    @property
    def headline(self) -> str:
        if self.metrics:
            return self.metrics[0].headline
        if self.settings.get("sequential"):
            return "sequential"
        return "cuped" if self.settings.get("cuped") else "fixed"

    @property
    def min_sample(self) -> int:
        return _int(self.settings.get("min_sample_per_arm"))

    @property
    def smallest_arm(self) -> int:
        return min((a.units for a in self.arms), default=0)

    @property
    def control(self) -> Arm | None:
        return self.arms[0] if self.arms else None

    def warning_codes(self) -> set[str]:
        return {code for code, _ in self.warnings}

    @property
    def primary(self) -> MetricResult | None:
        return next((m for m in self.metrics if m.role == "primary"), None)


def _comparisons(raw: Any, default_type: str) -> dict[str, dict[str, Numbers]]:
    """A mode's stored comparisons, by difference type then variation."""
    out: dict[str, dict[str, Numbers]] = {}
    if isinstance(raw, Mapping):
        for dtype, items in raw.items():
            for n in (Numbers.parse(c, str(dtype)) for c in items or () if isinstance(c, Mapping)):
                out.setdefault(n.difference_type, {})[n.variation] = n
        return out
    for item in raw or ():
        if isinstance(item, Mapping):
            n = Numbers.parse(item, default_type)
            out.setdefault(n.difference_type, {})[n.variation] = n
    return out


def parse_metric(raw: Mapping[str, Any], *, default_type: str, headline: str) -> MetricResult:
    metric_headline = str(raw.get("headline") or headline)
    results: dict[tuple[str, str], dict[str, Numbers]] = {}
    for mode in MODES:
        for dtype, by_variation in _comparisons(raw.get(mode), default_type).items():
            results[(mode, dtype)] = by_variation
    # The headline list carries the corrected p-values and the readout's significance.
    for dtype, by_variation in _comparisons(raw.get("comparisons"), default_type).items():
        merged = dict(results.get((metric_headline, dtype), {}))
        merged.update(by_variation)
        results[(metric_headline, dtype)] = merged
    arms = tuple(
        ArmStats(
            key=str(a.get("key") or a.get("name") or ""),
            users=_int(a.get("users")),
            mean=_float(a.get("mean")),
            stddev=_float(a.get("stddev")),
        )
        for a in raw.get("variations") or ()
        if isinstance(a, Mapping)
    )
    return MetricResult(
        key=str(raw.get("key", "")),
        name=str(raw.get("name") or raw.get("key") or ""),
        kind=str(raw.get("kind", "")),
        role=str(raw.get("role", "secondary")),
        direction=str(raw.get("direction", "higher")),
        headline=metric_headline,
        cap=_float(raw.get("cap")),
        arms=arms,
        results=results,
        guardrail=str(raw.get("guardrail") or ""),
    )


def parse_snapshot(row: Mapping[str, Any]) -> SnapshotData:
    """`row`: the snapshot's columns by name (a model's __dict__ or a values() row)."""
    settings = row.get("settings") if isinstance(row.get("settings"), Mapping) else {}
    assert isinstance(settings, Mapping)
    default_type = str(settings.get("difference_type") or "relative")
    headline = "sequential" if settings.get("sequential") else "cuped" if settings.get("cuped") else "fixed"
    arms = tuple(
        Arm(
            key=str(v.get("key", "")),
            name=str(v.get("name") or v.get("key") or ""),
            weight=_float(v.get("weight")),
            units=_int(v.get("units")),
            share=_float(v.get("share")),
        )
        for v in row.get("variations") or ()
        if isinstance(v, Mapping)
    )
    metrics = tuple(
        parse_metric(m, default_type=default_type, headline=headline)
        for m in row.get("metrics") or ()
        if isinstance(m, Mapping)
    )
    warnings = tuple(
        (str(w.get("code", "")), str(w.get("message", ""))) for w in row.get("warnings") or () if isinstance(w, Mapping)
    )
    units = row.get("units")
    return SnapshotData(
        id=row.get("id"),
        status=str(row.get("status", "success")),
        created_at=row.get("created_at"),
        analysis_end=row.get("analysis_end"),
        units=_int(units) if units is not None else sum(a.units for a in arms),
        arms=arms,
        srm_p_value=_float(row.get("srm_p_value")),
        srm_warning=bool(row.get("srm_warning")),
        multiple_exposure_units=_int(row.get("multiple_exposure_units"))
        if row.get("multiple_exposure_units") is not None
        else None,
        multiple_exposure_share=_float(row.get("multiple_exposure_share")),
        guardrail_status=str(row.get("guardrail_status") or ""),
        metrics=metrics,
        warnings=warnings,
        settings=dict(settings),
        error=str(row.get("error") or ""),
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
    analysis: str = "fixed"  # fixed or sequential
    analyses_available: tuple[str, ...] = ("fixed",)
    analysis_note: str = ""
    # The stored sequential analysis matching the CUPED choice (the trend chart draws it).
    sequential_mode: str = "sequential"


def _stored(snapshot: SnapshotData, mode: str) -> list[str]:
    return sorted({t for m in snapshot.metrics for (stored_mode, t) in m.results if stored_mode == mode})


def choose_toggles(
    snapshot: SnapshotData, *, cuped: bool | None, relative: bool | None, analysis: str | None = None
) -> Toggles:
    """Map the reader's toggles onto stored analyses; unavailable choices fall back, with a note.

    Defaults are the experiment's configured analysis. The analysis (fixed horizon or
    sequential), CUPED and the difference type can each be switched when the readout stored
    that view; older readouts stored fewer views, so some choices fall back there.
    """
    headline = snapshot.headline
    settings_cuped = bool(snapshot.settings.get("cuped"))
    own_analysis = "sequential" if headline in ("sequential", "sequential_unadjusted") else "fixed"
    analyses_available = tuple(a for a in ANALYSES if a == own_analysis or _stored(snapshot, a))
    chosen = analysis if analysis in analyses_available else own_analysis
    analysis_note = ""
    if analysis in ANALYSES and analysis != chosen:
        analysis_note = "This readout has no sequential results; showing the fixed-horizon analysis."
    notes: list[str] = []
    if not settings_cuped:
        use_cuped = False
        notes.append("CUPED is off in this experiment's settings, so there is no adjusted result.")
        mode = chosen
    else:
        use_cuped = True if cuped is None else cuped
        if chosen == "fixed":
            mode = "cuped" if use_cuped else "fixed"
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
        sequential_mode="sequential_unadjusted" if settings_cuped and not use_cuped else "sequential",
    )


@dataclass(frozen=True, slots=True)
class ResultRow:
    metric: MetricResult
    variation: str
    variation_name: str
    control_mean: str
    treatment_mean: str
    users: str
    numbers: Numbers | None
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


def judge(metric: MetricResult, numbers: Numbers | None, *, alpha: float, min_sample: int = 0,
          users: int | None = None) -> tuple[str, str]:
    """(tone, words) for one comparison, from its interval and the metric's direction."""
    if numbers is None:
        return "neutral", "no result"
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
    return ("good", "better (significant)") if better else ("bad", "worse (significant)")


def result_rows(snapshot: SnapshotData, toggles: Toggles, roles: Iterable[str]) -> list[ResultRow]:
    """One row per metric and treatment, for the metrics whose role is in `roles`."""
    wanted = set(roles)
    names = {a.key: a.name for a in snapshot.arms}
    treatments = [a.key for a in snapshot.arms[1:]]
    relative = toggles.difference_type == "relative"
    rows: list[ResultRow] = []
    for metric in snapshot.metrics:
        if metric.role not in wanted:
            continue
        by_variation = metric.numbers(toggles.mode, toggles.difference_type)
        control = metric.arms[0] if metric.arms else None
        keys = treatments or [k for k in by_variation]
        for i, key in enumerate(keys):
            numbers = by_variation.get(key)
            arm = metric.arm(key)
            min_users = min(control.users if control else 0, arm.users if arm else 0)
            tone, words = judge(metric, numbers, alpha=snapshot.alpha, min_sample=snapshot.min_sample, users=min_users)
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
                    estimate=fmt_estimate(numbers.estimate, relative) if ok and numbers else "—",
                    interval=fmt_interval(numbers.ci_low, numbers.ci_high, relative) if ok and numbers else "—",
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
    numbers: Numbers | None
    first_of_value: bool
    span: int


def slice_rows(
    slices: Sequence[Mapping[str, Any]], *, metric: MetricResult, snapshot: SnapshotData
) -> list[SliceRow]:
    names = {a.key: a.name for a in snapshot.arms}
    """Rows of one slice dimension for one metric. `slices` are the snapshot's slice entries
    of that dimension, each with `metrics` holding at least the chosen metric."""
    relative = snapshot.difference_type == "relative"
    treatments = [a.key for a in snapshot.arms[1:]]
    rows: list[SliceRow] = []
    for entry in slices:
        entry_metric = next(
            (m for m in entry.get("metrics") or () if isinstance(m, Mapping) and m.get("key") == metric.key), None
        )
        units = [_int(u) for u in entry.get("units") or ()]
        arms = {
            str(a.get("key")): a for a in (entry_metric or {}).get("variations") or () if isinstance(a, Mapping)
        }
        comparisons = _comparisons((entry_metric or {}).get("comparisons"), snapshot.difference_type)
        by_variation = comparisons.get(snapshot.difference_type, {})
        control_key = snapshot.arms[0].key if snapshot.arms else ""
        control_mean = _float(arms.get(control_key, {}).get("mean"))
        for i, key in enumerate(treatments):
            numbers = by_variation.get(key)
            tone, words = judge(metric, numbers, alpha=snapshot.alpha, min_sample=snapshot.min_sample,
                                users=min(units) if units else 0)
            ok = numbers is not None and numbers.error is None
            rows.append(
                SliceRow(
                    value=str(entry.get("value", "")),
                    variation=key,
                    variation_name=names.get(key, key),
                    units=" / ".join(f"{u:,}" for u in units),
                    control_mean=fmt_mean(control_mean, metric.kind),
                    treatment_mean=fmt_mean(_float(arms.get(key, {}).get("mean")), metric.kind),
                    estimate=fmt_estimate(numbers.estimate, relative) if ok and numbers else "—",
                    interval=fmt_interval(numbers.ci_low, numbers.ci_high, relative) if ok and numbers else "—",
                    p_value=fmt_p(numbers.p_value) if numbers else "—",
                    tone=tone,
                    verdict=words,
                    numbers=numbers,
                    first_of_value=i == 0,
                    span=len(treatments),
                )
            )
    return rows
