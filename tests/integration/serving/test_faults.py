"""Faults under a real gunicorn (production settings) reaching PostgreSQL through a TCP relay:
a silent partition does not hold requests, the events API answers 503 while the database is
down, and a worker killed outright loses no exposure."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from experiments.models import Event, Experiment
from experiments.models import Exposure as ExposureRow
from tests.integration.serving.relayed import RelayedServer, Server, wait_until
from tests.integration.serving.test_fail_static import _evaluate

pytestmark = [pytest.mark.slow]



def _exposed(experiment: Experiment) -> set[str]:
    return set(ExposureRow.objects.filter(experiment_id=experiment.pk).values_list("unit__key", flat=True))


def _post_events(server: Server, key: str, ids: list[str]) -> requests.Response:
    now = datetime.now(tz=UTC).isoformat()
    items = [{"id": i, "type": "event", "unit_id": f"u-{i}", "name": "purchase", "timestamp": now} for i in ids]
    return requests.post(f"{server.url}/api/v1/events", json={"events": items}, headers={"X-API-Key": key},
                         timeout=20)


def _workers(server: Server) -> list[int]:
    assert server.process is not None
    found = subprocess.run(["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


def test_silent_partition__requests_answer_from_the_snapshot_and_events_refused_with_503(
    relayed_server: RelayedServer,
) -> None:
    relay, server, env, experiment = relayed_server
    server.env["SNAPSHOT_STALE_AFTER"] = "1.0"
    server.start()
    before = {f"a-{i}": _evaluate(server, env.client_key, f"a-{i}") for i in range(5)}
    assert _post_events(server, env.client_key, ["e-1"]).status_code == 202

    relay.blackhole()  # connections stay open, nothing answers
    started = time.monotonic()
    for unit, flags in before.items():
        assert _evaluate(server, env.client_key, unit) == flags
    assert time.monotonic() - started < 3.0, "requests waited for the silent database"
    time.sleep(2.0)  # past SNAPSHOT_STALE_AFTER
    started = time.monotonic()
    ready = requests.get(f"{server.url}/readyz", timeout=10)
    assert time.monotonic() - started < 5.0
    assert ready.status_code == 503
    assert ready.json()["evaluation"]["state"] == "degraded"
    refused = _post_events(server, env.client_key, ["e-2"])
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "5"
    assert refused.json()["code"] == "unavailable"
    during = {f"b-{i}": _evaluate(server, env.client_key, f"b-{i}") for i in range(5)}

    relay.start()
    wait_until(lambda: _post_events(server, env.client_key, ["e-2"]).status_code == 202, 20,
          "the events API did not accept the batch again after the partition")
    assert set(Event.objects.values_list("client_id", flat=True)) == {"e-1", "e-2"}
    wait_until(lambda: _exposed(experiment) == set(before) | set(during), 20, "exposures did not arrive after it")


def test_database_refused__events_503_with_retry_after_then_accepted(relayed_server: RelayedServer) -> None:
    relay, server, env, _ = relayed_server
    server.start()
    assert _post_events(server, env.client_key, ["r-1"]).status_code == 202
    relay.refuse()
    response = _post_events(server, env.client_key, ["r-2", "r-3"])
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert set(response.json()) == {"code", "message", "details"}
    relay.start()
    wait_until(lambda: _post_events(server, env.client_key, ["r-2", "r-3"]).status_code == 202, 20,
          "the events API did not recover")
    assert set(Event.objects.values_list("client_id", flat=True)) == {"r-1", "r-2", "r-3"}


def test_worker_killed__its_queued_exposures_are_written_by_the_next_one(relayed_server: RelayedServer) -> None:
    _, server, env, experiment = relayed_server
    server.env["EXPOSURE_FLUSH_INTERVAL"] = "3.0"  # nothing is flushed before the kill
    server.start()
    _evaluate(server, env.client_key, "warm-up")
    wait_until(lambda: _exposed(experiment) == {"warm-up"}, 10, "the warm-up exposure was not written")
    units = {f"k-{i}" for i in range(10)}
    for unit in units:
        _evaluate(server, env.client_key, unit)
    [worker] = _workers(server)
    os.kill(worker, signal.SIGKILL)
    wait_until(lambda: bool(_workers(server)) and _workers(server) != [worker], 20,
               "gunicorn did not start a new worker")
    # The new worker loads the application before it answers, which takes seconds on a busy machine.
    _evaluate(server, env.client_key, "after", timeout=60)  # starts the new worker's flush thread
    wait_until(lambda: _exposed(experiment) >= units | {"after"}, 20,
          "the killed worker's exposures were lost")


def test_serving_files__private_to_the_service_user(relayed_server: RelayedServer) -> None:
    _, server, env, _ = relayed_server
    server.start()
    _evaluate(server, env.client_key, "p-1")
    directory = Path(server.env["SNAPSHOT_DIR"])
    wait_until(lambda: any(directory.glob("environment-*.json")), 10, "no snapshot file was written")
    assert (directory.stat().st_mode & 0o777) == 0o700
    assert (directory / "exposures").stat().st_mode & 0o777 == 0o700
    for path in directory.glob("environment-*.json"):
        assert path.stat().st_mode & 0o777 == 0o600
    assert not list(directory.glob(".snapshot-*.tmp"))
