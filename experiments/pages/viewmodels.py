"""Snapshot JSON -> what the result pages show: rows, badges, words, chart inputs.

Pure: no Django, no database. The readout stores, per metric, the comparisons of three
analyses ("fixed", "cuped", "sequential") and marks one as the headline; the pages only
pick among these stored numbers (the CUPED and absolute/relative toggles included) and
never recompute a statistic.

Snapshot shape read here (written by `experiments.readouts`):
- `variations`: [{key, name, weight, units, share}], the first is the control;
- `metrics`: [{key, name, kind, role, direction, headline, cap,
  variations: [{key, users, mean, stddev}], fixed|cuped|sequential: [comparison],
  comparisons: [headline comparison + p_value_adjusted + significant], guardrail}];
- a comparison: {variation, difference_type, estimate, ci_low, ci_high, p_value,
  chance_to_win (already flipped for lower-is-better metrics), cuped_applied,
  variance_reduction, sequential, error};
- `slices`: [{attribute, value, units: [per variation], metrics: [{key, variations, comparisons}]}];
- `settings`: {alpha, difference_type, sequential, cuped, correction, min_sample_per_arm, weights, ...};
- `warnings`: [{code, message}].
A mode may also hold comparisons of both difference types, or be a mapping
{"relative": [...], "absolute": [...]}; both forms are read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "MODES",
    "Arm",
    "ArmStats",
    "Badge",
    "MetricResult",
    "Numbers",
    "ResultRow",
    "SliceRow",
    "SnapshotData",
    "Toggles",
    "choose_toggles",
    "list_badges",
    "parse_metric",
    "parse_snapshot",
    "result_rows",
    "slice_rows",
    "srm_explanation",
]

MODES = ("fixed", "cuped", "sequential")
DIFFERENCE_TYPES = ("relative", "absolute")
MULTIPLE_EXPOSURE_BADGE = 0.01
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


# Formatting -----------------------------------------------------------------------------------


def fmt_number(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude == 0:
        return "0"
    return f"{value:.{digits}g}" if magnitude < 1 else f"{value:.{max(digits - 1, 1)}f}"


def fmt_estimate(value: float | None, relative: bool) -> str:
    if value is None:
        return "—"
    if relative:
        return f"{value * 100:+.1f}%" if abs(value) >= 0.0005 else f"{value * 100:+.2f}%"
    return ("+" if value > 0 else "") + fmt_number(value)


def fmt_interval(low: float | None, high: float | None, relative: bool) -> str:
    if low is None or high is None:
        return "—"
    return f"[{fmt_estimate(low, relative)}, {fmt_estimate(high, relative)}]"


def fmt_p(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 0.0001:
        return "<0.0001"
    if value < 0.001:
        return f"{value:.4f}"
    return f"{value:.3f}"


def fmt_share(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def fmt_mean(value: float | None, kind: str) -> str:
    if value is None:
        return "—"
    if kind in ("conversion", "retention", "funnel"):
        return f"{value * 100:.2f}%"
    return fmt_number(value, 4)


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


def choose_toggles(snapshot: SnapshotData, *, cuped: bool | None, relative: bool | None) -> Toggles:
    """Map the reader's toggles onto stored analyses; unavailable choices fall back, with a note."""
    headline = snapshot.headline
    settings_cuped = bool(snapshot.settings.get("cuped"))
    stored_types = sorted({t for m in snapshot.metrics for t in m.stored_types}) or [snapshot.difference_type]
    cuped_available = headline != "sequential" and settings_cuped
    if headline == "sequential":
        note = (
            "Sequential results are stored "
            + ("with CUPED only." if settings_cuped else "without CUPED only (CUPED is off in the settings).")
        )
        mode, use_cuped = "sequential", settings_cuped
    elif not settings_cuped:
        note = "CUPED is off in this experiment's settings, so there is no adjusted result."
        mode, use_cuped = "fixed", False
    else:
        use_cuped = True if cuped is None else cuped
        mode = "cuped" if use_cuped else "fixed"
        note = ""
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
        cuped_available=cuped_available,
        cuped_note=note,
        types_available=tuple(stored_types),
        type_note=type_note,
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


