"""OpenFeature Remote Evaluation Protocol (OFREP) v0.3.

- ``POST /ofrep/v1/evaluate/flags/{key}``: one flag, for server-side providers.
- ``POST /ofrep/v1/evaluate/flags``: every flag, for client-side providers, with an ``ETag``
  (a digest of the answer) and ``If-None-Match`` -> 304.

Reasons are the protocol's (``STATIC``, ``TARGETING_MATCH``, ``SPLIT``, ``DISABLED``,
``UNKNOWN``): a flag whose rules all passed the unit by serves its default variant with
``STATIC``. A flag whose prerequisite does not hold has no value, so the provider falls back
to the code default; its variant is ``prerequisite-not-met``, its reason ``TARGETING_MATCH``.
Evaluating one flag records the unit's exposure when the flag put it into a running
experiment, as an SDK would on use; the bulk call records nothing (a client provider
evaluates everything up front).
"""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from flags.engine.evaluation import evaluate, evaluate_all
from flags.engine.types import Evaluation, Reason, Source
from serving.request import (
    Denied,
    Rejected,
    attributes_of,
    authenticate,
    etag_matches,
    etag_of,
    json_response,
    not_modified,
    preflight,
    raw_key,
    read_json,
    track,
)
from serving.usage import recorder as usage

__all__ = ["NO_VALUE_VARIANT", "evaluate_flag", "evaluate_flags", "ofrep_item"]

NO_VALUE_VARIANT = "prerequisite-not-met"

_REASONS = {
    Reason.STATIC: "STATIC",
    Reason.TARGETING_MATCH: "TARGETING_MATCH",
    Reason.SPLIT: "SPLIT",
    Reason.DISABLED: "DISABLED",
    Reason.DEFAULT: "STATIC",
    Reason.UNKNOWN: "UNKNOWN",
}

PARSE_ERROR = "PARSE_ERROR"
INVALID_CONTEXT = "INVALID_CONTEXT"
TARGETING_KEY_MISSING = "TARGETING_KEY_MISSING"
FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
GENERAL = "GENERAL"


class _BadRequest(Exception):
    def __init__(self, code: str, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


def ofrep_item(ev: Evaluation) -> dict[str, Any]:
    """One flag in OFREP's form: a success, or a failure carrying ``errorCode``."""
    if ev.reason is Reason.ERROR:
        return {"key": ev.key, "errorCode": ev.error_code or GENERAL, "errorDetails": _error_details(ev)}
    item: dict[str, Any] = {"key": ev.key, "reason": _REASONS.get(ev.reason, "UNKNOWN")}
    if ev.source is Source.PREREQUISITE:
        # Targeting (the prerequisite) decided that this unit gets no value.
        item["reason"] = "TARGETING_MATCH"
    if ev.value is None:
        item["variant"] = ev.variant or NO_VALUE_VARIANT
    else:
        item["value"] = ev.value
        item["variant"] = ev.variant or "default"
    return item


def _error_details(ev: Evaluation) -> str:
    if ev.error_code == FLAG_NOT_FOUND:
        return f"Flag '{ev.key}' was not found."
    return f"Flag '{ev.key}' could not be evaluated (its prerequisites form a cycle)."


def _context(request: HttpRequest) -> dict[str, Any]:
    try:
        body = read_json(request)
    except Rejected as exc:
        if exc.status == 400:
            raise _BadRequest(PARSE_ERROR, exc.message) from exc
        raise
    if not isinstance(body, dict):
        raise _BadRequest(PARSE_ERROR, "The body must be a JSON object with a 'context' object.")
    context = body.get("context")
    if not isinstance(context, dict):
        raise _BadRequest(INVALID_CONTEXT, "The request needs a 'context' object.")
    targeting_key = context.get("targetingKey")
    if targeting_key is None or targeting_key == "":
        raise _BadRequest(TARGETING_KEY_MISSING, "Context is missing required targetingKey property.")
    if not isinstance(targeting_key, str):
        raise _BadRequest(INVALID_CONTEXT, "The context's targetingKey must be a string.")
    return attributes_of(context)


def _denied(exc: Rejected) -> HttpResponse:
    """401, 403, 413, 429 and 503: the protocol gives no body shape; send the details."""
    body: dict[str, Any] = {"errorCode": GENERAL, "errorDetails": exc.message}
    return json_response(body, exc.status, exc.headers)


@csrf_exempt
def evaluate_flag(request: HttpRequest, key: str) -> HttpResponse:
    if request.method != "POST":
        return preflight() if request.method == "OPTIONS" else _not_allowed()
    try:
        info, compiled = authenticate(raw_key(request))
        attributes = _context(request)
    except _BadRequest as exc:
        return json_response({"key": key, "errorCode": exc.code, "errorDetails": exc.details}, 400)
    except (Denied, Rejected) as exc:
        return _denied(exc)
    snapshot = compiled.snapshot
    if key not in snapshot.features:
        return json_response({"key": key, "errorCode": FLAG_NOT_FOUND, "errorDetails": f"Flag '{key}' was not found."},
                             404)
    ev = evaluate(snapshot, key, attributes)
    item = ofrep_item(ev)
    if "errorCode" in item:
        return json_response(item, 400)
    if ev.experiment is not None:
        track(info.environment, (ev,), attributes)
    response = json_response(item)
    usage.evaluated(info.environment_id, compiled.used_by((key,)))
    return response


@csrf_exempt
def evaluate_flags(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return preflight() if request.method == "OPTIONS" else _not_allowed()
    try:
        info, compiled = authenticate(raw_key(request))
        attributes = _context(request)
    except _BadRequest as exc:
        return json_response({"errorCode": exc.code, "errorDetails": exc.details}, 400)
    except (Denied, Rejected) as exc:
        return _denied(exc)
    snapshot = compiled.snapshot
    results = evaluate_all(snapshot, attributes)
    body = {
        "flags": [ofrep_item(ev) for ev in results.values()],
        "metadata": {"configVersion": snapshot.version},
    }
    raw = orjson.dumps(body)
    etag = etag_of(raw)
    usage.evaluated(info.environment_id, results)
    if etag_matches(request.META.get("HTTP_IF_NONE_MATCH"), etag):
        return not_modified(etag)
    return json_response(raw, headers={"ETag": etag})


def _not_allowed() -> HttpResponse:
    response = json_response({"errorCode": GENERAL, "errorDetails": "Use POST."}, 405)
    response["Allow"] = "POST, OPTIONS"
    return response
