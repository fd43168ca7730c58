"""Celery tasks: thin wrappers that take ids and call `experiments.readout_jobs` and
`experiments.readout_sweep` and `experiments.ramp`.

All are safe to run twice: a finished snapshot is not computed again, a scheduled refresh
does not queue a second readout while one is still queued, the sweep only acts on what
is still stale, and a ramp step is applied once (the row is locked and marked in the same
transaction). A readout task is acknowledged when it ends (`acks_late`), given back to the
broker when its worker process dies (`reject_on_worker_lost`), and stopped after
READOUT_TIME_LIMIT seconds (prefork workers); the broker's visibility timeout is longer.
Holdout readouts are tasks of the same kind, with the same retries (`_readout_task`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import psycopg
from celery import shared_task
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection

from experiments.exposure_export import exposures_export_all
from experiments.holdout_readout import HOLDOUT_READOUTS, holdout_readout_run, holdouts_refresh_active
from experiments.ramp import ramp_steps_apply_due
from experiments.readout_jobs import (
    EXPERIMENT_READOUTS,
    ReadoutBusy,
    ReadoutKind,
    experiments_refresh_running,
    readout_run,
)
from experiments.readout_sweep import readouts_sweep

logger = logging.getLogger(__name__)

MAX_RETRIES = 5
BUSY_COUNTDOWN = 15  # seconds to wait for the readout that holds the lock


def _fresh_connection() -> None:
    """Drop a broken or expired connection before work (workers have no request cycle doing it).

    Not inside a transaction: a task run eagerly there (in tests) must keep its caller's.
    """
    if not connection.in_atomic_block:
        close_old_connections()


def _backoff(retries: int) -> int:
    # 5 s, 10 s, 20 s, 40 s, 80 s: long enough for a database restart or failover.
    return int(min(600, 5 * 2**retries))


def _readout_task(task: Any, kind: ReadoutKind, snapshot_id: int | None, what: str,
                  run: Callable[[], Any]) -> str:
    """One readout of either kind, with the same retries: while another run of the same readout
    holds its lock (then skipped), and while the database is unreachable (then failed)."""
    retries = int(task.request.retries or 0)
    try:
        snapshot = run()
    except ReadoutBusy as exc:
        if snapshot_id is None:
            return "busy"
        if retries >= MAX_RETRIES:
            kind.mark(snapshot_id=snapshot_id, status="skipped",
                      error=f"Another readout of this {kind.name} kept running.", error_code="readout_busy")
            return "skipped"
        kind.mark(snapshot_id=snapshot_id, status="queued", error="Waiting for the readout in progress.",
                  error_code="readout_busy")
        raise task.retry(exc=exc, countdown=BUSY_COUNTDOWN) from exc
    except (DatabaseError, psycopg.Error) as exc:
        logger.warning("Readout of %s hit a database error (attempt %d): %s", what, retries + 1, exc)
        if not connection.in_atomic_block:
            connection.close()
        if snapshot_id is not None:
            final = retries >= MAX_RETRIES
            try:
                kind.mark(snapshot_id=snapshot_id, status="failed" if final else "queued",
                          error=f"{type(exc).__name__}: {exc}", error_code="database_error")
            except DatabaseError:
                logger.exception("Could not record the failure of readout %s.", snapshot_id)
            if final:
                return "failed"
        raise task.retry(exc=exc, countdown=_backoff(retries)) from exc
    return "done" if snapshot is None else str(snapshot.status)


@shared_task(bind=True, max_retries=MAX_RETRIES, acks_late=True, reject_on_worker_lost=True,
             time_limit=settings.READOUT_TIME_LIMIT)
def experiment_readout_task(self: Any, experiment_id: int, snapshot_id: int | None = None,
                            force_full: bool = False) -> str:
    """Compute one readout of an experiment and store it as a snapshot."""
    _fresh_connection()
    return _readout_task(self, EXPERIMENT_READOUTS, snapshot_id, f"experiment {experiment_id}", lambda: readout_run(
        experiment_id=experiment_id, snapshot_id=snapshot_id, force_full=force_full))


@shared_task(acks_late=True)
def experiment_refresh_running_task() -> int:
    """Queue a readout of every running experiment (scheduled by Celery beat)."""
    _fresh_connection()
    return experiments_refresh_running()


@shared_task(acks_late=True)
def readouts_sweep_task() -> dict[str, Any]:
    """Fail and requeue readouts (of experiments and holdouts) whose worker died; send readouts
    queued while the broker was down (scheduled by Celery beat every READOUT_SWEEP_SECONDS)."""
    _fresh_connection()
    return readouts_sweep().as_json()


@shared_task(acks_late=True)
def exposures_export_task() -> dict[str, Any]:
    """Append the served exposures of warehouse-backed experiments to their data sources' tables
    (scheduled by Celery beat every EXPOSURE_EXPORT_SECONDS)."""
    _fresh_connection()
    report = exposures_export_all()
    return {"appended": report.appended, "failed": report.failed}


@shared_task(acks_late=True)
def experiment_ramp_steps_task() -> dict[str, int]:
    """Apply the ramp steps that are due (scheduled by Celery beat every minute)."""
    _fresh_connection()
    run = ramp_steps_apply_due()
    return {"applied": run.applied, "skipped": run.skipped}


@shared_task(bind=True, max_retries=MAX_RETRIES, acks_late=True, reject_on_worker_lost=True,
             time_limit=settings.READOUT_TIME_LIMIT)
def holdout_readout_task(self: Any, snapshot_id: int) -> str:
    """Compute one holdout readout and store it, with the experiment readouts' lease, retries and
    failure records."""
    _fresh_connection()
    return _readout_task(self, HOLDOUT_READOUTS, snapshot_id, f"holdout readout {snapshot_id}",
                         lambda: holdout_readout_run(snapshot_id=snapshot_id))


@shared_task(acks_late=True)
def holdout_refresh_active_task() -> int:
    """Queue a readout of every holdout that still holds (scheduled by Celery beat with the
    experiment readouts)."""
    _fresh_connection()
    return holdouts_refresh_active()