# Badges and explanations -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Badge:
    code: str
    label: str
    tone: str
    explanation: str


@dataclass(frozen=True, slots=True)
class ListFacts:
    """What the list page knows about an experiment's latest readouts."""

    status: str
    min_sample: int
    arm_units: Sequence[int] = field(default_factory=tuple)
    srm_warning: bool = False
    srm_p_value: float | None = None
    multiple_exposure_share: float | None = None
    guardrail_status: str = ""
    warning_codes: frozenset[str] = frozenset()
    has_snapshot: bool = False
    last_failed: bool = False


def list_badges(facts: ListFacts) -> list[Badge]:
    badges: list[Badge] = []
    if facts.last_failed:
        badges.append(
            Badge("failed", "readout failed", "bad", "The latest readout failed; the numbers shown are older.")
        )
    if facts.status == "draft":
        return badges
    if not facts.has_snapshot:
        badges.append(Badge("no_data", "no readout yet", "warn", "No readout has finished yet."))
        return badges
    if facts.srm_warning:
        badges.append(
            Badge(
                "srm",
                "SRM",
                "bad",
                f"Sample ratio mismatch (p = {fmt_p(facts.srm_p_value)}): the split differs from the configured one.",
            )
        )
    share = facts.multiple_exposure_share
    if (share is not None and share > MULTIPLE_EXPOSURE_BADGE) or "multiple_exposures" in facts.warning_codes:
        badges.append(
            Badge(
                "multiple_exposures",
                "multiple exposures",
                "warn",
                f"{fmt_share(share)} of units saw more than one variation; they are left out.",
            )
        )
    if facts.guardrail_status == "failing":
        badges.append(Badge("guardrail", "guardrail harmed", "bad", "A guardrail metric is significantly worse."))
    elif facts.guardrail_status == "warning":
        badges.append(Badge("guardrail_warning", "guardrail trending worse", "warn",
                            "A guardrail metric is worse, but not significantly so."))
    smallest = min(facts.arm_units, default=0)
    if smallest < max(facts.min_sample, 1) or {"low_sample", "no_data"} & facts.warning_codes:
        badges.append(
            Badge(
                "not_enough_data",
                "not enough data yet",
                "warn",
                f"The smallest arm has {smallest:,} units; results are reliable from {facts.min_sample:,} per arm.",
            )
        )
    return badges


def srm_explanation(snapshot: SnapshotData) -> str:
    """The sample-ratio check in plain words, with the expected and observed split."""
    arms = snapshot.arms
    total = sum(a.units for a in arms)
    weights = [a.weight or 0.0 for a in arms]
    weight_sum = sum(weights) or 1.0
    expected = ", ".join(f"{a.name} {w / weight_sum * 100:.1f}%" for a, w in zip(arms, weights, strict=True))
    observed = ", ".join(
        f"{a.name} {a.units / total * 100:.1f}% ({a.units:,})" if total else f"{a.name} 0" for a in arms
    )
    p = snapshot.srm_p_value
    if snapshot.srm_warning:
        chance = "less than 1 in 1,000" if p is not None and p < 0.001 else f"p = {fmt_p(p)}"
        return (
            f"The split asked for {expected}, but the users arrived as {observed}. "
            f"A gap this large happens by chance {chance} times, so something is sending or counting users "
            "unevenly: a bug in assignment, a redirect or crash in one variation, bots, or exposures logged "
            "differently per variation. Every number on this page may be biased; find the cause before deciding."
        )
    return (
        f"The split asked for {expected}; users arrived as {observed}. "
        f"That is within what chance explains (p = {fmt_p(p)}), so the assignment looks healthy."
    )
