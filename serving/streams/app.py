"""The streaming process's HTTP endpoints (a Starlette application under uvicorn).

- ``GET /sub/{clientKey}``: GrowthBook's stream, for the client key only (as the payload).
- ``GET /ofrep/v1/event-stream?channel=<token>``: OFREP's change notifications; the channel
  token comes from the bulk answer's ``eventStreams`` (an SDK key in ``X-API-Key`` or
  ``Authorization: Bearer`` is taken as well).
- ``/healthz``, ``/readyz`` (503 while the process neither listens for changes nor reaches the
  database), ``/metrics`` (the same access rule as the web server's).

Keys are checked as on the web server (``serving.request``: the snapshot store's key table,
the rate limit), on a thread, since a new process's first lookup may wait for the database.
Refusals are JSON: ``{code, message, details}`` on the GrowthBook path, OFREP's
``{errorCode, errorDetails}`` on OFREP's, with the status and ``Retry-After`` of the web server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from django.conf import settings
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from config.metrics import STREAM_REFUSED
from config.metrics_http import exposition, may_scrape
from serving import stream_links
from serving.errors import Rejected, api_error
from serving.ofrep import ofrep_error
from serving.request import admit, authenticate
from serving.snapshots import key_digest, store
from serving.streams.changes import Changes
from serving.streams.hub import Hub, Stream
from serving.streams.messages import GROWTHBOOK, OFREP, State, state_of

__all__ = ["build"]

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, X-API-Key, Last-Event-ID, Cache-Control, Accept",
    "Access-Control-Max-Age": "86400",
}
STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-store"),
    (b"x-accel-buffering", b"no"),  # nginx: pass each event on at once
    (b"access-control-allow-origin", b"*"),
]
LAST_EVENT_ID_MAX = 128


class EventStream(Response):
    """The response of an accepted stream: headers, then whatever the hub writes, until the
    client goes away or the hub ends it."""

    def __init__(self, hub: Hub, digest: str, state: State, protocol: str, last_event_id: str | None) -> None:
        self.status_code = 200
        self.hub, self.digest, self.state = hub, digest, state
        self.protocol, self.last_event_id = protocol, last_event_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = Stream(send, digest=self.digest, environment_id=self.state.environment_id, protocol=self.protocol)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS})
            self.hub.attach(stream, self.state, self.last_event_id)
            while (await receive())["type"] != "http.disconnect":
                pass
        finally:
            self.hub.detach(stream)
            self.hub.release(self.digest)


def build(hub: Hub, changes: Changes) -> Starlette:
    async def growthbook(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=CORS)
        key = request.path_params["client_key"]
        return await _open(request, GROWTHBOOK, lambda: _growthbook_checked(key), api_error)

    async def ofrep(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=CORS)
        channel = request.query_params.get("channel")
        key = _header_key(request.headers)
        return await _open(request, OFREP, lambda: _ofrep_checked(channel, key), ofrep_error)

    async def _open(request: Request, protocol: str, check: Callable[[], tuple[str, State]],
                    shape: Callable[[Rejected, Mapping[str, Any]], dict[str, Any]]) -> Response:
        try:
            digest, state = await asyncio.to_thread(check)
            hub.reserve(digest)
        except Rejected as exc:
            STREAM_REFUSED.labels(str(exc.status)).inc()
            return JSONResponse(shape(exc, {}), exc.status, headers={**exc.headers, **CORS})
        last = request.headers.get("last-event-id")
        if last is not None and len(last) > LAST_EVENT_ID_MAX:
            last = None
        return EventStream(hub, digest, state, protocol, last)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "open_streams": hub.open_streams})

    async def readyz(request: Request) -> Response:
        status = await asyncio.to_thread(store.status)
        ready = changes.listening or status["state"] == "ok"
        body = {"status": "ok" if ready else "unavailable", "listening": changes.listening,
                "open_streams": hub.open_streams, "evaluation": status}
        return JSONResponse(body, 200 if ready else 503)

    async def metrics(request: Request) -> Response:
        address = request.client.host if request.client else ""
        if not may_scrape(request.headers.get("authorization", ""), address):
            return JSONResponse({"code": "permission_denied", "message": "Metrics are for the monitoring system only.",
                                 "details": {}}, 403)
        body = await asyncio.to_thread(exposition, ("serving.metrics.SnapshotCollector",))
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        changes.start()
        try:
            yield
        finally:
            hub.close_all()
            await changes.stop()

    return Starlette(
        routes=[
            Route("/sub/{client_key}", growthbook, methods=["GET", "OPTIONS"]),
            Route(stream_links.OFREP_STREAM_PATH, ofrep, methods=["GET", "OPTIONS"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ],
        lifespan=lifespan,
    )


def _checked(admitted: tuple[Any, Any], digest: str) -> tuple[str, State]:
    _, compiled = admitted
    return digest, state_of(compiled)


def _growthbook_checked(key: str) -> tuple[str, State]:
    return _checked(authenticate(key, allow_server=False), key_digest(key))


def _ofrep_checked(channel: str | None, key: str | None) -> tuple[str, State]:
    if channel:
        digest = stream_links.digest_of_channel(channel)
        if digest is None:
            # An unknown channel: perhaps a key created a moment ago; the store reads keys again.
            store.refresh()
            raise Rejected(401, "unauthorized", "Unknown or expired channel; evaluate the flags again for a new one.")
        return _checked(admit(digest), digest)
    if key:
        return _checked(authenticate(key), key_digest(key))
    raise Rejected(401, "unauthorized", "Name the channel given in eventStreams, or send an SDK key.")


def _header_key(headers: Mapping[str, str]) -> str | None:
    key = headers.get("x-api-key")
    if key:
        return key.strip() or None
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return (value.strip() or None) if scheme.lower() == "bearer" else None


def stream_settings() -> dict[str, int]:
    return {"max_per_key": int(settings.STREAM_MAX_PER_KEY), "max_total": int(settings.STREAM_MAX_CONNECTIONS),
            "retry_ms": int(settings.STREAM_RETRY_MS)}
