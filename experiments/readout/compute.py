"""Sums in, a `Readout` out: every analysis of every metric and slice through one call of the
statistics engine, the sample-ratio check and the multiple-testing correction once each."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

import stats
from experiments.readout.input import MetricDescription, ReadoutInput
from experiments.readout.settings import BAYESIAN_MODES, AnalysisSettings, DifferenceType, Mode
from experiments.readout.types import (
    ArmSummary,
    Comparison,
    HeterogeneityTest,
    MetricReadout,
    MetricSums,
    Readout,
    ReadoutSums,
    ReadoutWarning,
    SliceArm,
    SliceDifference,
    SliceMetric,
    SliceReadout,
    VariationResult,
)

STATS_METRIC: dict[str, stats.MetricType] = {
    "conversion": "binomial", "retention": "binomial", "funnel": "binomial",
    "mean": "mean", "count": "mean", "ratio": "ratio", "ltv": "mean",
}
# Warn when more than this share of exposed units saw two variations.
MULTIPLE_EXPOSURE_WARNING = 0.01
# A guardrail trends worse when it is at most this likely to be better: at least 80% likely
# to be worse. A point estimate on the wrong side of zero alone would flag half of all
# harmless changes.
GUARDRAIL_WARNING_CHANCE = 0.2
SEVERITY = {"ok": 0, "warning": 1, "failing": 2}
# Analyses named in the readout's warning when some could not be computed; each row says its own.
ERRORS_NAMED = 3
# How the engine names a field of an analysis it refused: "variations[1].main_sum: is required".
_FIELD_ERROR = re.compile(r"^variations\[(\d+)\]\.(\w+): (.*)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class _Slot:
    """Where one analysis's result goes: metric, analysis, difference type, slice (None: overall)."""

    metric: int
    mode: Mode
    difference_type: DifferenceType
    slice: int | None


def readout_compute(data: ReadoutInput) -> Readout:
    """The readout of `data`: the same numbers, warnings and guardrail verdicts for the same sums."""
    settings = data.settings
    n = len(data.variations)
    units = data.overall.units
    total = sum(units)
    srm = stats.srm_test(list(units), list(settings.weights)) if n >= 2 and total > 0 else None
    warnings = _sample_warnings(settings, units, srm)

    results = _analyse(data)
    adjusted = _corrected(data, results)
    metrics = tuple(
        _metric(data, spec, i, results, adjusted) for i, spec in enumerate(data.metrics)
    )
    slices = tuple(_slice(data, g, results) for g in range(len(data.slices)))
    guardrail = _worst(m.guardrail for m in metrics if m.guardrail is not None) if any(
        spec.role == "guardrail" for spec in data.metrics) else None
    if guardrail == "failing":
        warnings.append(ReadoutWarning("guardrail_failing", "A guardrail metric is significantly worse."))
    multiple = data.multiple_exposure_units
    exposed = total + multiple
    share = multiple / exposed if exposed else None
    if share is not None and share > MULTIPLE_EXPOSURE_WARNING:
        warnings.append(ReadoutWarning(
            "multiple_exposures",
            f"{multiple} of {exposed} units ({share:.1%}) saw more than one variation; they are left out of the "
            "analysis. Check the assignment and exposure logging.",
        ))
    failed = _failed_analyses(metrics, slices)
    if failed:
        named = "; ".join(failed[:ERRORS_NAMED]) + ("; ..." if len(failed) > ERRORS_NAMED else "")
        warnings.append(ReadoutWarning(
            "analysis_errors",
            f"{len(failed)} {'analysis' if len(failed) == 1 else 'analyses'} could not be computed and "
            f"{'is' if len(failed) == 1 else 'are'} marked on {'its row' if len(failed) == 1 else 'their rows'}; "
            f"the rest of the readout is complete: {named}.",
        ))
    warnings.extend(data.warnings)
    weights = settings.weights
    return Readout(
        units=total,
        multiple_exposure_units=multiple,
        multiple_exposure_share=share,
        srm_p_value=_finite(srm.p_value) if srm is not None else None,
        srm_warning=bool(srm.warning) if srm is not None else False,
        guardrail_status=guardrail,
        variations=tuple(
            VariationResult(key=v.key, name=v.name or v.key,
                            weight=float(weights[k]) if k < len(weights) else v.weight,
                            units=units[k], share=units[k] / total if total else None)
            for k, v in enumerate(data.variations)
        ),
        metrics=metrics,
        slices=slices,
        warnings=tuple(warnings),
        settings=settings,
        inputs=_sums(data),
    )


