"""Experiments, metrics and result snapshots as the management API's JSON documents.

Result snapshots are typed values (dataclasses of plain data, readouts read through
`experiments.readout`), so that the results API's OpenAPI schema is generated from the same
types its JSON is written from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from experiments.mappers import snapshot_readout
from experiments.models import DataSource, Experiment, Metric, Phase, RampStep, ResultSnapshot
from experiments.readout import Readout, readout_to_json


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def metric_document(metric: Metric) -> dict[str, Any]:
    return {
        "key": metric.key,
        "name": metric.name,
        "description": metric.description,
        "kind": metric.kind,
        "event_name": metric.event_name,
        "denominator_event": metric.denominator_event,
        "funnel_steps": list(metric.funnel_steps or []),
        "retention_day": metric.retention_day,
        "ltv_day": metric.ltv_day,
        "window_hours": metric.window_hours,
        "capping": metric.capping,
        "capping_value": metric.capping_value,
        "direction": metric.direction,
        "owner": metric.owner,
        "archived": metric.archived_at is not None,
    }


def data_source_document(source: DataSource) -> dict[str, Any]:
    """A data source as the API shows it: its connection holds no secrets, only the names of
    the environment variables that do."""
    return {
        "key": source.key,
        "name": source.name,
        "description": source.description,
        "engine": source.engine,
        "connection": dict(source.connection or {}),
        "exposure_query": source.exposure_query,
        "event_query": source.event_query,
        "timeout_seconds": source.timeout_seconds,
        "exposure_export_table": source.exposure_export_table,
        "exposures_exported_until": _iso(source.exposures_exported_until),
        "experiments": sorted(source.experiments.values_list("key", flat=True)) if source.pk else [],
    }


def phase_document(phase: Phase) -> dict[str, Any]:
    return {
        "number": phase.number,
        "started_at": _iso(phase.started_at),
        "ended_at": _iso(phase.ended_at),
        "weights": list(phase.weights),
        "coverage": phase.coverage,
        "condition": phase.condition,
        "segments": list(phase.segments or []),
        "reason": phase.reason,
    }


def experiment_document(experiment: Experiment) -> dict[str, Any]:
    """The experiment as the API shows it and the audit log stores it."""
    return {
        "key": experiment.key,
        "name": experiment.name,
        "hypothesis": experiment.hypothesis,
        "description": experiment.description,
        "owner": experiment.owner,
        "target_mde": experiment.target_mde,
        "tags": list(experiment.tags or []),
        "environment": experiment.environment.key,
        "flag": experiment.flag.key,
        "status": experiment.status,
        "variations": [
            {"key": v.key, "name": v.name, "weight": v.weight} for v in experiment.variations.all()
        ],
        "metrics": [
            {"metric": em.metric.key, "role": em.role}
            for em in experiment.experiment_metrics.select_related("metric").all()
        ],
        "hash_attribute": experiment.hash_attribute,
        "seed": experiment.seed or experiment.key,
        "coverage": experiment.coverage,
        "condition": experiment.condition,
        "segments": list(experiment.segments or []),
        "layer": experiment.layer.key if experiment.layer else None,
        "range": (
            [experiment.range_start, experiment.range_end]
            if experiment.range_start is not None and experiment.range_end is not None
            else None
        ),
        "holdout": experiment.holdout.key if experiment.holdout else None,
        "data_source": experiment.data_source.key if experiment.data_source else None,
        "analysis": {
            "alpha": experiment.alpha,
            "difference_type": experiment.difference_type,
            "sequential": experiment.sequential,
            "sequential_tuning": experiment.sequential_tuning,
            "cuped": experiment.cuped,
            "cuped_lookback_days": experiment.cuped_lookback_days,
            "correction": experiment.correction,
            "min_sample_per_arm": experiment.min_sample_per_arm,
            "slice_attributes": list(experiment.slice_attributes or []),
            "stats_engine": experiment.stats_engine,
            "prior_enabled": experiment.prior_enabled,
            "prior_mean": experiment.prior_mean,
            "prior_stddev": experiment.prior_stddev,
        },
        "phases": [phase_document(p) for p in experiment.phases.all()],
        "rule_id": experiment.rule_uid or None,
        "decision": experiment.decision or None,
        "shipped_variation": experiment.shipped_variation or None,
        "decision_note": experiment.decision_note,
        "started_at": _iso(experiment.started_at),
        "stopped_at": _iso(experiment.stopped_at),
        "archived_at": _iso(experiment.archived_at),
    }


@dataclass(frozen=True, slots=True)
class HeadlinePoint:
    """One headline comparison of one metric at one readout."""

    metric: str
    variation: str
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None


@dataclass(frozen=True, slots=True)
class SnapshotSummary:
    """One point of the results history: enough for trend charts of the headline numbers."""

    id: int
    status: str
    trigger: str
    phase: int | None
    created_at: str | None
    finished_at: str | None
    analysis_end: str | None
    units: int | None
    srm_p_value: float | None
    guardrail_status: str | None
    error: str | None
    headline: tuple[HeadlinePoint, ...]

    def to_json(self) -> dict[str, Any]:
        return {**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)},
                "headline": [dataclasses.asdict(point) for point in self.headline]}


@dataclass(frozen=True, slots=True)
class SnapshotRun:
    """One readout run: when and how it ran, and how it ended."""

    id: int
    experiment: str
    phase: int | None
    status: str
    trigger: str
    requested_by: str
    attempts: int
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    duration_ms: int | None
    analysis_end: str | None
    rollup_mode: str | None
    error_code: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    """A readout run and the readout it stored (empty when it produced none)."""

    run: SnapshotRun
    readout: Readout

    def to_json(self) -> dict[str, Any]:
        """The run's facts and the readout's fields side by side, as the results API shows them."""
        # The API says null where the snapshot column holds "" (no guardrail metric).
        return {**dataclasses.asdict(self.run), **readout_to_json(self.readout),
                "guardrail_status": self.readout.guardrail_status}


@dataclass(frozen=True, slots=True)
class ExperimentResults:
    """An experiment's results in one phase: the latest readout, the latest successful one when
    the latest failed, a readout still waiting or running, and the history for trends."""

    experiment: str
    status: str
    phase: int | None
    latest: SnapshotRecord | None
    latest_success: SnapshotRecord | None
    pending: SnapshotSummary | None
    history: tuple[SnapshotSummary, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "status": self.status,
            "phase": self.phase,
            "latest": self.latest.to_json() if self.latest else None,
            "latest_success": self.latest_success.to_json() if self.latest_success else None,
            "pending": self.pending.to_json() if self.pending else None,
            "history": [s.to_json() for s in self.history],
        }


# The readout's columns a summary reads: a history can leave the others (the large ones) unloaded.
SUMMARY_FIELDS = ("schema_version", "units", "srm_p_value", "guardrail_status", "settings", "metrics")


def snapshot_summary(snapshot: ResultSnapshot) -> SnapshotSummary:
    readout = snapshot_readout(snapshot, SUMMARY_FIELDS)
    return SnapshotSummary(
        id=snapshot.pk,
        status=snapshot.status,
        trigger=snapshot.trigger,
        phase=snapshot.phase.number if snapshot.phase else None,
        created_at=_iso(snapshot.created_at),
        finished_at=_iso(snapshot.finished_at),
        analysis_end=_iso(snapshot.analysis_end),
        units=readout.units,
        srm_p_value=readout.srm_p_value,
        guardrail_status=readout.guardrail_status,
        error=snapshot.error or None,
        headline=tuple(
            HeadlinePoint(metric=m.key, variation=c.variation, estimate=c.estimate, ci_low=c.ci_low,
                          ci_high=c.ci_high, p_value=c.p_value)
            for m in readout.metrics for c in m.comparisons
        ),
    )


def snapshot_record(snapshot: ResultSnapshot) -> SnapshotRecord:
    run = SnapshotRun(
        id=snapshot.pk,
        experiment=snapshot.experiment.key,
        phase=snapshot.phase.number if snapshot.phase else None,
        status=snapshot.status,
        trigger=snapshot.trigger,
        requested_by=snapshot.requested_by,
        attempts=snapshot.attempts,
        created_at=_iso(snapshot.created_at),
        started_at=_iso(snapshot.started_at),
        finished_at=_iso(snapshot.finished_at),
        duration_ms=snapshot.duration_ms,
        analysis_end=_iso(snapshot.analysis_end),
        rollup_mode=snapshot.rollup_mode or None,
        error_code=snapshot.error_code or None,
        error=snapshot.error or None,
    )
    return SnapshotRecord(run=run, readout=snapshot_readout(snapshot))


def ramp_step_document(step: RampStep) -> dict[str, Any]:
    """A planned, applied, skipped or cancelled coverage raise."""
    return {
        "id": step.pk,
        "coverage": step.coverage,
        "apply_at": _iso(step.apply_at),
        "status": step.status,
        "applied_at": _iso(step.applied_at),
        "phase": step.phase_number,
        "note": step.note,
        "requested_by": step.requested_by,
    }


def ramp_document(experiment: Experiment, steps: Sequence[RampStep]) -> dict[str, Any]:
    """An experiment's assignment now and its ramp steps, as the ramp endpoint shows them."""
    phase = experiment.phases.filter(ended_at__isnull=True).order_by("-number").first()
    return {
        "experiment": experiment.key,
        "status": experiment.status,
        "coverage": experiment.coverage,
        "weights": [v.weight for v in experiment.variations.all()],
        "phase": phase.number if phase is not None else None,
        "steps": [ramp_step_document(s) for s in steps],
    }
