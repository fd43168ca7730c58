"""`POST /api/v1/events`: a batch of exposures and metric events from an SDK (client or server key).

Validation and writes are the experiments app's (`experiments.ingestion`); this view reads the
body, authenticates the key through the snapshot store like every SDK endpoint (no query), and
notes the experiments whose exposures arrived as in use. Errors use the API's
``{code, message, details}`` body. While PostgreSQL cannot be reached (refused, or silent for
longer than ``SNAPSHOT_STALE_AFTER``) the answer is 503 with ``Retry-After``: nothing was
written, and the SDK sends the same batch again.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from experiments import services
from experiments.ingestion import MAX_BATCH_ITEMS
from serving.background import discard_connection
from serving.endpoint import sdk_endpoint
from serving.errors import Rejected
from serving.request import authenticate, raw_key, read_json
from serving.responses import json_response
from serving.snapshots import store
from serving.usage import recorder as usage

logger = logging.getLogger(__name__)

__all__ = ["CORS_HEADERS", "EVENTS_MAX_BODY_BYTES", "events_ingest_view"]

# 1,000 items with their properties fit well within this.
EVENTS_MAX_BODY_BYTES = 4 * 1024 * 1024
RETRY_AFTER_SECONDS = 5
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


def _unavailable() -> Rejected:
    """Nothing was written: the SDK sends the same batch again later (its ids make it count once)."""
    return Rejected(503, "unavailable", "Events cannot be stored right now; send the same batch again later.",
                    {"Retry-After": str(RETRY_AFTER_SECONDS)})


@sdk_endpoint("POST", cors=CORS_HEADERS)
def events_ingest_view(request: HttpRequest) -> HttpResponse:
    """Batch of exposures and metric events from an SDK (client or server key)."""
    info, compiled = authenticate(raw_key(request))
    # Items holding a NUL character are rejected one by one by ingestion; the rest are kept.
    body = read_json(request, max_bytes=EVENTS_MAX_BODY_BYTES, refuse_nul=False, invalid="invalid_json")
    items = _items(body)
    if store.database_unreachable():
        raise _unavailable()
    try:
        result = services.events_ingest(environment=info.environment_id, config_version=compiled.version, items=items)
    except DatabaseError as exc:
        logger.warning("Events batch refused while the database is unreachable: %s", type(exc).__name__)
        discard_connection()
        raise _unavailable() from exc
    usage.exposures_received(info.environment_id, list(result.exposed), list(result.exposed.values()))
    return json_response(
        {
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "rejected": [{"index": r.index, "code": r.code, "message": r.message} for r in result.rejected],
        },
        202,
    )
