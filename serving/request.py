"""What every SDK endpoint reads from a request, read one way: the SDK key (resolved through the
snapshot store and rate limited), the JSON body (held to the endpoint's size, nesting depth and
character limits) and the evaluation context.

Nothing here queries the database except the snapshot store's throttled version check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest

from base.keys import TOKEN_PREFIX
from config.json_values import holds_nul, nested_deeper_than
from config.middleware import NUL_MESSAGE, nul_in_url
from serving.errors import Rejected
from serving.ratelimit import limiter
from serving.snapshots import CompiledEnvironment, SdkKey, SnapshotUnavailable, key_digest, store

__all__ = ["admit", "attributes_of", "authenticate", "raw_key", "read_json", "refuse_nul_in_url"]


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
    """Resolve an SDK key to its environment's snapshot and take a rate-limit token.

    401 without a key or for an unknown one, 403 for a management token (and for the server key
    where only the public client key belongs), 429 over the key's rate, 503 when no snapshot
    exists and the database cannot be read.
    """
    if not key:
        raise Rejected(401, "unauthorized", "Send an SDK key in X-API-Key or Authorization: Bearer.")
    if key.startswith(TOKEN_PREFIX):
        raise Rejected(403, "forbidden", "This is a management token; use the environment's SDK key.")
    return admit(key_digest(key), allow_server=allow_server)


def admit(digest: str, *, allow_server: bool = True) -> tuple[SdkKey, CompiledEnvironment]:
    """``authenticate`` for a key known by its SHA-256 digest (a stream's channel names one)."""
    try:
        resolved = store.resolve_digest(digest)
    except SnapshotUnavailable as exc:
        raise Rejected(503, "unavailable", "Flag configuration is not available yet; retry shortly.",
                       {"Retry-After": "5"}) from exc
    if resolved is None:
        raise Rejected(401, "unauthorized", "Unknown or revoked SDK key.")
    info, compiled = resolved
    if not allow_server and info.kind != "client":
        raise Rejected(403, "forbidden", "Use the environment's client key here; the server key must stay secret.")
    wait = limiter.take(f"{info.environment_id}:{info.kind}")
    if wait:
        raise Rejected(429, "rate_limited", f"Too many requests for this key; retry in {wait} s.",
                       {"Retry-After": str(wait)})
    return info, compiled


def read_json(request: HttpRequest, *, max_bytes: int, refuse_nul: bool = True, invalid: str = "parse_error") -> Any:
    """The parsed body, held to the endpoint's limits:

    - 413 ``payload_too_large`` above ``max_bytes`` (told by ``Content-Length`` before anything
      is read, or found while reading);
    - 400 with the code ``invalid`` when the body is not JSON or nests deeper than
      ``JSON_MAX_DEPTH`` levels;
    - 400 ``invalid_characters`` when a string holds the NUL character, which PostgreSQL cannot
      store, unless ``refuse_nul`` is false (the events API rejects such items one by one).

    The body is read from the stream, so Django's form-upload limit does not apply.
    """
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > max_bytes:
        raise Rejected(413, "payload_too_large", f"The body is larger than {max_bytes} bytes.")
    raw = request.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise Rejected(413, "payload_too_large", f"The body is larger than {max_bytes} bytes.")
    if refuse_nul and b"\x00" in raw:
        raise _nul_in_body()
    depth = int(settings.JSON_MAX_DEPTH)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in exc.msg or "recursion" in exc.msg:
            raise _too_deep(invalid, depth) from exc
        raise Rejected(400, invalid, f"The body is not valid JSON: {exc.msg}.") from exc
    # A body with few brackets cannot be deep: most bodies skip the walk.
    if raw.count(b"[") + raw.count(b"{") > depth and nested_deeper_than(body, depth):
        raise _too_deep(invalid, depth)
    if refuse_nul and b"\\u0000" in raw and holds_nul(body):
        raise _nul_in_body()
    return body


def _too_deep(code: str, depth: int) -> Rejected:
    return Rejected(400, code, f"The JSON body is nested more than {depth} levels deep.")


def _nul_in_body() -> Rejected:
    return Rejected(400, "invalid_characters", NUL_MESSAGE.format(location="body"), details={"location": "body"})


def refuse_nul_in_url(request: HttpRequest) -> None:
    """400 ``invalid_characters`` when the path or the query string holds a NUL character."""
    where = nul_in_url(request)
    if where is not None:
        raise Rejected(400, "invalid_characters", NUL_MESSAGE.format(location=where), details={"location": where})


def attributes_of(context: Mapping[str, Any]) -> dict[str, Any]:
    """Evaluation attributes of a context: ``targetingKey`` is the unit id, seen by rules
    and hashing as attribute ``id`` (rules may hash on any other attribute)."""
    attributes = dict(context)
    key = context.get("targetingKey")
    if key is not None and key != "":
        attributes["id"] = key
    return attributes
