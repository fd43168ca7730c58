"""GrowthBook remote evaluation (`POST /api/eval/{clientKey}`) answered in-process: what the
answer holds, and bad requests refused with 4xx JSON errors that record nothing. The real SDKs
against a live server are in test_remote_eval_sdks.py."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from serving.exposures import buffer as exposure_buffer
from tests.integration.serving.conftest import RECORDED, Catalog, sdk_post
from tests.integration.serving.test_remote_eval_sdks import sdk_attributes

pytestmark = pytest.mark.django_db


def test_remote_eval__answer__holds_no_rule_condition_or_id_list(client: Client, catalog: Catalog) -> None:
    answer = sdk_post(client, f"/api/eval/{catalog.client_key}", {"attributes": sdk_attributes(3)}, None)
    assert answer.status_code == 200
    assert answer["Cache-Control"] == "no-store"
    body = answer.json()
    assert set(body) <= {"features", "dateUpdated"}
    text = answer.content.decode()
    assert "condition" not in text and "savedGroups" not in text and "unit-97" not in text
    for feature in body["features"].values():
        for rule in feature.get("rules", ()):
            assert set(rule) <= {"force", "id", "tracks"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "non_field_errors"),
        ({"attributes": "me"}, "attributes"),
        ({"attributes": {f"a{i}": i for i in range(201)}}, "attributes"),
        ({"attributes": {"deep": [[[[[1]]]]]}}, "attributes"),
        ({"forcedVariations": {"pricing-exp": "1"}}, "forcedVariations"),
        ({"forcedVariations": {"pricing-exp": -1}}, "forcedVariations"),
        ({"forcedFeatures": [["a"]]}, "forcedFeatures"),
        ({"forcedFeatures": "a"}, "forcedFeatures"),
        ({"url": 5}, "url"),
        ({"url": "https://x/" + "a" * 2100}, "url"),
    ],
)
def test_remote_eval__invalid_input__400_naming_the_field_and_nothing_recorded(
    client: Client, catalog: Catalog, body: Any, field: str
) -> None:
    if isinstance(body, dict):
        body = {"attributes": sdk_attributes(1), **body}
    response = sdk_post(client, f"/api/eval/{catalog.client_key}", body, None)
    assert response.status_code == 400
    answer = response.json()
    assert answer["code"] == "validation_error" and field in answer["details"]
    exposure_buffer.flush()
    assert not RECORDED


def test_remote_eval__keys_size_and_method__refused_in_json(client: Client, catalog: Catalog, settings: Any) -> None:
    body = {"attributes": sdk_attributes(1)}
    assert sdk_post(client, "/api/eval/sdk-client-unknown", body, None).status_code == 401
    server = sdk_post(client, f"/api/eval/{catalog.server_key}", body, None)
    assert server.status_code == 403 and server.json()["code"] == "forbidden"
    assert sdk_post(client, "/api/eval/sbm_token", body, None).status_code == 403
    assert client.get(f"/api/eval/{catalog.client_key}").status_code == 405
    raw = client.post(f"/api/eval/{catalog.client_key}", b"{nope", content_type="application/json")
    assert raw.status_code == 400 and raw.json()["code"] == "parse_error"
    settings.SDK_MAX_BODY_BYTES = 200
    big = sdk_post(client, f"/api/eval/{catalog.client_key}", {"attributes": {"x": "y" * 300}}, None)
    assert big.status_code == 413 and big.json()["code"] == "payload_too_large"
    preflight = client.options(f"/api/eval/{catalog.client_key}")
    assert preflight.status_code == 204 and preflight["Access-Control-Allow-Origin"] == "*"
