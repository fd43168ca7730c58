"""OFREP v0.3 endpoints through the test client, every answer checked against the specification."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from django.test import Client

from audit.types import Actor
from flags import services
from serving.exposures import buffer as exposure_buffer
from serving.ofrep import NO_VALUE_VARIANT
from tests.integration.serving.conftest import RECORDED, Catalog, assert_ofrep, sdk_post, unit_context

pytestmark = pytest.mark.django_db

SINGLE = "/ofrep/v1/evaluate/flags/{}"
BULK = "/ofrep/v1/evaluate/flags"
REASONS = {"STATIC", "TARGETING_MATCH", "SPLIT", "DISABLED", "UNKNOWN"}


def test_ofrep_single__every_flag_and_some_units__valid_success_bodies(client: Client, catalog: Catalog) -> None:
    for i in range(0, 60, 7):
        context = unit_context(i)
        for key in catalog.flags:
            response = sdk_post(client, SINGLE.format(key), {"context": context}, catalog.client_key)
            assert response.status_code == 200, response.content
            body = response.json()
            assert_ofrep(body, "serverEvaluationSuccess")
            assert body["key"] == key
            assert body["reason"] in REASONS
            assert isinstance(body["variant"], str) and body["variant"]


def test_ofrep_single__boolean_flag__value_variant_reason(client: Client, catalog: Catalog) -> None:
    body = sdk_post(client, SINGLE.format("kill-switch"), {"context": {"targetingKey": "u"}}, catalog.client_key).json()
    assert body == {"key": "kill-switch", "value": True, "variant": "on", "reason": "STATIC",
                    "metadata": {"type": "boolean"}}
    disabled = sdk_post(client, SINGLE.format("disabled-flag"), {"context": {"targetingKey": "u"}}, catalog.client_key)
    assert disabled.json() == {"key": "disabled-flag", "value": False, "variant": "off", "reason": "DISABLED",
                                 "metadata": {"type": "boolean"}}


def test_ofrep_single__no_rule_applies__static_default_variant(client: Client, catalog: Catalog) -> None:
    body = sdk_post(client, SINGLE.format("later"), {"context": {"targetingKey": "u"}}, catalog.client_key).json()
    assert body == {"key": "later", "value": False, "variant": "off", "reason": "STATIC",
                    "metadata": {"type": "boolean"}}


def test_ofrep_single__prerequisite_not_met__no_value_so_code_default(client: Client, catalog: Catalog) -> None:
    # unit-1 is neither a beta tester nor in new-checkout's 30% rollout (checked below), so upsell is gated.
    context = {"targetingKey": "unit-1"}
    parent = sdk_post(client, SINGLE.format("new-checkout"), {"context": context}, catalog.client_key).json()
    assert parent["value"] is False
    body = sdk_post(client, SINGLE.format("upsell"), {"context": context}, catalog.client_key).json()
    assert body == {"key": "upsell", "variant": NO_VALUE_VARIANT, "reason": "TARGETING_MATCH",
                    "metadata": {"type": "boolean"}}
    assert_ofrep(body, "serverEvaluationSuccess")


def test_ofrep_single__experiment_flag__split_and_exposure_recorded(client: Client, catalog: Catalog) -> None:
    context = {"targetingKey": "unit-3", "country": "DE"}
    body = sdk_post(client, SINGLE.format("ratio"), {"context": context}, catalog.client_key).json()
    assert body["reason"] == "SPLIT"
    assert body["value"] in (0.75, 2.5)
    assert exposure_buffer.flush()
    assert [(e.flag, e.unit_id, e.variation) for e in RECORDED] == [("ratio", "unit-3", body["variant"])]


def test_ofrep_single__unknown_flag__404_flag_not_found(client: Client, catalog: Catalog) -> None:
    response = sdk_post(client, SINGLE.format("nope"), {"context": {"targetingKey": "u"}}, catalog.client_key)
    assert response.status_code == 404
    details = "Flag 'nope' was not found."
    assert response.json() == {"key": "nope", "errorCode": "FLAG_NOT_FOUND", "errorDetails": details}
    assert_ofrep(response.json(), "flagNotFound")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"context": {"targetingKey": 42}}, "INVALID_CONTEXT"),
        ({"context": "unit-1"}, "INVALID_CONTEXT"),
        ({}, "INVALID_CONTEXT"),
        ([], "PARSE_ERROR"),
        (b"{not json", "PARSE_ERROR"),
    ],
)
def test_ofrep__bad_request__400_with_error_code(client: Client, catalog: Catalog, body: Any, code: str) -> None:
    single = sdk_post(client, SINGLE.format("kill-switch"), body, catalog.client_key)
    assert single.status_code == 400
    assert single.json()["errorCode"] == code
    assert single.json()["key"] == "kill-switch"
    assert_ofrep(single.json(), "evaluationFailure")
    bulk = sdk_post(client, BULK, body, catalog.client_key)
    assert bulk.status_code == 400
    assert bulk.json()["errorCode"] == code
    assert_ofrep(bulk.json(), "bulkEvaluationFailure")


@pytest.mark.parametrize("context", [{"country": "DE"}, {"targetingKey": ""}, {}])
def test_ofrep__no_targeting_key__evaluated_and_rollouts_do_not_match(
    client: Client, catalog: Catalog, context: dict[str, Any]
) -> None:
    single = sdk_post(client, SINGLE.format("kill-switch"), {"context": context}, catalog.client_key)
    assert single.status_code == 200, single.content
    assert (single.json()["value"], single.json()["reason"]) == (True, "STATIC")
    assert_ofrep(single.json(), "serverEvaluationSuccess")
    # new-checkout: a segment rule, then a 30% rollout hashed on the id the context lacks.
    rollout = sdk_post(client, SINGLE.format("new-checkout"), {"context": context}, catalog.client_key).json()
    assert (rollout["value"], rollout["reason"]) == (False, "STATIC")
    bulk = sdk_post(client, BULK, {"context": context}, catalog.client_key)
    assert bulk.status_code == 200
    assert_ofrep(bulk.json(), "bulkEvaluationSuccess")
    assert all("errorCode" not in item for item in bulk.json()["flags"])


def test_ofrep_single__unknown_flag__not_found_before_the_context_is_read(client: Client, catalog: Catalog) -> None:
    for context in ({"targetingKey": 42}, "unit-1", None):
        response = sdk_post(client, SINGLE.format("nope"), {"context": context}, catalog.client_key)
        assert response.status_code == 404
        assert response.json()["errorCode"] == "FLAG_NOT_FOUND"


def test_ofrep__flag_metadata__type_description_owner_tags(client: Client, catalog: Catalog) -> None:
    flag = catalog.flags["pricing"]
    flag.description, flag.owner, flag.tags = "Pricing page layout", "growth", ["pricing", "q4"]
    flag.save()
    from base.environments import environments_bump

    environments_bump(environment_ids=[catalog.environment.pk])
    single = sdk_post(client, SINGLE.format("pricing"), {"context": unit_context(3)}, catalog.client_key).json()
    metadata = single["metadata"]
    assert {k: metadata[k] for k in ("type", "description", "owner", "tags")} == {
        "type": "json", "description": "Pricing page layout", "owner": "growth", "tags": "pricing,q4"}
    assert set(metadata) <= {"type", "name", "description", "owner", "tags"}
    assert_ofrep(single, "serverEvaluationSuccess")
    bulk = sdk_post(client, BULK, {"context": unit_context(3)}, catalog.client_key).json()
    by_key = {item["key"]: item for item in bulk["flags"]}
    assert by_key["pricing"]["metadata"] == metadata
    assert by_key["kill-switch"]["metadata"]["type"] == "boolean"
    assert "description" not in by_key["kill-switch"]["metadata"]  # only what is set


def test_ofrep__metadata_row_written_around_validation__own_fields_win(client: Client, catalog: Catalog) -> None:
    flag = catalog.flags["kill-switch"]
    flag.metadata = {"type": "string", "name": 1, "nested": {"a": 1}, "kept": True}
    flag.save()
    from base.environments import environments_bump

    environments_bump(environment_ids=[catalog.environment.pk])
    body = sdk_post(client, SINGLE.format("kill-switch"), {"context": {"targetingKey": "u"}}, catalog.client_key).json()
    assert body["metadata"] == {"type": "boolean", "name": 1, "kept": True}


def test_ofrep_bulk__every_flag__valid_success_with_etag(client: Client, catalog: Catalog) -> None:
    response = sdk_post(client, BULK, {"context": unit_context(11)}, catalog.client_key)
    assert response.status_code == 200
    body = response.json()
    assert_ofrep(body, "bulkEvaluationSuccess")
    assert [item["key"] for item in body["flags"]] == sorted(catalog.flags)
    assert all(item["reason"] in REASONS and item["variant"] for item in body["flags"])
    assert body["metadata"] == {"configVersion": catalog.environment.config_version}
    assert response["ETag"].startswith('"')
    assert exposure_buffer.pending() == 0  # a client provider evaluates everything up front


def test_ofrep_bulk__if_none_match__304_until_context_or_config_changes(client: Client, catalog: Catalog) -> None:
    body = {"context": unit_context(11)}
    first = sdk_post(client, BULK, body, catalog.client_key)
    etag = first["ETag"]
    again = sdk_post(client, BULK, body, catalog.client_key, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert sdk_post(client, BULK, body, catalog.client_key, HTTP_IF_NONE_MATCH=f'W/{etag}, "x"').status_code == 304
    other_unit = sdk_post(client, BULK, {"context": unit_context(12)}, catalog.client_key, HTTP_IF_NONE_MATCH=etag)
    assert other_unit.status_code == 200
    services.flag_state_update(actor=Actor.system(), flag=catalog.flags["search-ui"],
                               environment=catalog.environment, enabled=False)
    changed = sdk_post(client, BULK, body, catalog.client_key, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag


@pytest.mark.parametrize("path", [SINGLE.format("kill-switch"), BULK])
@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"HTTP_X_API_KEY": "sdk-client-rotated-or-unknown"}, 401),
        ({"HTTP_AUTHORIZATION": "Bearer sbm_a-management-token"}, 403),
    ],
)
def test_ofrep__bad_key__401_or_403(
    client: Client, catalog: Catalog, path: str, headers: dict[str, Any], status: int
) -> None:
    response = client.post(path, {"context": {"targetingKey": "u"}}, content_type="application/json", **headers)
    assert response.status_code == status
    assert response.json()["errorCode"] == "GENERAL"


def test_ofrep__bearer_server_key__accepted(client: Client, catalog: Catalog) -> None:
    response = client.post(SINGLE.format("kill-switch"), {"context": {"targetingKey": "u"}},
                           content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {catalog.server_key}")
    assert response.status_code == 200


def test_ofrep__over_rate_limit__429_integer_retry_after(client: Client, catalog: Catalog, settings: Any) -> None:
    settings.RATE_LIMIT_PER_SECOND = 0.2
    settings.RATE_LIMIT_BURST = 1
    body = {"context": {"targetingKey": "u"}}
    assert sdk_post(client, SINGLE.format("kill-switch"), body, catalog.client_key).status_code == 200
    limited = sdk_post(client, BULK, body, catalog.client_key)
    assert limited.status_code == 429
    assert limited["Retry-After"].isdigit() and int(limited["Retry-After"]) >= 1


def test_ofrep__get__405(client: Client, catalog: Catalog) -> None:
    assert client.get(BULK, HTTP_X_API_KEY=catalog.client_key).status_code == 405


def test_ofrep__oversized_body__413(client: Client, catalog: Catalog, settings: Any) -> None:
    settings.SDK_MAX_BODY_BYTES = 500
    body = {"context": {"targetingKey": "u", "blob": "x" * 1000}}
    for path in (SINGLE.format("kill-switch"), BULK):
        response = sdk_post(client, path, body, catalog.client_key)
        assert response.status_code == 413
        assert response.json()["errorCode"] == "GENERAL"


def test_ofrep_bulk__items_of_unit_independent_results_precomputed__same_bytes_as_each_single_call(
    client: Client, catalog: Catalog
) -> None:
    """The bulk answer is the single-flag answers, byte for byte, in one list (some items come
    from the snapshot, the others are built per unit), across many units."""
    for i in range(40):
        response = sdk_post(client, BULK, {"context": unit_context(i)}, catalog.client_key)
        body = response.json()
        singles = [sdk_post(client, SINGLE.format(item["key"]), {"context": unit_context(i)}, catalog.client_key)
                   for item in body["flags"]]
        expected = [orjson.loads(single.content) if single.status_code == 200 else None for single in singles]
        for item, single in zip(body["flags"], expected, strict=True):
            if single is not None:
                assert item == single
        rebuilt = orjson.dumps({"flags": body["flags"], "metadata": body["metadata"]})
        assert response.content == rebuilt
