"""How the web server points SDKs to the streams: the payload's `x-sse-support` header, the
`/sub/{clientKey}` redirect, OFREP's `eventStreams`, and nothing of it while streaming is off."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from base.models import Environment
from serving import stream_links
from serving.snapshots import key_digest

STREAMS = "https://stream.example.com"
BODY = {"context": {"targetingKey": "u-1"}}


@pytest.fixture
def production(environments: dict[str, Environment]) -> Environment:
    return environments["production"]


def test_payload__announces_streaming_to_the_sdks_and_browsers(production: Environment, settings: Any) -> None:
    settings.STREAMING_URL = STREAMS
    response = Client().get(f"/api/features/{production.client_key}")
    assert response.status_code == 200
    assert response["x-sse-support"] == "enabled"
    # A browser lets the SDK read the header only when it is exposed.
    assert "x-sse-support" in response["Access-Control-Expose-Headers"]


def test_streaming_off__no_header_no_event_streams_and_sub_is_404(production: Environment, settings: Any) -> None:
    settings.STREAMING_URL = ""
    client = Client()
    assert "x-sse-support" not in client.get(f"/api/features/{production.client_key}")
    bulk = client.post("/ofrep/v1/evaluate/flags", BODY, content_type="application/json",
                       HTTP_X_API_KEY=production.client_key)
    assert "eventStreams" not in bulk.json()
    sub = client.get(f"/sub/{production.client_key}")
    assert sub.status_code == 404 and sub.json()["code"] == "streaming_disabled"


def test_sub__redirects_to_the_streaming_process_for_the_client_key_only(
    production: Environment, settings: Any
) -> None:
    settings.STREAMING_URL = STREAMS
    client = Client()
    response = client.get(f"/sub/{production.client_key}?x=1", HTTP_LAST_EVENT_ID="3-abc")
    assert response.status_code == 307
    assert response["Location"] == f"{STREAMS}/sub/{production.client_key}?x=1"
    assert response["Access-Control-Allow-Origin"] == "*"
    assert client.get(f"/sub/{production.server_key}").status_code == 403
    assert client.get("/sub/sdk-client-nope").status_code == 401


def test_ofrep_bulk__event_streams_name_a_channel_not_the_key(production: Environment, settings: Any) -> None:
    settings.STREAMING_URL = STREAMS
    client = Client()
    answers = [client.post("/ofrep/v1/evaluate/flags", BODY, content_type="application/json", HTTP_X_API_KEY=key)
               for key in (production.client_key, production.server_key)]
    streams = [answer.json()["eventStreams"] for answer in answers]
    for entries, key in zip(streams, (production.client_key, production.server_key), strict=True):
        assert len(entries) == 1 and entries[0]["type"] == "sse" and entries[0]["inactivityDelaySec"] == 120
        url = entries[0]["url"]
        assert url.startswith(f"{STREAMS}/ofrep/v1/event-stream?channel=sbc_")
        assert key not in url
        channel = url.partition("channel=")[2]
        assert stream_links.digest_of_channel(channel) == key_digest(key)
    assert streams[0] != streams[1]
    assert stream_links.digest_of_channel("sbc_unknown") is None


def test_flag_config_etag__only_a_version_is_read(production: Environment) -> None:
    assert stream_links.version_named("12-abcdef") == 12
    assert stream_links.version_named('"7-ff"') == 7
    for text in (None, "", "abc", "-1", "1e9", "9" * 30):
        assert stream_links.version_named(text) is None
