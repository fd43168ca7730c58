"""ORM rows -> the readout's plain specifications (what `readout_sql` and `stats` take)."""

from __future__ import annotations

from experiments.models import Experiment, Metric, Phase
from experiments.readout_sql import MetricSpec, ReadoutSpec


def metric_spec(metric: Metric) -> MetricSpec:
    return MetricSpec(
        key=metric.key,
        kind=metric.kind,
        event=metric.event_name,
        denominator=metric.denominator_event,
        steps=tuple(str(s) for s in metric.funnel_steps or []),
        retention_day=metric.retention_day,
        window_hours=metric.window_hours,
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
