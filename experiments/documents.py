"""Experiments, metrics and result snapshots as the management API's JSON documents."""

from __future__ import annotations

from typing import Any

from experiments.models import Experiment, Metric, Phase, ResultSnapshot


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
        "window_hours": metric.window_hours,
        "capping": metric.capping,
        "capping_value": metric.capping_value,
        "direction": metric.direction,
        "owner": metric.owner,
        "archived": metric.archived_at is not None,
    }


def phase_document(phase: Phase) -> dict[str, Any]:
    return {
        "number": phase.number,
        "started_at": _iso(phase.started_at),
        "ended_at": _iso(phase.ended_at),
        "weights": list(phase.weights),
        "coverage": phase.coverage,
        "condition": phase.condition,
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
        "layer": experiment.layer.key if experiment.layer else None,
        "range": (
            [experiment.range_start, experiment.range_end]
            if experiment.range_start is not None and experiment.range_end is not None
            else None
        ),
        "holdout": experiment.holdout.key if experiment.holdout else None,
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


def snapshot_summary(snapshot: ResultSnapshot) -> dict[str, Any]:
    """One point of the results history: enough for trend charts of the headline numbers."""
    headline = []
    for metric in snapshot.metrics or []:
        for comparison in metric.get("comparisons", []):
            headline.append(
                {
                    "metric": metric["key"],
                    "variation": comparison["variation"],
                    "estimate": comparison.get("estimate"),
                    "ci_low": comparison.get("ci_low"),
                    "ci_high": comparison.get("ci_high"),
                    "p_value": comparison.get("p_value"),
                }
            )
    return {
        "id": snapshot.pk,
        "status": snapshot.status,
        "trigger": snapshot.trigger,
        "phase": snapshot.phase.number if snapshot.phase else None,
        "created_at": _iso(snapshot.created_at),
        "finished_at": _iso(snapshot.finished_at),
        "analysis_end": _iso(snapshot.analysis_end),
        "units": snapshot.units,
        "srm_p_value": snapshot.srm_p_value,
        "guardrail_status": snapshot.guardrail_status or None,
        "error": snapshot.error or None,
        "headline": headline,
    }


def snapshot_document(snapshot: ResultSnapshot) -> dict[str, Any]:
    return {
        "id": snapshot.pk,
        "experiment": snapshot.experiment.key,
        "phase": snapshot.phase.number if snapshot.phase else None,
        "status": snapshot.status,
        "trigger": snapshot.trigger,
        "requested_by": snapshot.requested_by,
        "attempts": snapshot.attempts,
        "created_at": _iso(snapshot.created_at),
        "started_at": _iso(snapshot.started_at),
        "finished_at": _iso(snapshot.finished_at),
        "duration_ms": snapshot.duration_ms,
        "analysis_end": _iso(snapshot.analysis_end),
        "rollup_mode": snapshot.rollup_mode or None,
        "error_code": snapshot.error_code or None,
        "error": snapshot.error or None,
        "units": snapshot.units,
        "multiple_exposure_units": snapshot.multiple_exposure_units,
        "multiple_exposure_share": snapshot.multiple_exposure_share,
        "srm_p_value": snapshot.srm_p_value,
        "srm_warning": snapshot.srm_warning,
        "guardrail_status": snapshot.guardrail_status or None,
        "variations": snapshot.variations,
        "metrics": snapshot.metrics,
        "slices": snapshot.slices,
        "warnings": snapshot.warnings,
        "settings": snapshot.settings,
        "inputs": snapshot.inputs,
    }
