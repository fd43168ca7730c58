"""Exposures from the evaluation endpoints reach the experiments app, once per unit, and
survive a database outage through the spool."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import OperationalError
from django.test import Client

from audit.types import Actor
from experiments import ingestion
from experiments import services as experiment_services
from experiments.models import Experiment
from experiments.models import Exposure as ExposureRow
from experiments.services import serving_exposures_record
from flags import services
from serving.exposures import buffer as exposure_buffer
from tests.integration.serving.conftest import Catalog, sdk_post

pytestmark = pytest.mark.django_db

URL = "/api/v1/evaluate"
ACTOR = Actor(label="tester", via="system")


@pytest.fixture
def running(catalog: Catalog, settings: Any) -> Experiment:
    """A running experiment, started through the experiments app (which writes the flag rule)."""
    settings.EXPOSURE_RECORDER = "experiments.services.serving_exposures_record"
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
    client: Client, catalog: Catalog, running: Experiment, settings: Any, serving_state: Any
) -> None:
    settings.EXPOSURE_RECORDER = "tests.integration.serving.test_exposures.failing_recorder"
    for i in range(5):
        _evaluate(client, catalog, f"down-{i}")
    assert exposure_buffer.flush() is False
    assert exposure_buffer.spooled() == 1
    assert exposure_buffer.pending() == 0
    settings.EXPOSURE_RECORDER = "experiments.services.serving_exposures_record"
    assert exposure_buffer.flush() is True
    assert exposure_buffer.spooled() == 0
    assert ExposureRow.objects.filter(experiment_id=running.pk).count() == 5


def failing_recorder(exposures: Any) -> None:
    raise OperationalError("connection refused")


def test_exposures__default_recorder__experiment_unknown_to_the_app_skipped(catalog: Catalog) -> None:
    # The catalog's experiment rules have no experiment in the experiments app: nothing is written.
    from serving.exposures import Exposure

    serving_exposures_record([Exposure("production", "pricing-exp", "classic", 0, "u-1", "id", "pricing", None,
                                      1.0e9, {})])
    assert not ExposureRow.objects.exists()
