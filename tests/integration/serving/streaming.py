"""Real processes for the streaming tests: the streaming process (``python -m serving.streams``)
and gunicorn pointing SDKs to it, both on the test database, and a small reader of
server-sent events over a plain HTTP connection."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from audit.types import Actor
from base import tokens
from base.models import ApiToken, Environment
from devtools.relay import free_port
from flags import services
from tests.conftest import database_url
from tests.integration.serving.relayed import PROJECT, Server, status_of, wait_until

ACTOR = Actor(label="tester", via="system")
SECRET = "streaming-test-secret"


class StreamingProcess:
    """``python -m serving.streams`` with production settings."""

    def __init__(self, snapshot_dir: Path, log: Path, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DJANGO_SECRET_KEY": SECRET,
            "DJANGO_DEBUG": "false",
            "DATABASE_URL": database_url(),
            "STREAM_BIND": f"127.0.0.1:{self.port}",
            "SNAPSHOT_DIR": str(snapshot_dir),
            # Long: a stream that learns of a change within a second learned it from PostgreSQL.
            "SNAPSHOT_CHECK_INTERVAL": "30",
            "STREAM_HEARTBEAT_INTERVAL": "1",
            "RATE_LIMIT_PER_SECOND": "0",
            **settings,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "serving.streams"], cwd=PROJECT, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT)

        def ready() -> bool:
            try:
                return bool(requests.get(f"{self.url}/readyz", timeout=2).json().get("listening"))
            except (requests.RequestException, ValueError):
                return False

        wait_until(ready, 60, f"the streaming process did not start; see {self.log}")

    def stop(self, timeout: float = 15) -> int | None:
        code = None
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        return code


@dataclass
class Event:
    id: str | None
    event: str
    data: str


class SseReader:
    """One stream, read event by event (``None`` when nothing came in time)."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, timeout: float = 5.0) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        self.connection.request("GET", target, headers={"Accept": "text/event-stream", **(headers or {})})
        self.response = self.connection.getresponse()
        self.status = self.response.status
        self.comments = 0
        self.retry: int | None = None
        self.ended = False

    def body(self) -> bytes:
        return self.response.read()

    def next_event(self, timeout: float = 5.0) -> Event | None:
        assert self.connection.sock is not None
        self.connection.sock.settimeout(timeout)
        fields: dict[str, str] = {}
        data: list[str] = []
        deadline = time.monotonic() + timeout
        try:
            while True:
                if time.monotonic() > deadline:  # heartbeats came, no event
                    return None
                raw = self.response.readline()
                if not raw:
                    self.ended = True
                    return None
                line = raw.decode().rstrip("\r\n")
                if line.startswith(":"):
                    self.comments += 1
                    continue
                if not line:
                    if data:
                        return Event(fields.get("id"), fields.get("event", "message"), "\n".join(data))
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "data":
                    data.append(value)
                elif name == "retry":
                    self.retry = int(value)
                else:
                    fields[name] = value
        except TimeoutError:
            return None

    def close(self) -> None:
        self.connection.close()


@dataclass
class Stack:
    streaming: StreamingProcess
    web: Server
    environment: Environment
    token: str

    def manage(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """The management API of the web server (another process than the streaming one)."""
        response = requests.request(method, f"{self.web.url}{path}", timeout=10,
                                    headers={"Authorization": f"Bearer {self.token}"}, **kwargs)
        assert response.status_code < 300, response.text
        return response

    def set_banner(self, variant: str) -> None:
        self.manage("PATCH", f"/api/v1/flags/banner/environments/{self.environment.key}",
                    json={"default_variant": variant})


@pytest.fixture
def stack_settings() -> dict[str, str]:
    """Settings of the streaming process, for a test to change before `stack` starts it."""
    return {}


@pytest.fixture
def web_settings() -> dict[str, str]:
    """Settings of the web server, for a test to change before `stack` starts it."""
    return {}


@pytest.fixture
def stack(transactional_db: Any, tmp_path: Path, admin_user: Any, stack_settings: dict[str, str],
          web_settings: dict[str, str]) -> Iterator[Stack]:
    env = services.environment_create(actor=ACTOR, key="production")
    flag = services.flag_create(actor=ACTOR, key="banner", value_type="string",
                                variants=[{"key": "blue", "value": "blue"}, {"key": "green", "value": "green"},
                                          {"key": "red", "value": "red"}])
    services.flag_state_update(actor=ACTOR, flag=flag, environment=env, enabled=True, default_variant="blue")
    env.refresh_from_db()
    _, token = tokens.api_token_create(actor=ACTOR, user=admin_user, name="streams", scope=ApiToken.Scope.WRITE)
    streaming = StreamingProcess(tmp_path / "streaming", tmp_path / "streaming.log", **stack_settings)
    web = Server(database_url(), tmp_path / "web", tmp_path / "gunicorn.log")
    web.env.update({"DJANGO_SECRET_KEY": SECRET, "STREAMING_URL": streaming.url, "SNAPSHOT_CHECK_INTERVAL": "30",
                    **web_settings})
    try:
        streaming.start()
        web.start()
        yield Stack(streaming, web, env, token)
    finally:
        web.stop()
        streaming.stop()


__all__ = ["Event", "SseReader", "Stack", "StreamingProcess", "stack", "stack_settings", "status_of", "web_settings"]
