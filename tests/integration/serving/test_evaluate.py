"""POST /api/v1/evaluate: shape, keys, targeting, exposures and bad input."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from audit.types import Actor
from base.models import Environment
from flags import services
from serving.exposures import buffer as exposure_buffer
from tests.integration.serving.conftest import RECORDED, Catalog, sdk_post

pytestmark = pytest.mark.django_db

URL = "/api/v1/evaluate"


def test_evaluate__client_key__every_flag_with_value_variant_reason(client: Client, catalog: Catalog) -> None:
    response = sdk_post(client, URL, {"context": {"targetingKey": "unit-1", "country": "US"}}, catalog.client_key)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["configVersion"] == catalog.environment.config_version
    assert set(body["flags"]) == set(catalog.flags)
    assert "retired" not in body["flags"]
    assert body["flags"]["kill-switch"] == {
        "value": True, "variant": "on", "reason": "STATIC", "ruleId": None, "experiment": None,
    }
    assert body["flags"]["disabled-flag"]["value"] is False
    assert body["flags"]["disabled-flag"]["reason"] == "DISABLED"
    assert body["flags"]["scheduled"]["value"] is True
    assert body["flags"]["later"]["value"] is False
    assert body["flags"]["later"]["reason"] == "DEFAULT"  # a rule exists but is not active yet
    assert body["flags"]["skipped-rule"]["reason"] == "STATIC"  # disabled rules are left out


def test_evaluate__server_key_as_bearer__same_answer(client: Client, catalog: Catalog) -> None:
    body = {"context": {"targetingKey": "unit-5"}, "flags": ["pricing", "ratio"]}
    with_client = sdk_post(client, URL, body, catalog.client_key).json()
    with_server = client.post(URL, body, content_type="application/json",
                              HTTP_AUTHORIZATION=f"Bearer {catalog.server_key}").json()
    assert with_client == with_server
    assert set(with_client["flags"]) == {"pricing", "ratio"}


def test_evaluate__unit_in_experiment__experiment_block_and_one_exposure(client: Client, catalog: Catalog) -> None:
    # ratio: a 50/50 experiment for everyone outside the US, full coverage.
    context = {"targetingKey": "unit-3", "country": "DE"}
    for _ in range(3):
        answer = sdk_post(client, URL, {"context": context, "flags": ["ratio"]}, catalog.client_key).json()
    flag = answer["flags"]["ratio"]
    assert flag["reason"] == "SPLIT"
    assert flag["experiment"]["key"].startswith("r_")
    assert flag["experiment"]["inExperiment"] is True
    assert flag["experiment"]["hashAttribute"] == "id"
    assert flag["experiment"]["hashValue"] == "unit-3"
    assert flag["experiment"]["variation"] == flag["variant"]
    assert exposure_buffer.flush()
    assert [(e.experiment, e.unit_id, e.variation) for e in RECORDED] == [
        (flag["experiment"]["key"], "unit-3", flag["variant"])
    ]
    assert RECORDED[0].attributes["country"] == "DE"


def test_evaluate__track_false__no_exposure(client: Client, catalog: Catalog) -> None:
    body = {"context": {"targetingKey": "unit-3", "country": "DE"}, "track": False}
    assert sdk_post(client, URL, body, catalog.client_key).status_code == 200
    assert exposure_buffer.pending() == 0
    assert exposure_buffer.flush() and RECORDED == []


def test_evaluate__targeting_attributes__segment_and_condition_rules(client: Client, catalog: Catalog) -> None:
    eu_pro = {"targetingKey": "unit-1", "country": "FR", "plan": "pro"}
    flags = sdk_post(client, URL, {"context": eu_pro, "track": False}, catalog.client_key).json()["flags"]
    assert flags["pricing"]["variant"] == "annual"
    assert flags["pricing"]["reason"] == "TARGETING_MATCH"
    assert flags["pricing"]["value"]["tiers"] == [1, 2, 3]
    beta = {"targetingKey": "unit-97"}
    flags = sdk_post(client, URL, {"context": beta, "track": False}, catalog.client_key).json()["flags"]
    assert flags["new-checkout"] == {
        "value": True, "variant": "on", "reason": "TARGETING_MATCH", "ruleId": flags["new-checkout"]["ruleId"],
        "experiment": None,
    }
    business = {"targetingKey": "unit-2", "plan": "business", "company": "acme"}
    flags = sdk_post(client, URL, {"context": business, "track": False}, catalog.client_key).json()["flags"]
    assert flags["max-upload"]["value"] == 1000


def test_evaluate__write_through_services__next_request_sees_it(client: Client, catalog: Catalog) -> None:
    body = {"context": {"targetingKey": "unit-1"}, "flags": ["kill-switch"]}
    assert sdk_post(client, URL, body, catalog.client_key).json()["flags"]["kill-switch"]["value"] is True
    services.flag_state_update(actor=Actor.system(), flag=catalog.flags["kill-switch"],
                               environment=catalog.environment, enabled=False)
    answer = sdk_post(client, URL, body, catalog.client_key).json()
    assert answer["flags"]["kill-switch"]["reason"] == "DISABLED"
    assert answer["configVersion"] > catalog.environment.config_version


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"context": "unit-1"}, "context"),
        ({"context": {"targetingKey": 12}}, "context.targetingKey"),
        ({"context": {}, "flags": "pricing"}, "flags"),
        ({"context": {}, "flags": [1, 2]}, "flags"),
        ({"context": {}, "track": "yes"}, "track"),
        ([1, 2, 3], "non_field_errors"),
    ],
)
def test_evaluate__wrong_types__400_validation_error(
    client: Client, catalog: Catalog, body: Any, field: str
) -> None:
    response = sdk_post(client, URL, body, catalog.client_key)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["details"]
    assert exposure_buffer.pending() == 0


def test_evaluate__malformed_json__400_parse_error(client: Client, catalog: Catalog) -> None:
    response = client.post(URL, b'{"context": {', content_type="application/json", HTTP_X_API_KEY=catalog.client_key)
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_evaluate__oversized_body__413(client: Client, catalog: Catalog, settings: Any) -> None:
    settings.SDK_MAX_BODY_BYTES = 1000
    body = {"context": {"targetingKey": "unit-1", "blob": "x" * 2000}}
    response = sdk_post(client, URL, body, catalog.client_key)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert exposure_buffer.pending() == 0


def test_evaluate__unknown_flag__404_listing_it_and_nothing_recorded(client: Client, catalog: Catalog) -> None:
    body = {"context": {"targetingKey": "unit-3", "country": "DE"}, "flags": ["ratio", "nope"]}
    response = sdk_post(client, URL, body, catalog.client_key)
    assert response.status_code == 404
    assert response.json() == {
        "code": "flag_not_found", "message": "Some flags do not exist in this environment.",
        "details": {"flags": ["nope"]},
    }
    assert exposure_buffer.pending() == 0


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"HTTP_X_API_KEY": "sdk-client-unknown"}, 401),
        ({"HTTP_AUTHORIZATION": "Basic abc"}, 401),
        ({"HTTP_AUTHORIZATION": "Bearer sbm_management-token"}, 403),
    ],
)
def test_evaluate__missing_or_wrong_key__401_or_403(
    client: Client, catalog: Catalog, headers: dict[str, Any], status: int
) -> None:
    response = client.post(URL, {"context": {}}, content_type="application/json", **headers)
    assert response.status_code == status
    assert response.json()["code"] == ("unauthorized" if status == 401 else "forbidden")


def test_evaluate__rotated_key__old_key_401_new_key_200(client: Client, catalog: Catalog) -> None:
    old = catalog.client_key
    body = {"context": {"targetingKey": "unit-1"}}
    assert sdk_post(client, URL, body, old).status_code == 200
    env = services.environment_rotate_keys(
        actor=Actor.system(), environment=Environment.objects.get(pk=catalog.environment.pk)
    )
    assert sdk_post(client, URL, body, old).status_code == 401
    assert sdk_post(client, URL, body, env.client_key).status_code == 200


def test_evaluate__over_rate_limit__429_with_integer_retry_after(
    client: Client, catalog: Catalog, settings: Any
) -> None:
    settings.RATE_LIMIT_PER_SECOND = 0.5
    settings.RATE_LIMIT_BURST = 2
    body = {"context": {"targetingKey": "unit-1"}}
    statuses = [sdk_post(client, URL, body, catalog.client_key).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = sdk_post(client, URL, body, catalog.client_key)
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert int(limited["Retry-After"]) >= 1
    # Buckets are per key: the server key of the same environment still has tokens.
    assert sdk_post(client, URL, body, catalog.server_key).status_code == 200


def test_evaluate__get__405(client: Client, catalog: Catalog) -> None:
    response = client.get(URL, HTTP_X_API_KEY=catalog.client_key)
    assert response.status_code == 405
    assert response["Allow"] == "POST, OPTIONS"


def test_evaluate__preflight__cors_headers(client: Client) -> None:
    response = client.options(URL, HTTP_ORIGIN="https://app.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "X-API-Key" in response["Access-Control-Allow-Headers"]
