"""End to end with a real Celery worker process: create, start, ingest, refresh, read the
snapshot over the API; the scheduled refresh; a failed readout is recorded and visible."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient

from base.models import Environment
from experiments.models import Experiment, ResultSnapshot
from experiments.tasks import experiment_refresh_running_task
from flags.models import Flag
from tests.integration.experiments.conftest import backdate, create_metrics, post_events, sdk_client

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def _wait_for(client: APIClient, key: str, predicate: Any, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/experiments/{key}/results").json()
        if predicate(body):
            return body
        time.sleep(0.3)
    pytest.fail(f"No matching results within {timeout} s; last answer: {body}")


def test_readout__real_worker__snapshot_computed_and_served(
    celery_worker: subprocess.Popen[bytes], write_client: APIClient, checkout_flag: Flag,
    production: Environment, actor: Any,
) -> None:
    create_metrics(actor, ["purchase", "revenue", "errors"])
    created = write_client.post("/api/v1/experiments", {
        "key": "worker-test", "flag": "checkout", "environment": "production",
        "variations": [{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}],
        "metrics": [{"metric": "purchase", "role": "primary"}, {"metric": "revenue"},
                    {"metric": "errors", "role": "guardrail"}],
        "slice_attributes": ["country"],
    }, format="json")
    assert created.status_code == 201, created.json()
    assert write_client.post("/api/v1/experiments/worker-test/start").status_code == 200
    backdate(Experiment.objects.get(key="worker-test"), days=5)

    now = datetime.now(tz=UTC)
    items: list[dict[str, Any]] = []
    for i in range(400):
        variation = ("control", "treatment")[i % 2]
        seen = now - timedelta(hours=1 + i % 48)
        items.append({"id": f"x{i}", "type": "exposure", "unit_id": f"u{i}", "experiment": "worker-test",
                      "variation": variation, "timestamp": seen.isoformat(),
                      "attributes": {"country": ("US", "DE")[i % 3 == 0]}})
        if i % (3 if variation == "treatment" else 5) == 0:
            items.append({"id": f"p{i}", "type": "event", "unit_id": f"u{i}", "name": "purchase",
                          "value": 10 + i % 7, "timestamp": (seen + timedelta(minutes=30)).isoformat()})
    response = post_events(sdk_client(production), items)
    assert response.status_code == 202 and response.json()["rejected"] == []

    refresh = write_client.post("/api/v1/experiments/worker-test/refresh")
    assert refresh.status_code == 202
    snapshot_id = refresh.json()["snapshot"]
    body = _wait_for(write_client, "worker-test",
                     lambda b: b["latest"] is not None and b["latest"]["id"] == snapshot_id)
    latest = body["latest"]
    assert latest["status"] == "success", latest
    assert latest["units"] == 400
    assert [v["units"] for v in latest["variations"]] == [200, 200]
    purchase = next(m for m in latest["metrics"] if m["key"] == "purchase")
    assert [v["users"] for v in purchase["variations"]] == [200, 200]
    assert purchase["variations"][0]["mean"] == pytest.approx(40 / 200)
    assert purchase["variations"][1]["mean"] == pytest.approx(67 / 200)
    assert purchase["fixed"][0]["estimate"] == pytest.approx((67 / 200) / (40 / 200) - 1)
    assert {"fixed", "cuped", "sequential"} <= set(purchase)
    assert latest["srm_p_value"] == pytest.approx(1.0)
    assert latest["guardrail_status"] == "ok"
    assert [s["value"] for s in latest["slices"]] == ["US", "DE"]
    assert body["history"][-1]["id"] == snapshot_id

    # The beat task queues and the worker computes a readout of every running experiment.
    experiment_refresh_running_task.delay()
    body = _wait_for(write_client, "worker-test", lambda b: len(
        [h for h in b["history"] if h["trigger"] == "schedule" and h["status"] == "success"]) == 1)
    assert body["latest"]["rollup_mode"] == "incremental"


def test_readout__fails_in_the_worker__failure_recorded_and_visible(
    celery_worker: subprocess.Popen[bytes], write_client: APIClient, checkout_flag: Flag,
    production: Environment, actor: Any,
) -> None:
    metrics = create_metrics(actor, ["purchase"])
    write_client.post("/api/v1/experiments", {
        "key": "broken", "flag": "checkout", "environment": "production",
        "variations": [{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}],
        "metrics": [{"metric": "purchase", "role": "primary"}],
    }, format="json")
    write_client.post("/api/v1/experiments/broken/start")
    # A definition the readout cannot turn into SQL, written behind the services' back.
    type(metrics["purchase"]).objects.filter(pk=metrics["purchase"].pk).update(kind="mystery")
    refresh = write_client.post("/api/v1/experiments/broken/refresh")
    body = _wait_for(write_client, "broken", lambda b: b["latest"] is not None)
    latest = body["latest"]
    assert latest["id"] == refresh.json()["snapshot"]
    assert latest["status"] == "failed"
    assert latest["error_code"] == "readout_error"
    assert "mystery" in latest["error"]
    assert ResultSnapshot.objects.get(pk=latest["id"]).finished_at is not None
