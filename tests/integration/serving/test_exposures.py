"""Exposures from the evaluation endpoints reach the experiments app, once per unit, and
survive a database outage through the spool."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.db import OperationalError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit.types import Actor
from experiments import ingestion
from experiments import services as experiment_services
from experiments.exposures import ServedExposure
from experiments.models import Experiment
from experiments.models import Exposure as ExposureRow
from experiments.services import serving_exposures_record
from flags import services
from serving.exposures import buffer as exposure_buffer
from tests.integration.serving.conftest import RECORDED, Catalog, record_in_memory, sdk_post

pytestmark = pytest.mark.django_db

URL = "/api/v1/evaluate"
ACTOR = Actor(label="tester", via="system")


@pytest.fixture
def running(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> Experiment:
    """A running experiment, started through the experiments app (which writes the flag rule)."""
    monkeypatch.setattr(exposure_buffer, "recorder", serving_exposures_record)
    # Ingestion caches experiments by environment config version; rolled-back tests reuse
    # version numbers, which never happens outside tests.
    ingestion._routes_cache.clear()
    flag = services.flag_create(actor=ACTOR, key="button-color", value_type="string",
                                variants=[{"key": "blue", "value": "blue"}, {"key": "green", "value": "green"}])
    services.flag_state_update(actor=ACTOR, flag=flag, environment=catalog.environment, enabled=True)
    experiment_services.metric_create(actor=ACTOR, key="purchase", kind="conversion", event_name="purchase")
    experiment = experiment_services.experiment_create(
        actor=ACTOR, key="button-test", flag=flag, environment=catalog.environment,
        variations=[{"key": "blue", "weight": 0.5}, {"key": "green", "weight": 0.5}],
        metrics=[{"metric": "purchase", "role": "primary"}],
    )
    return experiment_services.experiment_start(actor=ACTOR, experiment=experiment)


def _evaluate(client: Client, catalog: Catalog, unit: str, **extra: Any) -> dict[str, Any]:
    body = {"context": {"targetingKey": unit, "plan": "pro"}, "flags": ["button-color"], **extra}
    response = sdk_post(client, URL, body, catalog.client_key)
    assert response.status_code == 200, response.content
    flag: dict[str, Any] = response.json()["flags"]["button-color"]
    return flag


def test_exposures__running_experiment__one_row_per_unit_with_its_variation(
    client: Client, catalog: Catalog, running: Experiment
) -> None:
    answers = {f"u-{i}": _evaluate(client, catalog, f"u-{i}")["variant"] for i in range(20)}
    for i in range(20):  # seen again: nothing new
        _evaluate(client, catalog, f"u-{i}")
    assert exposure_buffer.flush()
    rows = list(ExposureRow.objects.filter(experiment_id=running.pk).select_related("unit"))
    assert len(rows) == 20
    keys = [v.key for v in running.variations.order_by("position")]
    assert {row.unit.key: keys[row.variation] for row in rows} == answers
    assert (rows[0].attributes or {})["plan"] == "pro"
    # Recorded again by another process (the in-process dedup forgotten): still one row each.
    exposure_buffer.reset()
    for i in range(20):
        _evaluate(client, catalog, f"u-{i}")
    assert exposure_buffer.flush()
    assert ExposureRow.objects.filter(experiment_id=running.pk).count() == 20


def test_exposures__track_false__no_row(client: Client, catalog: Catalog, running: Experiment) -> None:
    _evaluate(client, catalog, "u-1", track=False)
    assert exposure_buffer.flush()
    assert not ExposureRow.objects.filter(experiment_id=running.pk).exists()


def test_exposures__recorder_fails__spooled_then_replayed(
    client: Client, catalog: Catalog, running: Experiment, monkeypatch: pytest.MonkeyPatch, serving_state: Any
) -> None:
    monkeypatch.setattr(exposure_buffer, "recorder", failing_recorder)
    for i in range(5):
        _evaluate(client, catalog, f"down-{i}")
    assert exposure_buffer.flush() is False
    assert exposure_buffer.spooled() == 1
    assert exposure_buffer.pending() == 0
    monkeypatch.setattr(exposure_buffer, "recorder", serving_exposures_record)
    assert exposure_buffer.flush() is True
    assert exposure_buffer.spooled() == 0
    assert ExposureRow.objects.filter(experiment_id=running.pk).count() == 5


def failing_recorder(exposures: Any) -> None:
    raise OperationalError("connection refused")


def test_exposures__default_recorder__experiment_unknown_to_the_app_skipped(catalog: Catalog) -> None:
    # The catalog's experiment rules have no experiment in the experiments app: nothing is written.
    serving_exposures_record([ServedExposure(catalog.environment.pk, "production", "pricing-exp", "classic", 0, "u-1",
                                             "id", "pricing", None, 1.0e9, {})])
    assert not ExposureRow.objects.exists()


# The exposure carries its environment's id from the evaluation to the row --------------------------


def _environment_queries(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if '"flags_environment"' in q["sql"]]


def _served(catalog: Catalog, unit: str, *, environment: str = "production") -> ServedExposure:
    return ServedExposure(
        environment_id=catalog.environment.pk, environment=environment, experiment="button-test",
        variation="green", variation_index=1, unit_id=unit, hash_attribute="id", flag="button-color",
        rule_id=None, timestamp=time.time(), attributes={"plan": "pro"},
    )


def test_exposures__evaluation__exposure_carries_the_environment_id_and_key(
    client: Client, catalog: Catalog, running: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exposure_buffer, "recorder", record_in_memory)
    _evaluate(client, catalog, "carrier-1")
    assert exposure_buffer.flush()
    assert [(e.environment_id, e.environment, e.experiment, e.unit_id) for e in RECORDED] == [
        (catalog.environment.pk, "production", "button-test", "carrier-1")
    ]


def test_exposures__recorder__writes_to_the_carried_id_with_one_environment_query(
    catalog: Catalog, running: Experiment
) -> None:
    # The key is only for people reading logs: the id decides where the rows go.
    batch = [_served(catalog, f"id-{i}", environment="a-key-nobody-has") for i in range(3)]
    with CaptureQueriesContext(connection) as queries:
        assert serving_exposures_record(batch) == 3
    assert len(_environment_queries(queries)) == 1
    assert "config_version" in _environment_queries(queries)[0]
    rows = ExposureRow.objects.filter(experiment_id=running.pk)
    assert sorted(r.unit.key for r in rows.select_related("unit")) == ["id-0", "id-1", "id-2"]
    assert {r.environment_id for r in rows} == {catalog.environment.pk}


def test_exposures__spool_json__round_trips_with_the_id(catalog: Catalog) -> None:
    exposure = _served(catalog, "u-json")
    data = orjson.loads(orjson.dumps(exposure.as_json()))
    assert set(data) == set(ServedExposure.__dataclass_fields__)
    assert data["environment_id"] == catalog.environment.pk and data["environment"] == "production"
    assert ServedExposure.from_json(data) == exposure


def _write_spool(lines: list[dict[str, Any]]) -> Path:
    directory = exposure_buffer.directory()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"spool-{time.time_ns():020d}-{os.getpid()}.jsonl"
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def test_exposures__old_spool_lines_without_the_id__replayed_with_one_key_lookup_per_file(
    catalog: Catalog, running: Experiment
) -> None:
    old = []
    for i in range(4):
        line = _served(catalog, f"old-{i}").as_json()
        del line["environment_id"]
        old.append(line)
    old.append({**old[0], "environment": "an-environment-deleted-since", "unit_id": "orphan"})
    _write_spool(old)
    with CaptureQueriesContext(connection) as queries:
        assert exposure_buffer.flush() is True
    lookups = [sql for sql in _environment_queries(queries) if '"flags_environment"."key" IN' in sql]
    assert len(lookups) == 1
    assert exposure_buffer.spooled() == 0
    rows = ExposureRow.objects.filter(experiment_id=running.pk).select_related("unit")
    assert sorted(r.unit.key for r in rows) == ["old-0", "old-1", "old-2", "old-3"]


def test_exposures__current_spool_lines__replayed_without_a_key_lookup(
    catalog: Catalog, running: Experiment
) -> None:
    _write_spool([_served(catalog, f"new-{i}").as_json() for i in range(3)])
    with CaptureQueriesContext(connection) as queries:
        assert exposure_buffer.flush() is True
    assert not [sql for sql in _environment_queries(queries) if '"flags_environment"."key" IN' in sql]
    assert ExposureRow.objects.filter(experiment_id=running.pk).count() == 3


def test_exposures__old_spool_line_and_database_down__file_kept_for_later(
    catalog: Catalog, running: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = _served(catalog, "later").as_json()
    del line["environment_id"]
    path = _write_spool([line])

    class _Down:
        class objects:
            @staticmethod
            def filter(*args: Any, **kwargs: Any) -> Any:
                raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr("experiments.exposures.Environment", _Down)
    assert exposure_buffer.flush() is False
    assert path.exists()
    monkeypatch.undo()
    monkeypatch.setattr(exposure_buffer, "recorder", serving_exposures_record)
    assert exposure_buffer.flush() is True
    assert not path.exists()
    assert ExposureRow.objects.filter(experiment_id=running.pk).count() == 1
