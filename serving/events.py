"""`POST /api/v1/events`: a batch of exposures and metric events from an SDK (client or server key).

Validation and writes are the experiments app's (`experiments.ingestion`); this view reads the
body, authenticates the key through the snapshot store like every SDK endpoint (no query), and
notes the experiments whose exposures arrived as in use. Errors use the API's
``{code, message, details}`` body.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from experiments import services
from experiments.ingestion import MAX_BATCH_ITEMS
from serving.endpoint import sdk_endpoint
from serving.errors import Rejected
from serving.request import authenticate, raw_key, read_json
from serving.responses import json_response
from serving.usage import recorder as usage

__all__ = ["CORS_HEADERS", "EVENTS_MAX_BODY_BYTES", "events_ingest_view"]

# 1,000 items with their properties fit well within this.
EVENTS_MAX_BODY_BYTES = 4 * 1024 * 1024
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, X-API-Key",
    "Access-Control-Max-Age": "86400",
}


def _items(body: Any) -> list[Any]:
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise Rejected(400, "invalid_batch", 'Send an object {"events": [...]}.',
                       details={"events": ["A list of items is required."]})
    items: list[Any] = body["events"]
    if len(items) > MAX_BATCH_ITEMS:
        raise Rejected(413, "batch_too_large",
                       f"A batch holds at most {MAX_BATCH_ITEMS} items; this one has {len(items)}.",
                       details={"limit": MAX_BATCH_ITEMS, "items": len(items)})
    return items


@sdk_endpoint("POST", cors=CORS_HEADERS)
def events_ingest_view(request: HttpRequest) -> HttpResponse:
    """Batch of exposures and metric events from an SDK (client or server key)."""
    info, compiled = authenticate(raw_key(request))
    # Items holding a NUL character are rejected one by one by ingestion; the rest are kept.
    body = read_json(request, max_bytes=EVENTS_MAX_BODY_BYTES, refuse_nul=False, invalid="invalid_json")
    result = services.events_ingest(
        environment=info.environment_id, config_version=compiled.version, items=_items(body)
    )
    usage.exposures_received(info.environment_id, list(result.exposed), list(result.exposed.values()))
    return json_response(
        {
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "rejected": [{"index": r.index, "code": r.code, "message": r.message} for r in result.rejected],
        },
        202,
    )
