"""Readouts: SQL sufficient statistics (the service's own PostgreSQL, or the experiment's data
source: `experiments.warehouse_readout`) -> the readout contract (`experiments.readout`) -> a
stored ResultSnapshot.

`experiment_refresh` queues one (a snapshot row in state `queued`, and the Celery task after
the transaction commits); `readout_run` does the work inside the worker. One readout per
experiment runs at a time: the work happens under a PostgreSQL advisory lock keyed by the
experiment. A failure is stored on the snapshot (status `failed`, with the error), so result
pages show it instead of silently showing stale numbers.

A running readout holds a lease that a heartbeat thread renews; a readout whose worker died
stops renewing it, and the sweep (`experiments.readout_sweep`) marks it failed and queues it
again. A snapshot records when its task reached the broker (`sent_at`), so that the sweep
sends the ones queued while the broker was unreachable.

Holdout readouts (`experiments.holdout_readout`) run on the same machinery: the claim, the
lease and its heartbeat, the run under an advisory lock (`leased_run`), the failure record,
the sweep and the tasks' retries are shared; `ReadoutKind` describes each kind of readout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import psycopg
from django.conf import settings
from django.db import DatabaseError, OperationalError, connection, transaction
from django.utils import timezone

from audit.services import audit_record
from audit.types import Actor
from experiments import queue, readout_sql
from experiments.mappers import readout_input, readout_spec
from experiments.models import Experiment, ExperimentMetric, HoldoutSnapshot, Phase, ResultSnapshot, Variation
from experiments.readout import Rollup, readout_compute, readout_to_json
from experiments.readout_spec import ReadoutSpec
from experiments.warehouse_readout import DataSourceFailed, WarehouseSums, warehouse_sums

logger = logging.getLogger(__name__)

# pg_try_advisory_xact_lock(class, id): the class keeps these locks apart from other users.
LOCK_CLASS = 0x5EAD
# A queued readout not started after this long is sent to the broker again.
RESEND_AFTER = timedelta(minutes=2)
# A readout whose worker died this many times running it is not started again.
MAX_ATTEMPTS = 3


class ReadoutBusy(Exception):
    """Another readout of the same experiment (or holdout analysis) holds the lock."""


# Queueing ------------------------------------------------------------------------------------


def experiment_refresh(
    *, experiment: Experiment, trigger: str = ResultSnapshot.Trigger.API, requested_by: str = "",
    phase: Phase | None = None,
) -> ResultSnapshot:
    """Queue a readout now; the Celery task is sent once the surrounding transaction commits.

    A readout already queued for the same experiment and phase is returned instead of a new one
    (and sent again when it has waited too long).
    """

    phase = phase or experiment.phases.order_by("-number").first()
    now = timezone.now()
    pending = ResultSnapshot.objects.filter(
        experiment=experiment, phase=phase, status=ResultSnapshot.Status.QUEUED,
        created_at__gte=now - timedelta(minutes=30),
    ).first()
    if pending is not None:
        if pending.created_at < now - RESEND_AFTER:
            # Probably lost (a broker outage): send it again; a second run of a finished
            # snapshot does nothing.
            _enqueue(experiment.pk, pending.pk)
        return pending
    snapshot = ResultSnapshot.objects.create(
        experiment=experiment, phase=phase, trigger=trigger, requested_by=requested_by,
    )
    _enqueue(experiment.pk, snapshot.pk)
    return snapshot


def _enqueue(experiment_id: int, snapshot_id: int) -> None:
    # robust: a broker outage must not turn a committed write (a stop, say) into an error;
    # the snapshot stays queued and unsent, visibly, and the sweep sends it once the broker is back.
    transaction.on_commit(lambda: readout_send(experiment_id, snapshot_id), robust=True)


def readout_send(experiment_id: int, snapshot_id: int) -> None:
    """Hand a queued readout to the broker and note when it took it (raises when it is down)."""
    queue.readout_send(experiment_id, snapshot_id)
    snapshot_sent(ResultSnapshot, snapshot_id)


T = TypeVar("T")


def each_queued(items: Iterable[T], queue_one: Callable[[T], object], what: str) -> int:
    """Queue a readout of each item, each in a transaction of its own: one that cannot be
    queued is logged and does not keep the others from being queued. Returns how many were."""
    count = 0
    for item in items:
        try:
            with transaction.atomic():
                queue_one(item)
        except Exception:
            logger.exception("Could not queue a readout of %s %s.", what, getattr(item, "pk", item))
            continue
        count += 1
    return count


def experiments_refresh_running() -> int:
    """Queue a readout of every running experiment (the beat schedule calls this)."""
    return each_queued(
        Experiment.objects.filter(status=Experiment.Status.RUNNING),
        lambda experiment: experiment_refresh(experiment=experiment, trigger=ResultSnapshot.Trigger.SCHEDULE),
        "experiment",
    )


# The shared machinery ------------------------------------------------------------------------
#
# Experiment readouts (ResultSnapshot) and holdout readouts (HoldoutSnapshot) are leased, retried
# and swept the same way: these functions take either kind of snapshot, and `ReadoutKind` says
# what the sweep and the tasks need to know of each.

# Either kind of snapshot; the functions below read and write the run facts both have.
S = TypeVar("S", ResultSnapshot, HoldoutSnapshot)
P = TypeVar("P")

FINISHED = ("success", "failed", "skipped")


@dataclass(frozen=True)
class ReadoutKind:
    """A kind of readout as the sweep and the Celery tasks handle it.

    `group` names the fields of the readouts that answer for each other (of several waiting,
    only the newest is sent); `send(snapshot_id, group)` hands one to the broker and notes it;
    `requeue(lost)` queues a new readout in place of one whose worker died and returns it;
    `mark(snapshot_id=, status=, error=, error_code=)` records how a run ended without results."""

    name: str
    model: type[ResultSnapshot] | type[HoldoutSnapshot]
    group: tuple[str, ...]
    send: Callable[[int, tuple[Any, ...]], None]
    requeue: Callable[[Any], Any]
    mark: Callable[..., None]


def _raw_cursor() -> psycopg.Cursor[Any]:
    connection.ensure_connection()
    raw = connection.connection
    assert raw is not None
    return psycopg.Cursor(raw)


def _relaxed_commit() -> None:
    """Do not wait for the disk at commit: a readout lost in a crash is simply computed again,
    and the flush wait is a good part of a short readout's time."""
    with connection.cursor() as cur:
        cur.execute("SET LOCAL synchronous_commit = off")


