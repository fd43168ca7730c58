"""Fixtures shared by the integration tests: a real PostgreSQL (pytest-django) and factories."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from audit.types import Actor
from base import tokens
from base.models import ApiToken, Environment
from flags import services
from serving.ratelimit import limiter
from serving.snapshots import store

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_service(host: str, port: int, name: str) -> None:
    """Skip when a local service is missing, but fail under CI where it must be there."""
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError as exc:
        message = f"{name} is not reachable on {host}:{port} ({exc})"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def database_url() -> str:
    """The URL of the test database, for processes the tests start."""
    s = connection.settings_dict
    auth = s["USER"] or ""
    if s.get("PASSWORD"):
        auth += f":{s['PASSWORD']}"
    host = s["HOST"] or "127.0.0.1"
    if host.startswith("/"):
        # A Unix socket directory (the embedded server): percent-encoded, without a port.
        return f"postgres://{auth}@{quote(host, safe='')}/{s['NAME']}"
    port = s["PORT"] or "5432"
    return f"postgres://{auth}@{host}:{port}/{s['NAME']}"


@pytest.fixture(scope="session", autouse=True)
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """What the tests' demo seeding keeps (its login and token) stays out of the checkout's `.demo/`."""
    path = tmp_path_factory.mktemp("demo")
    with override_settings(DEMO_DIR=path):
        yield path


@pytest.fixture(scope="session")
def snapshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("snapshots")


@pytest.fixture(autouse=True)
def sdk_edge_cache(settings: Any, snapshot_dir: Path) -> Iterator[None]:
    """The SDK endpoints know keys from each process's snapshot cache, which reads them again
    at most once per `SNAPSHOT_CHECK_INTERVAL`; tests create environments and call the
    endpoints right away, so every test starts from an empty cache that checks on each request."""
    settings.SNAPSHOT_DIR = snapshot_dir
    settings.SNAPSHOT_CHECK_INTERVAL = 0.0
    store.reset()
    limiter.reset()
    yield
    store.reset()
    limiter.reset()


@pytest.fixture
def actor() -> Actor:
    return Actor(label="tester", via="system")


@pytest.fixture
def environments(db: Any, actor: Actor) -> dict[str, Environment]:
    return {key: services.environment_create(actor=actor, key=key) for key in ("production", "staging")}


@pytest.fixture
def admin_user(db: Any) -> User:
    return User.objects.create_superuser("boss", "boss@example.com", "pw-boss-123")


def _token_client(user: User, scope: str) -> APIClient:
    _, raw = tokens.api_token_create(actor=Actor.system(), user=user, name=f"{scope} token", scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def write_client(admin_user: User) -> APIClient:
    return _token_client(admin_user, ApiToken.Scope.WRITE)


@pytest.fixture
def read_client(admin_user: User) -> APIClient:
    return _token_client(admin_user, ApiToken.Scope.READ)
