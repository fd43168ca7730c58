"""Admin for environments: each with its SDK keys and config version.

Creating an environment is a flags service (`flags.services.environment_create`): every flag
gets its state there. Keys are rotated, never edited; environments are never deleted.
Registered by `flags.admin`.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from base.admin import AuditHistoryMixin
from base.admin_base import AdminRoles, ErrorTarget, Formsets, ServiceAdmin, admin_actor, requires
from base.change_requests import environment_review_set
from base.models import Environment
from base.permissions import Action
from flags import services
from flags.forms import EnvironmentForm


@admin.register(Environment)
class EnvironmentAdmin(AuditHistoryMixin, ServiceAdmin[Environment]):
    roles = AdminRoles(view=Action.ENVIRONMENT_VIEW, add=Action.ENVIRONMENT_CREATE, change=Action.ENVIRONMENT_CHANGE)
    audit_object_type = "environment"
    form = EnvironmentForm
    list_display = ("key", "name", "client_key", "server_key_hint", "config_version", "updated_at")
    search_fields = ("key", "name")
    actions = ("rotate_keys",)

    def get_fields(self, request: HttpRequest, obj: Environment | None = None) -> Any:
        if obj is None:
            return ("key", "name")
        return ("key", "name", "requires_review", "review_exempts_kill_switch", "client_key", "server_key",
                "client_payload", "decryption_key", "attribute_salt",
                "config_version", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Environment | None = None) -> Any:
        if obj is None:
            return ()
        return ("key", "name", "client_key", "server_key", "decryption_key", "attribute_salt", "config_version",
                "updated_at")

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # Only the review settings and what client keys receive change here.
        context = {"show_save_and_add_another": False, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, context)

    def environment_of(self, obj: Environment | None) -> Environment | None:
        return obj

    @admin.display(description="Server key")
    def server_key_hint(self, obj: Environment) -> str:
        return obj.server_key[:14] + "…"

    def apply(self, request: HttpRequest, form: Any, formsets: Formsets, change: bool) -> None:
        if change:
            review = {name: form.cleaned_data[name] for name in ("requires_review", "review_exempts_kill_switch")
                      if name in form.changed_data}
            if review:
                self.call(ErrorTarget(), environment_review_set, actor=admin_actor(request),
                          environment=form.instance, **review)
            if "client_payload" in form.changed_data:
                self.call(ErrorTarget(), services.environment_update, actor=admin_actor(request),
                          environment=form.instance, client_payload=form.cleaned_data["client_payload"])
            return
        env = self.call(ErrorTarget(), services.environment_create, actor=admin_actor(request),
                        key=form.cleaned_data["key"], name=form.cleaned_data["name"])
        form.instance.pk = env.pk

    @admin.action(description="Rotate SDK keys of selected environments")
    @requires(Action.ENVIRONMENT_CHANGE)
    def rotate_keys(self, request: HttpRequest, queryset: QuerySet[Environment]) -> TemplateResponse | None:
        if request.POST.get("post") != "yes":
            return self.confirm(
                request, queryset, action="rotate_keys", question="Rotate the SDK keys of these environments?",
                explanation="New client and server keys are issued and the old ones stop working at once: every "
                            "SDK using them must be given the new keys.",
                confirm_label="Yes, rotate the keys",
            )
        self.run_each(request, queryset, services.environment_rotate_keys, "environment",
                      "Rotated the keys of {count} environment(s).")
        return None
