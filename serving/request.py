"""Shared plumbing of the SDK endpoints (OFREP, evaluate, SDK payload).

These are plain Django views, not DRF: every request on this path pays only for what it
uses (a header lookup, a token bucket, orjson, the pure evaluation). Nothing here queries
the database except the snapshot store's throttled version check.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from base.keys import TOKEN_PREFIX
from flags.engine.types import Evaluation
from serving.exposures import Exposure
from serving.exposures import buffer as exposure_buffer
from serving.ratelimit import limiter
from serving.snapshots import CompiledEnvironment, SdkKey, SnapshotUnavailable, store
from traffic.assignment.bucketing import hash_string

__all__ = [
    "EXPOSED_HEADERS",
    "Denied",
    "Rejected",
    "attributes_of",
    "authenticate",
    "etag_matches",
    "etag_of",
    "exposures_of",
    "json_response",
    "not_modified",
    "preflight",
    "raw_key",
    "read_json",
    "track",
]

EXPOSED_HEADERS = "ETag, Retry-After"
_PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, X-API-Key, If-None-Match",
    "Access-Control-Max-Age": "86400",
}


class Rejected(Exception):
    """A request refused before evaluation: HTTP status, a machine code, a message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.details = details


class Denied(Rejected):
    """Authentication or authorisation failed (401, 403), or the key is over its limit (429)."""


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


def preflight() -> HttpResponse:
    response = HttpResponse(status=204)
    for name, value in _PREFLIGHT_HEADERS.items():
        response[name] = value
    return response


def raw_key(request: HttpRequest) -> str | None:
    """The SDK key from ``X-API-Key`` or ``Authorization: Bearer``."""
    meta = request.META
    key = meta.get("HTTP_X_API_KEY")
    if key:
        return str(key).strip() or None
    header = meta.get("HTTP_AUTHORIZATION")
    if header:
        scheme, _, value = str(header).partition(" ")
        if scheme.lower() == "bearer":
            return value.strip() or None
    return None


def authenticate(key: str | None, *, allow_server: bool = True) -> tuple[SdkKey, CompiledEnvironment]:
    """Resolve an SDK key to its environment's snapshot and take a rate-limit token."""
    if not key:
        raise Denied(401, "unauthorized", "Send an SDK key in X-API-Key or Authorization: Bearer.")
    if key.startswith(TOKEN_PREFIX):
        raise Denied(403, "forbidden", "This is a management token; use the environment's SDK key.")
    try:
        resolved = store.resolve(key)
    except SnapshotUnavailable as exc:
        raise Rejected(503, "unavailable", "Flag configuration is not available yet; retry shortly.",
                       {"Retry-After": "5"}) from exc
    if resolved is None:
        raise Denied(401, "unauthorized", "Unknown or revoked SDK key.")
    info, compiled = resolved
    if not allow_server and info.kind != "client":
        raise Denied(403, "forbidden", "Use the environment's client key here; the server key must stay secret.")
    wait = limiter.take(f"{info.environment_id}:{info.kind}")
    if wait:
        raise Denied(429, "rate_limited", f"Too many requests for this key; retry in {wait} s.",
                     {"Retry-After": str(wait)})
    return info, compiled


def read_json(request: HttpRequest) -> Any:
    """The parsed body; Rejected(413) when too large, Rejected(400, parse_error) when not JSON."""
    limit = int(settings.SDK_MAX_BODY_BYTES)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise Rejected(413, "payload_too_large", f"The body is larger than {limit} bytes.")
    body = request.body
    if len(body) > limit:
        raise Rejected(413, "payload_too_large", f"The body is larger than {limit} bytes.")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Rejected(400, "parse_error", f"The body is not valid JSON: {exc.msg}.") from exc


def attributes_of(context: Mapping[str, Any]) -> dict[str, Any]:
    """Evaluation attributes of a context: ``targetingKey`` is the unit id, seen by rules
    and hashing as attribute ``id`` (rules may hash on any other attribute)."""
    attributes = dict(context)
    key = context.get("targetingKey")
    if key is not None and key != "":
        attributes["id"] = key
    return attributes


def exposures_of(
    environment: str, evaluations: Iterable[Evaluation], attributes: Mapping[str, Any]
) -> list[Exposure]:
    """Exposures of a unit placed in an experiment variation (not units left out by coverage
    or a namespace, and not passthrough variations)."""
    now = time.time()
    out: list[Exposure] = []
    for ev in evaluations:
        assignment = ev.experiment
        if assignment is None or not assignment.in_experiment or not assignment.hash_used or assignment.passthrough:
            continue
        out.append(
            Exposure(
                environment=environment,
                experiment=assignment.key,
                variation=assignment.variation_key,
                variation_index=assignment.variation_id,
                unit_id=hash_string(assignment.hash_value),
                hash_attribute=assignment.hash_attribute,
                flag=ev.key,
                rule_id=ev.rule_id,
                timestamp=now,
                attributes=attributes,
            )
        )
    return out


def track(environment: str, evaluations: Iterable[Evaluation], attributes: Mapping[str, Any]) -> int:
    exposures = exposures_of(environment, evaluations, attributes)
    return exposure_buffer.add(exposures) if exposures else 0


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
