"""Streaming updates against real processes: the streaming process and gunicorn on the test
database, changes made through the management API of the web server (another process), the
real GrowthBook SDKs (JavaScript in Node.js, Python) and plain SSE readers."""

from __future__ import annotations

import json
import queue
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from growthbook import GrowthBook

from tests.conftest import IN_CI
from tests.integration.serving.streaming import SseReader, Stack

JS = Path(__file__).resolve().parents[2] / "js"


@pytest.fixture
def stack_settings() -> dict[str, str]:
    return {"STREAM_MAX_PER_KEY": "3"}


def _node_ready() -> None:
    if shutil.which("node") and (JS / "node_modules" / "@growthbook" / "growthbook").is_dir():
        return
    message = "the JavaScript SDK tests need node and `make js-deps` (npm ci in tests/js)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def _lines(process: subprocess.Popen[str]) -> queue.Queue[dict[str, Any]]:
    found: queue.Queue[dict[str, Any]] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("{"):
                found.put(json.loads(line))

    threading.Thread(target=read, daemon=True).start()
    return found


def test_javascript_sdk__streaming__sees_a_management_api_change_within_2_s(stack: Stack) -> None:
    _node_ready()
    node = subprocess.Popen(["node", str(JS / "growthbook_stream.mjs"), stack.web.url, stack.environment.client_key,
                             "banner"], cwd=JS, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = _lines(node)
        assert lines.get(timeout=30)["ready"] is True
        assert lines.get(timeout=10)["value"] == "blue"
        # The SDK opened its stream (through the web server's redirect) before the change.
        _wait_for_streams(stack, 1)
        for variant in ("green", "red"):
            stack.set_banner(variant)
            changed = time.time()
            seen = lines.get(timeout=10)
            assert seen["value"] == variant
            assert seen["at"] / 1000 - changed < 2.0
    finally:
        node.kill()
        node.wait()


def test_python_sdk__streaming__follows_changes(stack: Stack) -> None:
    gb = GrowthBook(api_host=stack.web.url, client_key=stack.environment.client_key, streaming=True,
                    attributes={"id": "stream-user"})
    try:
        assert gb.get_feature_value("banner", None) == "blue"
        _wait_for_streams(stack, 1)
        stack.set_banner("green")
        deadline = time.monotonic() + 2.0
        while gb.get_feature_value("banner", None) != "green" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert gb.get_feature_value("banner", None) == "green"
    finally:
        gb.destroy()


def test_growthbook_stream__resume_heartbeats_limits_rotation_and_shutdown(stack: Stack) -> None:
    url = f"{stack.streaming.url}/sub/{stack.environment.client_key}"
    first = SseReader(url)
    assert first.status == 200
    assert first.response.getheader("Content-Type", "").startswith("text/event-stream")
    event = first.next_event()
    assert event is not None and event.event == "features" and event.id
    assert first.retry == 3000
    payload = orjson.loads(event.data)
    assert payload["features"]["banner"]["defaultValue"] == "blue"
    assert payload == requests.get(f"{stack.web.url}/api/features/{stack.environment.client_key}", timeout=5).json()

    # Up to date: a reconnection naming the current id is sent nothing but heartbeats.
    resumed = SseReader(url, {"Last-Event-ID": event.id})
    assert resumed.next_event(timeout=2.5) is None and resumed.comments >= 1 and not resumed.ended
    # Behind: the current state at once.
    behind = SseReader(url, {"Last-Event-ID": "1-0000"})
    caught = behind.next_event()
    assert caught is not None and caught.id == event.id

    # The per-key limit (3 here) refuses a fourth stream with 429 and Retry-After.
    refused = SseReader(url)
    assert refused.status == 429 and refused.response.getheader("Retry-After")
    assert json.loads(refused.body())["code"] == "too_many_streams"
    behind.close()
    _wait_for_streams(stack, 2)
    again = SseReader(url)
    assert again.status == 200
    again.close()

    # A change reaches every stream, with a new id.
    stack.set_banner("green")
    for reader in (first, resumed):
        changed = reader.next_event()
        assert changed is not None and changed.id != event.id
        assert orjson.loads(changed.data)["features"]["banner"]["defaultValue"] == "green"

    # Keys: unknown 401, the server key 403 (as on the payload URL), management token 403.
    assert requests.get(f"{stack.streaming.url}/sub/sdk-client-unknown", timeout=5).status_code == 401
    assert requests.get(f"{stack.streaming.url}/sub/{stack.environment.server_key}", timeout=5).status_code == 403
    assert requests.get(f"{stack.streaming.url}/sub/{stack.token}", timeout=5).status_code == 403

    # Rotating the keys ends the streams of the old key; it cannot reconnect.
    old_key = stack.environment.client_key
    stack.manage("POST", f"/api/v1/environments/{stack.environment.key}/rotate-keys")
    for reader in (first, resumed):
        while reader.next_event(timeout=5) is not None:
            pass
        assert reader.ended
    assert requests.get(f"{stack.streaming.url}/sub/{old_key}", timeout=5).status_code == 401

    # Stopping the process ends the open streams at once rather than waiting for them.
    stack.environment.refresh_from_db()
    last = SseReader(f"{stack.streaming.url}/sub/{stack.environment.client_key}")
    assert last.next_event() is not None
    started = time.monotonic()
    # uvicorn ends by raising the SIGTERM it handled again, so that its parent sees it.
    assert stack.streaming.stop() in (0, -signal.SIGTERM)
    assert time.monotonic() - started < 10
    assert last.next_event(timeout=5) is None and last.ended


def test_ofrep_event_stream__refetch_with_flag_config_etag_gets_the_change(stack: Stack) -> None:
    headers = {"X-API-Key": stack.environment.client_key}
    bulk_url = f"{stack.web.url}/ofrep/v1/evaluate/flags"
    body = {"context": {"targetingKey": "u-1"}}
    first = requests.post(bulk_url, json=body, headers=headers, timeout=5)
    assert first.status_code == 200
    streams = first.json()["eventStreams"]
    assert streams == [{"type": "sse", "url": streams[0]["url"], "inactivityDelaySec": 120}]
    assert streams[0]["url"].startswith(f"{stack.streaming.url}/ofrep/v1/event-stream?channel=sbc_")
    assert stack.environment.client_key not in streams[0]["url"]
    etag = first.headers["ETag"]
    assert requests.post(bulk_url, json=body, headers={**headers, "If-None-Match": etag}, timeout=5).status_code == 304

    reader = SseReader(streams[0]["url"])
    assert reader.status == 200
    opening = reader.next_event()
    assert opening is not None and opening.event == "message"
    assert json.loads(opening.data)["type"] == "refetchEvaluation"

    stack.set_banner("green")
    notice = reader.next_event()
    assert notice is not None and notice.event == "message" and notice.id != opening.id
    data = json.loads(notice.data)
    assert data["type"] == "refetchEvaluation" and data["etag"] == notice.id
    assert isinstance(data["lastModified"], int)

    # The web server checks versions every 30 s here: a plain poll still gets the old answer...
    stale = requests.post(bulk_url, json=body, headers={**headers, "If-None-Match": etag}, timeout=5)
    assert stale.status_code == 304
    # ...while the re-fetch the notification triggers names the version, and gets it at once.
    fresh = requests.post(bulk_url, params={"flagConfigEtag": data["etag"], "flagConfigLastModified":
                                            data["lastModified"]},
                          json=body, headers={**headers, "If-None-Match": etag}, timeout=5)
    assert fresh.status_code == 200
    assert {f["key"]: f.get("value") for f in fresh.json()["flags"]}["banner"] == "green"
    reader.close()

    # An SDK key in a header opens the same stream; an unknown channel gets OFREP's error body.
    keyed = SseReader(f"{stack.streaming.url}/ofrep/v1/event-stream", {"Authorization":
                                                                       f"Bearer {stack.environment.server_key}"})
    assert keyed.status == 200
    keyed.close()
    unknown = requests.get(f"{stack.streaming.url}/ofrep/v1/event-stream?channel=sbc_nope", timeout=5)
    assert unknown.status_code == 401 and unknown.json()["errorCode"] == "GENERAL"


def _wait_for_streams(stack: Stack, count: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if requests.get(f"{stack.streaming.url}/healthz", timeout=5).json()["open_streams"] == count:
            return
        time.sleep(0.05)
    pytest.fail(f"expected {count} open streams")

