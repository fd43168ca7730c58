"""Admin for webhooks (created and changed through `alerts.services`; the secret is shown once)
and their deliveries (read only: status, attempts, the receiver's last answer)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from alerts import services
from alerts.events import EVENTS
from alerts.models import Webhook, WebhookDelivery
from base.admin import AuditHistoryMixin
from base.admin_base import AdminRoles, ErrorTarget, Formsets, ModelAdmin, ServiceAdmin, ServiceModelForm, admin_actor
from base.permissions import Action


class WebhookForm(ServiceModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(choices=[(name, f"{name}: {words}") for name, words in EVENTS.items()],
                                       required=False, widget=forms.CheckboxSelectMultiple,
                                       help_text="None ticked: every event.")

    class Meta:
        model = Webhook
        fields = ("name", "url", "events", "environments", "format", "active")


@admin.register(Webhook)
class WebhookAdmin(AuditHistoryMixin, ServiceAdmin[Webhook]):
    roles = AdminRoles(view=Action.WEBHOOK_VIEW, add=Action.WEBHOOK_CREATE, change=Action.WEBHOOK_CHANGE)
    audit_object_type = "webhook"
    audit_key_field = "name"
    form = WebhookForm
    list_display = ("name", "url", "format", "active", "created_at")
    search_fields = ("name", "url")

    def apply(self, request: HttpRequest, form: Any, formsets: Formsets, change: bool) -> None:
        data = form.cleaned_data
        if change:
            self.call(ErrorTarget(), services.webhook_update, actor=admin_actor(request), webhook=form.instance,
                      name=data["name"], url=data["url"], events=list(data["events"]), format=data["format"],
                      active=data["active"], environments=list(data["environments"]))
            return
        webhook, secret = self.call(ErrorTarget(), services.webhook_create, actor=admin_actor(request),
                                    name=data["name"], url=data["url"], events=list(data["events"]),
                                    environments=list(data["environments"]), fmt=data["format"])
        form.instance.pk = webhook.pk
        self.message_user(request, f"Signing secret (shown once, copy it now): {secret}", messages.WARNING)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ModelAdmin[WebhookDelivery]):
    roles = AdminRoles(view=Action.WEBHOOK_VIEW)
    list_display = ("id", "webhook", "event", "status", "attempts", "last_status_code", "last_error",
                    "next_attempt_at", "delivered_at")
    list_filter = ("status", "event", "webhook")
    list_select_related = ("webhook",)
    readonly_fields = ("webhook", "entry", "event", "status", "attempts", "next_attempt_at", "last_status_code",
                       "last_error", "created_at", "delivered_at")
