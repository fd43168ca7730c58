"""Data sources through the management API and the admin: checked before stored, secrets only
as environment variable names, tested against a real DuckDB file, named by experiments."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditEntry
from experiments.models import DataSource, Experiment
from tests.integration.experiments.conftest import post_experiment

pytestmark = pytest.mark.django_db

EXPOSURES = "SELECT user_id AS unit_id, ts AS timestamp, experiment, variation, country FROM exposures"
EVENTS = "SELECT user_id AS unit_id, ts AS timestamp, event AS name, amount AS value FROM events"


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    """A DuckDB file with a few exposures and events."""
    path = tmp_path / "dw.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE exposures (user_id VARCHAR, ts TIMESTAMP, experiment VARCHAR, variation VARCHAR, "
                     "country VARCHAR)")
        conn.execute("CREATE TABLE events (user_id VARCHAR, ts TIMESTAMP, event VARCHAR, amount DOUBLE)")
        conn.executemany("INSERT INTO exposures VALUES (?, ?, 'checkout-test', ?, 'DE')",
                         [(f"u{i}", datetime(2024, 5, 1, 12, i), "control" if i % 2 else "treatment")
                          for i in range(30)])
        conn.executemany("INSERT INTO events VALUES (?, ?, 'purchase', ?)",
                         [(f"u{i}", datetime(2024, 5, 2, 12, i), float(i)) for i in range(10)])
    return path


def _body(path: Path, key: str = "dw", **fields: Any) -> dict[str, Any]:
    return {"key": key, "name": "Growth warehouse", "engine": "duckdb", "connection": {"path": str(path)},
            "exposure_query": EXPOSURES, "event_query": EVENTS, **fields}


def test_create__valid__stored_shown_and_audited(write_client: APIClient, warehouse: Path) -> None:
    response = write_client.post("/api/v1/data-sources", _body(warehouse), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["engine"] == "duckdb" and body["connection"] == {"path": str(warehouse)}
    assert body["timeout_seconds"] == 300 and body["experiments"] == []
    assert write_client.get("/api/v1/data-sources").json()["results"][0]["key"] == "dw"
    assert write_client.get("/api/v1/data-sources/dw").json()["exposure_query"] == EXPOSURES
    assert AuditEntry.objects.filter(action="data_source.create", object_key="dw").count() == 1


@pytest.mark.parametrize("change, field, message", [
    ({"exposure_query": "DROP TABLE exposures"}, "exposure_query", "Only a SELECT"),
    ({"event_query": "SELECT 1 AS unit_id; DELETE FROM events"}, "event_query", "exactly one statement"),
    ({"event_query": "SELECT user_id AS unit_id FROM events"}, "event_query", "missing"),
    ({"connection": {"path": "/x.duckdb", "password": "hunter2"}}, "connection", "never stored"),
    ({"engine": "oracle"}, "engine", ""),
    ({"key": "Bad Key"}, "key", ""),
    ({"timeout_seconds": 0}, "timeout_seconds", ""),
])
def test_create__invalid__400_naming_the_field_and_nothing_stored(
    write_client: APIClient, warehouse: Path, change: dict[str, Any], field: str, message: str
) -> None:
    response = write_client.post("/api/v1/data-sources", {**_body(warehouse), **change}, format="json")
    assert response.status_code == 400, response.json()
    details = response.json()["details"]
    assert field in details, details
    assert message in " ".join(map(str, details[field]))
    assert "hunter2" not in response.content.decode()
    assert not DataSource.objects.exists()


def test_patch__query__checked_again_and_audited(write_client: APIClient, warehouse: Path) -> None:
    write_client.post("/api/v1/data-sources", _body(warehouse), format="json")
    bad = write_client.patch("/api/v1/data-sources/dw", {"event_query": "TRUNCATE events"}, format="json")
    assert bad.status_code == 400
    assert DataSource.objects.get(key="dw").event_query == EVENTS
    new = EVENTS + " WHERE event <> 'debug'"
    ok = write_client.patch("/api/v1/data-sources/dw", {"event_query": new, "timeout_seconds": 60}, format="json")
    assert ok.status_code == 200 and ok.json()["event_query"] == new and ok.json()["timeout_seconds"] == 60
    entry = AuditEntry.objects.get(action="data_source.update")
    assert entry.before is not None and entry.after is not None
    assert entry.before["event_query"] == EVENTS and entry.after["event_query"] == new


def test_test__working_source__columns_rows_and_version(write_client: APIClient, warehouse: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    write_client.post("/api/v1/data-sources", _body(warehouse), format="json")
    with caplog.at_level(logging.INFO, logger="splitbase.warehouse"):
        response = write_client.post("/api/v1/data-sources/dw/test")
    assert response.status_code == 200
    report = response.json()
    assert report["ok"] is True and report["error"] is None
    assert report["engine_version"].startswith("DuckDB v")
    exposures, events = report["queries"]
    assert exposures["columns"] == ["unit_id", "timestamp", "experiment", "variation", "country"]
    assert exposures["rows"] == 30 and exposures["problems"] == []
    assert events["rows"] == 10 and events["limit"] == 100
    logged = [r.getMessage() for r in caplog.records if r.name == "splitbase.warehouse"]
    assert len(logged) == 2 and all("duration_ms=" in m and "rows=" in m for m in logged)
    assert str(warehouse) not in " ".join(logged)


def test_test__unusable_types_or_missing_table__reported_not_raised(write_client: APIClient, warehouse: Path) -> None:
    events = "SELECT user_id AS unit_id, event AS timestamp, event AS name, amount AS value FROM events"
    write_client.post("/api/v1/data-sources", _body(warehouse, event_query=events,
                                                    exposure_query=EXPOSURES.replace("exposures", "nowhere")),
                      format="json")
    report = write_client.post("/api/v1/data-sources/dw/test").json()
    assert report["ok"] is False
    exposures, events_ = report["queries"]
    assert "nowhere" in exposures["problems"][0]
    assert "Column 'timestamp' holds text values" in events_["problems"][0]


def test_test__unreachable__clear_error(write_client: APIClient, tmp_path: Path) -> None:
    write_client.post("/api/v1/data-sources", _body(tmp_path / "missing.duckdb"), format="json")
    report = write_client.post("/api/v1/data-sources/dw/test").json()
    assert report["ok"] is False and "No DuckDB database file" in report["error"]


def test_test__secret_from_the_environment__missing_variable_named(write_client: APIClient) -> None:
    body = {"key": "pg", "engine": "postgres", "exposure_query": EXPOSURES, "event_query": EVENTS,
            "connection": {"host": "127.0.0.1", "dbname": "nowhere", "user": "reader",
                           "password_env": "SPLITBASE_TEST_UNSET_PASSWORD"}}
    assert write_client.post("/api/v1/data-sources", body, format="json").status_code == 201
    report = write_client.post("/api/v1/data-sources/pg/test").json()
    assert report["ok"] is False and "SPLITBASE_TEST_UNSET_PASSWORD" in report["error"]


def test_read_token__cannot_write_or_test(read_client: APIClient, write_client: APIClient, warehouse: Path) -> None:
    assert read_client.post("/api/v1/data-sources", _body(warehouse), format="json").status_code == 403
    write_client.post("/api/v1/data-sources", _body(warehouse), format="json")
    assert read_client.get("/api/v1/data-sources/dw").status_code == 200
    assert read_client.post("/api/v1/data-sources/dw/test").status_code == 403
    assert read_client.delete("/api/v1/data-sources/dw").status_code == 403


def test_experiment__data_source__named_shown_and_protects_the_source(
    write_client: APIClient, warehouse: Path, api_ready: None
) -> None:
    write_client.post("/api/v1/data-sources", _body(warehouse), format="json")
    unknown = post_experiment(write_client, data_source="nope")
    assert unknown.status_code == 400 and "data_source" in unknown.json()["details"]
    created = post_experiment(write_client, data_source="dw")
    assert created.status_code == 201 and created.json()["data_source"] == "dw"
    assert write_client.get("/api/v1/data-sources/dw").json()["experiments"] == ["checkout-test"]
    refused = write_client.delete("/api/v1/data-sources/dw")
    assert refused.status_code == 409 and refused.json()["code"] == "data_source_in_use"
    cleared = write_client.patch("/api/v1/experiments/checkout-test", {"data_source": None}, format="json")
    assert cleared.status_code == 200 and cleared.json()["data_source"] is None
    assert Experiment.objects.get(key="checkout-test").data_source is None
    assert write_client.delete("/api/v1/data-sources/dw").status_code == 204
    assert not DataSource.objects.exists()
    assert AuditEntry.objects.filter(action="data_source.delete", object_key="dw").count() == 1


def test_admin__add__same_checks_as_the_api(admin_client: Client, warehouse: Path) -> None:
    form = {"key": "dw", "name": "", "description": "", "engine": "duckdb", "connection": '{"password": "x"}',
            "exposure_query": "DELETE FROM exposures", "event_query": EVENTS, "timeout_seconds": "300"}
    response = admin_client.post(reverse("admin:experiments_datasource_add"), form)
    assert response.status_code == 200
    text = response.content.decode()
    assert "never stored" in text and "Only a SELECT" in text
    assert not DataSource.objects.exists()
    form.update(connection=f'{{"path": "{warehouse}"}}', exposure_query=EXPOSURES)
    response = admin_client.post(reverse("admin:experiments_datasource_add"), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    source = DataSource.objects.get(key="dw")
    assert AuditEntry.objects.filter(action="data_source.create", via="admin").count() == 1
    tested = admin_client.get(reverse("admin:experiments_datasource_test_detail", args=[source.pk]), follow=True)
    assert "both queries work" in tested.content.decode()


def test_results_page__data_source__named_as_where_the_data_comes_from(
    write_client: APIClient, admin_client: Client, warehouse: Path, api_ready: None
) -> None:
    write_client.post("/api/v1/data-sources", _body(warehouse), format="json")
    post_experiment(write_client, data_source="dw")
    page = admin_client.get(reverse("experiment-pages:detail", args=["checkout-test"])).content.decode()
    assert "read from the data source <strong>Growth warehouse</strong> (DuckDB)" in page
    write_client.patch("/api/v1/experiments/checkout-test", {"data_source": None}, format="json")
    page = admin_client.get(reverse("experiment-pages:detail", args=["checkout-test"])).content.decode()
    assert "this service's exposures and events" in page or "this service&#x27;s exposures and events" in page
