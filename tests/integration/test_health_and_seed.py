from __future__ import annotations

import json
import stat
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from base.models import ApiToken, Environment
from flags.models import AttributeDefinition, Flag, Segment
from tests.conftest import require_service


def test_healthz__always__ok(client: Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz__database_and_broker_up__ready(client: Client) -> None:
    require_service("127.0.0.1", 6379, "Redis")
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    checks = response.json()["checks"]
    assert {k: checks[k] for k in ("database", "broker")} == {"database": "ok", "broker": "ok"}
    assert checks["rate_limits"]["state"] == "shared"


@pytest.mark.django_db
def test_readyz__broker_unreachable__503(client: Client, settings: Any) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "degraded"


@pytest.mark.django_db
def test_seed_demo__run_twice__idempotent_and_json(client: Client) -> None:
    out = StringIO()
    call_command("seed_demo", "--json", stdout=out)
    first = json.loads(out.getvalue())
    counts = (Environment.objects.count(), Flag.objects.count(), Segment.objects.count(),
              AttributeDefinition.objects.count())
    assert AttributeDefinition.objects.get(name="country").allowed_values[:3] == ["AT", "BE", "BR"]
    out = StringIO()
    call_command("seed_demo", "--json", stdout=out)
    second = json.loads(out.getvalue())
    assert (Environment.objects.count(), Flag.objects.count(), Segment.objects.count(),
            AttributeDefinition.objects.count()) == counts
    assert set(second["environments"]) == {"production", "staging"}
    assert second["environments"] == first["environments"]
    assert ApiToken.objects.filter(revoked_at__isnull=True).count() == 1
    assert client.login(username=second["admin"]["username"], password=second["admin"]["password"])
    response = client.get("/api/v1/flags", HTTP_AUTHORIZATION=f"Bearer {second['management_token']}")
    assert response.status_code == 200
    assert response.json()["count"] == counts[1]


def _seed(*args: str) -> dict[str, Any]:
    out = StringIO()
    call_command("seed_demo", "--json", *args, stdout=out)
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def _token_status(client: Client, token: str) -> int:
    return client.get("/api/v1/flags", HTTP_AUTHORIZATION=f"Bearer {token}").status_code


@pytest.mark.django_db
def test_seed_demo__second_start__same_login_and_token_kept_in_a_private_file(
    client: Client, settings: Any, tmp_path: Path
) -> None:
    settings.DEMO_DIR = tmp_path / "demo"
    first = _seed()
    second = _seed()
    assert second["admin"] == first["admin"]
    assert second["management_token"] == first["management_token"]
    assert client.login(username="admin", password=first["admin"]["password"])
    client.logout()
    assert _token_status(client, first["management_token"]) == 200
    stored = settings.DEMO_DIR / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert json.loads(stored.read_text()) == {"admin": first["admin"], "management_token": first["management_token"]}


@pytest.mark.django_db
def test_seed_demo__rotate_credentials__new_login_and_the_old_token_refused(
    client: Client, settings: Any, tmp_path: Path
) -> None:
    settings.DEMO_DIR = tmp_path
    first = _seed()
    rotated = _seed("--rotate-credentials")
    assert rotated["admin"]["password"] != first["admin"]["password"]
    assert rotated["management_token"] != first["management_token"]
    assert _token_status(client, first["management_token"]) == 401
    assert _token_status(client, rotated["management_token"]) == 200
    assert not client.login(username="admin", password=first["admin"]["password"])
    assert _seed() == rotated


@pytest.mark.django_db
def test_seed_demo__stored_login_no_longer_valid__replaced(client: Client, settings: Any, tmp_path: Path) -> None:
    settings.DEMO_DIR = tmp_path
    first = _seed()
    admin = User.objects.get(username="admin")
    admin.set_password("changed-in-the-admin-1")
    admin.save()
    ApiToken.objects.update(revoked_at="2020-01-01T00:00:00Z")
    second = _seed()
    assert second["admin"]["password"] != first["admin"]["password"]
    assert client.login(username="admin", password=second["admin"]["password"])
    assert _token_status(client, second["management_token"]) == 200


@pytest.mark.django_db
def test_seed_demo__credentials_file_deleted__new_login_and_the_old_token_refused(
    client: Client, settings: Any, tmp_path: Path
) -> None:
    settings.DEMO_DIR = tmp_path
    first = _seed()
    (tmp_path / "credentials.json").unlink()
    second = _seed()
    assert second["admin"]["password"] != first["admin"]["password"]
    assert _token_status(client, first["management_token"]) == 401
    assert _token_status(client, second["management_token"]) == 200


def test_favicon__requested__redirects_to_the_static_icon(client: Client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("pages/favicon.svg")
