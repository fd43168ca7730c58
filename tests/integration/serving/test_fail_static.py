"""Fail static, for real: gunicorn (production settings) reaches PostgreSQL through a TCP relay
that the test cuts mid-run. Answers must continue from the last snapshot, /readyz must report
the degraded state, a restarted server must answer from the snapshot on disk, and exposures
seen during the outage must reach the database after it comes back."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests

from experiments.models import Experiment
from experiments.models import Exposure as ExposureRow
from tests.integration.serving.relayed import RelayedServer, Server, wait_until

pytestmark = [pytest.mark.slow]


def _evaluate(server: Server, key: str, unit: str, timeout: float = 5) -> dict[str, Any]:
    response = requests.post(f"{server.url}/api/v1/evaluate", json={"context": {"targetingKey": unit}},
                             headers={"X-API-Key": key}, timeout=timeout)
    assert response.status_code == 200, response.text
    flags: dict[str, Any] = response.json()["flags"]
    return flags


def _exposed(experiment: Experiment) -> set[str]:
    return set(ExposureRow.objects.filter(experiment_id=experiment.pk).values_list("unit__key", flat=True))


def test_fail_static__database_cut_mid_run__answers_continue_and_exposures_arrive_later(
    relayed_server: RelayedServer,
) -> None:
    relay, server, env, experiment = relayed_server
    server.start()
    before = {f"a-{i}": _evaluate(server, env.client_key, f"a-{i}") for i in range(10)}
    wait_until(lambda: _exposed(experiment) >= set(before), 10, "exposures were not written while the database was up")
    assert requests.get(f"{server.url}/readyz", timeout=5).json()["evaluation"]["state"] == "ok"

    relay.refuse()
    time.sleep(0.5)  # past the version check interval: the next request finds the database gone
    for unit, flags in before.items():
        assert _evaluate(server, env.client_key, unit) == flags
    outage = {f"b-{i}": _evaluate(server, env.client_key, f"b-{i}") for i in range(10)}
    ready = requests.get(f"{server.url}/readyz", timeout=10)
    assert ready.status_code == 503
    assert ready.json()["evaluation"]["state"] == "degraded", ready.json()
    payload = requests.get(f"{server.url}/api/features/{env.client_key}", timeout=5)
    assert payload.status_code == 200 and "button-color" in payload.json()["features"]
    spool = server.env["SNAPSHOT_DIR"] + "/exposures"
    wait_until(lambda: any(Path(spool).glob("spool-*.jsonl")), 10,
          f"exposures were not spooled during the outage: {sorted(p.name for p in Path(spool).glob('*'))}")

    # A restarted server, with the database still down, answers from the snapshot on disk.
    server.stop()
    server.start()
    for unit, flags in before.items():
        assert _evaluate(server, env.client_key, unit) == flags
    restarted = {f"c-{i}": _evaluate(server, env.client_key, f"c-{i}") for i in range(10)}
    assert requests.get(f"{server.url}/readyz", timeout=10).json()["evaluation"]["state"] == "degraded"
    unknown = requests.post(f"{server.url}/api/v1/evaluate", json={"context": {}},
                            headers={"X-API-Key": "sdk-client-unknown"}, timeout=5)
    assert unknown.status_code == 401
    assert _exposed(experiment) == set(before)

    relay.start()
    expected = set(before) | set(outage) | set(restarted)
    wait_until(lambda: _exposed(experiment) == expected, 15,
          f"buffered exposures did not arrive after recovery: missing {sorted(expected - _exposed(experiment))}")
    wait_until(lambda: requests.get(f"{server.url}/readyz", timeout=5).json()["evaluation"]["state"] == "ok", 10,
          "the server did not leave the degraded state")
    assert not any(Path(spool).glob("*.jsonl"))
    variations = dict(ExposureRow.objects.filter(experiment_id=experiment.pk).values_list("unit__key", "variation"))
    keys = ["blue", "green"]
    answers = {**before, **outage, **restarted}
    served = {unit: flags["button-color"]["variant"] for unit, flags in answers.items()}
    assert {unit: keys[v] for unit, v in variations.items()} == served