def _sample_warnings(settings: AnalysisSettings, units: Sequence[int], srm: stats.SrmResult | None
                     ) -> list[ReadoutWarning]:
    warnings: list[ReadoutWarning] = []
    total = sum(units)
    if srm is not None and srm.warning:
        warnings.append(ReadoutWarning(
            "srm", f"Sample ratio mismatch (p = {srm.p_value:.2g}): units per variation do not match the configured "
                   "weights; do not trust the results until explained."))
    if total and min(units) < settings.min_sample_per_arm:
        warnings.append(ReadoutWarning(
            "low_sample", f"Fewer than {settings.min_sample_per_arm} units in some variation: results are not yet "
                          "reliable."))
    if total == 0:
        warnings.append(ReadoutWarning("no_data", "No exposures in this phase yet."))
    return warnings


# Analyses ---------------------------------------------------------------------------------------


def _heterogeneity_mode(settings: AnalysisSettings) -> Mode:
    """The analysis the slices' heterogeneity test reads: fixed horizon, frequentist, with CUPED
    when it is on (the headline of a fixed-horizon frequentist experiment)."""
    return "cuped" if settings.cuped else "fixed"


def _analyse(data: ReadoutInput) -> dict[_Slot, stats.AnalysisResult]:
    """Every analysis of the readout, in one batch: each overall analysis in both difference
    types, and per slice only the headline analysis in the experiment's own type (all of them
    would multiply the largest part of a readout), plus the fixed-horizon frequentist one where
    that is not the headline (the heterogeneity test reads it)."""
    settings = data.settings
    if len(data.variations) < 2:
        return {}
    modes = settings.modes
    headline = settings.headline
    own = settings.own_type
    tested = _heterogeneity_mode(settings)
    slice_modes = [headline] if tested == headline else [headline, tested]
    analyses: list[stats.AnalysisInput] = []
    slots: list[_Slot] = []
    for i, spec in enumerate(data.metrics):
        arms = data.overall.metrics[i]
        for mode, (cuped, sequential) in modes.items():
            for dtype in settings.difference_types:
                analyses.append(_analysis(settings, spec, arms, cuped, sequential, dtype, mode))
                slots.append(_Slot(i, mode, dtype, None))
        for mode in slice_modes:
            cuped, sequential = modes[mode]
            for g, part in enumerate(data.slices):
                analyses.append(_analysis(settings, spec, part.sums.metrics[i], cuped, sequential, own, mode))
                slots.append(_Slot(i, mode, own, g))
    # One analysis the engine refuses (malformed sums) is reported on its own row; the others
    # are computed as usual.
    found = stats.analyze_many(analyses, isolate_errors=True, prefix="") if analyses else []
    return dict(zip(slots, found, strict=True))


