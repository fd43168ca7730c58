"""Holdout readouts: the holdout's population (the exposures its tracking rule reported, held
out or released) -> the readout SQL's sums -> the readout contract -> a stored HoldoutSnapshot.

The same path as an experiment's readout (`experiments.readout_jobs`), with a population of
two arms: `held-out` is the control and `released` the treatment, so a metric's lift is what
the experiences shipped in the holdout's scope add together. The analysis settings (fixed,
CUPED, sequential; alpha, difference type) are the analysis's own. Queued by the Celery beat
schedule of experiment readouts (`holdouts_refresh_active`) or on request; one readout per
analysis runs at a time, under an advisory lock. The rollup is rebuilt in full each time.

Leases, heartbeats, retries and the sweep are the experiment readouts' own
(`experiments.readout_jobs`, `experiments.readout_sweep`): a worker killed mid-readout leaves
a lease that runs out, the sweep marks the run failed (`worker_lost`) and queues it again, and a
readout queued while the broker was down is sent by the sweep. A failing readout fails alone.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import psycopg
from django.db import transaction
from django.utils import timezone

from experiments import queue, readout_sql
from experiments.mappers import metric_spec, readout_input
from experiments.models import Experiment, ExperimentMetric, HoldoutAnalysis, HoldoutSnapshot, Variation
from experiments.readout import Readout, Rollup, readout_compute, readout_from_json, readout_to_json
from experiments.readout_jobs import (
    RESEND_AFTER,
    ReadoutBusy,
    ReadoutKind,
    each_queued,
    lease_claim,
    leased_run,
    snapshot_mark,
    snapshot_sent,
)
from experiments.readout_spec import ReadoutSpec
from traffic.assignment.bucketing import HOLDOUT_VARIATIONS

__all__ = ["HOLDOUT_READOUTS", "HoldoutBusy", "holdout_mark", "holdout_readout_run", "holdout_readout_send",
           "holdout_refresh", "holdout_snapshot_readout", "holdouts_refresh_active"]

logger = logging.getLogger(__name__)

LOCK_CLASS = 0x5EAF
VARIATION_NAMES = ("Held out", "Everyone else")


class HoldoutBusy(ReadoutBusy):
    """Another readout of the same holdout analysis holds the lock."""


def holdout_refresh(*, analysis: HoldoutAnalysis, trigger: str = "api", requested_by: str = "") -> HoldoutSnapshot:
    """Queue a readout (sent once the transaction commits); one already queued is returned
    (and sent again when it has waited too long: the broker was probably down)."""
    now = timezone.now()
    pending = analysis.snapshots.filter(status=HoldoutSnapshot.Status.QUEUED,
                                        created_at__gte=now - timedelta(minutes=30)).first()
    if pending is not None:
        if pending.created_at < now - RESEND_AFTER:
            _enqueue(pending.pk)
        return pending
    snapshot = HoldoutSnapshot.objects.create(analysis=analysis, trigger=trigger, requested_by=requested_by)
    _enqueue(snapshot.pk)
    return snapshot


def _enqueue(snapshot_id: int) -> None:
    # robust: a broker outage leaves the snapshot queued and unsent; the sweep sends it later.
    transaction.on_commit(lambda: holdout_readout_send(snapshot_id), robust=True)


def holdout_readout_send(snapshot_id: int) -> None:
    """Hand a queued holdout readout to the broker and note when it took it (raises when it is down)."""
    queue.holdout_readout_send(snapshot_id)
    snapshot_sent(HoldoutSnapshot, snapshot_id)


def holdouts_refresh_active() -> int:
    """Queue a readout of every analysis whose holdout still holds (the beat schedule calls this).
    One analysis that cannot be queued does not keep the others from being queued."""
    return each_queued(
        HoldoutAnalysis.objects.filter(holdout__ended_at__isnull=True),
        lambda analysis: holdout_refresh(analysis=analysis, trigger="schedule"),
        "holdout analysis",
    )


def holdout_mark(*, snapshot_id: int, status: str, error: str = "", error_code: str = "") -> None:
    """Record how a holdout readout ended when it did not produce results (failed, skipped, requeued)."""
    snapshot_mark(HoldoutSnapshot, snapshot_id=snapshot_id, status=status, error=error, error_code=error_code)


def holdout_readout_run(*, snapshot_id: int) -> HoldoutSnapshot | None:
    """Compute and store one holdout readout (None when it is finished or gone), leased and
    locked as experiment readouts are (`experiments.readout_jobs.leased_run`).

    Raises `HoldoutBusy` when another readout of the analysis is running, and database
    errors as they come (the task retries both); other errors mark this snapshot failed."""
    snapshot = lease_claim(HoldoutSnapshot, snapshot_id)
    if snapshot is None:
        return None
    claimed = snapshot
    try:
        return leased_run(snapshot, lambda cur, _: _compute(cur, claimed), prepare=lambda: None,
                          lock=(LOCK_CLASS, snapshot.analysis_id % (2**31)),
                          what=f"holdout analysis {snapshot.analysis_id}", mark=holdout_mark)
    except ReadoutBusy as exc:
        raise HoldoutBusy(str(exc)) from exc


def _requeue(lost: HoldoutSnapshot) -> HoldoutSnapshot:
    return holdout_refresh(analysis=lost.analysis, trigger=lost.trigger, requested_by=lost.requested_by)


HOLDOUT_READOUTS = ReadoutKind(
    name="holdout", model=HoldoutSnapshot, group=("analysis_id",),
    send=lambda snapshot_id, group: holdout_readout_send(snapshot_id), requeue=_requeue, mark=holdout_mark,
)


def _compute(cur: psycopg.Cursor[Any], snapshot: HoldoutSnapshot) -> None:
    analysis = HoldoutAnalysis.objects.select_related("holdout", "environment").get(pk=snapshot.analysis_id)
    holdout = analysis.holdout
    links = [ExperimentMetric(metric=link.metric, role=link.role, position=link.position)
             for link in analysis.links.select_related("metric").order_by("position")]
    if not links:
        raise ValueError("The holdout readout has no metrics.")
    share = float(holdout.share)
    weights = [share, 1.0 - share]
    variations = [Variation(key=key, name=name, weight=weight)
                  for key, name, weight in zip(HOLDOUT_VARIATIONS, VARIATION_NAMES, weights, strict=True)]
    # The analysis settings as the readout contract reads them from an experiment (not stored).
    settings = Experiment(alpha=analysis.alpha, difference_type=analysis.difference_type,
                          sequential=analysis.sequential, cuped=analysis.cuped,
                          cuped_lookback_days=analysis.cuped_lookback_days, correction="none", min_sample_per_arm=100)
    spec = ReadoutSpec(phase_id=analysis.phase_key, metrics=tuple(metric_spec(link.metric) for link in links),
                       lookback_hours=24 * analysis.cuped_lookback_days if analysis.cuped else 0)
    analysis_end = holdout.ended_at or timezone.now()
    rollup = readout_sql.rollup_rebuild(cur, spec)
    caps = readout_sql.percentile_caps(cur, spec, analysis_end)
    rows = readout_sql.aggregate(cur, spec, caps=caps, analysis_end=analysis_end)
    readout = readout_compute(readout_input(
        experiment=settings, variations=variations, weights=weights, links=links, rows=rows, caps=caps,
        slice_attributes=(), analysis_end=analysis_end, phase_number=1,
        rollup=Rollup(mode=rollup.mode, units_recomputed=rollup.units_recomputed),
        multiple_exposure_units=readout_sql.multiple_exposures(cur, analysis.phase_key),
    ))
    snapshot.analysis_end = analysis_end
    snapshot.units = sum(row.units for row in rows)
    snapshot.readout = readout_to_json(readout)


def holdout_snapshot_readout(snapshot: HoldoutSnapshot) -> Readout:
    """The readout a holdout snapshot stores (empty for a run that produced none)."""
    return readout_from_json(snapshot.readout or {})
