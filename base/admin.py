"""Admin of the audit log and of management API tokens.

`AuditHistoryMixin`: the "History" page of an object lists its audit entries with diffs, so
product managers see who changed what, whichever interface made the change. Tokens are
created (the raw value shown once) and revoked through `base.tokens`. The base classes every
app's admin is built from are in `base.admin_base`; environments are administered with their
flag states, in `flags`; sign-in records in `base.signin_admin`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from audit.models import AuditEntry
from base import signin_admin as _signin_admin  # noqa: F401 - registers the sign-in records' admin
from base import tokens
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
from base.models import ApiToken
from base.permissions import Action

__all__ = ["ApiTokenAdmin", "AuditEntryAdmin", "AuditHistoryMixin", "diff_rows"]


# Audit history ------------------------------------------------------------------------------

HISTORY_PAGE_SIZE = 25
# Values longer than this many lines start folded, so a page of history stays scannable.
FOLD_LINES = 12


@dataclass(frozen=True, slots=True)
class DiffRow:
    path: str
    before: str
    after: str


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, (dict, list)):
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    return json.dumps(value, ensure_ascii=False, default=str)


def _value_cell(css: str, color: str, text: str) -> SafeString:
    pre = format_html('<pre class="{} whitespace-pre-wrap" style="color:{}">{}</pre>', css, color, text)
    lines = text.count("\n") + 1
    if lines <= FOLD_LINES:
        return pre
    return format_html('<details><summary style="cursor:pointer">{} lines</summary>{}</details>', lines, pre)


def diff_rows(diff: Mapping[str, Any] | None) -> list[DiffRow]:
    """Flatten a stored diff ({path: {before, after}}) into rows a person can read."""
    rows = []
    for path, change in (diff or {}).items():
        change = change if isinstance(change, dict) else {}
        label = "(whole object)" if path == "$" else path.replace(".", " › ")
        rows.append(DiffRow(label, _show(change.get("before")), _show(change.get("after"))))
    return rows


def render_diff(diff: Mapping[str, Any] | None) -> SafeString:
    rows = diff_rows(diff)
    if not rows:
        return format_html('<span class="text-base-500">{}</span>', "No field changed.")
    body = format_html_join(
        "",
        '<tr class="border-t border-base-200 dark:border-base-700">'
        '<td class="align-top font-medium pr-4 py-2">{}</td>'
        '<td class="align-top pr-4 py-2">{}</td><td class="align-top py-2">{}</td></tr>',
        ((r.path, _value_cell("diff-before", "#b91c1c", r.before), _value_cell("diff-after", "#15803d", r.after))
         for r in rows),
    )
    return format_html(
        '<table class="audit-diff w-full text-sm"><thead><tr class="text-left">'
        '<th class="pr-4 py-1">Field</th><th class="pr-4 py-1">Before</th><th class="py-1">After</th>'
        "</tr></thead><tbody>{}</tbody></table>",
        body,
    )


class AuditHistoryMixin:
    """Replace the admin's own history page with the object's audit entries and their diffs."""

    audit_object_type = ""
    audit_key_field = "key"

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        model_admin: Any = self
        obj: Model | None = model_admin.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("No such object.")
        if not model_admin.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        entries = AuditEntry.objects.filter(
            object_type=self.audit_object_type, object_key=getattr(obj, self.audit_key_field)
        )
        page = Paginator(entries, HISTORY_PAGE_SIZE).get_page(request.GET.get("p"))
        opts = obj._meta
        context = {
            **model_admin.admin_site.each_context(request),
            "title": f"History of {obj}",
            "subtitle": None,
            "object": obj,
            "opts": opts,
            "module_name": str(opts.verbose_name_plural).capitalize(),
            "page": page,
            "entries": [(entry, render_diff(entry.diff)) for entry in page.object_list],
            "preserved_filters": model_admin.get_preserved_filters(request),
            **(extra_context or {}),
        }
        request.current_app = model_admin.admin_site.name
        return TemplateResponse(request, "admin/audit_history.html", context)


def _object_link(entry: AuditEntry) -> str | None:
    """The admin page of the entry's object, when it still exists."""
    from django.apps import apps

    targets = {
        "flag": ("flags", "flag"), "segment": ("flags", "segment"), "environment": ("base", "environment"),
        "layer": ("traffic", "layer"), "holdout": ("traffic", "holdout"),
    }
    target = targets.get(entry.object_type)
    if target is None:
        return None
    model = apps.get_model(*target)
    pk = model._default_manager.filter(key=entry.object_key).values_list("pk", flat=True).first()
    if pk is None:
        return None
    try:
        return reverse(f"admin:{target[0]}_{target[1]}_change", args=[pk])
    except NoReverseMatch:
        return None


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
        url = _object_link(obj)
        label = f"{obj.object_type} {obj.object_key}"
        return format_html('<a href="{}" class="text-primary-600">{}</a>', url, label) if url else label

    @admin.display(description="Changes")
    def changes(self, obj: AuditEntry) -> SafeString:
        return render_diff(obj.diff)

    @admin.display(description="Before")
    def before_json(self, obj: AuditEntry) -> SafeString:
        return format_html('<pre class="whitespace-pre-wrap text-sm">{}</pre>', _show(obj.before))

    @admin.display(description="After")
    def after_json(self, obj: AuditEntry) -> SafeString:
        return format_html('<pre class="whitespace-pre-wrap text-sm">{}</pre>', _show(obj.after))


# Management API tokens ------------------------------------------------------------------------


class ApiTokenForm(ServiceModelForm):
    class Meta:
        model = ApiToken
        fields = ("name", "user", "scope")
        help_texts = {
            "scope": "Read tokens can only read configuration; write tokens can change it.",
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
            return ("name", "user", "scope") if user.is_superuser else ("name", "scope")
        return ("name", "user", "scope", "prefix", "created_at", "last_used_at", "status")

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> Any:
        return () if obj is None else ("name", "user", "scope", "prefix", "created_at", "last_used_at", "status")

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
                               user=data.get("user") or request.user, name=data["name"], scope=data["scope"])
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