def _analysis(settings: AnalysisSettings, spec: MetricDescription, arms: tuple[stats.VariationData, ...], cuped: bool,
              sequential: bool, difference_type: DifferenceType, mode: Mode) -> stats.AnalysisInput:
    # CUPED needs the pre-exposure covariate, which is only summed when the experiment asks for it.
    cuped_on = cuped and settings.cuped and arms[0].covariate_sum is not None
    bayesian = mode in BAYESIAN_MODES
    # The prior is on the relative lift of a higher value; for a lower-is-better metric the
    # hoped-for direction is down, so its mean turns sign.
    prior_mean = settings.prior_mean if settings.has_prior else None
    if prior_mean is not None and spec.direction == "lower":
        prior_mean = -prior_mean
    return stats.AnalysisInput(
        metric=STATS_METRIC[spec.kind], variations=arms, alpha=settings.alpha, difference_type=difference_type,
        sequential=sequential, sequential_tuning_parameter=settings.sequential_tuning, cuped=cuped_on,
        weights=tuple(float(w) for w in settings.weights),
        engine="bayesian" if bayesian else "frequentist",
        prior_mean=prior_mean if bayesian else None,
        prior_stddev=settings.prior_stddev if bayesian and settings.has_prior else None,
        prior_type="relative" if bayesian and settings.has_prior else None,
    )


def _corrected(data: ReadoutInput, results: dict[_Slot, stats.AnalysisResult]) -> dict[tuple[int, int], float | None]:
    """Corrected p-values over the headline comparisons of primary and secondary metrics,
    by (metric, comparison)."""
    settings = data.settings
    method = settings.correction_method
    family: list[tuple[int, int]] = []
    p_values: list[float] = []
    for i, spec in enumerate(data.metrics):
        found = results.get(_Slot(i, settings.headline, settings.own_type, None))
        if not settings.corrects(spec.role) or found is None:
            continue
        for j, comparison in enumerate(found.comparisons):
            family.append((i, j))
            p_values.append(np.nan if comparison.p_value is None else comparison.p_value)
    if method is None or not p_values:
        return {}
    values = stats.adjust_p_values(np.asarray(p_values), method)
    return {key: None if math.isnan(value) else float(value)
            for key, value in zip(family, values.tolist(), strict=True)}


# Results ----------------------------------------------------------------------------------------


def _metric(data: ReadoutInput, spec: MetricDescription, i: int, results: dict[_Slot, stats.AnalysisResult],
            adjusted: dict[tuple[int, int], float | None]) -> MetricReadout:
    settings = data.settings
    headline, own = settings.headline, settings.own_type
    base = results.get(_Slot(i, "fixed", own, None))
    views: dict[str, tuple[Comparison, ...]] = {}
    for mode in settings.modes:
        found = [results.get(_Slot(i, mode, dtype, None)) for dtype in settings.difference_types]
        if all(r is not None for r in found):
            views[mode] = tuple(_comparison(c, spec.direction) for r in found if r for c in r.comparisons)
    own_result = results.get(_Slot(i, headline, own, None))
    comparisons: list[Comparison] = []
    harms: list[str] = []
    for j, c in enumerate(own_result.comparisons if own_result is not None else ()):
        # Judged on the engine's numbers; an infinite bound only becomes null when stored.
        significant = c.ci_low is not None and c.ci_high is not None and (c.ci_low > 0 or c.ci_high < 0)
        p_adjusted: float | None = None
        if (i, j) in adjusted:
            p_adjusted = adjusted[(i, j)]
            significant = p_adjusted is not None and p_adjusted < settings.alpha
        comparisons.append(_with(_comparison(c, spec.direction), p_value_adjusted=p_adjusted,
                                 significant=significant))
        harms.append(_harm(spec.direction, c))
    guardrail = _worst(harms) if spec.role == "guardrail" else None
    return MetricReadout(
        key=spec.key, name=spec.name or spec.key, kind=spec.kind, role=spec.role, direction=spec.direction,
        headline=headline, cap=spec.cap,
        variations=tuple(ArmSummary(key=v.name, users=v.users, mean=_finite(v.mean), stddev=_finite(v.stddev))
                         for v in base.variations) if base is not None else (),
        fixed=views.get("fixed", ()), cuped=views.get("cuped", ()), sequential=views.get("sequential", ()),
        sequential_unadjusted=views.get("sequential_unadjusted", ()), comparisons=tuple(comparisons),
        bayesian=views.get("bayesian", ()), bayesian_unadjusted=views.get("bayesian_unadjusted", ()),
        guardrail=guardrail,
        error=_input_error(data, (r for slot, r in results.items() if slot.metric == i and slot.slice is None)),
        heterogeneity=_heterogeneity(data, i, results),
        day=spec.day,
    )


