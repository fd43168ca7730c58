"""Webhooks: signed deliveries of audited changes, retried with backoff, filtered by event and
environment, never blocking a change."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from alerts import services
from alerts.models import Webhook, WebhookDelivery
from audit.types import Actor
from base.models import Environment
from config.errors import ValidationFailed
from flags import services as flag_services
from tests.integration.alerts.receiver import Receiver, receiver  # noqa: F401 - fixture
from tests.integration.experiments.conftest import celery_worker, celery_workers  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db
ACTOR = Actor(label="ana", via="system")


@pytest.fixture
def production() -> Environment:
    return flag_services.environment_create(actor=ACTOR, key="production")


def _switch_off(env: Environment, key: str = "checkout") -> None:
    flag = flag_services.flag_create(actor=ACTOR, key=key)
    flag_services.flag_state_update(actor=ACTOR, flag=flag, environment=env, enabled=True)
    flag_services.flag_switch(actor=ACTOR, flag=flag, environment=env, enabled=False)


def test_flag_change__signed_delivery_verifiable_with_the_secret(
    production: Environment, receiver: Receiver,  # noqa: F811
) -> None:
    services.webhooks_dispatch()  # nothing before the webhook exists is delivered to it
    _, secret = services.webhook_create(actor=ACTOR, name="ops", url=receiver.url, events=["flag.changed"])
    _switch_off(production)
    made = services.webhooks_dispatch()
    assert made >= 1
    assert services.deliveries_send() == made
    headers, body = receiver.received[-1]
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-splitbase-signature"], expected)
    payload = json.loads(body)
    assert payload["event"] == "flag.changed"
    assert payload["environment"] == "production"
    assert payload["object"] == {"type": "flag", "key": "checkout"}
    assert payload["actor"] == "ana"
    assert int(headers["x-splitbase-timestamp"]) == payload["timestamp"]
    assert all(d.status == WebhookDelivery.Status.DELIVERED for d in WebhookDelivery.objects.all())
    assert services.webhooks_dispatch() == 0  # the cursor moved on: nothing is delivered twice


def test_failing_endpoint__retried_with_backoff_then_given_up__others_delivered(
    production: Environment, receiver: Receiver, settings: Any,  # noqa: F811
) -> None:
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    broken, _ = services.webhook_create(actor=ACTOR, name="broken", url="http://127.0.0.1:9/nothing-listens")
    services.webhook_create(actor=ACTOR, name="fine", url=receiver.url, events=["flag.changed"])
    services.webhooks_dispatch()
    WebhookDelivery.objects.all().delete()
    _switch_off(production)
    services.webhooks_dispatch()
    now = timezone.now()
    services.deliveries_send(now=now)
    failing = WebhookDelivery.objects.filter(webhook=broken)
    assert failing.exists() and all(d.attempts == 1 and d.status == "pending" for d in failing)
    assert all(d.next_attempt_at >= now + timedelta(seconds=10) for d in failing)
    assert receiver.received  # the good endpoint was not held up
    for minutes in (1, 5, 30):
        services.deliveries_send(now=now + timedelta(minutes=minutes))
    assert all(d.status == "failed" and d.attempts == 3 and d.last_error for d in failing.all())


def test_environment_filter_and_slack_format(production: Environment, receiver: Receiver) -> None:  # noqa: F811
    staging = flag_services.environment_create(actor=ACTOR, key="staging")
    services.webhooks_dispatch()
    services.webhook_create(actor=ACTOR, name="staging only", url=receiver.url, environments=[staging],
                            fmt=Webhook.Format.SLACK, events=["flag.changed"])
    _switch_off(production, "prod-flag")
    services.webhooks_dispatch()
    services.deliveries_send()
    assert receiver.received == []
    _switch_off(staging, "staging-flag")
    services.webhooks_dispatch()
    services.deliveries_send()
    texts = [json.loads(body)["text"] for _, body in receiver.received]
    assert texts and all("staging-flag" in t and "in staging" in t for t in texts)


def test_webhook__bad_input__refused_and_nothing_stored() -> None:
    for kwargs in ({"url": "ftp://x"}, {"url": "http://ok.example", "events": ["flag.exploded"]},
                   {"url": "http://ok.example", "fmt": "xml"}):
        with pytest.raises(ValidationFailed):
            services.webhook_create(actor=ACTOR, name="x", **kwargs)
    assert not Webhook.objects.exists()


def test_admin__create_shows_the_secret_once__read_only_role_cannot(admin_user: User) -> None:
    client = Client()
    client.force_login(admin_user)
    response = client.post("/admin/alerts/webhook/add/", {
        "name": "alerts", "url": "https://hooks.example.com/x", "events": ["experiment.started"],
        "format": "json", "active": "on"}, follow=True)
    assert response.status_code == 200
    webhook = Webhook.objects.get(name="alerts")
    assert webhook.secret in response.content.decode()
    assert webhook.secret not in client.get(f"/admin/alerts/webhook/{webhook.pk}/change/").content.decode()
    viewer = User.objects.create_user("viewer", password="pw-viewer-123", is_staff=True)
    client.force_login(viewer)
    assert client.post("/admin/alerts/webhook/add/", {"name": "x", "url": "https://e.example"}).status_code == 403


@pytest.mark.worker
def test_real_worker__delivers_a_change(
    celery_worker: Any, receiver: Receiver, transactional_db: Any,  # noqa: F811
) -> None:
    import time

    from alerts.tasks import webhooks_deliver_task

    env = flag_services.environment_create(actor=ACTOR, key="production")
    services.webhooks_dispatch()
    services.webhook_create(actor=ACTOR, name="ops", url=receiver.url, events=["flag.changed"])
    _switch_off(env)
    webhooks_deliver_task.delay()
    deadline = time.monotonic() + 30
    while not receiver.received and time.monotonic() < deadline:
        time.sleep(0.2)
    assert receiver.received, "the worker delivered nothing"
    assert json.loads(receiver.received[0][1])["event"] == "flag.changed"
