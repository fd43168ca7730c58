"""The readout sweep (Celery beat, every READOUT_SWEEP_SECONDS): readouts that a fault left
behind are finished or sent again.

- A running snapshot whose lease ran out (its worker died: killed, out of memory, the machine
  gone) is marked `failed` with the code `worker_lost` and the time of its last heartbeat, and
  the readout is queued again as a new snapshot, unless its last runs were all lost the same
  way (then it stays failed, for someone to look at the worker).
- A queued snapshot whose task never reached the broker (it was down when the readout was
  asked for), or reached it long ago without being started (the broker lost it), is sent now.
  Of several waiting for the same experiment and phase only the newest is sent; the older ones
  are marked `skipped`, since it answers for them.
Every step is safe to repeat: a readout sent twice is computed once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from experiments.models import ResultSnapshot
from experiments.readout_jobs import experiment_refresh, readout_mark, readout_send

logger = logging.getLogger(__name__)

# A readout whose last runs were all lost to dead workers this many times is not queued again.
MAX_LOST_RUNS = 3
# A queued readout not sent yet is left to the request that queued it for this long (its task
# is sent when its transaction commits).
SEND_GRACE = timedelta(seconds=10)
# A queued readout sent this long ago and still not started is sent again (the broker lost it).
RESEND_AFTER = timedelta(minutes=10)


@dataclass
class SweepReport:
    """Snapshot ids: marked failed, queued again (the new snapshots), sent, skipped as superseded."""

    failed: list[int] = field(default_factory=list)
    requeued: list[int] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


def readouts_sweep() -> SweepReport:
    report = SweepReport()
    _stale_running(report)
    _unsent_queued(report)
    if report.failed or report.sent or report.skipped:
        logger.warning("Readout sweep: %d lost (queued again: %s), %d sent, %d superseded.", len(report.failed),
                       report.requeued, len(report.sent), len(report.skipped))
    return report


def _stale_running(report: SweepReport) -> None:
    now = timezone.now()
    lease = timedelta(seconds=settings.READOUT_LEASE_SECONDS)
    stale = Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True, started_at__lt=now - lease)
    ids = list(ResultSnapshot.objects.filter(stale, status=ResultSnapshot.Status.RUNNING).values_list("pk", flat=True))
    for snapshot_id in ids:
        with transaction.atomic():
            # skip_locked: a readout finishing right now holds its row; it is not stale.
            snapshot = (ResultSnapshot.objects.select_for_update(skip_locked=True, of=("self",))
                        .select_related("experiment", "phase")
                        .filter(stale, pk=snapshot_id, status=ResultSnapshot.Status.RUNNING).first())
            if snapshot is None:
                continue
            seen = snapshot.heartbeat_at or snapshot.started_at
            again = _lost_before(snapshot) < MAX_LOST_RUNS - 1
            readout_mark(
                snapshot_id=snapshot.pk, status=ResultSnapshot.Status.FAILED, error_code="worker_lost",
                error=f"The worker running this readout stopped: no heartbeat since {_when(seen)} (the lease is "
                      f"{settings.READOUT_LEASE_SECONDS} s). "
                      + ("The readout was queued again." if again else
                         f"Not queued again: its last {MAX_LOST_RUNS} runs were lost the same way; see the worker "
                         "logs."),
            )
            report.failed.append(snapshot.pk)
            if again:
                queued = experiment_refresh(experiment=snapshot.experiment, trigger=snapshot.trigger,
                                            requested_by=snapshot.requested_by, phase=snapshot.phase)
                report.requeued.append(queued.pk)


def _lost_before(snapshot: ResultSnapshot) -> int:
    """How many runs of the same experiment and phase just before this one were lost to a dead worker."""
    earlier = (ResultSnapshot.objects.filter(experiment_id=snapshot.experiment_id, phase=snapshot.phase,
                                             created_at__lt=snapshot.created_at)
               .exclude(status=ResultSnapshot.Status.QUEUED).order_by("-created_at")
               .values_list("error_code", flat=True)[:MAX_LOST_RUNS])
    count = 0
    for code in earlier:
        if code != "worker_lost":
            break
        count += 1
    return count


def _unsent_queued(report: SweepReport) -> None:
    now = timezone.now()
    queued = (ResultSnapshot.objects.filter(status=ResultSnapshot.Status.QUEUED).order_by("-created_at", "-pk")
              .values_list("pk", "experiment_id", "phase_id", "created_at", "sent_at"))
    due: list[tuple[int, int]] = []
    seen: set[tuple[int, int | None]] = set()
    for snapshot_id, experiment_id, phase_id, created_at, sent_at in queued:
        if (experiment_id, phase_id) in seen:
            readout_mark(snapshot_id=snapshot_id, status=ResultSnapshot.Status.SKIPPED, error_code="superseded",
                         error="A newer readout of the same phase was queued; it answers for this one.")
            report.skipped.append(snapshot_id)
            continue
        seen.add((experiment_id, phase_id))
        lost = sent_at is not None and sent_at < now - RESEND_AFTER
        if lost or (sent_at is None and created_at < now - SEND_GRACE):
            due.append((experiment_id, snapshot_id))
    for experiment_id, snapshot_id in due:
        try:
            readout_send(experiment_id, snapshot_id)
        except Exception as exc:  # the broker is down again: the next sweep tries again
            logger.warning("Readout %s could not be sent: %s", snapshot_id, exc)
            return
        report.sent.append(snapshot_id)


def _when(moment: datetime | None) -> str:
    return "its start" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
