from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from base.models import ApiToken, Environment
from flags.models import Flag, Segment
from tests.conftest import require_service


def test_healthz__always__ok(client: Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz__database_and_broker_up__ready(client: Client) -> None:
    require_service("127.0.0.1", 6379, "Redis")
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


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
    counts = (Environment.objects.count(), Flag.objects.count(), Segment.objects.count())
    out = StringIO()
    call_command("seed_demo", "--json", stdout=out)
    second = json.loads(out.getvalue())
    assert (Environment.objects.count(), Flag.objects.count(), Segment.objects.count()) == counts
    assert set(second["environments"]) == {"production", "staging"}
    assert second["environments"] == first["environments"]
    assert ApiToken.objects.filter(revoked_at__isnull=True).count() == 1
    assert client.login(username=second["admin"]["username"], password=second["admin"]["password"])
    response = client.get("/api/v1/flags", HTTP_AUTHORIZATION=f"Bearer {second['management_token']}")
    assert response.status_code == 200
    assert response.json()["count"] == counts[1]


def test_favicon__requested__redirects_to_the_static_icon(client: Client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("pages/favicon.svg")
