"""Requests refused before any view: the NUL character (U+0000), which PostgreSQL text and
JSON cannot hold (a clear 400 on the management and SDK APIs, a per-item rejection in the
events API, nothing written), management API bodies above the upload limit (413), and API
addresses no route matches (a JSON 404)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from audit.models import AuditEntry
from base.models import Environment
from experiments.models import Event, Exposure
from flags.models import Flag, Segment

pytestmark = pytest.mark.django_db


@pytest.fixture
def production(db: Any) -> Environment:
    call_command("seed_demo", verbosity=0)
    call_command("seed_experiments", "--users", "20", "--no-readout", verbosity=0)
    return Environment.objects.get(key="production")


def _now_ms() -> int:
    return int(time.time() * 1000) - 60_000


def test_events__items_with_nul__rejected_one_by_one_and_the_rest_kept(production: Environment) -> None:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=production.server_key)
    ts = _now_ms()
    items = [
        {"id": "n1", "type": "event", "unit_id": "u\u00001", "name": "purchase", "timestamp": ts},
        {"id": "n2", "type": "event", "unit_id": "u2", "name": "pur\u0000chase", "timestamp": ts},
        {"id": "n3", "type": "event", "unit_id": "u3", "name": "purchase", "properties": {"k\u0000": "v"},
         "timestamp": ts},
        {"id": "n\u00004", "type": "event", "unit_id": "u4", "name": "purchase", "timestamp": ts},
        {"id": "n5", "type": "exposure", "unit_id": "u5", "experiment": "checkout-redesign", "variation": "control",
         "attributes": {"country": ["D\u0000E"]}, "timestamp": ts},
        {"id": "n6", "type": "event", "unit_id": "u6", "name": "purchase", "value": 3, "timestamp": ts},
        {"id": "n7", "type": "event", "unit_id": "u7", "name": "purchase", "timestamp": "not a time"},
        {"id": "n8", "type": "event", "unit_id": "u8", "name": "a literal \\u0000 is fine", "timestamp": ts},
    ]
    events = Event.objects.count()
    response = client.post("/api/v1/events", {"events": items}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["accepted"] == 2
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [
        (0, "invalid_characters"), (1, "invalid_characters"), (2, "invalid_characters"), (3, "invalid_characters"),
        (4, "invalid_characters"), (6, "invalid_timestamp"),
    ]
    assert Event.objects.count() == events + 2
    assert not Exposure.objects.filter(unit__key="u5").exists()


QUERIES = ["/api/v1/flags?search=a%00b", "/api/v1/experiments?status=%00", "/api/v1/audit?x=\x00"]


@pytest.mark.parametrize("path", QUERIES)
def test_management_api__nul_in_query__400(production: Environment, write_client: APIClient, path: str) -> None:
    response = write_client.get(path)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_characters"


def test_management_api__nul_in_body__400_and_nothing_written(production: Environment,
                                                            write_client: APIClient) -> None:
    flags, audit = Flag.objects.count(), AuditEntry.objects.count()
    response = write_client.post("/api/v1/flags", {"key": "nul-flag", "description": "a\u0000b"}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid_characters",
        "message": "The request's body contains a NUL character (U+0000), which cannot be stored.",
        "details": {"location": "body"},
    }
    assert (Flag.objects.count(), AuditEntry.objects.count()) == (flags, audit)


def test_ofrep__nul_in_context__invalid_context_in_ofrep_shape(production: Environment) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {production.client_key}")
    context = {"context": {"targetingKey": "user-1", "country": "D\u0000E"}}
    single = client.post("/ofrep/v1/evaluate/flags/new-checkout", context, format="json")
    assert single.status_code == 400
    assert single.json()["key"] == "new-checkout" and single.json()["errorCode"] == "INVALID_CONTEXT"
    bulk = client.post("/ofrep/v1/evaluate/flags", context, format="json")
    assert bulk.status_code == 400 and bulk.json()["errorCode"] == "INVALID_CONTEXT"
    assert "key" not in bulk.json()


def test_management_api__segment_of_100000_ids__accepted(production: Environment, write_client: APIClient) -> None:
    ids = [f"user-{i:08d}" for i in range(100_000)]
    response = write_client.post("/api/v1/segments", {"key": "big", "kind": "ids", "attribute": "id", "ids": ids},
                                 format="json")
    assert response.status_code == 201, response.content[:300]


def test_management_api__body_above_the_limit__413_json_and_nothing_written(
    production: Environment, write_client: APIClient, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    segments = Segment.objects.count()
    body = {"key": "too-big", "kind": "ids", "attribute": "id", "ids": [f"user-{i}" for i in range(2_000)]}
    response = write_client.post("/api/v1/segments", body, format="json")
    assert response.status_code == 413
    assert response.json() == {"code": "payload_too_large", "message": "The body is larger than 10,000 bytes.",
                               "details": {"limit_bytes": 10_000}}
    assert Segment.objects.count() == segments



@pytest.mark.parametrize("path", ["/api/v1/change-requests/-1", "/api/v1/change-requests/%C3%A9/approve",
                                  "/api/v1/flags/f/environments/e/guarded-rollouts/x", "/api/v1/no-such-thing"])
def test_management_api__address_no_route_matches__json_404(write_client: APIClient, path: str) -> None:
    response = write_client.get(path)
    assert response.status_code == 404 and response["Content-Type"] == "application/json", response.content[:200]
    assert response.json()["code"] == "not_found" and set(response.json()) == {"code", "message", "details"}


def test_pages__address_no_route_matches__html_404(client: Any) -> None:
    response = client.get("/flags/no/such/page/here")
    assert response.status_code == 404 and "json" not in response["Content-Type"]
