"""Holdouts as the management API shows them: the holdout, where it keeps units on an earlier
value, the experiments in its scope, and per environment its readout with the latest results
(per metric and treatment: the estimate, its interval, the p-value or the chance to win)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from experiments.holdout_analyses import holdout_analysis_document
from experiments.holdout_readout import holdout_snapshot_readout
from experiments.holdouts import holdout_rules
from experiments.models import Experiment, HoldoutAnalysis, HoldoutSnapshot
from experiments.readout import Comparison, Readout
from traffic.documents import holdout_document
from traffic.models import Holdout

__all__ = ["holdout_api_document", "holdout_list", "holdout_snapshot_document"]


def holdout_list(*, status: str | None = None, search: str | None = None) -> QuerySet[Holdout]:
    """Holdouts by key; `status` active or ended, `search` in the key and the name."""
    found = Holdout.objects.order_by("key")
    if status == "active":
        found = found.filter(ended_at__isnull=True)
    elif status == "ended":
        found = found.filter(ended_at__isnull=False)
    if search:
        from django.db.models import Q

        found = found.filter(Q(key__icontains=search) | Q(name__icontains=search))
    return found


def _moment(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _comparison(c: Comparison) -> dict[str, Any]:
    return {"variation": c.variation, "difference_type": c.difference_type, "estimate": c.estimate,
            "ci_low": c.ci_low, "ci_high": c.ci_high, "p_value": c.p_value, "chance_to_win": c.chance_to_win,
            "risk": list(c.risk) if c.risk is not None else None, "significant": c.significant,
            "error": c.error}


def _results(readout: Readout) -> list[dict[str, Any]]:
    return [{
        "metric": m.key, "name": m.name, "role": m.role, "direction": m.direction, "analysis": m.headline,
        "arms": [{"variation": a.key, "units": a.users, "mean": a.mean} for a in m.variations],
        "comparisons": [_comparison(c) for c in m.comparisons], "error": m.error,
    } for m in readout.metrics]


def holdout_snapshot_document(snapshot: HoldoutSnapshot, *, results: bool = True) -> dict[str, Any]:
    """One readout run: its facts and, when it succeeded, the results per metric."""
    out: dict[str, Any] = {
        "id": snapshot.pk, "status": snapshot.status, "trigger": snapshot.trigger,
        "requested_by": snapshot.requested_by, "created_at": _moment(snapshot.created_at),
        "started_at": _moment(snapshot.started_at), "finished_at": _moment(snapshot.finished_at),
        "analysis_end": _moment(snapshot.analysis_end), "attempts": snapshot.attempts, "units": snapshot.units,
        "error_code": snapshot.error_code, "error": snapshot.error,
    }
    if results:
        readout = holdout_snapshot_readout(snapshot) if snapshot.status == HoldoutSnapshot.Status.SUCCESS else None
        out["srm_p_value"] = readout.srm_p_value if readout is not None else None
        out["metrics"] = _results(readout) if readout is not None else []
    return out


def _readout_document(analysis: HoldoutAnalysis) -> dict[str, Any]:
    last = analysis.snapshots.order_by("-created_at", "-pk").first()
    success = analysis.snapshots.filter(status=HoldoutSnapshot.Status.SUCCESS).order_by("-created_at", "-pk").first()
    pending = last is not None and last.status in (HoldoutSnapshot.Status.QUEUED, HoldoutSnapshot.Status.RUNNING)
    return {
        **holdout_analysis_document(analysis),
        "latest": holdout_snapshot_document(last, results=False) if last is not None else None,
        "latest_success": holdout_snapshot_document(success) if success is not None else None,
        "pending": pending,
    }


def holdout_api_document(holdout: Holdout) -> dict[str, Any]:
    """The holdout with its status, the flags it holds, its experiments and its readouts."""
    experiments = Experiment.objects.filter(holdout=holdout).select_related("environment").order_by("key")
    analyses = HoldoutAnalysis.objects.filter(holdout=holdout).select_related("holdout", "environment").order_by(
        "environment__key")
    return {
        **holdout_document(holdout),
        "status": "active" if holdout.ended_at is None else "ended",
        "created_at": _moment(holdout.created_at),
        "held_flags": holdout_rules(holdout),
        "experiments": [{"key": e.key, "environment": e.environment.key, "status": e.status,
                         "decision": e.decision, "shipped_variation": e.shipped_variation} for e in experiments],
        "readouts": [_readout_document(a) for a in analyses],
    }
