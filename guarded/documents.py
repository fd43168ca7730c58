"""A guarded rollout as the management API and the audit log show it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from guarded.models import GuardDecision, GuardedRollout


def next_step(rollout: GuardedRollout) -> dict[str, Any] | None:
    """The step after the current one and the earliest it may start (None when there is none)."""
    if rollout.status != GuardedRollout.Status.RUNNING or rollout.step + 1 >= len(rollout.steps):
        return None
    current = rollout.steps[rollout.step]
    earliest = rollout.step_started_at + timedelta(seconds=int(current["min_duration_seconds"]))
    return {"percent": float(rollout.steps[rollout.step + 1]["percent"]), "earliest_at": earliest.isoformat()}


def rollout_document(rollout: GuardedRollout) -> dict[str, Any]:
    return {
        "id": rollout.pk,
        "flag": rollout.flag.key,
        "environment": rollout.environment.key,
        "rule_id": rollout.rule_uid,
        "variant": rollout.variant,
        "control_variant": rollout.control_variant,
        "experiment": rollout.experiment.key,
        "status": rollout.status,
        "percent": rollout.percent,
        "step": rollout.step,
        "step_started_at": rollout.step_started_at.isoformat(),
        "next_step": next_step(rollout),
        "steps": list(rollout.steps),
        "guardrails": list(rollout.guardrails),
        "on_harm": rollout.on_harm,
        "alpha": rollout.alpha,
        "min_units": rollout.min_units,
        "reason": rollout.reason,
        "created_by": rollout.created_by,
        "finished_at": rollout.finished_at.isoformat() if rollout.finished_at else None,
    }


def decision_document(decision: GuardDecision) -> dict[str, Any]:
    return {
        "at": decision.at.isoformat(),
        "action": decision.action,
        "step": decision.step,
        "percent": decision.percent,
        "actor": decision.actor,
        "reason": decision.reason,
        "snapshot": decision.snapshot_id,
        "details": decision.details,
    }
