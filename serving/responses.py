"""Responses of the SDK endpoints: JSON with open CORS, 304 for a matching ETag, the CORS
preflight."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson
from django.http import HttpResponse

__all__ = ["EXPOSED_HEADERS", "PREFLIGHT_HEADERS", "etag_matches", "etag_of", "json_response", "not_modified",
           "preflight"]

EXPOSED_HEADERS = "ETag, Retry-After, x-sse-support"
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, X-API-Key, If-None-Match",
    "Access-Control-Max-Age": "86400",
}


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> HttpResponse:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    response = HttpResponse(raw, status=status, content_type="application/json")
    response["Access-Control-Allow-Origin"] = "*"
    if headers:
        # Browsers only show a cross-origin script the headers listed as exposed.
        response["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        for name, value in headers.items():
            response[name] = value
    return response


def not_modified(etag: str, headers: Mapping[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(status=304)
    response["ETag"] = etag
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    if headers:
        for name, value in headers.items():
            response[name] = value
    return response


def preflight(headers: Mapping[str, str] = PREFLIGHT_HEADERS) -> HttpResponse:
    response = HttpResponse(status=204)
    for name, value in headers.items():
        response[name] = value
    return response


def etag_of(body: bytes) -> str:
    return f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'


def etag_matches(header: str | None, etag: str) -> bool:
    """``If-None-Match`` holds ``etag`` (weak comparison, lists and ``*`` allowed)."""
    if not header:
        return False
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False
