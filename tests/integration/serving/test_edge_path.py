"""The SDK edge's short request path (config/edge.py): SDK routes skip the page middleware and
answer exactly as they do through every middleware; unexpected errors answer JSON."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client
from django.test.client import ClientHandler

from config.edge import EDGE_PATH, EdgeDispatcher, EdgeHandlerMixin, edge_application
from serving import ofrep
from tests.integration.serving.conftest import Catalog, sdk_post

pytestmark = pytest.mark.django_db


class EdgeClientHandler(EdgeHandlerMixin, ClientHandler):
    """The test client's handler with the SDK edge's middleware and URLconf."""


def edge_client(**defaults: Any) -> Client:
    client = Client(**defaults)
    client.handler = EdgeClientHandler(enforce_csrf_checks=False)
    return client


def requests_of(catalog: Catalog) -> list[tuple[str, str, Any, str]]:
    context = {"context": {"targetingKey": "unit-7", "country": "DE"}}
    events = {"events": [{"type": "event", "id": str(uuid.uuid4()), "unit_id": "unit-7", "name": "purchase",
                          "timestamp": datetime.now(tz=UTC).isoformat()}]}
    return [
        ("POST", "/ofrep/v1/evaluate/flags/kill-switch", context, catalog.server_key),
        ("POST", "/ofrep/v1/evaluate/flags/missing-flag", context, catalog.server_key),
        ("POST", "/ofrep/v1/evaluate/flags", context, catalog.client_key),
        ("POST", "/api/v1/evaluate", context, catalog.server_key),
        ("POST", "/api/v1/evaluate", {"context": 3}, catalog.server_key),
        ("POST", "/api/v1/evaluate", context, "sdk-server-unknown"),
        ("GET", f"/api/features/{catalog.client_key}", None, ""),
        ("POST", f"/api/eval/{catalog.client_key}", {"attributes": {"id": "unit-7"}}, ""),
        ("POST", "/api/v1/events", events, catalog.server_key),
        ("OPTIONS", "/api/v1/events", None, ""),
        ("GET", "/ofrep/v1/evaluate/flags", None, catalog.server_key),
    ]


def send(client: Client, method: str, path: str, body: Any, key: str) -> Any:
    if method == "POST":
        return sdk_post(client, path, body, key or None)
    return client.generic(method, path, headers={"X-API-Key": key} if key else None)


def test_edge_path__same_status_body_and_headers_as_every_middleware(catalog: Catalog) -> None:
    full, edge = Client(), edge_client()
    for method, path, body, key in requests_of(catalog):
        expected, got = send(full, method, path, body, key), send(edge, method, path, body, key)
        assert got.status_code == expected.status_code, (method, path)
        if "events" not in path:  # the second batch of the same events is all duplicates
            assert got.content == expected.content, (method, path)
        headers = {name for name in expected.headers if name != "X-Request-ID"}
        assert {name for name in got.headers if name != "X-Request-ID"} == headers, (method, path)
        for name in headers - {"ETag", "Content-Length"}:
            assert got.headers[name] == expected.headers[name], (method, path, name)
        assert got.headers["X-Request-ID"]
        assert "Content-Security-Policy" in got.headers and got.headers["X-Frame-Options"] == "DENY"
        assert "Set-Cookie" not in got.headers and "Vary" not in got.headers


def test_edge_path__unexpected_error__json_500_in_the_endpoint_shape_and_logged(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("evaluation broke")

    monkeypatch.setattr(ofrep, "evaluate", broken)
    monkeypatch.setattr(ofrep, "evaluate_all", broken)
    client = edge_client(raise_request_exception=False)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        single = sdk_post(client, "/ofrep/v1/evaluate/flags/kill-switch", {"context": {}}, catalog.server_key,
                          HTTP_X_REQUEST_ID="req-500")
    assert single.status_code == 500
    assert single.json() == {"errorCode": "GENERAL",
                             "errorDetails": "The request could not be served; it was logged."}
    assert single.headers["X-Request-ID"] == "req-500"
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)
    monkeypatch.setattr("serving.evaluate.evaluate_all", broken)
    api = sdk_post(client, "/api/v1/evaluate", {"context": {}}, catalog.server_key)
    assert api.status_code == 500
    assert api.json()["code"] == "server_error"


def test_edge_path__host_not_allowed__json_400_with_the_security_headers(catalog: Catalog) -> None:
    client = edge_client(HTTP_HOST="evil.example")
    response = sdk_post(client, "/api/v1/evaluate", {"context": {}}, catalog.server_key)
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert response.headers["X-Frame-Options"] == "DENY" and "Content-Security-Policy" in response.headers


@pytest.mark.parametrize(("path", "edge"), [
    ("/ofrep/v1/evaluate/flags/some-flag", True),
    ("/ofrep/v1/evaluate/flags", True),
    ("/api/v1/evaluate", True),
    ("/api/v1/events", True),
    ("/api/features/sdk-client-abc", True),
    ("/api/eval/sdk-client-abc", True),
    ("/ofrep/v1/evaluate/flags/a/b", False),
    ("/api/v1/evaluate/", False),
    ("/api/v1/eventsx", False),
    ("/api/v1/flags", False),
    ("/api/features/", False),
    ("/admin/", False),
    ("/healthz", False),
])
def test_edge_path__only_the_sdk_routes(path: str, edge: bool) -> None:
    assert bool(EDGE_PATH.match(path)) is edge


def test_edge_application__lean_unless_turned_off(settings: Any) -> None:
    assert isinstance(edge_application(), EdgeDispatcher)
    settings.SDK_EDGE_LEAN = False
    assert not isinstance(edge_application(), EdgeDispatcher)