def _heterogeneity(data: ReadoutInput, i: int, results: dict[_Slot, stats.AnalysisResult]
                   ) -> tuple[HeterogeneityTest, ...]:
    """Per treatment and slice attribute, whether metric i's lift differs across the attribute's
    values: Cochran's Q over the fixed-horizon estimates of the values whose every variation has
    at least the minimum sample, corrected (Holm) over all attributes and treatments of the
    metric. Attributes in the stored order of the slices."""
    settings = data.settings
    mode, own = _heterogeneity_mode(settings), settings.own_type
    groups: dict[str, list[int]] = {}
    for g, part in enumerate(data.slices):
        groups.setdefault(part.attribute, []).append(g)
    treatments = [v.key for v in data.variations[1:]]
    family: list[tuple[str, stats.AttributeEstimates]] = []
    for k, variation in enumerate(treatments):
        for attribute, members in groups.items():
            values, estimates, errors = [], [], []
            for g in members:
                part = data.slices[g]
                found = results.get(_Slot(i, mode, own, g))
                c = found.comparisons[k] if found is not None and k < len(found.comparisons) else None
                usable = (c is not None and c.error is None
                          and min(part.sums.units, default=0) >= max(settings.min_sample_per_arm, 2))
                values.append(part.value)
                estimates.append(c.estimate if usable and c is not None else None)
                errors.append(c.standard_error if usable and c is not None else None)
            family.append((variation, stats.AttributeEstimates(attribute, tuple(values), tuple(estimates),
                                                              tuple(errors))))
    if not family:
        return ()
    tested = stats.heterogeneity_family([a for _, a in family], alpha=settings.alpha)
    return tuple(
        HeterogeneityTest(
            variation=variation, attribute=t.attribute, q=_finite(t.test.q) if t.test else None,
            degrees_of_freedom=t.test.degrees_of_freedom if t.test else 0,
            p_value=_finite(t.test.p_value) if t.test else None, p_value_adjusted=_finite(t.p_value_adjusted),
            i_squared=_finite(t.test.i_squared) if t.test else None, significant=t.significant,
            values=tuple(SliceDifference(value=v.value, difference=_finite(v.difference), p_value=_finite(v.p_value),
                                         p_value_adjusted=_finite(v.p_value_adjusted), differs=v.differs)
                         for v in t.values),
        )
        for (variation, _), t in zip(family, tested, strict=True)
    )


def _slice(data: ReadoutInput, g: int, results: dict[_Slot, stats.AnalysisResult]) -> SliceReadout:
    settings = data.settings
    part = data.slices[g]
    metrics: list[SliceMetric] = []
    for i, spec in enumerate(data.metrics):
        found = results.get(_Slot(i, settings.headline, settings.own_type, g))
        if found is None:
            continue
        metrics.append(SliceMetric(
            key=spec.key,
            variations=tuple(SliceArm(key=v.name, users=v.users, mean=_finite(v.mean)) for v in found.variations),
            comparisons=tuple(_comparison(c, spec.direction) for c in found.comparisons),
            error=_input_error(data, (found,)),
        ))
    return SliceReadout(attribute=part.attribute, value=part.value, units=part.sums.units, metrics=tuple(metrics))


