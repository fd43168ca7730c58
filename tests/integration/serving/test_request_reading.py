"""The one body reader and the one authenticate step of every SDK endpoint: size limits per
endpoint, nesting depth, NUL characters, and the same key semantics for the events API as for
evaluation (resolved from the snapshot cache, without a query per request)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from serving.events import CORS_HEADERS
from tests.integration.serving.conftest import Catalog

pytestmark = pytest.mark.django_db

SINGLE = "/ofrep/v1/evaluate/flags/kill-switch"
BULK = "/ofrep/v1/evaluate/flags"
EVALUATE = "/api/v1/evaluate"
EVENTS = "/api/v1/events"


def _post(client: Client, path: str, body: bytes, key: str | None, **extra: Any) -> Any:
    headers: dict[str, Any] = {"HTTP_X_API_KEY": key} if key else {}
    return client.generic("POST", path, body, content_type="application/json", **headers, **extra)


def _deep_context(levels: int) -> bytes:
    """A context whose attribute nests so that the whole body is `levels` deep."""
    inner = b"1"
    for _ in range(levels - 2):
        inner = b"[" + inner + b"]"
    return b'{"context": {"targetingKey": "u", "deep": ' + inner + b"}}"


def _deep_batch(levels: int) -> bytes:
    inner = b"1"
    for _ in range(levels - 3):
        inner = b"[" + inner + b"]"
    return b'{"events": [{"properties": ' + inner + b"}]}"


# Nesting depth ----------------------------------------------------------------------------------


def test_depth__at_the_limit__accepted_everywhere(client: Client, catalog: Catalog, settings: Any) -> None:
    settings.JSON_MAX_DEPTH = 6
    for path in (SINGLE, BULK, EVALUATE):
        assert _post(client, path, _deep_context(6), catalog.client_key).status_code == 200, path
    assert _post(client, EVENTS, _deep_batch(6), catalog.client_key).status_code == 202


def test_depth__over_the_limit__400_in_each_endpoints_shape(client: Client, catalog: Catalog, settings: Any) -> None:
    settings.JSON_MAX_DEPTH = 6
    message = "The JSON body is nested more than 6 levels deep."
    evaluate = _post(client, EVALUATE, _deep_context(7), catalog.client_key)
    assert evaluate.status_code == 400
    assert evaluate.json() == {"code": "parse_error", "message": message, "details": {}}
    single = _post(client, SINGLE, _deep_context(7), catalog.client_key)
    assert single.status_code == 400
    assert single.json() == {"key": "kill-switch", "errorCode": "PARSE_ERROR", "errorDetails": message}
    bulk = _post(client, BULK, _deep_context(7), catalog.client_key)
    assert bulk.status_code == 400
    assert bulk.json() == {"errorCode": "PARSE_ERROR", "errorDetails": message}
    events = _post(client, EVENTS, _deep_batch(7), catalog.client_key)
    assert events.status_code == 400
    assert events.json() == {"code": "invalid_json", "message": message, "details": {}}


def test_depth__default_limit_32__deeper_bodies_refused(client: Client, catalog: Catalog) -> None:
    assert _post(client, EVALUATE, _deep_context(32), catalog.client_key).status_code == 200
    assert _post(client, EVALUATE, _deep_context(33), catalog.client_key).status_code == 400
    # Deeper than the parser itself goes: the same answer.
    abyss = _post(client, EVALUATE, _deep_context(5000), catalog.client_key)
    assert abyss.status_code == 400
    assert abyss.json()["message"] == "The JSON body is nested more than 32 levels deep."


# NUL characters ---------------------------------------------------------------------------------


def test_nul__escaped_in_a_string__400_invalid_characters(client: Client, catalog: Catalog) -> None:
    body = b'{"context": {"targetingKey": "u", "plan": "pro\\u0000"}}'
    evaluate = _post(client, EVALUATE, body, catalog.client_key)
    assert evaluate.status_code == 400
    assert evaluate.json() == {
        "code": "invalid_characters",
        "message": "The request's body contains a NUL character (U+0000), which cannot be stored.",
        "details": {"location": "body"},
    }
    single = _post(client, SINGLE, body, catalog.client_key)
    assert single.status_code == 400
    assert (single.json()["key"], single.json()["errorCode"]) == ("kill-switch", "INVALID_CONTEXT")


def test_nul__raw_byte__400_invalid_characters(client: Client, catalog: Catalog) -> None:
    response = _post(client, EVALUATE, b'{"context": {"targetingKey": "u\x00"}}', catalog.client_key)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_characters"


def test_nul__a_literal_backslash_u0000__is_text_and_accepted(client: Client, catalog: Catalog) -> None:
    body = b'{"context": {"targetingKey": "u", "note": "a literal \\\\u0000"}}'
    assert _post(client, EVALUATE, body, catalog.client_key).status_code == 200


def test_nul__in_the_query_string__400_invalid_characters(client: Client, catalog: Catalog) -> None:
    response = _post(client, EVALUATE + "?x=%00", b'{"context": {}}', catalog.client_key)
    assert response.status_code == 400
    assert response.json()["details"] == {"location": "query"}
    payload = client.get(f"/api/features/{catalog.client_key}?x=%00")
    assert payload.status_code == 400
    assert payload.json()["code"] == "invalid_characters"


def test_nul__events_item__rejected_alone_and_the_batch_kept(client: Client, catalog: Catalog) -> None:
    now = int(time.time() * 1000)
    items = [{"id": "a", "type": "event", "unit_id": "u\u0000", "name": "p", "timestamp": now},
             {"id": "b", "type": "nope", "unit_id": "u", "timestamp": now},
             {"id": "c", "type": "event", "unit_id": "u", "name": "p", "timestamp": now}]
    response = client.post(EVENTS, {"events": items}, content_type="application/json",
                           HTTP_X_API_KEY=catalog.client_key)
    assert response.status_code == 202
    assert response.json()["accepted"] == 1
    assert [(r["index"], r["code"]) for r in response.json()["rejected"]] == [
        (0, "invalid_characters"), (1, "invalid_type"),
    ]


# Size per endpoint ------------------------------------------------------------------------------


def test_size__evaluation_limit_64_kib_and_events_limit_4_mib(client: Client, catalog: Catalog) -> None:
    pad = b"x" * 100_000
    evaluate = _post(client, EVALUATE, b'{"context": {"targetingKey": "u", "pad": "' + pad + b'"}}',
                     catalog.client_key)
    assert evaluate.status_code == 413
    assert evaluate.json() == {"code": "payload_too_large", "message": "The body is larger than 65536 bytes.",
                               "details": {}}
    events = _post(client, EVENTS, b'{"events": [], "pad": "' + pad + b'"}', catalog.client_key)
    assert events.status_code == 202
    huge = _post(client, EVENTS, b'{"events": [], "pad": "' + b"x" * (4 * 1024 * 1024) + b'"}', catalog.client_key)
    assert huge.status_code == 413
    assert huge.json()["message"] == f"The body is larger than {4 * 1024 * 1024} bytes."


def test_size__content_length_over_the_limit__413_before_reading(
    client: Client, catalog: Catalog, settings: Any
) -> None:
    settings.SDK_MAX_BODY_BYTES = 100
    response = _post(client, EVALUATE, b'{"context": {}}', catalog.client_key, CONTENT_LENGTH="101")
    assert response.status_code == 413


# Authentication of the events API ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "unauthorized"),
        ({"HTTP_X_API_KEY": "sdk-server-unknown"}, 401, "unauthorized"),
        ({"HTTP_AUTHORIZATION": "Bearer sdk-client-unknown"}, 401, "unauthorized"),
        ({"HTTP_AUTHORIZATION": "Bearer sbm_a-management-token"}, 403, "forbidden"),
        ({"HTTP_X_API_KEY": "sbm_a-management-token"}, 403, "forbidden"),
    ],
)
def test_events_auth__bad_key__401_or_403_with_cors(
    client: Client, catalog: Catalog, headers: dict[str, Any], status: int, code: str
) -> None:
    response = client.post(EVENTS, {"events": []}, content_type="application/json", **headers)
    assert response.status_code == status
    assert response.json()["code"] == code
    for name, value in CORS_HEADERS.items():
        assert response[name] == value


@pytest.mark.parametrize("kind", ["client", "server"])
def test_events_auth__client_or_server_key__accepted(client: Client, catalog: Catalog, kind: str) -> None:
    key = catalog.client_key if kind == "client" else catalog.server_key
    response = client.post(EVENTS, {"events": []}, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 202
    assert response.json() == {"accepted": 0, "duplicates": 0, "rejected": []}


def test_events_auth__known_key__no_query_within_the_check_interval(
    client: Client, catalog: Catalog, settings: Any
) -> None:
    assert _post(client, EVENTS, b'{"events": []}', catalog.server_key).status_code == 202
    settings.SNAPSHOT_CHECK_INTERVAL = 60.0
    assert _post(client, EVENTS, b'{"events": []}', catalog.server_key).status_code == 202
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert _post(client, EVENTS, b'{"events": []}', catalog.server_key).status_code == 202
            assert _post(client, EVENTS, b'{"events": []}', "sdk-server-unknown").status_code == 401
    assert [q["sql"] for q in queries.captured_queries] == []


def test_events_auth__over_the_rate_limit__429_with_retry_after(
    client: Client, catalog: Catalog, settings: Any
) -> None:
    settings.RATE_LIMIT_PER_SECOND = 0.2
    settings.RATE_LIMIT_BURST = 1
    assert _post(client, EVENTS, b'{"events": []}', catalog.client_key).status_code == 202
    limited = _post(client, EVENTS, b'{"events": []}', catalog.client_key)
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert limited["Retry-After"].isdigit()


def test_events__preflight_and_other_methods__cors_headers(client: Client, catalog: Catalog) -> None:
    preflight = client.options(EVENTS, HTTP_ORIGIN="https://app.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert preflight.status_code == 204
    for name, value in CORS_HEADERS.items():
        assert preflight[name] == value
    response = client.get(EVENTS, HTTP_X_API_KEY=catalog.client_key)
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert response["Allow"] == "POST, OPTIONS"
    assert response["Access-Control-Allow-Methods"] == "POST, OPTIONS"
