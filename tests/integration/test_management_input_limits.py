"""Management API input that used to end in a 500 or be silently ignored: every case is a 4xx
with the `{code, message, details}` shape, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEntry
from flags.models import Flag


def _deep(levels: int, leaf: str = "1") -> str:
    return '{"a":' * levels + leaf + "}" * levels


def _post(client: APIClient, path: str, raw: str) -> Any:
    return client.post(path, data=raw, content_type="application/json")


def _assert_refused(response: Any, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.content[:300]
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "details"}
    return body


@pytest.mark.parametrize(
    "raw",
    [
        '{"key": "k1", "tags": [' + _deep(5000) + "]}",
        '{"key": "k2", "value_type": "json", "variants": [{"key": "a", "value": ' + _deep(1000) + "}]}",
        '{"key": "k3", "value_type": "json", "variants": [{"key": "a", "value": ' + _deep(40) + "}]}",
        '{"key": "k4", "value_type": "number", "variants": [{"key": "a", "value": 1e309}]}',
        '{"key": "k5", "value_type": "number", "variants": [{"key": "a", "value": -1e400}]}',
    ],
    ids=["tags-5000-deep", "variant-1000-deep", "variant-40-deep", "1e309", "-1e400"],
)
def test_flag_create__nested_or_infinite_body__400_and_nothing_written(
    write_client: APIClient, environments: Any, raw: str
) -> None:
    body = _assert_refused(_post(write_client, "/api/v1/flags", raw))
    assert body["code"] == "parse_error"
    assert not Flag.objects.exists() and not AuditEntry.objects.filter(action="flag.create").exists()


def test_flag_create__nesting_within_the_limit__accepted(write_client: APIClient, environments: Any) -> None:
    raw = '{"key": "k", "value_type": "json", "variants": [{"key": "a", "value": ' + _deep(20) + "}]}"
    assert _post(write_client, "/api/v1/flags", raw).status_code == 201


def test_flag_create__unknown_fields__400_naming_them(write_client: APIClient, environments: Any) -> None:
    response = write_client.post("/api/v1/flags", {"key": "k", "type": "string", "rules": "x"}, format="json")
    body = _assert_refused(response)
    assert body["code"] == "validation_error"
    assert set(body["details"]) == {"type", "rules"}
    assert not Flag.objects.exists()


@pytest.mark.parametrize("query", ["limit=1e20", "offset=99999999999999999999999", "limit=-1", "offset=abc"])
def test_list__odd_paging__never_a_500(read_client: APIClient, environments: Any, query: str) -> None:
    response = read_client.get(f"/api/v1/flags?{query}")
    assert response.status_code in (200, 400), response.content[:300]
    if response.status_code == 400:
        _assert_refused(response)


def test_list__limit_above_the_maximum__capped(read_client: APIClient, environments: Any) -> None:
    response = read_client.get("/api/v1/flags?limit=5000")
    assert response.status_code == 200
