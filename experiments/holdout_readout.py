"""Holdout readouts: the holdout's population (the exposures its tracking rule reported, held
out or released) -> the readout SQL's sums -> the readout contract -> a stored HoldoutSnapshot.

The same path as an experiment's readout (`experiments.readout_jobs`), with a population of
two arms: `held-out` is the control and `released` the treatment, so a metric's lift is what
the experiences shipped in the holdout's scope add together. The analysis settings (fixed,
CUPED, sequential; alpha, difference type) are the analysis's own. Queued by the Celery beat
schedule of experiment readouts (`holdouts_refresh_active`) or on request; one readout per
analysis runs at a time, under an advisory lock. The rollup is rebuilt in full each time.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import psycopg
from django.db import connection, transaction
from django.utils import timezone

from experiments import queue, readout_sql
from experiments.mappers import metric_spec, readout_input
from experiments.models import Experiment, ExperimentMetric, HoldoutAnalysis, HoldoutSnapshot, Variation
from experiments.readout import Readout, Rollup, readout_compute, readout_from_json, readout_to_json
from experiments.readout_spec import ReadoutSpec
from traffic.assignment.bucketing import HOLDOUT_VARIATIONS

__all__ = ["HoldoutBusy", "holdout_readout_run", "holdout_refresh", "holdout_snapshot_readout",
           "holdouts_refresh_active"]

logger = logging.getLogger(__name__)

LOCK_CLASS = 0x5EAF
VARIATION_NAMES = ("Held out", "Everyone else")


class HoldoutBusy(Exception):
    """Another readout of the same holdout analysis holds the lock."""


def holdout_refresh(*, analysis: HoldoutAnalysis, trigger: str = "api", requested_by: str = "") -> HoldoutSnapshot:
    """Queue a readout (sent once the transaction commits); one already queued is returned."""
    pending = analysis.snapshots.filter(status=HoldoutSnapshot.Status.QUEUED,
                                        created_at__gte=timezone.now() - timedelta(minutes=30)).first()
    if pending is not None:
        return pending
    snapshot = HoldoutSnapshot.objects.create(analysis=analysis, trigger=trigger, requested_by=requested_by)
    transaction.on_commit(lambda: queue.holdout_readout_send(snapshot.pk), robust=True)
    return snapshot


def holdouts_refresh_active() -> int:
    """Queue a readout of every analysis whose holdout still holds (the beat schedule calls this)."""
    count = 0
    for analysis in HoldoutAnalysis.objects.filter(holdout__ended_at__isnull=True):
        with transaction.atomic():
            holdout_refresh(analysis=analysis, trigger="schedule")
        count += 1
    return count


def _claim(snapshot_id: int) -> HoldoutSnapshot | None:
    with transaction.atomic():
        snapshot = HoldoutSnapshot.objects.select_for_update().filter(pk=snapshot_id).first()
        if snapshot is None or snapshot.status != HoldoutSnapshot.Status.QUEUED:
            return None
        snapshot.status = HoldoutSnapshot.Status.RUNNING
        snapshot.started_at = timezone.now()
        snapshot.save(update_fields=["status", "started_at"])
        return snapshot


def holdout_readout_run(*, snapshot_id: int) -> HoldoutSnapshot | None:
    """Compute and store one queued holdout readout (None when it is not queued any more).

    Raises `HoldoutBusy` when another readout of the analysis is running, and database
    errors as they come (the task retries both); other errors mark the snapshot failed."""
    snapshot = _claim(snapshot_id)
    if snapshot is None:
        return None
    started = time.monotonic()
    try:
        with transaction.atomic():
            connection.ensure_connection()
            raw = connection.connection
            assert raw is not None
            with psycopg.Cursor(raw) as cur:
                cur.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", (LOCK_CLASS, snapshot.analysis_id % (2**31)))
                row = cur.fetchone()
                if row is None or not row[0]:
                    raise HoldoutBusy(f"Another readout of holdout analysis {snapshot.analysis_id} is running.")
                _compute(cur, snapshot)
            snapshot.status = HoldoutSnapshot.Status.SUCCESS
            snapshot.finished_at = timezone.now()
            snapshot.duration_ms = int((time.monotonic() - started) * 1000)
            snapshot.save()
    except HoldoutBusy:
        HoldoutSnapshot.objects.filter(pk=snapshot.pk).update(status=HoldoutSnapshot.Status.QUEUED)
        raise
    except psycopg.OperationalError:
        HoldoutSnapshot.objects.filter(pk=snapshot.pk).update(status=HoldoutSnapshot.Status.QUEUED)
        raise
    except Exception as exc:
        logger.exception("Readout %s of holdout analysis %s failed.", snapshot.pk, snapshot.analysis_id)
        HoldoutSnapshot.objects.filter(pk=snapshot.pk).update(
            status=HoldoutSnapshot.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:4000],
            error_code="readout_error", finished_at=timezone.now())
        snapshot.refresh_from_db()
    return snapshot


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
