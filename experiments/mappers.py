"""ORM rows -> the readout's plain values: what `readout_sql` and the readout contract take,
and the stored snapshot's readout."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import stats
from experiments import readout_sql
from experiments.models import Experiment, ExperimentMetric, Metric, Phase, ResultSnapshot, Variation
from experiments.readout import (
    READOUT_FIELDS,
    AnalysisSettings,
    GroupSums,
    Look,
    MetricDescription,
    Readout,
    ReadoutInput,
    Rollup,
    SliceSums,
    VariationSpec,
    readout_from_json,
)
from experiments.readout_sql import AggregateRow, MetricSpec, ReadoutSpec

# Slices with more distinct values than this keep the largest and merge the rest into "(other)".
MAX_SLICE_VALUES = 20
OTHER = "(other)"
NONE = "(none)"
# Sums only CUPED reads: left out when the experiment does not use CUPED or the arm is empty.
COVARIATE_SUMS = (
    "covariate_sum", "covariate_sum_squares", "main_covariate_sum_product", "denominator_pre_sum",
    "denominator_pre_sum_squares", "main_post_denominator_pre_sum_product", "main_pre_denominator_post_sum_product",
    "main_pre_denominator_pre_sum_product", "denominator_post_denominator_pre_sum_product",
)


def metric_spec(metric: Metric) -> MetricSpec:
    return MetricSpec(
        key=metric.key,
        kind=metric.kind,
        event=metric.event_name,
        denominator=metric.denominator_event,
        steps=tuple(str(s) for s in metric.funnel_steps or []),
        retention_day=metric.retention_day,
        window_hours=metric.window_hours,
        ltv_day=metric.ltv_day,
        capping=metric.capping,
        capping_value=metric.capping_value,
    )


def readout_spec(experiment: Experiment, phase: Phase, metrics: list[Metric]) -> ReadoutSpec:
    return ReadoutSpec(
        phase_id=phase.pk,
        metrics=tuple(metric_spec(m) for m in metrics),
        lookback_hours=24 * experiment.cuped_lookback_days if experiment.cuped else 0,
        slice_attributes=tuple(str(a) for a in experiment.slice_attributes or []),
    )


def analysis_settings(experiment: Experiment, weights: Sequence[float]) -> AnalysisSettings:
    return AnalysisSettings(
        alpha=experiment.alpha, difference_type=experiment.difference_type, sequential=experiment.sequential,
        sequential_tuning=experiment.sequential_tuning, cuped=experiment.cuped,
        cuped_lookback_days=experiment.cuped_lookback_days, correction=experiment.correction,
        min_sample_per_arm=experiment.min_sample_per_arm, weights=tuple(float(w) for w in weights),
        engine=experiment.stats_engine,
        prior_mean=experiment.prior_mean if experiment.prior_enabled else None,
        prior_stddev=experiment.prior_stddev if experiment.prior_enabled else None,
    )


def readout_metric(link: ExperimentMetric, caps: dict[str, float | None]) -> MetricDescription:
    m = link.metric
    if m.capping == Metric.Capping.PERCENTILE:
        cap = caps.get(m.key)
    else:
        cap = m.capping_value if m.capping == Metric.Capping.ABSOLUTE else None
    day = m.ltv_day if m.kind == Metric.Kind.LTV else m.retention_day if m.kind == Metric.Kind.RETENTION else None
    return MetricDescription(key=m.key, name=m.name or m.key, kind=m.kind, role=link.role, direction=m.direction,
                             cap=cap, day=day)


def readout_input(
    *, experiment: Experiment, variations: Sequence[Variation], weights: Sequence[float],
    links: Sequence[ExperimentMetric], rows: Sequence[AggregateRow], caps: dict[str, float | None],
    slice_attributes: Sequence[str], analysis_end: datetime, phase_number: int, rollup: Rollup | None = None,
    multiple_exposure_units: int = 0,
) -> ReadoutInput:
    """The readout's input from the aggregate's rows (one per variation and combination of
    slice values): summed overall and per slice value, as `stats` takes them."""
    n = len(variations)
    columns = [readout_sql.metric_columns(link.metric.kind) for link in links]
    slices = [
        SliceSums(attribute, label, _group_sums(rows, n, columns, experiment.cuped, variations, keep))
        for attribute, label, keep in (_slice_groups(rows, slice_attributes) if rows else [])
    ]
    return ReadoutInput(
        variations=tuple(VariationSpec(key=v.key, name=v.name, weight=v.weight) for v in variations),
        metrics=tuple(readout_metric(link, caps) for link in links),
        settings=analysis_settings(experiment, weights),
        overall=_group_sums(rows, n, columns, experiment.cuped, variations, None),
        look=Look(analysis_end=analysis_end, phase=phase_number, caps=dict(caps), rollup=rollup),
        slices=tuple(slices),
        multiple_exposure_units=multiple_exposure_units,
    )


def snapshot_readout(snapshot: ResultSnapshot, fields: Sequence[str] = READOUT_FIELDS) -> Readout:
    """The readout a snapshot stores (empty for a run that produced none), or the part of it in
    `fields` (the columns a query loaded)."""
    return readout_from_json({name: getattr(snapshot, name) for name in fields})


# Rows to sums -----------------------------------------------------------------------------------

_Keep = Callable[[AggregateRow], bool]


def _group_sums(rows: Sequence[AggregateRow], n: int, columns: Sequence[Sequence[str]], covariate: bool,
                variations: Sequence[Variation], keep: _Keep | None) -> GroupSums:
    kept = [row for row in rows if (keep is None or keep(row)) and 0 <= row.variation < n]
    units = [0] * n
    for row in kept:
        units[row.variation] += row.units
    metrics = tuple(
        tuple(_variation_data(variations[v].key, names, totals, covariate)
              for v, totals in enumerate(_totals(kept, n, i, len(names))))
        for i, names in enumerate(columns)
    )
    return GroupSums(units=tuple(units), metrics=metrics)


def _totals(rows: Sequence[AggregateRow], n: int, metric: int, width: int) -> list[list[float | None]]:
    """Sum the per-combination sums into one row per variation; None where every sum is NULL."""
    out = [[0.0] * width for _ in range(n)]
    missing = [[False] * width for _ in range(n)]
    for row in rows:
        for j, value in enumerate(row.sums[metric]):
            if value is None:
                missing[row.variation][j] = True
            else:
                out[row.variation][j] += value
    return [[None if missing[v][j] and out[v][j] == 0 else out[v][j] for j in range(width)] for v in range(n)]


def _variation_data(name: str, columns: Sequence[str], values: Sequence[float | None],
                    covariate: bool) -> stats.VariationData:
    # A sum that is not a finite number (a NaN stored in a row) stays what it is: the analysis
    # that reads it is refused, on its own row, saying so, instead of reading it as missing or 0.
    data: dict[str, Any] = {
        column: None if value is None else float(value) for column, value in zip(columns, values, strict=True)
    }
    users_sum = data.pop("users")
    users = int(users_sum) if users_sum is not None and math.isfinite(users_sum) else 0
    if users == 0 or not covariate:
        for name_ in COVARIATE_SUMS:
            data.pop(name_, None)
    main_sum = data.pop("main_sum")
    main_sum = 0.0 if main_sum is None else main_sum
    return stats.VariationData(name=name, users=users, main_sum=main_sum, **data)


def _label(row: AggregateRow, k: int) -> str:
    value = row.slices[k] if k < len(row.slices) else None
    return NONE if value is None else str(value)


def _slice_groups(rows: Sequence[AggregateRow], attributes: Sequence[str]) -> list[tuple[str, str, _Keep]]:
    """(attribute, value, row filter) for every slice worth showing: per attribute, its largest
    values, and the rest together as "(other)"."""
    groups: list[tuple[str, str, _Keep]] = []
    for k, attribute in enumerate(attributes):
        sizes: dict[str, float] = {}
        for row in rows:
            label = _label(row, k)
            sizes[label] = sizes.get(label, 0.0) + row.units
        ordered = sorted(sizes, key=lambda v: -sizes[v])
        kept = set(ordered[:MAX_SLICE_VALUES])
        groups.extend((attribute, label, _inside(k, {label})) for label in ordered[:MAX_SLICE_VALUES])
        if len(ordered) > MAX_SLICE_VALUES:
            groups.append((attribute, OTHER, _outside(k, kept)))
    return groups


def _inside(k: int, labels: set[str]) -> _Keep:
    return lambda row: _label(row, k) in labels


def _outside(k: int, labels: set[str]) -> _Keep:
    return lambda row: _label(row, k) not in labels