def lease_start(snapshot: S) -> S:
    """Mark a claimed snapshot running, with a fresh lease (inside the claim's transaction)."""
    now = timezone.now()
    snapshot.status = "running"
    snapshot.attempts += 1
    snapshot.started_at = now
    snapshot.heartbeat_at = now
    snapshot.lease_expires_at = now + timedelta(seconds=settings.READOUT_LEASE_SECONDS)
    snapshot.save(update_fields=["status", "attempts", "started_at", "heartbeat_at", "lease_expires_at"])
    return snapshot


def lease_claim(model: type[S], snapshot_id: int) -> S | None:
    """Lock a queued snapshot (or one the broker gave back after its worker died) and mark it
    running; None when it is finished, gone, or was lost to dead workers MAX_ATTEMPTS times."""
    with transaction.atomic():
        _relaxed_commit()
        snapshot = model.objects.select_for_update().filter(pk=snapshot_id).first()
        if snapshot is None or snapshot.status in FINISHED:
            return None
        if snapshot.status == "running" and snapshot.attempts >= MAX_ATTEMPTS:
            # Given back by the broker after its worker died, again and again (out of memory, say).
            _fail(snapshot, f"The worker running this readout was lost {snapshot.attempts} times; it is not "
                            "started again. See the worker logs.", "worker_lost")
            return None
        return lease_start(snapshot)


