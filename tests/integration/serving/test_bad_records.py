"""One bad record or configuration never costs its neighbours: a record the database refuses is
set aside and the rest of its batch written; a snapshot that cannot be compiled or saved leaves
the last good one serving, visibly."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.test import Client

from audit.types import Actor
from experiments import ingestion
from experiments import services as experiment_services
from experiments.exposures import ServedExposure, serving_exposures_record
from experiments.models import Experiment
from experiments.models import Exposure as ExposureRow
from flags import mappers, services
from flags.models import Variant
from serving.exposures import buffer as exposure_buffer
from serving.snapshots import store
from tests.integration.serving.conftest import Catalog, sdk_post

pytestmark = pytest.mark.django_db

ACTOR = Actor(label="tester", via="system")


@pytest.fixture
def running(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> Experiment:
    monkeypatch.setattr(exposure_buffer, "recorder", serving_exposures_record)
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


def _exposure(catalog: Catalog, unit: str, attributes: dict[str, Any]) -> ServedExposure:
    return ServedExposure(catalog.environment.pk, "production", "button-test", "blue", 0, unit, "id", "button-color",
                          None, time.time(), attributes)


def test_exposure_refused_by_the_database__set_aside_and_the_rest_written(
    catalog: Catalog, running: Experiment, serving_state: Path
) -> None:
    good = [_exposure(catalog, f"u-{i}", {"plan": "pro"}) for i in range(7)]
    # PostgreSQL refuses a NUL character in a JSON value; the edge refuses it in bodies, so only
    # a caller inside the service could hand one over.
    bad = _exposure(catalog, "u-bad", {"note": "a\u0000b"})
    exposure_buffer.add([*good[:3], bad, *good[3:]])
    assert exposure_buffer.flush() is True
    stored = set(ExposureRow.objects.filter(experiment_id=running.pk).values_list("unit__key", flat=True))
    assert stored == {e.unit_id for e in good}
    assert exposure_buffer.rejected == 1 and exposure_buffer.spooled() == 0
    [aside] = list((serving_state / "exposures").glob("rejected-*.jsonl"))
    line = orjson.loads(aside.read_bytes().splitlines()[0])
    assert line["exposure"]["unit_id"] == "u-bad" and line["error"]


def test_snapshot_that_does_not_compile__last_good_one_served_and_reported(
    client: Client, catalog: Catalog, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.SNAPSHOT_RETRY_INTERVAL = 0.0  # retried on the next request (5 s apart by default)
    body = {"context": {"targetingKey": "u-1"}, "track": False}
    before = sdk_post(client, "/api/v1/evaluate", body, catalog.client_key)
    assert before.status_code == 200
    flag = services.flag_create(actor=ACTOR, key="new-flag")
    services.flag_state_update(actor=ACTOR, flag=flag, environment=catalog.environment, enabled=True)

    def broken(**kwargs: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(mappers, "environment_snapshot", broken)
    during = sdk_post(client, "/api/v1/evaluate", body, catalog.client_key)
    assert during.status_code == 200
    assert during.json() == before.json()  # the last good snapshot, without the new flag
    failures = store.status()["compile_failures"]
    assert failures["production"]["error"].startswith("RecursionError")
    assert client.get("/readyz").json()["evaluation"]["compile_failures"] == failures
    monkeypatch.undo()
    after = sdk_post(client, "/api/v1/evaluate", body, catalog.client_key)
    assert "new-flag" in after.json()["flags"]
    assert "compile_failures" not in store.status()


def test_snapshot_that_cannot_be_saved__nothing_left_behind_and_still_served(
    client: Client, catalog: Catalog, serving_state: Path
) -> None:
    flag = services.flag_create(actor=ACTOR, key="price", value_type="number",
                                variants=[{"key": "low", "value": 1}, {"key": "high", "value": 2}])
    services.flag_state_update(actor=ACTOR, flag=flag, environment=catalog.environment, enabled=True)
    # A number beyond 64 bits, stored before any check refused it: JSON encoders refuse it.
    Variant.objects.filter(flag=flag, key="high").update(value=2**70)
    services.flag_state_update(actor=ACTOR, flag=flag, environment=catalog.environment, default_variant="low")
    response = sdk_post(client, "/api/v1/evaluate", {"context": {"targetingKey": "u-1"}, "track": False},
                        catalog.client_key)
    assert response.status_code == 200
    assert response.json()["flags"]["price"]["value"] == 1
    assert not list(serving_state.glob(".snapshot-*.tmp"))

