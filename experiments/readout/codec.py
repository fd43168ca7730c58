"""A `Readout` to and from its stored JSON document.

The document has one key per result column of a stored snapshot (`READOUT_FIELDS`). Writing
gives the current shape (`SCHEMA_VERSION`); reading accepts every stored version (`legacy`)
and any part of a document, as the result pages select them: a missing key reads as empty,
a malformed value as missing. Optional keys are written only where the readout has them, so
that reading and writing a current document gives it back unchanged:
- a metric's `variations` and analyses, only where they hold something (a metric is analysed
  with two or more variations; an older readout stored fewer analyses);
- `guardrail`, only for guardrail metrics;
- `p_value_adjusted`, only in the headline list of metrics in the correction's family;
- `significant`, only in the headline list;
- `error` of a metric, or of a metric in a slice, only where the statistics engine refused its
  sums (its comparisons then carry the error code `invalid_input`). Documents without it read
  as before: every analysis was computed. Readers that do not know the key still read the row
  right, from its comparisons' error code;
- `risk` of a comparison, only in Bayesian analyses;
- `heterogeneity` of a metric, only where slices were tested;
- `day` of a metric, only for retention and LTV metrics (their day N).
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Mapping
from typing import Any

import stats
from experiments.readout import legacy
from experiments.readout.settings import MODES, AnalysisSettings
from experiments.readout.types import (
    SCHEMA_VERSION,
    ArmSummary,
    Comparison,
    HeterogeneityTest,
    MetricReadout,
    MetricSums,
    Readout,
    ReadoutSums,
    ReadoutWarning,
    Rollup,
    SliceArm,
    SliceDifference,
    SliceMetric,
    SliceReadout,
    VariationResult,
)

_SUM_FIELDS = tuple(f.name for f in dataclasses.fields(stats.VariationData))
_sums_of = operator.attrgetter(*_SUM_FIELDS)
# The sums a variation may lack (covariate and ratio sums).
_OPTIONAL_SUMS = frozenset(_SUM_FIELDS) - {"name", "users", "main_sum"}

# Writing ----------------------------------------------------------------------------------------


def readout_to_json(readout: Readout) -> dict[str, Any]:
    settings = readout.analysis
    return {
        "schema_version": SCHEMA_VERSION,
        "units": readout.units,
        "multiple_exposure_units": readout.multiple_exposure_units,
        "multiple_exposure_share": readout.multiple_exposure_share,
        "srm_p_value": readout.srm_p_value,
        "srm_warning": readout.srm_warning,
        # The snapshot column holds "" when there is no guardrail metric.
        "guardrail_status": readout.guardrail_status or "",
        "variations": [
            {"key": v.key, "name": v.name, "weight": v.weight, "units": v.units, "share": v.share}
            for v in readout.variations
        ],
        "metrics": [_metric_json(m, settings) for m in readout.metrics],
        "slices": [_slice_json(s) for s in readout.slices],
        "warnings": [{"code": w.code, "message": w.message} for w in readout.warnings],
        "settings": _settings_to_json(readout.settings) if readout.settings is not None else {},
        "inputs": _sums_json(readout.inputs) if readout.inputs is not None else {},
    }


def _settings_to_json(settings: AnalysisSettings) -> dict[str, Any]:
    return {
        "alpha": settings.alpha, "difference_type": settings.difference_type, "sequential": settings.sequential,
        "sequential_tuning": settings.sequential_tuning, "cuped": settings.cuped,
        "cuped_lookback_days": settings.cuped_lookback_days, "correction": settings.correction,
        "min_sample_per_arm": settings.min_sample_per_arm, "weights": list(settings.weights),
        "engine": settings.engine, "prior_mean": settings.prior_mean, "prior_stddev": settings.prior_stddev,
    }


def _comparison_json(c: Comparison) -> dict[str, Any]:
    out: dict[str, Any] = {
        "variation": c.variation, "difference_type": c.difference_type, "estimate": c.estimate, "ci_low": c.ci_low,
        "ci_high": c.ci_high, "p_value": c.p_value, "chance_to_win": c.chance_to_win,
        "cuped_applied": c.cuped_applied, "variance_reduction": c.variance_reduction, "sequential": c.sequential,
        "error": c.error,
    }
    if c.risk is not None:
        out["risk"] = list(c.risk)
    return out


def _heterogeneity_json(h: HeterogeneityTest) -> dict[str, Any]:
    return {
        "variation": h.variation, "attribute": h.attribute, "q": h.q, "degrees_of_freedom": h.degrees_of_freedom,
        "p_value": h.p_value, "p_value_adjusted": h.p_value_adjusted, "i_squared": h.i_squared,
        "significant": h.significant,
        "values": [{"value": v.value, "difference": v.difference, "p_value": v.p_value,
                    "p_value_adjusted": v.p_value_adjusted, "differs": v.differs} for v in h.values],
    }


def _metric_json(m: MetricReadout, settings: AnalysisSettings) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": m.key, "name": m.name, "kind": m.kind, "role": m.role, "direction": m.direction,
        "headline": m.headline, "cap": m.cap,
    }
    if m.variations:
        out["variations"] = [{"key": a.key, "users": a.users, "mean": a.mean, "stddev": a.stddev}
                             for a in m.variations]
    for mode in MODES:
        found = m.mode(mode)
        if found:
            out[mode] = [_comparison_json(c) for c in found]
    corrected = settings.corrects(m.role)
    headline = []
    for c in m.comparisons:
        doc = _comparison_json(c)
        if corrected:
            doc["p_value_adjusted"] = c.p_value_adjusted
        doc["significant"] = c.significant
        headline.append(doc)
    out["comparisons"] = headline
    if m.guardrail is not None:
        out["guardrail"] = m.guardrail
    if m.error is not None:
        out["error"] = m.error
    if m.heterogeneity:
        out["heterogeneity"] = [_heterogeneity_json(h) for h in m.heterogeneity]
    if m.day is not None:
        out["day"] = m.day
    return out


def _slice_json(s: SliceReadout) -> dict[str, Any]:
    return {
        "attribute": s.attribute, "value": s.value, "units": list(s.units),
        "metrics": [_slice_metric_json(m) for m in s.metrics],
    }


def _slice_metric_json(m: SliceMetric) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": m.key, "variations": [{"key": a.key, "users": a.users, "mean": a.mean} for a in m.variations],
        "comparisons": [_comparison_json(c) for c in m.comparisons],
    }
    if m.error is not None:
        out["error"] = m.error
    return out


def _arms_json(arms: tuple[stats.VariationData, ...]) -> list[dict[str, Any]]:
    """Sums as stored: the fields a variation has (covariate and ratio sums only where given).
    A sum that is not a finite number, which JSON cannot hold, is left out (its analysis was
    refused and its row says why)."""
    return [{name: value for name, value in zip(_SUM_FIELDS, _sums_of(a), strict=True)
             if value is not None and (type(value) is not float or math.isfinite(value))}
            for a in arms]


def _sums_json(sums: ReadoutSums) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for key, m in sums.metrics.items():
        entry: dict[str, Any] = {"overall": _arms_json(m.overall)}
        if m.slices is not None:
            entry["slices"] = {attribute: {value: _arms_json(arms) for value, arms in values.items()}
                               for attribute, values in m.slices.items()}
        metrics[key] = entry
    out: dict[str, Any] = {"analysis_end": sums.analysis_end, "phase": sums.phase, "caps": dict(sums.caps)}
    if sums.rollup is not None:
        out["rollup"] = {"mode": sums.rollup.mode, "units_recomputed": sums.rollup.units_recomputed}
    out["metrics"] = metrics
    return out


# Reading ----------------------------------------------------------------------------------------


def readout_from_json(doc: Mapping[str, Any]) -> Readout:
    version = legacy.document_version(doc)
    if version > SCHEMA_VERSION:
        # Written by a newer release: reading it as an older shape could show wrong numbers.
        raise ValueError(f"Readout document version {version} is newer than this code reads ({SCHEMA_VERSION}).")
    raw_settings = doc.get("settings")
    settings = _settings_from_json(raw_settings) if isinstance(raw_settings, Mapping) and raw_settings else None
    defaults = settings or AnalysisSettings()
    raw_inputs = doc.get("inputs")
    return Readout(
        schema_version=SCHEMA_VERSION,
        units=_int_or_none(doc.get("units")),
        multiple_exposure_units=_int_or_none(doc.get("multiple_exposure_units")),
        multiple_exposure_share=_float(doc.get("multiple_exposure_share")),
        srm_p_value=_float(doc.get("srm_p_value")),
        srm_warning=bool(doc.get("srm_warning")),
        guardrail_status=str(doc.get("guardrail_status") or "") or None,
        variations=tuple(
            VariationResult(key=str(v.get("key", "")), name=str(v.get("name") or v.get("key") or ""),
                            weight=_float(v.get("weight")), units=_int(v.get("units")), share=_float(v.get("share")))
            for v in _mappings(doc.get("variations"))
        ),
        metrics=tuple(_metric(m, defaults) for m in _mappings(doc.get("metrics"))),
        slices=tuple(_slice(s, defaults) for s in _mappings(doc.get("slices"))),
        warnings=tuple(ReadoutWarning(code=str(w.get("code", "")), message=str(w.get("message", "")))
                       for w in _mappings(doc.get("warnings"))),
        settings=settings,
        inputs=_sums(raw_inputs) if isinstance(raw_inputs, Mapping) and raw_inputs else None,
    )


def _settings_from_json(raw: Mapping[str, Any]) -> AnalysisSettings:
    defaults = AnalysisSettings()
    return AnalysisSettings(
        alpha=_float(raw.get("alpha")) or defaults.alpha,
        difference_type="absolute" if raw.get("difference_type") == "absolute" else "relative",
        sequential=bool(raw.get("sequential")),
        sequential_tuning=_float(raw.get("sequential_tuning")) or defaults.sequential_tuning,
        cuped=bool(raw.get("cuped")),
        cuped_lookback_days=_int(raw.get("cuped_lookback_days", defaults.cuped_lookback_days)),
        correction=str(raw.get("correction") or "none"),
        min_sample_per_arm=_int(raw.get("min_sample_per_arm")),
        weights=tuple(_float(w) or 0.0 for w in _list(raw.get("weights"))),
        engine="bayesian" if raw.get("engine") == "bayesian" else "frequentist",
        prior_mean=_float(raw.get("prior_mean")),
        prior_stddev=_float(raw.get("prior_stddev")),
    )


def _comparison_from_json(raw: Mapping[str, Any], default_type: str) -> Comparison:
    """One comparison; `default_type` for those stored before comparisons named their type."""
    significant = raw.get("significant")
    return Comparison(
        variation=str(raw.get("variation", "")),
        difference_type=str(raw.get("difference_type") or default_type),
        estimate=_float(raw.get("estimate")),
        ci_low=_float(raw.get("ci_low")),
        ci_high=_float(raw.get("ci_high")),
        p_value=_float(raw.get("p_value")),
        chance_to_win=_float(raw.get("chance_to_win")),
        cuped_applied=bool(raw.get("cuped_applied")),
        variance_reduction=_float(raw.get("variance_reduction")),
        sequential=bool(raw.get("sequential")),
        error=str(raw["error"]) if raw.get("error") else None,
        p_value_adjusted=_float(raw.get("p_value_adjusted")),
        significant=significant if isinstance(significant, bool) else None,
        risk=_pair(raw.get("risk")),
    )


def _pair(value: Any) -> tuple[float, float] | None:
    items = _list(value)
    if len(items) != 2:
        return None
    first, second = _float(items[0]), _float(items[1])
    return None if first is None or second is None else (first, second)


def _heterogeneity(raw: Mapping[str, Any]) -> HeterogeneityTest:
    return HeterogeneityTest(
        variation=str(raw.get("variation", "")),
        attribute=str(raw.get("attribute", "")),
        q=_float(raw.get("q")),
        degrees_of_freedom=_int(raw.get("degrees_of_freedom")),
        p_value=_float(raw.get("p_value")),
        p_value_adjusted=_float(raw.get("p_value_adjusted")),
        i_squared=_float(raw.get("i_squared")),
        significant=raw.get("significant") is True,
        values=tuple(
            SliceDifference(value=str(v.get("value", "")), difference=_float(v.get("difference")),
                            p_value=_float(v.get("p_value")), p_value_adjusted=_float(v.get("p_value_adjusted")),
                            differs=v.get("differs") is True)
            for v in _mappings(raw.get("values"))
        ),
    )


def _comparisons(raw: Any, default_type: str) -> tuple[Comparison, ...]:
    items = legacy.mode_items(raw, default_type) or ()
    return tuple(_comparison_from_json(c, dtype or default_type) for dtype, c in items)


def _metric(raw: Mapping[str, Any], settings: AnalysisSettings) -> MetricReadout:
    default_type = settings.own_type
    key = str(raw.get("key", ""))
    views = {mode: _comparisons(raw.get(mode), default_type) for mode in MODES}
    guardrail = raw.get("guardrail")
    return MetricReadout(
        key=key,
        name=str(raw.get("name") or key),
        kind=str(raw.get("kind", "")),
        role=str(raw.get("role", "secondary")),
        direction=str(raw.get("direction", "higher")),
        headline=str(raw.get("headline") or settings.headline),
        cap=_float(raw.get("cap")),
        day=_int_or_none(raw.get("day")),
        variations=tuple(
            ArmSummary(key=str(a.get("key") or a.get("name") or ""), users=_int(a.get("users")),
                       mean=_float(a.get("mean")), stddev=_float(a.get("stddev")))
            for a in _mappings(raw.get("variations"))
        ),
        fixed=views["fixed"],
        cuped=views["cuped"],
        sequential=views["sequential"],
        sequential_unadjusted=views["sequential_unadjusted"],
        bayesian=views["bayesian"],
        bayesian_unadjusted=views["bayesian_unadjusted"],
        comparisons=_comparisons(raw.get("comparisons"), default_type),
        guardrail=str(guardrail) if guardrail else None,
        error=_text_or_none(raw.get("error")),
        heterogeneity=tuple(_heterogeneity(h) for h in _mappings(raw.get("heterogeneity"))),
    )


def _slice(raw: Mapping[str, Any], settings: AnalysisSettings) -> SliceReadout:
    return SliceReadout(
        attribute=str(raw.get("attribute", "")),
        value=str(raw.get("value", "")),
        units=tuple(_int(u) for u in _list(raw.get("units"))),
        metrics=tuple(
            SliceMetric(
                key=str(m.get("key", "")),
                variations=tuple(SliceArm(key=str(a.get("key")), users=_int(a.get("users")), mean=_float(a.get("mean")))
                                 for a in _mappings(m.get("variations"))),
                comparisons=_comparisons(m.get("comparisons"), settings.own_type),
                error=_text_or_none(m.get("error")),
            )
            for m in _mappings(raw.get("metrics"))
        ),
    )


def _arms(raw: Any) -> tuple[stats.VariationData, ...]:
    arms = []
    for a in _mappings(raw):
        values: dict[str, Any] = {name: _float(value) for name, value in a.items() if name in _OPTIONAL_SUMS}
        arms.append(stats.VariationData(name=str(a.get("name", "")), users=_int(a.get("users")),
                                        main_sum=_float(a.get("main_sum")) or 0.0, **values))
    return tuple(arms)


def _sums(raw: Mapping[str, Any]) -> ReadoutSums:
    metrics: dict[str, MetricSums] = {}
    for key, entry in (raw.get("metrics") or {}).items():
        if not isinstance(entry, Mapping):
            continue
        slices = entry.get("slices")
        metrics[str(key)] = MetricSums(
            overall=_arms(entry.get("overall")),
            slices={str(attribute): {str(value): _arms(arms) for value, arms in values.items()}
                    for attribute, values in slices.items() if isinstance(values, Mapping)}
            if isinstance(slices, Mapping) else None,
        )
    rollup = raw.get("rollup")
    caps = raw.get("caps")
    return ReadoutSums(
        analysis_end=str(raw["analysis_end"]) if raw.get("analysis_end") else None,
        phase=_int_or_none(raw.get("phase")),
        caps={str(k): _float(v) for k, v in caps.items()} if isinstance(caps, Mapping) else {},
        rollup=Rollup(mode=str(rollup.get("mode", "")), units_recomputed=_int(rollup.get("units_recomputed")))
        if isinstance(rollup, Mapping) else None,
        metrics=metrics,
    )


def _float(value: Any) -> float | None:
    if type(value) is float:  # the common case, first
        return value if math.isfinite(value) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _float(value)
    return int(number) if number is not None else 0


def _int_or_none(value: Any) -> int | None:
    return None if _float(value) is None else _int(value)


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _mappings(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in _list(value) if isinstance(item, Mapping)]
