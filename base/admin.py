"""Admin of the audit log, of management API tokens and of environment roles.

The history page every audited object has, with its diffs in JSON and in words, is
`base.audit_history_admin` (its names are handed on from here). Tokens are created (the raw value
shown once) and revoked through `base.tokens`. The base classes every app's admin is built from
are in `base.admin_base`; environments are administered with their flag states, in `flags`;
sign-in records in `base.signin_admin`; the review queue of change requests in
`base.change_request_admin`.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from audit.models import AuditEntry
from base import change_request_admin as _change_request_admin  # noqa: F401 - registers the review queue
from base import roles, tokens
from base import signin_admin as _signin_admin  # noqa: F401 - registers the sign-in records' admin
from base.admin_base import (
    AdminRoles,
    ErrorTarget,
    Formsets,
    ModelAdmin,
    ServiceAdmin,
    ServiceModelForm,
    admin_actor,
    requires,
)
from base.audit_history_admin import (
    AuditHistoryMixin,
    DiffWords,
    diff_rows,
    object_link,
    render_entry_diff,
    show_value,
)
from base.models import ApiToken, Environment, EnvironmentRole
from base.permissions import Action, allowed, is_staff_member, require

__all__ = ["ApiTokenAdmin", "AuditEntryAdmin", "AuditHistoryMixin", "DiffWords", "diff_rows", "render_entry_diff"]


@admin.register(AuditEntry)
class AuditEntryAdmin(ModelAdmin[AuditEntry]):
    """Read-only: audit entries are written by the services, never edited."""

    roles = AdminRoles(view=Action.AUDIT_VIEW)
    list_display = ("created_at", "actor_label", "via", "action", "object_type", "object_key", "environment",
                    "changed_fields")
    list_filter = ("object_type", "action", "via", "environment", "created_at")
    search_fields = ("object_key", "actor_label", "action")
    date_hierarchy = "created_at"
    list_per_page = 50
    fields = ("created_at", "actor_label", "via", "action", "object_type", "object_link", "environment", "changes",
              "before_json", "after_json")
    readonly_fields = fields

    @admin.display(description="Changed fields")
    def changed_fields(self, obj: AuditEntry) -> str:
        paths = [p for p in (obj.diff or {}) if p != "$"]
        if not paths:
            return "—"
        shown = ", ".join(paths[:3])
        return shown + (f" (+{len(paths) - 3} more)" if len(paths) > 3 else "")

    @admin.display(description="Object")
    def object_link(self, obj: AuditEntry) -> SafeString | str:
        url = object_link(obj)
        label = f"{obj.object_type} {obj.object_key}"
        return format_html('<a href="{}" class="text-primary-600">{}</a>', url, label) if url else label

    @admin.display(description="Changes")
    def changes(self, obj: AuditEntry) -> SafeString:
        return render_entry_diff(self.admin_site, obj)

    @admin.display(description="Before")
    def before_json(self, obj: AuditEntry) -> SafeString:
        return format_html('<pre class="whitespace-pre-wrap text-sm">{}</pre>', show_value(obj.before))

    @admin.display(description="After")
    def after_json(self, obj: AuditEntry) -> SafeString:
        return format_html('<pre class="whitespace-pre-wrap text-sm">{}</pre>', show_value(obj.after))


# Management API tokens ------------------------------------------------------------------------


class ApiTokenForm(ServiceModelForm):
    class Meta:
        model = ApiToken
        fields = ("name", "user", "scope", "environments")
        help_texts = {
            "scope": "Read tokens can only read configuration; write tokens can change it.",
            "environments": "Leave empty for every environment; otherwise the token acts only in these "
                            "(and changes nothing all environments share).",
            "user": "The token acts as this user.",
        }


@admin.register(ApiToken)
class ApiTokenAdmin(AuditHistoryMixin, ServiceAdmin[ApiToken]):
    # Revoked, never deleted: revoked tokens stay listed, so their use can still be traced.
    roles = AdminRoles(view=Action.TOKEN_VIEW, add=Action.TOKEN_CREATE, change=Action.TOKEN_CHANGE)
    audit_object_type = "token"
    audit_key_field = "prefix"
    form = ApiTokenForm
    list_display = ("name", "user", "scope", "prefix", "created_at", "last_used_at", "status")
    list_filter = ("scope",)
    search_fields = ("name", "prefix", "user__username")
    list_select_related = ("user",)
    actions = ("revoke_tokens",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiToken]:
        queryset = super().get_queryset(request)
        user: Any = request.user
        return queryset if user.is_superuser else queryset.filter(user=user)

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> Any:
        if obj is None:
            user: Any = request.user
            return ("name", "user", "scope", "environments") if user.is_superuser else ("name", "scope", "environments")
        return ("name", "user", "scope", "environments", "prefix", "created_at", "last_used_at", "status")

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> Any:
        return () if obj is None else ("name", "user", "scope", "environments", "prefix", "created_at", "last_used_at",
                                       "status")

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"user": request.user.pk, **super().get_changeform_initial_data(request)}

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        context = {"show_save": False, "show_save_and_continue": False, "show_save_and_add_another": False,
                   **(extra_context or {})}
        return super().change_view(request, object_id, form_url, context)

    @admin.display(description="Status")
    def status(self, obj: ApiToken) -> str:
        return f"Revoked {obj.revoked_at:%Y-%m-%d %H:%M}" if obj.revoked_at else "Active"

    def apply(self, request: HttpRequest, form: Any, formsets: Formsets, change: bool) -> None:
        if change:
            return
        data = form.cleaned_data
        token, raw = self.call(ErrorTarget(), tokens.api_token_create, actor=admin_actor(request),
                               user=data.get("user") or request.user, name=data["name"], scope=data["scope"],
                               environments=list(data.get("environments") or []))
        form.instance.pk = token.pk
        self.message_user(request, f"Copy this token now, it will not be shown again: {raw}", messages.WARNING)

    @admin.action(description="Revoke selected tokens")
    @requires(Action.TOKEN_CHANGE)
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> TemplateResponse | None:
        if request.POST.get("post") != "yes":
            return self.confirm(
                request, queryset, action="revoke_tokens", question="Revoke these tokens?",
                explanation="Requests with a revoked token are refused at once. This cannot be undone.",
                confirm_label="Yes, revoke",
            )
        self.run_each(request, queryset.filter(revoked_at__isnull=True), tokens.api_token_revoke, "token",
                      "Revoked {count} token(s).")
        return None


class EnvironmentRoleForm(ServiceModelForm):
    class Meta:
        model = EnvironmentRole
        fields = ("environment", "user", "role")
        help_texts = {
            "role": "Viewer sees; editor changes flags and experiments; publisher also approves reviewed "
                    "changes; admin also changes the environment. The role replaces the user's general "
                    "rights in this environment.",
        }


@admin.register(EnvironmentRole)
class EnvironmentRoleAdmin(AuditHistoryMixin, ServiceAdmin[EnvironmentRole]):
    roles = AdminRoles(view=Action.ENVIRONMENT_VIEW, add=Action.ENVIRONMENT_CHANGE,
                       change=Action.ENVIRONMENT_CHANGE, delete=Action.ENVIRONMENT_CHANGE)
    audit_object_type = "environment"
    audit_key_field = "environment_key"
    form = EnvironmentRoleForm
    list_display = ("environment", "user", "role", "granted_at")
    list_filter = ("environment", "role")
    search_fields = ("user__username", "environment__key")
    list_select_related = ("environment", "user")

    def environment_of(self, obj: EnvironmentRole | None) -> Environment | None:
        return obj.environment if obj is not None else None

    def administered(self, request: HttpRequest) -> QuerySet[Environment]:
        """The environments whose roles the user may grant: all with the general right, else
        those where they are admin."""
        if allowed(request.user, Action.ENVIRONMENT_CHANGE):
            return Environment.objects.all()
        if not is_staff_member(request.user):
            return Environment.objects.none()
        return Environment.objects.filter(roles__user_id=request.user.pk or 0, roles__role=EnvironmentRole.Role.ADMIN)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return super().has_module_permission(request) or self.administered(request).exists()

    def has_view_permission(self, request: HttpRequest, obj: EnvironmentRole | None = None) -> bool:
        return super().has_view_permission(request, obj) or self.has_change_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.administered(request).exists()

    def has_change_permission(self, request: HttpRequest, obj: EnvironmentRole | None = None) -> bool:
        if obj is None:
            return self.administered(request).exists()
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: EnvironmentRole | None = None) -> bool:
        if obj is None:
            return self.administered(request).exists()
        return super().has_delete_permission(request, obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet[EnvironmentRole]:
        queryset = super().get_queryset(request)
        if allowed(request.user, Action.ENVIRONMENT_VIEW):
            return queryset
        return queryset.filter(environment__in=self.administered(request))

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "environment":
            kwargs["queryset"] = self.administered(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: EnvironmentRole | None = None) -> Any:
        return () if obj is None else ("environment", "user")

    def apply(self, request: HttpRequest, form: Any, formsets: Formsets, change: bool) -> None:
        data = form.cleaned_data
        environment = data.get("environment") or form.instance.environment
        require(request.user, Action.ENVIRONMENT_CHANGE, environment=environment)
        grant = self.call(ErrorTarget(), roles.environment_role_grant, actor=admin_actor(request),
                          environment=environment, user=data.get("user") or form.instance.user, role=data["role"])
        form.instance.pk = grant.pk

    def delete_model(self, request: HttpRequest, obj: EnvironmentRole) -> None:
        require(request.user, Action.ENVIRONMENT_CHANGE, environment=obj.environment)
        roles.environment_role_revoke(actor=admin_actor(request), grant=obj)
