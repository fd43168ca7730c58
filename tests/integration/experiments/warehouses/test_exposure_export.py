"""Served exposures exported to a table of a DuckDB data source: appended on each run,
idempotent by exposure id (a second run, or a run from the start, adds nothing), new exposures
only on the next run; the exported table then serves as the readout's exposures. A source that
fails is reported and the others exported; bad export settings are refused with a 400."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from audit.types import Actor
from base.models import Environment
from experiments import services
from experiments.exposure_export import exposures_export_all
from experiments.exposures import ServedExposure
from experiments.models import DataSource, Metric, ResultSnapshot
from flags import services as flag_services
from flags.models import Flag
from tests.integration.experiments.conftest import create_experiment

pytestmark = pytest.mark.django_db(transaction=True)

TABLE = "analytics.served_exposures"


def _served(production: Environment, units: range, experiment: str = "checkout-test") -> list[ServedExposure]:
    now = time.time()
    return [ServedExposure(
        environment_id=production.pk, environment=production.key, experiment=experiment,
        variation=("control", "treatment")[i % 2], variation_index=i % 2, unit_id=f"user-{i}",
        hash_attribute="id", flag="checkout", rule_id=None, timestamp=now - 3600 + i,
        attributes={"country": ("US", "DE")[i % 3 == 0]}) for i in units]


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "dw.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA analytics")
        conn.execute("CREATE TABLE analytics.events (user_id VARCHAR, ts TIMESTAMP, event VARCHAR, amount DOUBLE)")
        conn.execute("INSERT INTO analytics.events SELECT 'user-' || i, now()::TIMESTAMP - INTERVAL 30 MINUTE, "
                     "'purchase', 10 FROM range(0, 40, 4) t(i)")
    return path


def _exported(path: Path) -> list[tuple[object, ...]]:
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(f"SELECT exposure_id, unit_id, experiment, variation, attributes FROM {TABLE} "
                            "ORDER BY unit_id").fetchall()


def test_export__served_exposures__appended_once_by_id_and_read_out_from_the_table(
    actor: Actor, checkout_flag: Flag, production: Environment, metrics: dict[str, Metric], warehouse: Path,
    tmp_path: Path,
) -> None:
    experiment = create_experiment(actor, checkout_flag, production, ["purchase"], slice_attributes=["country"])
    source = services.data_source_create(
        actor=actor, key="dw", engine="duckdb", connection={"path": str(warehouse)},
        exposure_query=("SELECT unit_id, \"timestamp\" AS timestamp, experiment, variation, "
                        "json_extract_string(attributes, '$.country') AS country FROM analytics.served_exposures"),
        event_query="SELECT user_id AS unit_id, ts AS timestamp, event AS name, amount AS value FROM analytics.events",
        exposure_export_table=TABLE)
    services.experiment_update(actor=actor, experiment=experiment, data_source="dw")
    # A second source that cannot be written to: reported, and the first still exported.
    services.data_source_create(
        actor=actor, key="dw-gone", engine="duckdb", connection={"path": str(tmp_path / "gone.duckdb")},
        exposure_query=source.exposure_query, event_query=source.event_query, exposure_export_table=TABLE)
    search = flag_services.flag_create(
        actor=actor, key="search", value_type="string",
        variants=[{"key": "control", "value": "a"}, {"key": "treatment", "value": "b"}])
    flag_services.flag_state_update(actor=actor, flag=search, environment=production, enabled=True)
    other = create_experiment(actor, search, production, ["purchase"], key="search-test")
    services.experiment_update(actor=actor, experiment=other, data_source="dw-gone")
    assert services.serving_exposures_record(_served(production, range(5), "search-test")) == 5

    assert services.serving_exposures_record(_served(production, range(40))) == 40
    report = exposures_export_all()
    assert report.appended == {"dw": 40}
    assert report.failed["dw-gone"].startswith("No DuckDB database file")
    rows = _exported(warehouse)
    assert len(rows) == 40 == len({r[0] for r in rows})
    first = next(r for r in rows if r[1] == "user-0")
    assert first[0] == f"{production.key}:" + str(first[0]).split(":", 1)[1]
    assert first[2:4] == ("checkout-test", "control")
    assert json.loads(str(first[4])) == {"country": "DE"}

    # Again, and again from the very start: nothing twice.
    assert exposures_export_all().appended == {"dw": 0}
    assert DataSource.objects.get(key="dw-gone").exposures_exported_until is None
    DataSource.objects.filter(key="dw").update(exposures_exported_until=None)
    assert exposures_export_all().appended == {"dw": 0}
    assert len(_exported(warehouse)) == 40

    # New exposures: only they are appended, by the next run.
    assert services.serving_exposures_record(_served(production, range(40, 50))) == 10
    assert exposures_export_all(now=timezone.now() + timedelta(seconds=1)).appended == {"dw": 10}
    assert len(_exported(warehouse)) == 50

    # The warehouse's readout joins the exported assignments with its own events.
    snapshot = services.readout_run(experiment_id=experiment.pk)
    assert snapshot is not None and snapshot.status == ResultSnapshot.Status.SUCCESS, snapshot and snapshot.error
    assert snapshot.rollup_mode == "warehouse" and snapshot.units == 50
    purchase = next(m for m in snapshot.metrics if m["key"] == "purchase")
    assert sum(v["mean"] * v["users"] for v in purchase["variations"]) == pytest.approx(10)


@pytest.mark.parametrize("body, message", [
    ({"exposure_export_table": "served; DROP TABLE x"}, "schema.table"),
    ({"exposure_export_table": "a.b.c.d"}, "schema.table"),
    ({"engine": "clickhouse", "connection": {"path": "/tmp/x"}, "exposure_export_table": "served"},
     "duckdb and postgres"),
])
def test_export_table__bad__400_naming_the_field_and_nothing_stored(
    write_client: APIClient, warehouse: Path, body: dict[str, object], message: str,
) -> None:
    payload = {"key": "dw", "engine": "duckdb", "connection": {"path": str(warehouse)},
               "exposure_query": "SELECT u AS unit_id, t AS timestamp, e AS experiment, v AS variation FROM x",
               "event_query": "SELECT u AS unit_id, t AS timestamp, n AS name, v AS value FROM y", **body}
    response = write_client.post("/api/v1/data-sources", payload, format="json")
    assert response.status_code == 400, response.json()
    assert message in json.dumps(response.json())
    assert not DataSource.objects.filter(key="dw").exists()
