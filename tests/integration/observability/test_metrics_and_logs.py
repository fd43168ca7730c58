"""Prometheus metrics under several gunicorn workers, request ids and JSON logs, against a real
gunicorn with production settings."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth.models import User
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from experiments.models import ResultSnapshot
from tests.integration.serving.relayed import RelayedServer, relayed_server  # noqa: F401 - fixture

OFREP_ROUTE = "ofrep/v1/evaluate/flags/<str:key>"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and labels (parsed by the client library's parser)."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def server(relayed_server: RelayedServer, tmp_path: Path) -> Any:  # noqa: F811
    _, server, env, experiment = relayed_server
    server.env.update({"GUNICORN_WORKERS": "2", "LOG_FORMAT": "json", "GUNICORN_ACCESSLOG": "-",
                       "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")})
    server.start()
    return server, env, experiment


def test_metrics__two_workers__parsed_and_every_request_counted(server: Any) -> None:
    srv, env, _ = server
    before = samples(requests.get(f"{srv.url}/metrics", timeout=10).text)
    session = requests.Session()
    headers = {"Authorization": f"Bearer {env.server_key}"}
    for i in range(40):
        # A new connection each time, so that both workers answer some of them.
        response = requests.post(f"{srv.url}/ofrep/v1/evaluate/flags/kill-switch",
                                 json={"context": {"targetingKey": f"u-{i}"}}, headers=headers, timeout=10)
        assert response.status_code == 200
    tracked = session.post(f"{srv.url}/api/v1/evaluate", json={"context": {"targetingKey": "unit-metrics"}},
                           headers=headers, timeout=10)
    assert tracked.status_code == 200
    now = datetime.now(tz=UTC).isoformat()
    events = session.post(f"{srv.url}/api/v1/events", headers=headers, timeout=10, json={"events": [
        {"type": "event", "id": str(uuid.uuid4()), "unit_id": "unit-metrics", "name": "purchase", "value": 1,
         "timestamp": now},
        {"type": "event", "id": str(uuid.uuid4()), "unit_id": "unit-metrics", "timestamp": now},
    ]})
    assert events.status_code in (200, 202), events.content
    response = requests.get(f"{srv.url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    after = samples(response.text)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("splitbase_http_requests_total", route=OFREP_ROUTE, method="POST", status="200") == 40
    assert moved("splitbase_http_request_duration_seconds_count", route=OFREP_ROUTE) == 40
    assert moved("splitbase_evaluations_total", endpoint="ofrep", reason="STATIC") == 40
    assert moved("splitbase_evaluations_total", endpoint="evaluate", reason="SPLIT") >= 1
    assert moved("splitbase_exposures_total", outcome="buffered") == 1
    assert moved("splitbase_events_total", outcome="accepted", code="") == 1
    assert sum(v for (name, labels), v in after.items()
               if name == "splitbase_events_total" and dict(labels).get("outcome") == "rejected") >= 1
    assert value(after, "splitbase_snapshot_config_version", environment="production") == env.config_version
    assert ("splitbase_celery_queue_length", (("queue", "celery"),)) in after
    assert ("splitbase_snapshot_age_seconds", ()) in after


def test_json_logs__request_id_returned_and_logged__no_secret(server: Any) -> None:
    srv, env, _ = server
    given = "trace-" + uuid.uuid4().hex[:12]
    response = requests.get(f"{srv.url}/api/features/{env.client_key}", headers={"X-Request-ID": given}, timeout=10)
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == given
    generated = requests.get(f"{srv.url}/healthz", headers={"X-Request-ID": "bad id with spaces"}, timeout=10)
    assert generated.headers["X-Request-ID"] != "bad id with spaces" and len(generated.headers["X-Request-ID"]) == 32
    srv.stop()
    lines = [json.loads(line) for line in srv.log.read_text().splitlines() if line.startswith("{")]
    ours = [line for line in lines if line.get("request_id") == given]
    assert ours, lines[-5:]
    assert ours[0]["path"].startswith("/api/features/sdk-client-[redacted:")
    assert {"time", "level", "logger", "message"} <= set(ours[0])
    assert env.client_key not in srv.log.read_text()


@pytest.mark.django_db
def test_metrics_endpoint__token_or_network_required(admin_user: User) -> None:
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 403
    assert Client().get("/metrics").status_code == 200  # the test client comes from 127.0.0.1
    with override_settings(METRICS_TOKEN="s3cret-metrics"):
        assert Client().get("/metrics").status_code == 403
        assert Client(HTTP_AUTHORIZATION="Bearer wrong").get("/metrics").status_code == 403
        assert Client(HTTP_AUTHORIZATION="Bearer s3cret-metrics", REMOTE_ADDR="10.1.2.3").get(
            "/metrics").status_code == 200


@pytest.mark.django_db
def test_readout_collector__last_duration_and_failures_of_running_experiments(
    relayed_server: RelayedServer,  # noqa: F811
) -> None:
    _, _, _, experiment = relayed_server
    ResultSnapshot.objects.create(experiment=experiment, status=ResultSnapshot.Status.FAILED, error="boom")
    ResultSnapshot.objects.create(experiment=experiment, status=ResultSnapshot.Status.SUCCESS, duration_ms=1500,
                                  finished_at=experiment.started_at)
    found = samples(Client().get("/metrics").content.decode())
    assert value(found, "splitbase_readout_failures_total", experiment=experiment.key) == 1
    assert value(found, "splitbase_readout_last_duration_seconds", experiment=experiment.key) == 1.5
