"""Recorded evaluations where people read them: the stale-flag rule, the flag page and the
flags management API."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from audit.types import Actor
from base import tokens
from base.models import ApiToken, Environment
from flags import services
from flags import staleness as lifecycle
from flags.models import Flag
from serving.usage import recorder as usage

pytestmark = pytest.mark.django_db
A = Actor(label="tester", via="system")


def _aged(key: str, envs: list[Environment], days: float, **fields: Any) -> Flag:
    flag = services.flag_create(actor=A, key=key, **fields)
    services.flag_rule_create(actor=A, flag=flag, environment=envs[0], kind="rollout", variant="on", coverage=0.5)
    Flag.objects.filter(pk=flag.pk).update(created_at=timezone.now() - timedelta(days=days))
    return flag


@pytest.fixture
def envs(environments: dict[str, Environment]) -> list[Environment]:
    return [environments["production"], environments["staging"]]


def test_stale__by_recorded_evaluations(envs: list[Environment]) -> None:
    _aged("never-used", envs, 45)
    _aged("young", envs, 10)
    _aged("used-lately", envs, 90)
    _aged("used-long-ago", envs, 90)
    _aged("ops-switch", envs, 400, lifecycle="permanent")
    now = time.time()
    usage.evaluated(envs[1].pk, ["used-lately"], at=now - 3 * 86400)
    usage.evaluated(envs[0].pk, ["used-lately"], at=now - 50 * 86400)
    usage.evaluated(envs[0].pk, ["used-long-ago"], at=now - 40 * 86400)
    usage.flush()
    found = {f.key: f for f in lifecycle.flag_lifecycle_list()}
    assert found["never-used"].stale and found["never-used"].reasons == ("never evaluated, created 45 days ago",)
    assert not found["young"].stale and found["young"].last_evaluated is None
    assert not found["used-lately"].stale
    assert (timezone.now() - found["used-lately"].last_evaluated).days == 3  # type: ignore[operator]
    assert found["used-long-ago"].stale and found["used-long-ago"].reasons == ("not evaluated for 40 days",)
    assert not found["ops-switch"].stale
    assert [f.key for f in lifecycle.stale_flag_list()] == sorted(["never-used", "used-long-ago"])


def test_flag_page__last_evaluated_per_environment_and_payload_fetch(
    client: Client, envs: list[Environment]
) -> None:
    flag = _aged("shown", envs, 1)
    usage.evaluated(envs[0].pk, ["shown"], at=time.time() - 7200)
    usage.payload_fetched(envs[1].pk)
    usage.flush()
    staff = User.objects.create_user("pm", password="pw-pm-12345", is_staff=True)
    client.force_login(staff)
    html = client.get(f"/flags/{flag.key}/").content.decode()
    production = html.split('data-usage="production"')[1].split("</p>")[0]
    staging = html.split('data-usage="staging"')[1].split("</p>")[0]
    shown = timezone.localtime(timezone.now() - timedelta(hours=2)).strftime("%Y-%m-%d")
    assert shown in production and "payload-fetched\">never" in production
    assert 'last-evaluated">never' in staging and "payload-fetched\">never" not in staging
    assert 'id="last-evaluated">never' not in html


def test_flags_api__last_evaluated_per_environment(envs: list[Environment], admin_user: User) -> None:
    _aged("api-flag", envs, 1)
    moment = time.time() - 600
    usage.evaluated(envs[1].pk, ["api-flag"], at=moment)
    usage.flush()
    _, raw = tokens.api_token_create(actor=A, user=admin_user, name="read", scope=ApiToken.Scope.READ)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    detail = api.get("/api/v1/flags/api-flag").json()
    assert detail["environments"]["production"]["last_evaluated_at"] is None
    staged = detail["environments"]["staging"]["last_evaluated_at"]
    assert staged == detail["last_evaluated_at"]
    assert abs(datetime.fromisoformat(staged).timestamp() - moment) < 0.01
    listed = {f["key"]: f for f in api.get("/api/v1/flags").json()["results"]}
    assert listed["api-flag"]["last_evaluated_at"] == staged
