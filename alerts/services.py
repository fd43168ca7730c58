"""Webhooks: created and changed (validated, audited), and delivered.

Deliveries come from the audit log: `webhooks_dispatch` turns audit entries written since its
cursor into one delivery per matching webhook, in one transaction with the cursor (two workers
never make the same delivery twice). `deliveries_send` posts the deliveries that are due, each
signed, with a short timeout; a failure is retried with exponential backoff up to
`WEBHOOK_MAX_ATTEMPTS`, and never blocks a change or another webhook.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from alerts.events import EVENTS, SIGNATURE_HEADER, TIMESTAMP_HEADER, event_of, sign, slack_body
from alerts.models import DispatchCursor, Webhook, WebhookDelivery
from audit.models import AuditEntry
from audit.services import audit_record
from audit.types import Actor
from base.models import Environment
from config.errors import ValidationFailed

logger = logging.getLogger(__name__)

DISPATCH_BATCH = 500
SEND_BATCH = 100
BACKOFF_FIRST_SECONDS = 10
BACKOFF_MAX_SECONDS = 3600
CLAIM = timedelta(minutes=10)


def _check(*, name: str, url: str, events: Sequence[str], fmt: str) -> None:
    errors: dict[str, list[str]] = {}
    if not name.strip() or len(name) > 120:
        errors["name"] = ["Give a name of 1 to 120 characters."]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 500:
        errors["url"] = ["Give an http(s) URL of at most 500 characters."]
    unknown = sorted(set(events) - set(EVENTS))
    if unknown:
        errors["events"] = [f"Unknown events: {', '.join(unknown)}. Known: {', '.join(EVENTS)}."]
    if fmt not in Webhook.Format.values:
        errors["format"] = [f"Use one of {', '.join(Webhook.Format.values)}."]
    if errors:
        raise ValidationFailed("The webhook is not valid.", details=errors)


def _document(webhook: Webhook) -> dict[str, Any]:
    return {"name": webhook.name, "url": webhook.url, "events": list(webhook.events), "format": webhook.format,
            "active": webhook.active, "environments": sorted(e.key for e in webhook.environments.all())}


@transaction.atomic
def webhook_create(
    *, actor: Actor, name: str, url: str, events: Sequence[str] = (), environments: Sequence[Environment] = (),
    fmt: str = Webhook.Format.JSON, secret: str = "",
) -> tuple[Webhook, str]:
    """A new webhook and its signing secret (generated unless given; returned to show once)."""
    _check(name=name, url=url, events=events, fmt=fmt)
    secret = secret or secrets.token_urlsafe(32)
    webhook = Webhook.objects.create(name=name, url=url, events=list(events), format=fmt, secret=secret)
    webhook.environments.set(environments)
    audit_record(actor=actor, action="webhook.create", object_type="webhook", object_key=name,
                 after=_document(webhook))
    return webhook, secret


@transaction.atomic
def webhook_update(*, actor: Actor, webhook: Webhook, **changes: Any) -> Webhook:
    before = _document(webhook)
    environments = changes.pop("environments", None)
    for field, value in changes.items():
        setattr(webhook, field, value)
    _check(name=webhook.name, url=webhook.url, events=webhook.events, fmt=webhook.format)
    webhook.save()
    if environments is not None:
        webhook.environments.set(environments)
    audit_record(actor=actor, action="webhook.update", object_type="webhook", object_key=webhook.name,
                 before=before, after=_document(webhook))
    return webhook


def _listens(webhook: Webhook, event: str, environment: str) -> bool:
    if webhook.events and event not in webhook.events:
        return False
    keys = [e.key for e in webhook.environments.all()]
    return not keys or environment in keys


@transaction.atomic
def webhooks_dispatch(*, now: datetime | None = None) -> int:
    """Turn new audit entries into deliveries; returns how many were made."""
    now = now or timezone.now()
    cursor, _ = DispatchCursor.objects.get_or_create(pk=1)
    cursor = DispatchCursor.objects.select_for_update().get(pk=1)
    entries = list(AuditEntry.objects.filter(pk__gt=cursor.last_entry_id).order_by("pk")[:DISPATCH_BATCH])
    if not entries:
        return 0
    webhooks = list(Webhook.objects.filter(active=True).prefetch_related("environments"))
    made = [
        WebhookDelivery(webhook=webhook, entry=entry, event=event, next_attempt_at=now)
        for entry in entries
        if (event := event_of(entry.action, entry.object_type)) is not None
        for webhook in webhooks
        if _listens(webhook, event, entry.environment)
    ]
    WebhookDelivery.objects.bulk_create(made, ignore_conflicts=True)
    cursor.last_entry_id = entries[-1].pk
    cursor.save(update_fields=["last_entry_id"])
    return len(made)


def delivery_payload(delivery: WebhookDelivery) -> dict[str, Any]:
    entry = delivery.entry
    return {
        "id": delivery.pk,
        "event": delivery.event,
        "created_at": entry.created_at.isoformat(),
        "environment": entry.environment or None,
        "object": {"type": entry.object_type, "key": entry.object_key},
        "action": entry.action,
        "actor": entry.actor_label,
        "changes": entry.diff,
    }


def _body(delivery: WebhookDelivery, timestamp: int) -> bytes:
    payload = {**delivery_payload(delivery), "timestamp": timestamp}
    if delivery.webhook.format == Webhook.Format.SLACK:
        payload = slack_body(delivery.event, payload)
    return json.dumps(payload, sort_keys=True, default=str).encode()


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_FIRST_SECONDS * 2 ** (attempts - 1), BACKOFF_MAX_SECONDS))


def delivery_send(delivery: WebhookDelivery, *, now: datetime | None = None) -> bool:
    """Post one delivery; record the outcome. True when the receiver answered 2xx."""
    now = now or timezone.now()
    timestamp = int(time.time())
    body = _body(delivery, timestamp)
    headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: str(timestamp),
               SIGNATURE_HEADER: sign(delivery.webhook.secret, body), "User-Agent": "Splitbase-Webhooks"}
    delivery.attempts += 1
    try:
        response = requests.post(delivery.webhook.url, data=body, headers=headers,
                                 timeout=float(settings.WEBHOOK_TIMEOUT_SECONDS), allow_redirects=False)
        delivery.last_status_code = response.status_code
        delivery.last_error = "" if response.ok else f"HTTP {response.status_code}"
        ok = response.ok
    except requests.RequestException as exc:
        delivery.last_status_code = None
        delivery.last_error = f"{type(exc).__name__}: {exc}"[:500]
        ok = False
    if ok:
        delivery.status, delivery.delivered_at = WebhookDelivery.Status.DELIVERED, now
    elif delivery.attempts >= int(settings.WEBHOOK_MAX_ATTEMPTS):
        delivery.status = WebhookDelivery.Status.FAILED
        logger.warning("Webhook %s gave up on delivery %s after %d attempts: %s", delivery.webhook.name,
                       delivery.pk, delivery.attempts, delivery.last_error)
    else:
        delivery.next_attempt_at = now + _backoff(delivery.attempts)
    delivery.save(update_fields=["attempts", "status", "delivered_at", "next_attempt_at", "last_status_code",
                                 "last_error"])
    return ok


def deliveries_send(*, now: datetime | None = None) -> int:
    """Send the deliveries that are due; returns how many succeeded."""
    now = now or timezone.now()
    with transaction.atomic():
        # Claimed for a while (rows another worker holds are skipped), so no delivery goes twice.
        due = list(WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
                   .filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
                   .select_related("webhook", "entry").order_by("next_attempt_at", "pk")[:SEND_BATCH])
        WebhookDelivery.objects.filter(pk__in=[d.pk for d in due]).update(next_attempt_at=now + CLAIM)
    return sum(delivery_send(delivery, now=now) for delivery in due)
