"""Snowflake data sources through the real driver against the emulator's HTTP server: the test
endpoint, key-pair login, plain values, errors that name no connection setting, a statement
stopped at its timeout, and a failing source that fails its own experiment's readout only."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.utils import timezone
from rest_framework.test import APIClient

from audit.types import Actor
from base.models import Environment
from experiments import connectors, services
from experiments.models import Metric, Phase, ResultSnapshot
from flags import services as flag_services
from flags.models import Flag
from tests.integration.experiments.conftest import create_experiment
from tests.integration.experiments.test_readout_correctness import _ingest
from tests.integration.experiments.warehouses import snowflake_emulator
from tests.integration.experiments.warehouses.loaders import EVENTS, EXPOSURES, Rows, snowflake_source

pytestmark = pytest.mark.slow

START = datetime(2026, 5, 1, 12, 0)


@pytest.fixture
def rows() -> Rows:
    exposures: list[tuple[str, datetime, str, str, str | None, str | None]] = [
        (f"u{i}", START + timedelta(minutes=i), "checkout-test", "control" if i % 2 else "treatment",
         "DE" if i % 3 else None, "ios") for i in range(30)]
    events = [(f"u{i}", START + timedelta(hours=1, minutes=i), "purchase", float(i) + 0.25) for i in range(10)]
    return Rows(exposures, events)


@pytest.fixture
def source(rows: Rows, tmp_path: Path) -> Iterator[Any]:
    with snowflake_source(rows, tmp_path) as loaded:
        yield loaded


@pytest.mark.django_db
def test_test_endpoint__snowflake_source__version_columns_and_rows(
    write_client: APIClient, source: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    body = {"key": "sf", "name": "Snowflake", "engine": "snowflake", "connection": source.connection,
            "exposure_query": source.exposure_query, "event_query": source.event_query}
    created = write_client.post("/api/v1/data-sources", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["connection"]["password_env"] == snowflake_emulator.PASSWORD_ENV
    with caplog.at_level(logging.INFO, logger="splitbase.warehouse"):
        report = write_client.post("/api/v1/data-sources/sf/test").json()
    assert report["ok"] is True and report["error"] is None, report
    assert report["engine"] == "snowflake" and report["engine_version"].startswith("Snowflake ")
    exposures, events = report["queries"]
    # Snowflake names unquoted columns in capitals; the report names them as the contract does.
    assert exposures["columns"] == ["unit_id", "timestamp", "experiment", "variation", "country", "platform"]
    assert exposures["rows"] == 30 and exposures["problems"] == []
    assert events["rows"] == 10 and events["problems"] == []
    logged = " ".join(r.getMessage() for r in caplog.records if r.name == "splitbase.warehouse")
    assert "engine=snowflake source=sf purpose=test exposure_query" in logged
    assert source.connection["database"] not in logged and "127.0.0.1" not in logged


@pytest.mark.django_db
def test_test_endpoint__missing_table__reported_by_query(write_client: APIClient, source: Any) -> None:
    body = {"key": "sf", "name": "Snowflake", "engine": "snowflake", "connection": source.connection,
            "exposure_query": EXPOSURES.format(table="analytics.nowhere"), "event_query": source.event_query}
    assert write_client.post("/api/v1/data-sources", body, format="json").status_code == 201
    report = write_client.post("/api/v1/data-sources/sf/test").json()
    assert report["ok"] is False
    exposures, events = report["queries"]
    assert "NOWHERE" in exposures["problems"][0].upper() and events["problems"] == []


@pytest.mark.django_db
def test_connection__protocol_is_http_or_https(write_client: APIClient) -> None:
    body = {"key": "sf", "name": "Snowflake", "engine": "snowflake", "exposure_query": EXPOSURES.format(table="x"),
            "event_query": EVENTS.format(table="y"),
            "connection": {"account": "a", "user": "u", "protocol": "ftp", "password": "hunter2"}}
    response = write_client.post("/api/v1/data-sources", body, format="json")
    assert response.status_code == 400
    message = " ".join(map(str, response.json()["details"]["connection"]))
    assert "'protocol' is one of https, http" in message and "never stored" in message
    assert "hunter2" not in response.content.decode()


def test_driver__numbers_back_as_plain_python_values(source: Any) -> None:
    conn = connectors.connect("snowflake", source.connection, timeout=60)
    try:
        columns, rows = conn.execute(
            "SELECT CAST(2.50 AS NUMBER(10, 2)) AS a, CAST(3.00 AS NUMBER(10, 2)) AS b, CAST(7 AS NUMBER(38, 0)) AS c, "
            "SUM(amount) AS d, COUNT(*) AS e FROM events", 60)
        assert conn.version().startswith("Snowflake ")
    finally:
        conn.close()
    assert columns == ("A", "B", "C", "D", "E")
    assert rows == [(2.5, 3, 7, sum(float(i) + 0.25 for i in range(10)), 10)]
    assert [type(v) for v in rows[0]] == [float, int, int, float, int]


def test_driver__key_pair_login__encrypted_key_read_from_the_environment(source: Any,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.BestAvailableEncryption(b"open sesame")).decode()
    monkeypatch.setenv("SPLITBASE_TEST_SF_KEY", pem)
    monkeypatch.setenv("SPLITBASE_TEST_SF_PASSPHRASE", "open sesame")
    fields = {k: v for k, v in source.connection.items() if k != "password_env"}
    fields.update(private_key_env="SPLITBASE_TEST_SF_KEY", private_key_passphrase_env="SPLITBASE_TEST_SF_PASSPHRASE")
    conn = connectors.connect("snowflake", fields, timeout=60)
    try:
        assert conn.execute("SELECT COUNT(*) AS n FROM exposures", 60)[1] == [(30,)]
    finally:
        conn.close()

    monkeypatch.setenv("SPLITBASE_TEST_SF_PASSPHRASE", "wrong")
    with pytest.raises(connectors.ConnectorError, match="private key of 'private_key_env' cannot be read") as failed:
        connectors.connect("snowflake", fields, timeout=60)
    assert "BEGIN" not in str(failed.value) and "wrong" not in str(failed.value)


def test_driver__unreachable__clear_error_naming_no_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPLITBASE_TEST_SF_PASSWORD", "hunter2")
    fields = {"account": "acme-prod", "user": "readout_bot", "password_env": "SPLITBASE_TEST_SF_PASSWORD",
              "host": "127.0.0.1", "port": 9, "protocol": "http"}
    with pytest.raises(connectors.ConnectorError, match=r"^Snowflake: could not connect") as failed:
        connectors.connect("snowflake", fields, timeout=2)
    message = str(failed.value)
    assert not any(secret in message for secret in ("hunter2", "acme-prod", "readout_bot", "127.0.0.1"))


def test_statement__past_its_timeout__stopped_and_logged(source: Any, caplog: pytest.LogCaptureFixture) -> None:
    conn = connectors.connect("snowflake", source.connection, timeout=60)
    # Seconds of work for the emulator's DuckDB: the driver asks it to cancel after one second;
    # the emulator runs on regardless, and the late answer is refused all the same.
    slow = ("SELECT COUNT(*) AS n FROM (SELECT SEQ4() AS i FROM TABLE(GENERATOR(ROWCOUNT => 10000000))) a, "
            "(SELECT SEQ4() AS j FROM TABLE(GENERATOR(ROWCOUNT => 20))) b WHERE (a.i * b.j) % 11 = 3")
    try:
        with caplog.at_level(logging.INFO, logger="splitbase.warehouse"), \
                pytest.raises(connectors.ConnectorError, match="ran past its timeout of 1 s"):
            connectors.statement_run(conn, slow, timeout=1, source="sf", purpose="readout aggregate")
    finally:
        conn.close()
    logged = " ".join(r.getMessage() for r in caplog.records if r.name == "splitbase.warehouse")
    assert "engine=snowflake source=sf purpose=readout aggregate" in logged
    assert "outcome=error: The statement ran past its timeout of 1 s." in logged


@pytest.mark.django_db(transaction=True)
def test_readout__failing_snowflake_statement__data_source_error_for_that_experiment_only(
    actor: Actor, checkout_flag: Flag, production: Environment, metrics: dict[str, Metric], source: Any,
) -> None:
    from tests.integration.experiments.simulation import simulate

    healthy = create_experiment(actor, checkout_flag, production, ["purchase"])
    sim = simulate(n_units=60, now=datetime.now(tz=UTC), seed=7)
    _ingest(production, sim.items)
    other_flag = flag_services.flag_create(
        actor=actor, key="search", value_type="string",
        variants=[{"key": "control", "value": "a"}, {"key": "treatment", "value": "b"}])
    flag_services.flag_state_update(actor=actor, flag=other_flag, environment=production, enabled=True)
    broken = create_experiment(actor, other_flag, production, ["purchase"], key="search-test")
    services.data_source_create(
        actor=actor, key="sf-broken", engine="snowflake", connection=source.connection,
        exposure_query=EXPOSURES.format(table="analytics.exposures_gone"), event_query=source.event_query)
    services.experiment_update(actor=actor, experiment=broken, data_source="sf-broken")
    Phase.objects.filter(experiment__in=[healthy, broken]).update(ended_at=timezone.now())

    failed = services.readout_run(experiment_id=broken.pk)
    fine = services.readout_run(experiment_id=healthy.pk)
    assert failed is not None and failed.status == ResultSnapshot.Status.FAILED
    assert failed.error_code == "data_source_error"
    assert failed.error.startswith("The data source 'sf-broken' (snowflake) could not be read: Snowflake: ")
    assert "EXPOSURES_GONE" in failed.error.upper()
    assert source.connection["database"] not in failed.error and os.environ[snowflake_emulator.PASSWORD_ENV] \
        not in failed.error
    assert fine is not None and fine.status == ResultSnapshot.Status.SUCCESS, fine and fine.error
