"""The snapshot cache: freshness after writes, no queries per request, fail static, disk copy."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from flags.engine.evaluation import evaluate_all
from serving.snapshots import SnapshotStore, store
from tests.integration.serving.conftest import Catalog, sdk_post, unit_context

pytestmark = pytest.mark.django_db

URL = "/api/v1/evaluate"


class _Down:
    """Stands in for the Environment model while the database is unreachable."""

    class objects:
        @staticmethod
        def values_list(*args: Any, **kwargs: Any) -> Any:
            raise OperationalError("could not connect to server: Connection refused")

        @staticmethod
        def filter(*args: Any, **kwargs: Any) -> Any:
            raise OperationalError("could not connect to server: Connection refused")


def _kill_switch(client: Client, catalog: Catalog) -> Any:
    body = {"context": {"targetingKey": "unit-1"}, "flags": ["kill-switch"]}
    response = sdk_post(client, URL, body, catalog.client_key)
    assert response.status_code == 200, response.content
    return response.json()["flags"]["kill-switch"]["value"]


def test_snapshot__write_through_management_api__visible_within_2_seconds(
    client: Client, catalog: Catalog, write_client: APIClient, settings: Any
) -> None:
    settings.SNAPSHOT_CHECK_INTERVAL = 1.0
    assert _kill_switch(client, catalog) is True
    response = write_client.patch("/api/v1/flags/kill-switch/environments/production", {"enabled": False},
                                  format="json")
    assert response.status_code == 200, response.content
    written = time.monotonic()
    while _kill_switch(client, catalog) is not False:
        assert time.monotonic() - written < 2.0, "the write was not visible within 2 seconds"
        time.sleep(0.05)


def test_snapshot__requests_within_interval__no_query(client: Client, catalog: Catalog, settings: Any) -> None:
    settings.SNAPSHOT_CHECK_INTERVAL = 60.0
    _kill_switch(client, catalog)
    with CaptureQueriesContext(connection) as queries:
        for i in range(50):
            body = {"context": unit_context(i), "track": False}
            assert sdk_post(client, URL, body, catalog.client_key).status_code == 200
            assert sdk_post(client, "/ofrep/v1/evaluate/flags/pricing", {"context": unit_context(i)},
                            catalog.client_key).status_code == 200
    assert [q["sql"] for q in queries.captured_queries] == []


def test_snapshot__version_check__one_query(client: Client, catalog: Catalog, settings: Any) -> None:
    _kill_switch(client, catalog)
    with CaptureQueriesContext(connection) as queries:
        _kill_switch(client, catalog)
    assert len(queries.captured_queries) == 1
    assert "config_version" in queries.captured_queries[0]["sql"]


def test_snapshot__database_down__last_snapshot_served_and_readyz_degraded(
    client: Client, catalog: Catalog, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.SNAPSHOT_RETRY_INTERVAL = 0.0
    before = sdk_post(client, URL, {"context": unit_context(3), "track": False}, catalog.client_key).json()
    monkeypatch.setattr("serving.snapshots.Environment", _Down)
    during = sdk_post(client, URL, {"context": unit_context(3), "track": False}, catalog.client_key)
    assert during.status_code == 200
    assert during.json() == before
    assert store.degraded
    ready = client.get("/readyz").json()
    assert ready["status"] == "degraded"
    assert ready["evaluation"]["state"] == "degraded"
    assert ready["evaluation"]["error"] == "OperationalError"
    monkeypatch.undo()
    assert sdk_post(client, URL, {"context": unit_context(3), "track": False}, catalog.client_key).json() == before
    assert not store.degraded
    assert client.get("/readyz").json()["evaluation"]["state"] == "ok"


def test_snapshot__new_process_with_database_down__serves_from_disk(
    client: Client, catalog: Catalog, monkeypatch: pytest.MonkeyPatch, serving_state: Path
) -> None:
    _kill_switch(client, catalog)
    files = list(serving_state.glob("environment-*.json"))
    assert len(files) == 1
    text = files[0].read_text()
    assert catalog.client_key not in text and catalog.server_key not in text
    warm = store.resolve(catalog.client_key)
    assert warm is not None

    monkeypatch.setattr("serving.snapshots.Environment", _Down)
    fresh = SnapshotStore()
    resolved = fresh.resolve(catalog.client_key)
    assert resolved is not None
    info, compiled = resolved
    assert (info.environment, info.kind) == ("production", "client")
    assert compiled.version == warm[1].version
    assert fresh.resolve(catalog.server_key) is not None
    assert fresh.resolve("sdk-client-unknown") is None
    assert fresh.degraded
    for i in range(300):
        attributes = {**unit_context(i), "id": f"unit-{i}"}
        assert evaluate_all(compiled.snapshot, attributes) == evaluate_all(warm[1].snapshot, attributes)


def test_snapshot__nothing_cached_and_database_down__503(
    client: Client, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("serving.snapshots.Environment", _Down)
    response = sdk_post(client, URL, {"context": {}}, catalog.client_key)
    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"
    assert response["Retry-After"] == "5"
    assert store.degraded