def _fail(snapshot: S, error: str, error_code: str) -> None:
    now = timezone.now()
    snapshot.status = "failed"
    snapshot.error, snapshot.error_code = error[:4000], error_code
    snapshot.finished_at, snapshot.lease_expires_at = now, None
    if snapshot.started_at is not None:
        snapshot.duration_ms = int((now - snapshot.started_at).total_seconds() * 1000)
    snapshot.save(update_fields=["status", "error", "error_code", "finished_at", "duration_ms", "lease_expires_at"])


@contextmanager
def lease_heartbeat(model: type[S], snapshot_id: int) -> Iterator[None]:
    """Renew the running snapshot's lease every READOUT_HEARTBEAT_SECONDS until the block ends,
    from a thread with its own database connection (the readout's is inside its transaction)."""
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(settings.READOUT_HEARTBEAT_SECONDS):
                now = timezone.now()
                try:
                    model.objects.filter(pk=snapshot_id, status="running").update(
                        heartbeat_at=now, lease_expires_at=now + timedelta(seconds=settings.READOUT_LEASE_SECONDS))
                except DatabaseError as exc:
                    # The lease may run out: the sweep then queues the readout again, which is safe.
                    logger.warning("Could not renew the lease of readout %s: %s", snapshot_id, exc)
                    connection.close()
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"readout-heartbeat-{snapshot_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def snapshot_mark(model: type[S], *, snapshot_id: int, status: str, error: str = "", error_code: str = "") -> S | None:
    """Record how a run ended when it did not produce results (failed, skipped, queued again)."""
    now = timezone.now()
    snapshot = model.objects.filter(pk=snapshot_id).first()
    if snapshot is None:
        return None
    snapshot.status = status
    snapshot.error = error[:4000]
    snapshot.error_code = error_code
    snapshot.lease_expires_at = None
    if status != "queued":
        snapshot.finished_at = now
        if snapshot.started_at is not None:
            snapshot.duration_ms = int((now - snapshot.started_at).total_seconds() * 1000)
    snapshot.save(update_fields=["status", "error", "error_code", "finished_at", "duration_ms", "lease_expires_at"])
    return snapshot


def snapshot_sent(model: type[S], snapshot_id: int) -> None:
    """Note that the snapshot's task reached the broker."""
    model.objects.filter(pk=snapshot_id).update(sent_at=timezone.now())