def _input_error(data: ReadoutInput, results: Iterable[stats.AnalysisResult | None]) -> str | None:
    """What is wrong with the sums of the first refused analysis among `results`, in words that
    name the variation by its key; None when every one was analysed."""
    for result in results:
        if result is None or result.input_error is None:
            continue
        found = _FIELD_ERROR.match(result.input_error)
        if found is None:
            return result.input_error
        k, field, message = int(found[1]), found[2], found[3]
        arm = data.variations[k].key if k < len(data.variations) else f"variation {k + 1}"
        return f"{arm}: {field} {message}"
    return None


def _failed_analyses(metrics: Sequence[MetricReadout], slices: Sequence[SliceReadout]) -> list[str]:
    """Each metric or metric-in-slice whose analysis was refused, with what is wrong."""
    failed = [f"{m.key}: {m.error}" for m in metrics if m.error]
    failed += [f"{m.key} ({s.attribute} = {s.value}): {m.error}" for s in slices for m in s.metrics if m.error]
    return failed


def _sums(data: ReadoutInput) -> ReadoutSums:
    metrics: dict[str, MetricSums] = {}
    for i, spec in enumerate(data.metrics):
        slices: dict[str, dict[str, tuple[stats.VariationData, ...]]] = {}
        # Slices are analysed (and so recorded) only when there is a treatment to compare.
        if len(data.variations) >= 2:
            for part in data.slices:
                slices.setdefault(part.attribute, {})[part.value] = part.sums.metrics[i]
        metrics[spec.key] = MetricSums(overall=data.overall.metrics[i], slices=slices or None)
    look = data.look
    return ReadoutSums(analysis_end=look.analysis_end.isoformat(), phase=look.phase, caps=dict(look.caps),
                       rollup=look.rollup, metrics=metrics)


def _comparison(c: stats.Comparison, direction: str) -> Comparison:
    chance = _finite(c.chance_to_win)
    risk = c.risk
    if risk is not None:
        # The engine's losses are of a higher value being missed and of a lower one being
        # chosen; for a lower-is-better metric the two swap.
        control, treatment = (risk[1], risk[0]) if direction == "lower" else risk
        finite_control, finite_treatment = _finite(control), _finite(treatment)
        risk = None if finite_control is None or finite_treatment is None else (finite_control, finite_treatment)
    if chance is not None and direction == "lower":
        chance = 1.0 - chance
    return Comparison(
        variation=c.variation, difference_type=c.difference_type, estimate=_finite(c.estimate),
        ci_low=_finite(c.ci_low), ci_high=_finite(c.ci_high), p_value=_finite(c.p_value), chance_to_win=chance,
        cuped_applied=bool(c.cuped_applied), variance_reduction=_finite(c.variance_reduction),
        sequential=bool(c.sequential), error=c.error, risk=risk,
    )


def _with(c: Comparison, *, p_value_adjusted: float | None, significant: bool) -> Comparison:
    return dataclasses.replace(c, p_value_adjusted=p_value_adjusted, significant=significant)


def _harm(direction: str, c: stats.Comparison) -> str:
    """ok, warning or failing: how a guardrail comparison looks for the metric's direction."""
    if c.estimate is None:
        return "ok"
    higher = direction == "higher"
    worse = c.estimate < 0 if higher else c.estimate > 0
    significant = (c.ci_high is not None and c.ci_high < 0) if higher else (c.ci_low is not None and c.ci_low > 0)
    if significant:
        return "failing"
    # The chance of being better: the engine's chance of a higher value, flipped for lower-is-better.
    chance = c.chance_to_win
    if chance is not None and direction == "lower":
        chance = 1.0 - chance
    likely = chance is None or chance <= GUARDRAIL_WARNING_CHANCE
    return "warning" if worse and likely else "ok"


def _worst(statuses: Iterable[str]) -> str:
    worst = "ok"
    for status in statuses:
        if SEVERITY[status] > SEVERITY[worst]:
            worst = status
    return worst


def _finite(value: float | None) -> float | None:
    """Finite or None: the engine may give inf for a degenerate slice, which JSON cannot hold."""
    return value if value is None or math.isfinite(value) else None
