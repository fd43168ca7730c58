"""Webhooks and their deliveries. Every delivery comes from an audit entry (the audit log is the
outbox: a change and its entry are committed together, so no event is lost or invented)."""

from django.db import models

from audit.models import AuditEntry
from base.models import Environment


class Webhook(models.Model):
    class Format(models.TextChoices):
        JSON = "json", "JSON (signed)"
        SLACK = "slack", "Slack incoming webhook"

    name = models.CharField(max_length=120)
    url = models.URLField(max_length=500)
    # Used to sign every delivery (HMAC-SHA256); shown once, never in lists or the audit log.
    secret = models.CharField(max_length=128)
    events = models.JSONField(default=list, help_text="Event names; empty: every event.")
    environments = models.ManyToManyField(Environment, blank=True, related_name="+",
                                          help_text="Empty: every environment (and events of none).")
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.JSON)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (gave up)"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    entry = models.ForeignKey(AuditEntry, on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=60)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["webhook", "entry"], name="one_delivery_per_entry")]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} to {self.webhook_id} ({self.status})"


class DispatchCursor(models.Model):
    """The last audit entry turned into deliveries (one row)."""

    last_entry_id = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"after audit entry {self.last_entry_id}"
