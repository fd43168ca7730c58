"""Readouts under faults, with real Celery worker processes and a real broker: a worker killed
with SIGKILL in the middle of a readout, and a readout asked for while the broker is down."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from rest_framework.test import APIClient

from audit.types import Actor
from base.models import Environment
from experiments import services
from experiments.models import Experiment, ResultSnapshot
from experiments.readout_sweep import readouts_sweep
from experiments.tasks import readouts_sweep_task
from flags.models import Flag
from tests.integration.experiments.conftest import (
    WORKER_REDIS_DB,
    Workers,
    create_experiment,
    create_metrics,
    point_app_at,
)

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def _experiment(actor: Actor, flag: Flag, environment: Environment) -> Experiment:
    create_metrics(actor, ["purchase", "revenue"])
    experiment = create_experiment(actor, flag, environment, ["purchase", "revenue"], slice_attributes=["country"])
    now = datetime.now(tz=UTC)
    items: list[dict[str, Any]] = []
    for i in range(200):
        seen = now - timedelta(hours=1 + i % 24)
        items.append({"id": f"x{i}", "type": "exposure", "unit_id": f"u{i}", "experiment": experiment.key,
                      "variation": ("control", "treatment")[i % 2], "timestamp": seen.isoformat(),
                      "attributes": {"country": ("US", "DE")[i % 3 == 0]}})
        if i % 4 < 2:
            items.append({"id": f"p{i}", "type": "event", "unit_id": f"u{i}", "name": "purchase", "value": 5 + i % 9,
                          "timestamp": (seen + timedelta(minutes=5)).isoformat()})
    result = services.events_ingest(environment=environment, items=items)
    assert not result.rejected
    return experiment


def _until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"Not within {timeout} s: {what}")


def _snapshot(pk: int) -> ResultSnapshot:
    return ResultSnapshot.objects.get(pk=pk)


def test_readout__worker_killed_mid_readout__swept_failed_requeued_and_completed_by_another_worker(
    celery_workers: Workers, write_client: APIClient, checkout_flag: Flag, production: Environment, actor: Actor,
    settings: Any,
) -> None:
    _experiment(actor, checkout_flag, production)
    # Short leases, so that the test does not wait for minutes; the same in the test process,
    # which runs the sweep, as in the worker.
    settings.READOUT_LEASE_SECONDS, settings.READOUT_HEARTBEAT_SECONDS = 3, 1
    slow = celery_workers.start(READOUT_DELAY_SECONDS="600", READOUT_LEASE_SECONDS="3",
                                READOUT_HEARTBEAT_SECONDS="1")

    refresh = write_client.post("/api/v1/experiments/checkout-test/refresh")
    assert refresh.status_code == 202
    first = refresh.json()["snapshot"]
    running = _until(lambda: (s := _snapshot(first)).status == "running" and s, 30, "the readout starts")
    assert running.sent_at is not None and running.lease_expires_at is not None

    # Alive past its first lease: the heartbeat renews it, and the sweep leaves it alone.
    time.sleep(4.5)
    assert readouts_sweep().failed == []
    renewed = _snapshot(first)
    assert renewed.status == "running"
    assert renewed.heartbeat_at is not None and renewed.heartbeat_at > running.heartbeat_at

    os.kill(slow.pid, signal.SIGKILL)
    slow.wait(timeout=10)
    # Nothing renews the lease now; until it runs out the readout still counts as running.
    killed = _snapshot(first)
    if killed.lease_expires_at is not None and killed.lease_expires_at > timezone.now() + timedelta(seconds=1):
        assert readouts_sweep().failed == []
    _until(lambda: (_snapshot(first).lease_expires_at or timezone.now()) < timezone.now(), 10, "the lease runs out")

    report = readouts_sweep()

    assert report.failed == [first]
    [second] = report.requeued
    lost = _snapshot(first)
    assert (lost.status, lost.error_code) == ("failed", "worker_lost")
    assert "no heartbeat since" in lost.error and "queued again" in lost.error
    assert lost.finished_at is not None
    assert _snapshot(second).status == "queued" and _snapshot(second).sent_at is not None
    body = write_client.get("/api/v1/experiments/checkout-test/results").json()
    assert body["pending"]["id"] == second
    assert any(h["id"] == first and h["status"] == "failed" for h in body["history"])
    # A second sweep finds nothing more to do.
    assert readouts_sweep().failed == []

    celery_workers.start()
    done = _until(lambda: (s := _snapshot(second)).status in ("success", "failed") and s, 90,
                  "the requeued readout ends")
    assert done.status == "success", done.error
    assert done.units == 200
    assert done.lease_expires_at is None


def test_readout__requested_while_broker_down__queued_then_sent_by_the_beat_sweep(
    celery_workers: Workers, write_client: APIClient, checkout_flag: Flag, production: Environment, actor: Actor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from config.celery import app

    _experiment(actor, checkout_flag, production)
    broker = app.conf.broker_url
    assert broker.endswith(f"/{WORKER_REDIS_DB}")
    down = "redis://127.0.0.1:1/0"  # nothing listens there
    monkeypatch.setenv("CELERY_BROKER_URL", down)
    point_app_at(app, down)
    try:
        started = time.monotonic()
        refresh = write_client.post("/api/v1/experiments/checkout-test/refresh")
        waited = time.monotonic() - started
    finally:
        monkeypatch.setenv("CELERY_BROKER_URL", broker)
        point_app_at(app, broker)
    assert refresh.status_code == 202, refresh.content
    assert waited < 10
    snapshot_id = refresh.json()["snapshot"]
    waiting = _snapshot(snapshot_id)
    assert (waiting.status, waiting.sent_at) == ("queued", None)

    # The broker is back; nobody asks for the readout again. Once the request is older than
    # the grace its own send had, the beat's sweep (run by a worker) sends it.
    ResultSnapshot.objects.filter(pk=snapshot_id).update(created_at=waiting.created_at - timedelta(minutes=1))
    celery_workers.start()
    readouts_sweep_task.delay()
    done = _until(lambda: (s := _snapshot(snapshot_id)).status in ("success", "failed") and s, 90,
                  "the readout is sent and computed")
    assert done.status == "success", done.error
    assert done.sent_at is not None and done.units == 200


def test_beat_schedule__sweep_every_readout_sweep_seconds() -> None:
    entry = django_settings.CELERY_BEAT_SCHEDULE["experiments-readouts-sweep"]
    assert entry["task"] == readouts_sweep_task.name
    assert entry["schedule"] == django_settings.READOUT_SWEEP_SECONDS
    from experiments.tasks import experiment_readout_task

    assert experiment_readout_task.acks_late and experiment_readout_task.reject_on_worker_lost
    assert experiment_readout_task.time_limit == django_settings.READOUT_TIME_LIMIT
    from config.celery import app

    visibility = app.conf.broker_transport_options["visibility_timeout"]
    assert visibility == django_settings.CELERY_BROKER_VISIBILITY_TIMEOUT > django_settings.READOUT_TIME_LIMIT
