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

The targeting key is optional, as OpenFeature makes it: a context without one is evaluated, and a
rollout or experiment rule whose hash attribute the context lacks does not match (GrowthBook's
rule), so such a unit gets what the other rules and the default give. The flag is looked up
before the context is checked, so an unknown flag answers ``FLAG_NOT_FOUND`` whatever the
context. ``TARGETING_KEY_MISSING`` is kept in the protocol's vocabulary for evaluations that
cannot go on without a key; no flag of this service needs one. Each success carries the flag's
``metadata``: its free-form metadata merged with its type, and its name, description, owner and
comma-separated tags when set (those keys are reserved for them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from flags.engine.evaluation import evaluate, evaluate_all
from flags.engine.types import Evaluation, Reason, Source
from serving import stream_links
from serving.endpoint import sdk_endpoint
from serving.errors import Rejected
from serving.exposures import track
from serving.metrics import count_evaluations
from serving.request import attributes_of, authenticate, raw_key, read_json
from serving.responses import etag_matches, etag_of, json_response, not_modified
from serving.snapshots import CompiledEnvironment, key_digest, store
from serving.usage import recorder as usage

__all__ = ["NO_VALUE_VARIANT", "evaluate_flag", "evaluate_flags", "ofrep_error", "ofrep_item"]

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

_OWN_CODES = frozenset({PARSE_ERROR, INVALID_CONTEXT, TARGETING_KEY_MISSING, FLAG_NOT_FOUND, GENERAL})
# Refusals of the shared request reading, in the protocol's terms.
_SHARED_CODES = {"parse_error": PARSE_ERROR, "invalid_characters": INVALID_CONTEXT}


def ofrep_error(exc: Rejected, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """A refusal in OFREP's shape. 400 and 404 carry an error code of the protocol (and, for the
    single-flag call, the flag's key); the protocol gives 401, 403, 405, 413, 429 and 503 no
    body shape, so they say ``GENERAL`` and the details."""
    if exc.status in (400, 404):
        code = exc.code if exc.code in _OWN_CODES else _SHARED_CODES.get(exc.code, GENERAL)
        body: dict[str, Any] = {"errorCode": code, "errorDetails": exc.message}
        key = arguments.get("key")
        return {"key": key, **body} if key is not None else body
    return {"errorCode": GENERAL, "errorDetails": exc.message}


def ofrep_item(ev: Evaluation, metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One flag in OFREP's form: a success (with the flag's metadata when given), or a failure
    carrying ``errorCode``."""
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
    if metadata:
        item["metadata"] = dict(metadata)
    return item


def _static_items(compiled: CompiledEnvironment) -> dict[int, tuple[Evaluation, bytes]]:
    """The OFREP items, as JSON, of the results a snapshot holds (each flag's default and its
    force rules' results), which do not depend on the unit: by ``id`` of the result, with the
    result itself, so that only that very object is answered with them."""
    items: dict[int, tuple[Evaluation, bytes]] | None = compiled.derived.get("ofrep_items")
    if items is None:
        snapshot = compiled.snapshot
        items = {}
        for key, feature in snapshot.features.items():
            metadata = snapshot.metadata.get(key)
            for ev in (feature.default_result, *feature.rule_results):
                if ev is not None:
                    items[id(ev)] = (ev, orjson.dumps(ofrep_item(ev, metadata)))
        compiled.derived["ofrep_items"] = items
    return items


def _bulk_body(compiled: CompiledEnvironment, results: Iterable[Evaluation], rest: dict[str, Any]) -> bytes:
    """``orjson.dumps({"flags": [ofrep_item(...) ...], **rest})``, byte for byte, with the items
    of unit-independent results taken from ``_static_items``."""
    static = _static_items(compiled)
    metadata = compiled.snapshot.metadata
    parts = []
    for ev in results:
        known = static.get(id(ev))
        if known is not None and known[0] is ev:
            parts.append(known[1])
        else:
            parts.append(orjson.dumps(ofrep_item(ev, metadata.get(ev.key))))
    tail = orjson.dumps(rest) if rest else b"{}"
    return b"".join((b'{"flags":[', b",".join(parts), b"]," if rest else b"]", tail[1:]))


def _error_details(ev: Evaluation) -> str:
    if ev.error_code == FLAG_NOT_FOUND:
        return f"Flag '{ev.key}' was not found."
    return f"Flag '{ev.key}' could not be evaluated (its prerequisites form a cycle)."


def _body(request: HttpRequest) -> dict[str, Any]:
    body = read_json(request, max_bytes=int(settings.SDK_MAX_BODY_BYTES))
    if not isinstance(body, dict):
        raise Rejected(400, PARSE_ERROR, "The body must be a JSON object with a 'context' object.")
    return body


def _context(body: Mapping[str, Any]) -> dict[str, Any]:
    """The evaluation attributes of a request's context; the targeting key is optional."""
    context = body.get("context")
    if not isinstance(context, dict):
        raise Rejected(400, INVALID_CONTEXT, "The request needs a 'context' object (it may be empty).")
    targeting_key = context.get("targetingKey")
    if targeting_key is not None and not isinstance(targeting_key, str):
        raise Rejected(400, INVALID_CONTEXT, "The context's targetingKey must be a string.")
    return attributes_of(context)


@sdk_endpoint("POST", shape=ofrep_error)
def evaluate_flag(request: HttpRequest, key: str) -> HttpResponse:
    info, compiled = authenticate(raw_key(request))
    body = _body(request)
    snapshot = compiled.snapshot
    if key not in snapshot.features:
        raise Rejected(404, FLAG_NOT_FOUND, f"Flag '{key}' was not found.")
    attributes = _context(body)
    ev = evaluate(snapshot, key, attributes)
    count_evaluations("ofrep", (ev,))
    item = ofrep_item(ev, snapshot.metadata.get(key))
    if "errorCode" in item:
        raise Rejected(400, item["errorCode"], item["errorDetails"])
    if ev.experiment is not None or ev.passthrough:
        track(info, (ev,), attributes)
    response = json_response(item)
    usage.evaluated(info.environment_id, compiled.used_by((key,)))
    return response


@sdk_endpoint("POST", shape=ofrep_error)
def evaluate_flags(request: HttpRequest) -> HttpResponse:
    key = raw_key(request)
    info, compiled = authenticate(key)
    attributes = _context(_body(request))
    wanted = stream_links.version_named(request.GET.get("flagConfigEtag"))
    if wanted is not None and wanted > compiled.version:
        # A stream told the client of a version this process has not read yet: read it now.
        newer = store.serve_at_least(info.environment_id, wanted, float(settings.STREAM_CATCH_UP_TIMEOUT))
        compiled = newer if newer is not None and newer.version > compiled.version else compiled
    snapshot = compiled.snapshot
    results = evaluate_all(snapshot, attributes)
    count_evaluations("ofrep_bulk", results.values())
    rest: dict[str, Any] = {"metadata": {"configVersion": snapshot.version}}
    if stream_links.enabled() and key:
        rest["eventStreams"] = stream_links.ofrep_event_streams(key_digest(key))
    raw = _bulk_body(compiled, results.values(), rest)
    etag = etag_of(raw)
    usage.evaluated(info.environment_id, results)
    if etag_matches(request.META.get("HTTP_IF_NONE_MATCH"), etag):
        return not_modified(etag)
    return json_response(raw, headers={"ETag": etag})
