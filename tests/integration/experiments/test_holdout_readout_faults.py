"""Holdout readouts under faults, with the experiment readouts' protections: leases renewed by a
heartbeat, the sweep failing and requeuing a readout whose worker died (a real worker killed with
SIGKILL), readouts queued while the broker was down sent later, a readout the broker keeps giving
back not started again, and one failing readout leaving its neighbours alone (a real worker)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from audit.types import Actor
from base.models import Environment
from experiments.holdout_analyses import holdout_analysis_create
from experiments.holdout_readout import holdout_readout_run, holdout_refresh
from experiments.models import HoldoutAnalysis, HoldoutSnapshot, Metric, ResultSnapshot
from experiments.readout_jobs import MAX_ATTEMPTS
from experiments.readout_sweep import MAX_LOST_RUNS, readouts_sweep
from experiments.tasks import holdout_refresh_active_task
from tests.integration.experiments.conftest import Workers, create_metrics, point_app_at, post_events, sdk_client
from traffic import services as traffic_services
from traffic.assignment.hashing import hash_v2

DOWN = "redis://127.0.0.1:1/0"  # nothing listens there
SHARE = 0.2
UNITS = 300


@pytest.fixture
def broker_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from config.celery import app

    previous = app.conf.broker_url
    monkeypatch.setenv("CELERY_BROKER_URL", DOWN)
    point_app_at(app, DOWN)
    yield
    point_app_at(app, previous)


def _analysis(actor: Actor, environment: Environment, key: str = "growth") -> HoldoutAnalysis:
    if not Metric.objects.filter(key="purchase").exists():
        create_metrics(actor, ["purchase", "revenue"])
    holdout = traffic_services.holdout_create(actor=actor, key=key, share=SHARE, seed=f"{key}-seed")
    return holdout_analysis_create(
        actor=actor, holdout=holdout, environment=environment, started_at=datetime.now(tz=UTC) - timedelta(days=10),
        metrics=[{"metric": "purchase", "role": "primary"}, {"metric": "revenue", "role": "secondary"}],
    )


def _traffic(environment: Environment, key: str = "growth") -> None:
    now = datetime.now(tz=UTC)
    items: list[dict[str, Any]] = []
    for i in range(UNITS):
        unit = f"{key}-u{i}"
        arm = "held-out" if hash_v2(f"{key}-seed", unit) < SHARE else "released"
        seen = now - timedelta(days=2, hours=i % 24)
        items.append({"id": f"{key}-x{i}", "type": "exposure", "unit_id": unit, "experiment": f"holdout:{key}",
                      "variation": arm, "timestamp": seen.isoformat()})
        if i % 3 == 0:
            items.append({"id": f"{key}-p{i}", "type": "event", "unit_id": unit, "name": "purchase", "value": 20,
                          "timestamp": (seen + timedelta(hours=1)).isoformat()})
    response = post_events(sdk_client(environment), items)
    assert response.status_code == 202 and response.json()["rejected"] == [], response.json()


def _snapshot(analysis: HoldoutAnalysis, status: str, *, ago: timedelta = timedelta(minutes=5),
              **fields: Any) -> HoldoutSnapshot:
    snapshot = HoldoutSnapshot.objects.create(analysis=analysis, status=status, trigger="api", **fields)
    HoldoutSnapshot.objects.filter(pk=snapshot.pk).update(created_at=timezone.now() - ago)
    snapshot.refresh_from_db()
    return snapshot


def _until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"Not within {timeout} s: {what}")


# The sweep's decisions, on PostgreSQL with the broker unreachable -----------------------------------


@pytest.mark.django_db
def test_holdout_sweep__lease_ran_out__failed_with_reason_and_queued_again(
    actor: Actor, production: Environment, broker_down: None, django_capture_on_commit_callbacks: Any
) -> None:
    analysis = _analysis(actor, production)
    now = timezone.now()
    alive = _snapshot(analysis, "running", ago=timedelta(hours=1), started_at=now - timedelta(hours=1),
                      heartbeat_at=now, lease_expires_at=now + timedelta(seconds=30))
    report = readouts_sweep()
    assert report.holdouts is not None and report.holdouts.failed == []
    HoldoutSnapshot.objects.filter(pk=alive.pk).update(status="success", lease_expires_at=None)

    lost = _snapshot(analysis, "running", started_at=now - timedelta(minutes=4),
                     heartbeat_at=now - timedelta(minutes=3), lease_expires_at=now - timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        report = readouts_sweep()

    # Experiment readouts are not touched, and the ids are the holdout snapshots'.
    assert report.failed == [] and report.requeued == []
    assert report.holdouts is not None and report.holdouts.failed == [lost.pk]
    lost.refresh_from_db()
    assert (lost.status, lost.error_code, lost.lease_expires_at) == ("failed", "worker_lost", None)
    assert f"no heartbeat since {(now - timedelta(minutes=3)):%Y-%m-%d %H:%M}" in lost.error
    [again] = report.holdouts.requeued
    queued = HoldoutSnapshot.objects.get(pk=again)
    assert (queued.status, queued.sent_at, queued.trigger, queued.analysis_id) == ("queued", None, "api", analysis.pk)
    assert report.as_json()["holdouts"]["failed"] == [lost.pk]


@pytest.mark.django_db
def test_holdout_sweep__lost_again_and_again__failed_not_queued_again(
    actor: Actor, production: Environment, broker_down: None
) -> None:
    analysis = _analysis(actor, production)
    now = timezone.now()
    for k in range(MAX_LOST_RUNS - 1):
        _snapshot(analysis, "failed", ago=timedelta(minutes=30 - k), error_code="worker_lost")
    lost = _snapshot(analysis, "running", started_at=now - timedelta(minutes=5),
                     lease_expires_at=now - timedelta(minutes=1))
    report = readouts_sweep()
    assert report.holdouts is not None
    assert report.holdouts.failed == [lost.pk] and report.holdouts.requeued == []
    lost.refresh_from_db()
    assert f"Not queued again: its last {MAX_LOST_RUNS} runs were lost" in lost.error
    assert not HoldoutSnapshot.objects.filter(status="queued").exists()


@pytest.mark.django_db
def test_holdout_sweep__queued_while_broker_down__newest_kept_older_superseded_stays_unsent(
    actor: Actor, production: Environment, broker_down: None
) -> None:
    analysis = _analysis(actor, production)
    older = _snapshot(analysis, "queued", ago=timedelta(minutes=50))
    newest = _snapshot(analysis, "queued", ago=timedelta(minutes=20))
    report = readouts_sweep()
    assert report.holdouts is not None
    assert report.holdouts.skipped == [older.pk] and report.holdouts.sent == []
    assert HoldoutSnapshot.objects.get(pk=older.pk).error_code == "superseded"
    assert HoldoutSnapshot.objects.get(pk=newest.pk).status == "queued"
    assert not ResultSnapshot.objects.exists()


@pytest.mark.django_db
def test_holdout_refresh__broker_down__queued_unsent_and_the_request_still_commits(
    actor: Actor, production: Environment, broker_down: None, django_capture_on_commit_callbacks: Any
) -> None:
    analysis = _analysis(actor, production)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        snapshot = holdout_refresh(analysis=analysis)
    snapshot.refresh_from_db()
    assert (snapshot.status, snapshot.sent_at) == ("queued", None)


@pytest.mark.django_db
def test_holdout_readout_run__given_back_after_its_worker_died_too_often__failed_not_run(
    actor: Actor, production: Environment
) -> None:
    analysis = _analysis(actor, production)
    snapshot = _snapshot(analysis, "running", attempts=MAX_ATTEMPTS, started_at=timezone.now())
    assert holdout_readout_run(snapshot_id=snapshot.pk) is None
    snapshot.refresh_from_db()
    assert (snapshot.status, snapshot.error_code) == ("failed", "worker_lost")
    assert f"lost {MAX_ATTEMPTS} times" in snapshot.error


@pytest.mark.django_db
def test_holdout_readout_run__given_back_once__run_again_to_success(actor: Actor, production: Environment) -> None:
    analysis = _analysis(actor, production)
    _traffic(production)
    snapshot = _snapshot(analysis, "running", attempts=1, started_at=timezone.now())
    done = holdout_readout_run(snapshot_id=snapshot.pk)
    assert done is not None and done.status == "success", done and done.error
    assert (done.attempts, done.lease_expires_at, done.units) == (2, None, UNITS)


# With real workers ---------------------------------------------------------------------------------


@pytest.mark.worker
@pytest.mark.slow
def test_holdout_readout__worker_killed_mid_readout__swept_failed_requeued_and_completed_by_another_worker(
    celery_workers: Workers, actor: Actor, production: Environment, settings: Any,
) -> None:
    analysis = _analysis(actor, production)
    _traffic(production)
    settings.READOUT_LEASE_SECONDS, settings.READOUT_HEARTBEAT_SECONDS = 3, 1
    slow = celery_workers.start(READOUT_DELAY_SECONDS="600", READOUT_LEASE_SECONDS="3",
                                READOUT_HEARTBEAT_SECONDS="1")
    with transaction.atomic():
        first = holdout_refresh(analysis=analysis, requested_by="tester").pk

    def get(pk: int) -> HoldoutSnapshot:
        return HoldoutSnapshot.objects.get(pk=pk)

    running = _until(lambda: (s := get(first)).status == "running" and s, 30, "the readout starts")
    assert running.sent_at is not None and running.lease_expires_at is not None and running.attempts == 1
    # Alive past its first lease: the heartbeat renews it and the sweep leaves it alone.
    time.sleep(4.5)
    report = readouts_sweep()
    assert report.holdouts is not None and report.holdouts.failed == []
    renewed = get(first)
    assert renewed.status == "running" and renewed.heartbeat_at is not None
    assert running.heartbeat_at is not None and renewed.heartbeat_at > running.heartbeat_at

    os.kill(slow.pid, signal.SIGKILL)
    slow.wait(timeout=10)
    _until(lambda: (get(first).lease_expires_at or timezone.now()) < timezone.now(), 10, "the lease runs out")

    report = readouts_sweep()

    assert report.holdouts is not None and report.holdouts.failed == [first]
    [second] = report.holdouts.requeued
    lost = get(first)
    assert (lost.status, lost.error_code) == ("failed", "worker_lost")
    assert "no heartbeat since" in lost.error and "queued again" in lost.error
    assert get(second).status == "queued" and get(second).sent_at is not None
    report = readouts_sweep()
    assert report.holdouts is not None and report.holdouts.failed == []

    celery_workers.start()
    done = _until(lambda: (s := get(second)).status in ("success", "failed") and s, 90, "the requeued readout ends")
    assert done.status == "success", done.error
    assert done.units == UNITS and done.lease_expires_at is None


@pytest.mark.worker
@pytest.mark.slow
def test_holdout_readouts__one_fails__its_neighbours_succeed_on_the_schedule(
    celery_workers: Workers, actor: Actor, production: Environment,
) -> None:
    good = _analysis(actor, production, "growth")
    broken = _analysis(actor, production, "broken")
    other = _analysis(actor, production, "other")
    _traffic(production, "growth")
    _traffic(production, "other")
    # A readout that cannot be computed: no metrics left to read out.
    broken.links.all().delete()
    celery_workers.start()

    holdout_refresh_active_task.delay()

    def ended() -> dict[int, HoldoutSnapshot] | None:
        found = {s.analysis_id: s for s in HoldoutSnapshot.objects.filter(status__in=["success", "failed"])}
        return found if len(found) == 3 else None

    done = _until(ended, 120, "the three readouts end")
    assert (done[broken.pk].status, done[broken.pk].error_code) == ("failed", "readout_error")
    assert "no metrics" in done[broken.pk].error
    assert done[good.pk].status == "success" and done[good.pk].units == UNITS
    assert done[other.pk].status == "success" and done[other.pk].units == UNITS
