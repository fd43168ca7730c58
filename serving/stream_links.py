"""Where SDKs find the change streams, which the streaming process (`serving.streams`) serves:

- the GrowthBook payload answers with ``x-sse-support: enabled`` (exposed to browsers), which is
  how GrowthBook SDKs learn that they may stream, and ``GET /sub/{clientKey}`` on this server
  sends them on to the streaming process with a 307, so an SDK configured with one ``apiHost``
  streams without a ``streamingHost`` of its own;
- OFREP's bulk answer lists the stream in ``eventStreams``. Its URL names a *channel*: a token
  derived from the key (an HMAC of the key's SHA-256 digest under ``SECRET_KEY``), so the key
  itself, a server key in particular, never appears in a URL, the token opens nothing but the
  change notifications of the key's environment, and it stops working when the key is rotated.

Streaming is on when ``STREAMING_URL`` (the streaming process's public base URL) is set.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from serving.endpoint import sdk_endpoint
from serving.errors import Rejected
from serving.request import authenticate
from serving.snapshots import SdkKey, store

__all__ = [
    "CHANNEL_PREFIX",
    "OFREP_STREAM_PATH",
    "SSE_SUPPORT_HEADER",
    "channel_of",
    "digest_of_channel",
    "enabled",
    "ofrep_event_streams",
    "subscribe_redirect",
    "version_named",
]

SSE_SUPPORT_HEADER = "x-sse-support"
CHANNEL_PREFIX = "sbc_"
OFREP_STREAM_PATH = "/ofrep/v1/event-stream"


def enabled() -> bool:
    return bool(settings.STREAMING_URL)


def channel_of(digest: str) -> str:
    """The channel token of the key with this SHA-256 digest."""
    mac = hmac.new(settings.SECRET_KEY.encode(), b"splitbase-stream-channel:" + digest.encode(), hashlib.sha256)
    return CHANNEL_PREFIX + base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


_channels: tuple[Mapping[str, SdkKey], dict[str, str]] | None = None


def digest_of_channel(channel: str) -> str | None:
    """The digest of the valid key whose channel this is (None: unknown or rotated away). The
    table of channels is derived again only when the keys change."""
    global _channels
    keys = store.keys()
    cached = _channels
    if cached is None or cached[0] is not keys:
        cached = (keys, {channel_of(digest): digest for digest in keys})
        _channels = cached
    return cached[1].get(channel)


def version_named(flag_config_etag: str | None) -> int | None:
    """The config version an OFREP ``flagConfigEtag`` (a stream's event id, ``<version>-<digest>``)
    names; None for anything else."""
    head = (flag_config_etag or "").strip().strip('"').partition("-")[0]
    return int(head) if head.isdigit() and len(head) < 19 else None


def ofrep_event_streams(digest: str) -> list[dict[str, Any]]:
    """The ``eventStreams`` entry of an OFREP bulk answer for the key with this digest."""
    return [{
        "type": "sse",
        "url": f"{settings.STREAMING_URL}{OFREP_STREAM_PATH}?channel={channel_of(digest)}",
        "inactivityDelaySec": int(settings.STREAM_INACTIVITY_DELAY),
    }]


@sdk_endpoint("GET")
def subscribe_redirect(request: HttpRequest, client_key: str) -> HttpResponse:
    """``GET /sub/{clientKey}``: on to the streaming process (307 keeps the method and headers,
    ``Last-Event-ID`` among them). 404 while streaming is off."""
    authenticate(client_key, allow_server=False)
    if not enabled():
        raise Rejected(404, "streaming_disabled", "This service has no streaming endpoint; poll the payload instead.")
    response = HttpResponse(status=307)
    response["Location"] = f"{settings.STREAMING_URL}{request.get_full_path()}"
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = "no-store"
    return response
