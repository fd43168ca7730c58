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
Every step is safe to repeat: a readout sent twice is computed once. Experiment readouts and
holdout readouts are swept alike (`experiments.readout_jobs.ReadoutKind` says how each is sent
and queued again); a readout of one kind never stands in for one of the other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from experiments.holdout_readout import HOLDOUT_READOUTS
from experiments.readout_jobs import EXPERIMENT_READOUTS, ReadoutKind

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
    """Snapshot ids: marked failed, queued again (the new snapshots), sent, skipped as superseded;
    the experiment readouts' at the top, the holdout readouts' in `holdouts`."""

    failed: list[int] = field(default_factory=list)
    requeued: list[int] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    holdouts: SweepReport | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"failed": self.failed, "requeued": self.requeued, "sent": self.sent,
                               "skipped": self.skipped}
        if self.holdouts is not None:
            out["holdouts"] = self.holdouts.as_json()
        return out


def readouts_sweep() -> SweepReport:
    """Sweep the experiment readouts, then the holdout readouts, the same way."""
    report = _sweep(EXPERIMENT_READOUTS)
    report.holdouts = _sweep(HOLDOUT_READOUTS)
    return report


def _sweep(kind: ReadoutKind) -> SweepReport:
    report = SweepReport()
    _stale_running(kind, report)
    _unsent_queued(kind, report)
    if report.failed or report.sent or report.skipped:
        logger.warning("Readout sweep (%s readouts): %d lost (queued again: %s), %d sent, %d superseded.", kind.name,
                       len(report.failed), report.requeued, len(report.sent), len(report.skipped))
    return report


def _stale_running(kind: ReadoutKind, report: SweepReport) -> None:
    now = timezone.now()
    lease = timedelta(seconds=settings.READOUT_LEASE_SECONDS)
    stale = Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True, started_at__lt=now - lease)
    model: Any = kind.model
    ids = list(model.objects.filter(stale, status="running").values_list("pk", flat=True))
    for snapshot_id in ids:
        with transaction.atomic():
            # skip_locked: a readout finishing right now holds its row; it is not stale.
            snapshot = (model.objects.select_for_update(skip_locked=True, of=("self",))
                        .filter(stale, pk=snapshot_id, status="running").first())
            if snapshot is None:
                continue
            seen = snapshot.heartbeat_at or snapshot.started_at
            again = _lost_before(kind, snapshot) < MAX_LOST_RUNS - 1
            kind.mark(
                snapshot_id=snapshot.pk, status="failed", error_code="worker_lost",
                error=f"The worker running this readout stopped: no heartbeat since {_when(seen)} (the lease is "
                      f"{settings.READOUT_LEASE_SECONDS} s). "
                      + ("The readout was queued again." if again else
                         f"Not queued again: its last {MAX_LOST_RUNS} runs were lost the same way; see the worker "
                         "logs."),
            )
            report.failed.append(snapshot.pk)
            if again:
                report.requeued.append(kind.requeue(snapshot).pk)


def _lost_before(kind: ReadoutKind, snapshot: Any) -> int:
    """How many runs of the same group (experiment and phase, holdout analysis) just before this
    one were lost to a dead worker."""
    model: Any = kind.model
    same = {name: getattr(snapshot, name) for name in kind.group}
    earlier = (model.objects.filter(created_at__lt=snapshot.created_at, **same)
               .exclude(status="queued").order_by("-created_at")
               .values_list("error_code", flat=True)[:MAX_LOST_RUNS])
    count = 0
    for code in earlier:
        if code != "worker_lost":
            break
        count += 1
    return count


def _unsent_queued(kind: ReadoutKind, report: SweepReport) -> None:
    now = timezone.now()
    model: Any = kind.model
    queued = (model.objects.filter(status="queued").order_by("-created_at", "-pk")
              .values_list("pk", "created_at", "sent_at", *kind.group))
    due: list[tuple[int, tuple[Any, ...]]] = []
    seen: set[tuple[Any, ...]] = set()
    for snapshot_id, created_at, sent_at, *group_values in queued:
        group = tuple(group_values)
        if group in seen:
            kind.mark(snapshot_id=snapshot_id, status="skipped", error_code="superseded",
                      error="A newer readout of the same phase was queued; it answers for this one.")
            report.skipped.append(snapshot_id)
            continue
        seen.add(group)
        lost = sent_at is not None and sent_at < now - RESEND_AFTER
        if lost or (sent_at is None and created_at < now - SEND_GRACE):
            due.append((snapshot_id, group))
    for snapshot_id, group in due:
        try:
            kind.send(snapshot_id, group)
        except Exception as exc:  # the broker is down again: the next sweep tries again
            logger.warning("Readout %s could not be sent: %s", snapshot_id, exc)
            return
        report.sent.append(snapshot_id)


def _when(moment: datetime | None) -> str:
    return "its start" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