@contextmanager
def _session_lock(lock: tuple[int, int], what: str) -> Iterator[None]:
    """The advisory `lock` for the whole run, taken on the session (not a transaction) so that the
    work done before the transaction, such as a warehouse's statements, is covered too."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s, %s)", lock)
        row = cur.fetchone()
    if row is None or not row[0]:
        raise ReadoutBusy(f"Another readout of {what} is running.")
    try:
        yield
    finally:
        try:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s, %s)", lock)
        except DatabaseError as exc:
            # The session is broken: the lock goes with it.
            logger.warning("Could not release the readout lock of %s: %s", what, exc)
            if not connection.in_atomic_block:
                connection.close()


def leased_run(
    snapshot: S, compute: Callable[[psycopg.Cursor[Any], P], None], *, prepare: Callable[[], P],
    lock: tuple[int, int], what: str, mark: Callable[..., None], after: Callable[[S], None] | None = None,
) -> S:
    """Run a claimed snapshot under its lease (renewed by the heartbeat) and the advisory `lock`:
    `prepare` outside any transaction (work elsewhere, such as a warehouse's statements, must not
    hold a PostgreSQL transaction open), then `compute` with what it returned in one transaction,
    which also stores the success; `compute` fills the snapshot's result fields.

    Raises `ReadoutBusy` when another run holds the lock, and database errors as they come (the
    task retries both); any other error fails this snapshot only, recorded through `mark`."""
    started = time.monotonic()
    try:
        with lease_heartbeat(type(snapshot), snapshot.pk), _session_lock(lock, what):
            if settings.READOUT_DELAY_SECONDS > 0:
                time.sleep(settings.READOUT_DELAY_SECONDS)
            prepared = prepare()
            with transaction.atomic(), _raw_cursor() as cur:
                cur.execute("SET LOCAL synchronous_commit = off")
                compute(cur, prepared)
                snapshot.status = "success"
                snapshot.finished_at = timezone.now()
                snapshot.duration_ms = int((time.monotonic() - started) * 1000)
                snapshot.error, snapshot.error_code = "", ""
                snapshot.lease_expires_at = None
                # Every field but the heartbeat's, which its thread may be writing.
                snapshot.save(update_fields=[f.name for f in type(snapshot)._meta.concrete_fields
                                             if not f.primary_key and f.name != "heartbeat_at"])
                if after is not None:
                    after(snapshot)
    except (ReadoutBusy, psycopg.OperationalError, OperationalError):
        raise
    except Exception as exc:
        if isinstance(exc, DataSourceFailed):
            # The warehouse's own failure: this readout only; the message says which source and why.
            logger.warning("Readout %s of %s failed: %s", snapshot.pk, what, exc)
            error, code = str(exc), DataSourceFailed.error_code
        else:
            logger.exception("Readout %s of %s failed.", snapshot.pk, what)
            error, code = f"{type(exc).__name__}: {exc}", "readout_error"
        mark(snapshot_id=snapshot.pk, status="failed", error=error, error_code=code)
        snapshot.refresh_from_db()
    return snapshot


# Experiment readouts ---------------------------------------------------------------------------


def _claim(snapshot_id: int | None, experiment_id: int, trigger: str) -> ResultSnapshot | None:
    """Mark the snapshot running (creating one for scheduled runs); None when already done."""
    if snapshot_id is not None:
        return lease_claim(ResultSnapshot, snapshot_id)
    with transaction.atomic():
        _relaxed_commit()
        experiment = Experiment.objects.get(pk=experiment_id)
        snapshot = ResultSnapshot.objects.create(
            experiment=experiment, phase=experiment.phases.order_by("-number").first(), trigger=trigger,
        )
        return lease_start(snapshot)


READOUT_ACTOR = Actor.system("readout")


def _audit_readout(snapshot: ResultSnapshot, action: str, after: dict[str, Any]) -> None:
    experiment = Experiment.objects.select_related("environment").get(pk=snapshot.experiment_id)
    audit_record(actor=READOUT_ACTOR, action=action, object_type="experiment", object_key=experiment.key,
                 after={"snapshot": snapshot.pk, **after}, environment=experiment.environment.key)


def _audit_srm(snapshot: ResultSnapshot) -> None:
    """An entry (and so a webhook event) when a readout finds a sample-ratio mismatch that the
    previous readout of its phase did not: once per mismatch, not at every readout."""
    if not snapshot.srm_warning or snapshot.phase_id is None:
        return
    previous = (ResultSnapshot.objects.filter(experiment_id=snapshot.experiment_id, phase_id=snapshot.phase_id,
                                              status=ResultSnapshot.Status.SUCCESS)
                .exclude(pk=snapshot.pk).order_by("-finished_at", "-pk").first())
    if previous is not None and previous.srm_warning:
        return
    phase = snapshot.phase.number if snapshot.phase is not None else None
    _audit_readout(snapshot, "experiment.srm_detected", {"phase": phase, "srm_p_value": snapshot.srm_p_value})


def readout_mark(
    *, snapshot_id: int, status: str, error: str = "", error_code: str = ""
) -> None:
    """Record how a readout ended when it did not produce results (failed, skipped, requeued)."""
    snapshot = snapshot_mark(ResultSnapshot, snapshot_id=snapshot_id, status=status, error=error,
                             error_code=error_code)
    if snapshot is not None and status == ResultSnapshot.Status.FAILED:
        _audit_readout(snapshot, "experiment.readout_failed", {"error_code": error_code, "error": error[:500]})


def readout_run(
    *, experiment_id: int, snapshot_id: int | None = None, trigger: str = ResultSnapshot.Trigger.SCHEDULE,
    force_full: bool = False,
) -> ResultSnapshot | None:
    """Compute and store one readout. Idempotent: a finished snapshot is left as it is.

    Raises `ReadoutBusy` when another readout of the experiment is running, and database
    errors as they come (the task retries both); other errors mark the snapshot failed.
    """
    snapshot = _claim(snapshot_id, experiment_id, trigger)
    if snapshot is None:
        return None
    claimed = snapshot
    return leased_run(snapshot, lambda cur, plan: _compute(cur, claimed, plan, force_full=force_full),
                      prepare=lambda: _plan(claimed), lock=(LOCK_CLASS, experiment_id % (2**31)),
                      what=f"experiment {experiment_id}", mark=readout_mark, after=_audit_srm)


@dataclass
class _Plan:
    """What a readout reads before its transaction: the experiment's configuration, and the sums
    when a warehouse computes them (its statements run outside any PostgreSQL transaction)."""

    experiment: Experiment
    phase: Phase
    links: list[ExperimentMetric]
    variations: list[Variation]
    spec: ReadoutSpec
    analysis_end: datetime
    warehouse: WarehouseSums | None


def _plan(snapshot: ResultSnapshot) -> _Plan:
    experiment = Experiment.objects.select_related("environment", "data_source").get(pk=snapshot.experiment_id)
    phase = snapshot.phase or experiment.phases.order_by("-number").first()
    if phase is None:
        raise ValueError("The experiment has not started: there is no phase to analyse.")
    links = list(ExperimentMetric.objects.filter(experiment=experiment).select_related("metric"))
    variations = list(Variation.objects.filter(experiment=experiment).order_by("position"))
    spec = readout_spec(experiment, phase, [link.metric for link in links])
    analysis_end = phase.ended_at or timezone.now()
    found = None
    if experiment.data_source is not None:
        # The same sums, computed where the exposures and events live.
        found = warehouse_sums(source=experiment.data_source, experiment=experiment, phase=phase, spec=spec,
                               variations=[v.key for v in variations], analysis_end=analysis_end)
    return _Plan(experiment, phase, links, variations, spec, analysis_end, found)


def _compute(cur: psycopg.Cursor[Any], snapshot: ResultSnapshot, plan: _Plan, *, force_full: bool) -> None:
    experiment, phase, links, variations = plan.experiment, plan.phase, plan.links, plan.variations
    spec, analysis_end, found = plan.spec, plan.analysis_end, plan.warehouse
    if found is not None:
        rows, caps, multiple = found.rows, found.caps, found.multiple_exposure_units
        rollup = readout_sql.RollupResult(mode="warehouse", units_recomputed=sum(row.units for row in rows),
                                          units=sum(row.units for row in rows))
    else:
        rollup = readout_sql.rollup_refresh(cur, spec, force_full=force_full)
        caps = readout_sql.percentile_caps(cur, spec, analysis_end)
        rows = readout_sql.aggregate(cur, spec, caps=caps, analysis_end=analysis_end)
        readout_sql.rollup_units_record(cur, phase.pk, sum(row.units for row in rows))
        multiple = readout_sql.multiple_exposures(cur, phase.pk)
    weights = [float(w) for w in phase.weights] if phase.weights else [v.weight for v in variations]
    readout = readout_compute(readout_input(
        experiment=experiment, variations=variations, weights=weights, links=links, rows=rows, caps=caps,
        slice_attributes=spec.slice_attributes, analysis_end=analysis_end, phase_number=phase.number,
        rollup=Rollup(mode=rollup.mode, units_recomputed=rollup.units_recomputed),
        multiple_exposure_units=multiple,
    ))
    snapshot.phase = phase
    snapshot.analysis_end = analysis_end
    snapshot.rollup_mode = rollup.mode
    for column, value in readout_to_json(readout).items():
        setattr(snapshot, column, value)


def _requeue(lost: ResultSnapshot) -> ResultSnapshot:
    return experiment_refresh(experiment=lost.experiment, trigger=lost.trigger, requested_by=lost.requested_by,
                              phase=lost.phase)


EXPERIMENT_READOUTS = ReadoutKind(
    name="experiment", model=ResultSnapshot, group=("experiment_id", "phase_id"),
    send=lambda snapshot_id, group: readout_send(group[0], snapshot_id), requeue=_requeue, mark=readout_mark,
)
