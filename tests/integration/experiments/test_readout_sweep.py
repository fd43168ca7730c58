"""The readout sweep's decisions on PostgreSQL, with the broker really unreachable (nothing
listens on its port): which readouts count as lost, which are queued again, which are sent and
which are superseded; and a readout the broker keeps giving back after its worker died."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from experiments import services
from experiments.models import Experiment, ResultSnapshot
from experiments.readout_jobs import MAX_ATTEMPTS
from experiments.readout_sweep import MAX_LOST_RUNS, readouts_sweep
from tests.integration.experiments.conftest import point_app_at

pytestmark = pytest.mark.django_db

DOWN = "redis://127.0.0.1:1/0"  # nothing listens there


@pytest.fixture
def broker_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from config.celery import app

    previous = app.conf.broker_url
    monkeypatch.setenv("CELERY_BROKER_URL", DOWN)
    point_app_at(app, DOWN)
    yield
    point_app_at(app, previous)


def _snapshot(experiment: Experiment, status: str, *, ago: timedelta = timedelta(minutes=5),
              **fields: Any) -> ResultSnapshot:
    snapshot = ResultSnapshot.objects.create(experiment=experiment, phase=experiment.phases.get(number=1),
                                             status=status, trigger="api", **fields)
    ResultSnapshot.objects.filter(pk=snapshot.pk).update(created_at=timezone.now() - ago)
    snapshot.refresh_from_db()
    return snapshot


def test_sweep__lease_running__left_alone(experiment: Experiment, broker_down: None) -> None:
    now = timezone.now()
    alive = _snapshot(experiment, "running", started_at=now - timedelta(hours=2), heartbeat_at=now,
                      lease_expires_at=now + timedelta(seconds=30))
    assert readouts_sweep().failed == []
    assert ResultSnapshot.objects.get(pk=alive.pk).status == "running"


def test_sweep__lease_ran_out__failed_with_reason_and_queued_again(
    experiment: Experiment, broker_down: None, django_capture_on_commit_callbacks: Any
) -> None:
    now = timezone.now()
    lost = _snapshot(experiment, "running", started_at=now - timedelta(minutes=4),
                     heartbeat_at=now - timedelta(minutes=3), lease_expires_at=now - timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        report = readouts_sweep()
    assert report.failed == [lost.pk]
    lost.refresh_from_db()
    assert (lost.status, lost.error_code, lost.lease_expires_at) == ("failed", "worker_lost", None)
    assert f"no heartbeat since {(now - timedelta(minutes=3)):%Y-%m-%d %H:%M}" in lost.error
    # Queued again, and, the broker being down, waiting to be sent.
    [again] = report.requeued
    queued = ResultSnapshot.objects.get(pk=again)
    assert (queued.status, queued.sent_at, queued.trigger, queued.phase_id) == ("queued", None, "api", lost.phase_id)


def test_sweep__running_from_before_leases__stale_after_one_lease(experiment: Experiment, broker_down: None,
                                                                   settings: Any) -> None:
    old = _snapshot(experiment, "running", started_at=timezone.now() - timedelta(
        seconds=settings.READOUT_LEASE_SECONDS + 5))
    assert readouts_sweep().failed == [old.pk]


def test_sweep__lost_again_and_again__failed_not_queued_again(experiment: Experiment, broker_down: None) -> None:
    now = timezone.now()
    for k in range(MAX_LOST_RUNS - 1):
        _snapshot(experiment, "failed", ago=timedelta(minutes=30 - k), error_code="worker_lost")
    lost = _snapshot(experiment, "running", ago=timedelta(minutes=5), started_at=now - timedelta(minutes=5),
                     lease_expires_at=now - timedelta(minutes=1))
    report = readouts_sweep()
    assert report.failed == [lost.pk] and report.requeued == []
    lost.refresh_from_db()
    assert f"Not queued again: its last {MAX_LOST_RUNS} runs were lost" in lost.error
    assert not ResultSnapshot.objects.filter(status="queued").exists()


def test_sweep__queued_while_broker_down__newest_kept_older_superseded_stays_unsent(
    experiment: Experiment, broker_down: None
) -> None:
    older = _snapshot(experiment, "queued", ago=timedelta(minutes=50))
    newest = _snapshot(experiment, "queued", ago=timedelta(minutes=20))
    fresh_elsewhere = _snapshot(experiment, "queued", ago=timedelta(seconds=1))
    ResultSnapshot.objects.filter(pk=fresh_elsewhere.pk).update(phase=None)

    report = readouts_sweep()

    assert report.skipped == [older.pk]
    assert ResultSnapshot.objects.get(pk=older.pk).error_code == "superseded"
    # Still unreachable: nothing sent, nothing lost; the next sweep tries again.
    assert report.sent == []
    assert ResultSnapshot.objects.get(pk=newest.pk).status == "queued"
    assert ResultSnapshot.objects.get(pk=newest.pk).sent_at is None
    assert ResultSnapshot.objects.get(pk=fresh_elsewhere.pk).status == "queued"


def test_readout_run__given_back_after_its_worker_died_too_often__failed_not_run(experiment: Experiment) -> None:
    snapshot = _snapshot(experiment, "running", attempts=MAX_ATTEMPTS, started_at=timezone.now())
    assert services.readout_run(experiment_id=experiment.pk, snapshot_id=snapshot.pk) is None
    snapshot.refresh_from_db()
    assert (snapshot.status, snapshot.error_code) == ("failed", "worker_lost")
    assert f"lost {MAX_ATTEMPTS} times" in snapshot.error


def test_readout_run__given_back_once__run_again_to_success(experiment: Experiment) -> None:
    snapshot = _snapshot(experiment, "running", attempts=1, started_at=timezone.now())
    done = services.readout_run(experiment_id=experiment.pk, snapshot_id=snapshot.pk)
    assert done is not None and done.status == "success" and done.attempts == 2
    assert done.lease_expires_at is None
