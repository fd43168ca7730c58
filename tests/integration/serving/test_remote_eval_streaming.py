"""The JavaScript SDK in remote-eval mode with streaming, against an environment served to client
keys by remote evaluation only: the stream tells it of a change made through the management API
(on another process) and its new evaluation returns the new value within 2.5 s."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.integration.serving.streaming import Stack
from tests.integration.serving.test_remote_eval_sdks import JS, node_ready
from tests.integration.serving.test_streaming import _lines, _wait_for_streams


@pytest.fixture
def web_settings() -> dict[str, str]:
    return {"SNAPSHOT_CHECK_INTERVAL": "1"}


@pytest.fixture
def stack_settings() -> dict[str, str]:
    # The notice waits for the web processes' check interval (the same setting in production).
    return {"SNAPSHOT_CHECK_INTERVAL": "1"}


def test_javascript_sdk__remote_eval_with_streaming__sees_a_change_in_a_remote_only_environment(stack: Stack) -> None:
    node_ready()
    stack.manage("PATCH", f"/api/v1/environments/{stack.environment.key}", json={"client_payload": "remote"})
    time.sleep(1.5)  # the web process reads the setting
    node = subprocess.Popen(["node", str(JS / "growthbook_stream.mjs"), stack.web.url, stack.environment.client_key,
                             "banner", "remote"], cwd=JS, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = _lines(node)
        assert lines.get(timeout=30)["ready"] is True
        assert lines.get(timeout=10)["value"] == "blue"
        _wait_for_streams(stack, 1)
        stack.set_banner("green")
        changed = time.time()
        seen = lines.get(timeout=10)
        assert seen["value"] == "green"
        assert seen["at"] / 1000 - changed < 2.5
    finally:
        node.kill()
        node.wait()
