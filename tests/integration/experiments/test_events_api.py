"""`POST /api/v1/events`: every rejection code, idempotency, batch limits, authentication."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient

from audit.types import Actor
from base.models import Environment
from experiments import ingestion
from experiments.models import Assignment, Event, Experiment, Exposure
from flags.models import Flag
from tests.integration.experiments.conftest import create_experiment, post_events, sdk_client

pytestmark = pytest.mark.django_db

NOW = datetime.now(tz=UTC)


def _event(i: int, **extra: Any) -> dict[str, Any]:
    item = {"id": f"ev-{i}", "type": "event", "unit_id": f"user-{i % 7}", "name": "purchase", "value": 12.5,
            "timestamp": (NOW - timedelta(hours=1)).isoformat()}
    item.update(extra)
    return item


def _exposure(i: int, **extra: Any) -> dict[str, Any]:
    item = {"id": f"ex-{i}", "type": "exposure", "unit_id": f"user-{i}", "experiment": "checkout-test",
            "variation": "treatment", "timestamp": int((NOW - timedelta(hours=2)).timestamp() * 1000),
            "attributes": {"country": "DE", "platform": "ios"}}
    item.update(extra)
    return item


@pytest.fixture
def client(production: Environment) -> APIClient:
    return sdk_client(production)


def test_events_post__valid_batch__202_and_rows_written(client: APIClient, experiment: Experiment) -> None:
    items = [_event(i) for i in range(5)] + [_exposure(i) for i in range(3)]
    response = post_events(client, items)
    assert response.status_code == 202, response.json()
    assert response.json() == {"accepted": 8, "duplicates": 0, "rejected": []}
    assert Event.objects.count() == 5
    assert Exposure.objects.count() == 3
    assert Assignment.objects.filter(experiment=experiment, multiple=False).count() == 3
    event = Event.objects.get(client_id="ev-0")
    assert event.value == 12.5 and event.name == "purchase"
    assert response["Access-Control-Allow-Origin"] == "*"


def test_events_post__same_batch_twice__second_adds_nothing(client: APIClient, experiment: Experiment) -> None:
    items = [_event(i) for i in range(4)] + [_exposure(i) for i in range(4)]
    assert post_events(client, items).json()["accepted"] == 8
    again = post_events(client, items)
    assert again.status_code == 202
    assert again.json() == {"accepted": 0, "duplicates": 8, "rejected": []}
    assert Event.objects.count() == 4 and Exposure.objects.count() == 4


def test_events_post__id_repeated_within_batch__counted_as_duplicate(client: APIClient, experiment: Experiment) -> None:
    response = post_events(client, [_event(1), _event(1, value=99), _exposure(1), _exposure(1)])
    assert response.json() == {"accepted": 2, "duplicates": 2, "rejected": []}
    assert Event.objects.get(client_id="ev-1").value == 12.5


BAD_ITEMS: list[tuple[str, Any]] = [
    ("invalid_item", ["not", "an", "object"]),
    ("missing_field", {"id": "x", "type": "event", "unit_id": "u", "name": "purchase"}),
    ("missing_field", {"type": "event", "unit_id": "u", "name": "p", "timestamp": NOW.isoformat()}),
    ("invalid_type", {"id": "x", "type": "click", "unit_id": "u", "timestamp": NOW.isoformat()}),
    ("invalid_id", {"id": 17, "type": "event", "unit_id": "u", "name": "p", "timestamp": NOW.isoformat()}),
    ("invalid_id", {"id": "x" * 129, "type": "event", "unit_id": "u", "name": "p", "timestamp": NOW.isoformat()}),
    ("invalid_unit_id", {"id": "x", "type": "event", "unit_id": "", "name": "p", "timestamp": NOW.isoformat()}),
    ("invalid_unit_id", {"id": "x", "type": "event", "unit_id": ["u"], "name": "p", "timestamp": NOW.isoformat()}),
    ("invalid_timestamp", {"id": "x", "type": "event", "unit_id": "u", "name": "p", "timestamp": "yesterday"}),
    ("invalid_timestamp", {"id": "x", "type": "event", "unit_id": "u", "name": "p", "timestamp": True}),
    ("timestamp_in_future", {"id": "x", "type": "event", "unit_id": "u", "name": "p",
                             "timestamp": (NOW + timedelta(hours=2)).isoformat()}),
    ("timestamp_in_future", {"id": "x", "type": "event", "unit_id": "u", "name": "p",
                             "timestamp": int((NOW + timedelta(days=400)).timestamp() * 1000)}),
    ("timestamp_too_old", {"id": "x", "type": "event", "unit_id": "u", "name": "p",
                           "timestamp": int(NOW.timestamp())}),  # seconds sent as milliseconds: 1970
    ("invalid_name", {"id": "x", "type": "event", "unit_id": "u", "name": "", "timestamp": NOW.isoformat()}),
    ("invalid_name", {"id": "x", "type": "event", "unit_id": "u", "name": 5, "timestamp": NOW.isoformat()}),
    ("invalid_value", {"id": "x", "type": "event", "unit_id": "u", "name": "p", "value": "12",
                       "timestamp": NOW.isoformat()}),
    ("invalid_value", {"id": "x", "type": "event", "unit_id": "u", "name": "p", "value": True,
                       "timestamp": NOW.isoformat()}),
    ("invalid_properties", {"id": "x", "type": "event", "unit_id": "u", "name": "p", "properties": [1],
                            "timestamp": NOW.isoformat()}),
    ("invalid_properties", {**_exposure(1), "attributes": "DE"}),
    ("unknown_experiment", {**_exposure(1), "experiment": "no-such-experiment"}),
    ("unknown_variation", {**_exposure(1), "variation": "purple"}),
    ("missing_field", {key: v for key, v in _exposure(1).items() if key != "variation"}),
    ("outside_experiment_period", {**_exposure(1), "timestamp": (NOW - timedelta(days=60)).isoformat()}),
    ("invalid_characters", {"id": "x", "type": "event", "unit_id": "u\u0000", "name": "p",
                            "timestamp": NOW.isoformat()}),
    ("invalid_characters", {**_exposure(1), "attributes": {"plan": "pro\u0000"}}),
]


@pytest.mark.parametrize(("code", "item"), BAD_ITEMS, ids=[f"{c}-{i}" for i, (c, _) in enumerate(BAD_ITEMS)])
def test_events_post__bad_item__rejected_with_code_and_good_items_kept(
    client: APIClient, experiment: Experiment, code: str, item: Any
) -> None:
    response = post_events(client, [_event(1), item, _exposure(2)])
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["accepted"] == 2
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [(1, code)]
    assert body["rejected"][0]["message"]
    assert Event.objects.count() == 1 and Exposure.objects.count() == 1


def test_events_post__every_rejection_code__is_tested_and_documented() -> None:
    tested = {code for code, _ in BAD_ITEMS} | {"experiment_not_running"}
    assert tested == set(ingestion.REJECTION_CODES)


def test_events_post__draft_or_archived_experiment__experiment_not_running(
    client: APIClient, actor: Actor, checkout_flag: Flag, production: Environment, metrics: Any
) -> None:
    create_experiment(actor, checkout_flag, production, ["purchase"], key="draft-test", start=False)
    response = post_events(client, [_exposure(1, experiment="draft-test")])
    assert response.json()["rejected"] == [
        {"index": 0, "code": "experiment_not_running", "message": "Experiment 'draft-test' is draft."}
    ]


def test_events_post__other_environments_experiment__unknown_experiment(
    environments: dict[str, Environment], experiment: Experiment
) -> None:
    response = post_events(sdk_client(environments["staging"]), [_exposure(1)])
    assert response.json()["rejected"][0]["code"] == "unknown_experiment"


def test_events_post__more_than_1000_items__413_and_nothing_written(client: APIClient, experiment: Experiment) -> None:
    response = post_events(client, [_event(i) for i in range(1001)])
    assert response.status_code == 413
    assert response.json()["code"] == "batch_too_large"
    assert response.json()["details"] == {"limit": 1000, "items": 1001}
    assert Event.objects.count() == 0


def test_events_post__exactly_1000_items__accepted(client: APIClient, experiment: Experiment) -> None:
    response = post_events(client, [_event(i) for i in range(1000)])
    assert response.status_code == 202
    assert response.json()["accepted"] == 1000


def test_events_post__body_over_size_limit__413(client: APIClient, experiment: Experiment) -> None:
    big = {"blob": "x" * (5 * 1024 * 1024)}
    response = post_events(client, [_event(1, properties=big)])
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("body", "code"),
    [(b"{not json", "invalid_json"), (b'{"events": 3}', "invalid_batch"), (b"[]", "invalid_batch")],
)
def test_events_post__malformed_body__400(client: APIClient, body: bytes, code: str) -> None:
    response = client.generic("POST", "/api/v1/events", body, content_type="application/json")  # type: ignore[arg-type]
    assert response.status_code == 400
    assert response.json()["code"] == code


def test_events_post__no_key__401(experiment: Experiment) -> None:
    response = post_events(APIClient(), [_event(1)])
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def test_events_post__unknown_key__401(experiment: Experiment) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer sdk-nope")
    assert post_events(client, [_event(1)]).status_code == 401


def test_events_post__server_key_in_bearer_header__accepted(production: Environment, experiment: Experiment) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {production.server_key}")
    assert post_events(client, [_event(1)]).json()["accepted"] == 1


def test_events_post__empty_batch__202_with_zeros(client: APIClient) -> None:
    assert post_events(client, []).json() == {"accepted": 0, "duplicates": 0, "rejected": []}


def test_events_post__unit_in_two_variations__marked_multiple(client: APIClient, experiment: Experiment) -> None:
    post_events(client, [_exposure(1, unit_id="u-1", variation="control")])
    post_events(client, [_exposure(2, unit_id="u-1", variation="treatment")])
    post_events(client, [_exposure(3, unit_id="u-2", variation="control"),
                         _exposure(4, unit_id="u-2", variation="control")])
    rows = {a.unit.key: a for a in Assignment.objects.select_related("unit")}
    assert rows["u-1"].multiple is True
    assert rows["u-2"].multiple is False


def test_events_post__earlier_exposure_arriving_later__first_seen_moves_back(
    client: APIClient, experiment: Experiment
) -> None:
    late = NOW - timedelta(hours=1)
    early = NOW - timedelta(hours=5)
    post_events(client, [_exposure(1, unit_id="u-9", timestamp=late.isoformat(), attributes={"country": "US"})])
    post_events(client, [_exposure(2, unit_id="u-9", timestamp=early.isoformat(), attributes={"country": "FR"})])
    row = Assignment.objects.get()
    assert abs((row.first_seen - early).total_seconds()) < 1e-3
    assert row.attributes == {"country": "FR"}
    assert row.multiple is False


def test_events_post__integer_unit_id_and_default_value__stored_as_text_and_one(
    client: APIClient, experiment: Experiment
) -> None:
    item = _event(1, unit_id=42)
    del item["value"]
    assert post_events(client, [item]).json()["accepted"] == 1
    event = Event.objects.select_related("unit").get()
    assert event.unit.key == "42" and event.value == 1.0


def test_events_post__body_over_django_form_limit_but_under_4_mib__accepted(
    client: APIClient, experiment: Experiment
) -> None:
    items = [_event(i, properties={"blob": "x" * 2000}) for i in range(1000)]  # about 2.1 MiB
    response = post_events(client, items)
    assert response.status_code == 202, response.json()
    assert response.json()["accepted"] == 1000
