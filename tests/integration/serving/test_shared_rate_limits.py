"""Rate limits counted in Redis: two gunicorn servers (separate processes, as two replicas would
be) share one limit per SDK key across every SDK endpoint; with Redis unreachable or silent the
limits fail open, requests do not wait, and `/readyz` says so while staying ready."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.db import connection
from limits.storage import RedisStorage

from audit.types import Actor
from base.models import Environment
from devtools.relay import Relay
from flags import services
from tests.conftest import require_service
from tests.integration.serving.relayed import Server, wait_until

pytestmark = [pytest.mark.slow]

ACTOR = Actor(label="tester", via="system")
ENDPOINTS = ("ofrep", "ofrep-bulk", "evaluate", "payload", "events")
CONTEXT = {"context": {"targetingKey": "unit-1"}}


def _call(server: Server, endpoint: str, key: str) -> requests.Response:
    headers = {"X-API-Key": key}
    url = server.url
    if endpoint == "ofrep":
        return requests.post(f"{url}/ofrep/v1/evaluate/flags/kill-switch", json=CONTEXT, headers=headers, timeout=10)
    if endpoint == "ofrep-bulk":
        return requests.post(f"{url}/ofrep/v1/evaluate/flags", json=CONTEXT, headers=headers, timeout=10)
    if endpoint == "evaluate":
        return requests.post(f"{url}/api/v1/evaluate", json=CONTEXT, headers=headers, timeout=10)
    if endpoint == "payload":
        return requests.get(f"{url}/api/features/{key}", timeout=10)
    return requests.post(f"{url}/api/v1/events", json={"events": []}, headers=headers, timeout=10)


def _assert_limited(response: requests.Response, endpoint: str) -> None:
    assert response.status_code == 429, (endpoint, response.status_code, response.text)
    assert response.headers["Retry-After"].isdigit() and int(response.headers["Retry-After"]) >= 1, endpoint
    body = response.json()
    if endpoint.startswith("ofrep"):
        assert body["errorCode"] and "Too many requests" in body["errorDetails"], body
    else:
        assert set(body) == {"code", "message", "details"} and body["code"] == "rate_limited", body


def _database_url() -> str:
    db = connection.settings_dict
    user = db["USER"] or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = str(db["HOST"] or "127.0.0.1")
    if host.startswith("/"):
        return f"postgres://{user}{password}@/{db['NAME']}?host={host}&port={db['PORT'] or 5432}"
    return f"postgres://{user}{password}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def environment(transactional_db: Any) -> Environment:
    env = services.environment_create(actor=ACTOR, key="production")
    switch = services.flag_create(actor=ACTOR, key="kill-switch")
    services.flag_state_update(actor=ACTOR, flag=switch, environment=env, enabled=True, default_variant="on")
    env.refresh_from_db()
    return env


@pytest.fixture
def prefix() -> Iterator[str]:
    """Counters of this test only, deleted afterwards."""
    require_service("127.0.0.1", 6379, "Redis")
    own = f"{settings.RATE_LIMIT_KEY_PREFIX}-shared-{secrets.token_hex(4)}"
    yield own
    RedisStorage(str(settings.REDIS_URL), key_prefix=own).reset()


def _server(tmp_path: Path, name: str, prefix: str, **env: str) -> Server:
    server = Server(_database_url(), tmp_path / name, tmp_path / f"{name}.log")
    server.env.update({"RATE_LIMIT_KEY_PREFIX": prefix, "REDIS_URL": str(settings.REDIS_URL), **env})
    return server


def test_rate_limit__two_servers__share_one_limit_per_key_on_every_endpoint(
    environment: Environment, prefix: str, tmp_path: Path
) -> None:
    # 10 requests per 100-second window per key, whichever process answers.
    limits = {"RATE_LIMIT_PER_SECOND": "0.1", "RATE_LIMIT_BURST": "10"}
    servers = [_server(tmp_path, "a", prefix, **limits), _server(tmp_path, "b", prefix, **limits)]
    try:
        for server in servers:
            server.start()
        key = environment.client_key
        statuses = [_call(servers[i % 2], ENDPOINTS[i % len(ENDPOINTS)], key).status_code for i in range(12)]
        assert sorted(statuses[:10]) == [200] * 8 + [202] * 2, statuses
        assert statuses[10:] == [429, 429], statuses
        for server in servers:
            for endpoint in ENDPOINTS:
                _assert_limited(_call(server, endpoint, key), endpoint)
        # Each key has its own limit: the server key of the same environment is untouched.
        assert _call(servers[1], "evaluate", environment.server_key).status_code == 200
        ready = requests.get(f"{servers[0].url}/readyz", timeout=10).json()
        assert ready["checks"]["rate_limits"] == {"state": "shared", "strategy": "sliding-window-counter"}
    finally:
        for server in servers:
            server.stop()


def test_rate_limit__redis_unreachable_or_silent__fails_open_and_readyz_says_so(
    environment: Environment, prefix: str, tmp_path: Path
) -> None:
    relay = Relay(("127.0.0.1", 6379))
    relay.start()
    server = _server(tmp_path, "a", prefix, RATE_LIMIT_PER_SECOND="0.1", RATE_LIMIT_BURST="2",
                     RATE_LIMIT_STORAGE_URL=f"redis://127.0.0.1:{relay.port}/0", RATE_LIMIT_RETRY_INTERVAL="0.5")
    key = environment.client_key
    try:
        server.start()
        assert [_call(server, "evaluate", key).status_code for _ in range(3)] == [200, 200, 429]

        relay.refuse()
        assert [_call(server, "evaluate", key).status_code for _ in range(5)] == [200] * 5
        ready = requests.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        limits = ready.json()["checks"]["rate_limits"]
        assert limits["state"] == "unavailable" and limits["fail_open"] is True, limits

        relay.blackhole()  # connections open, nothing answers
        started = time.monotonic()
        for endpoint in ENDPOINTS:
            assert _call(server, endpoint, key).status_code in (200, 202), endpoint
        assert time.monotonic() - started < 2.0, "requests waited for the silent Redis"
        assert requests.get(f"{server.url}/readyz", timeout=10).json()["checks"]["rate_limits"]["state"] \
            == "unavailable"

        relay.start()
        wait_until(lambda: _call(server, "evaluate", key).status_code == 429, 20,
                   "the limit did not apply again once Redis answered")
        ready = requests.get(f"{server.url}/readyz", timeout=10).json()
        assert ready["checks"]["rate_limits"]["state"] == "shared"
        assert "unreachable" in (tmp_path / "a.log").read_text()
    finally:
        server.stop()
        relay.stop()
