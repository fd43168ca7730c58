"""Admin of the audit log and of management API tokens.

`AuditHistoryMixin`: the "History" page of an object lists its audit entries with diffs, so
product managers see who changed what, whichever interface made the change. Values are shown as
JSON; an admin that knows what a change means (a rule's condition, say) adds it in words
(`audit_diff_words`), on its own history page and on the audit log's page of the entry. Tokens are
created (the raw value shown once) and revoked through `base.tokens`. The base classes every
app's admin is built from are in `base.admin_base`; environments are administered with their
flag states, in `flags`; sign-in records in `base.signin_admin`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
from base.models import ApiToken, Environment, EnvironmentRole
from base.permissions import Action, allowed, is_staff_member, require
from config.json_text import json_text

__all__ = ["ApiTokenAdmin", "AuditEntryAdmin", "AuditHistoryMixin", "DiffWords", "diff_rows", "render_entry_diff"]


# Audit history ------------------------------------------------------------------------------

HISTORY_PAGE_SIZE = 25
# Values longer than this many lines start folded, so a page of history stays scannable.
FOLD_LINES = 12


@dataclass(frozen=True, slots=True)
class DiffWords:
    """What a changed value means, before and after, in words. `about` names the thing the words
    describe (one rule, say): several rows changing the same thing show its words once."""

    about: str
    before: str
    after: str


# The words of one diff row, from its path; None when the values speak for themselves.
WordsOfPath = Callable[[str], DiffWords | None]


@dataclass(frozen=True, slots=True)
class DiffRow:
    path: str
    before: str
    after: str
    before_words: str = ""
    after_words: str = ""


def _show(value: Any) -> str:
    if value is None:
        return "—"
    return json_text(value, indent=2 if isinstance(value, (dict, list)) else None, sort_keys=True)


def _value_cell(css: str, color: str, text: str, words: str) -> SafeString:
    pre = format_html('<pre class="{} whitespace-pre-wrap" style="color:{}">{}</pre>', css, color, text)
    lines = text.count("\n") + 1
    if lines > FOLD_LINES:
        pre = format_html('<details><summary style="cursor:pointer">{} lines</summary>{}</details>', lines, pre)
    if not words:
        return pre
    return format_html('{}<p class="diff-words text-sm mt-1">In words: {}</p>', pre, words)


def diff_rows(diff: Mapping[str, Any] | None, words: WordsOfPath | None = None) -> list[DiffRow]:
    """Flatten a stored diff ({path: {before, after}}) into rows a person can read, with the
    words of what changed on the first row about each thing."""
    rows = []
    worded: set[str] = set()
    for path, change in (diff or {}).items():
        change = change if isinstance(change, dict) else {}
        label = "(whole object)" if path == "$" else path.replace(".", " › ")
        meaning = words(path) if words is not None else None
        if meaning is None or meaning.about in worded:
            meaning = DiffWords("", "", "")
        worded.add(meaning.about)
        rows.append(DiffRow(label, _show(change.get("before")), _show(change.get("after")), meaning.before,
                            meaning.after))
    return rows


def render_diff(diff: Mapping[str, Any] | None, words: WordsOfPath | None = None) -> SafeString:
    rows = diff_rows(diff, words)
    if not rows:
        return format_html('<span class="text-base-500">{}</span>', "No field changed.")
    body = format_html_join(
        "",
        '<tr class="border-t border-base-200 dark:border-base-700">'
        '<td class="align-top font-medium pr-4 py-2">{}</td>'
        '<td class="align-top pr-4 py-2">{}</td><td class="align-top py-2">{}</td></tr>',
        ((r.path, _value_cell("diff-before", "#b91c1c", r.before, r.before_words),
          _value_cell("diff-after", "#15803d", r.after, r.after_words)) for r in rows),
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

    def audit_diff_words(self, entry: AuditEntry, path: str) -> DiffWords | None:
        """What the change at `path` of an entry means in words; None: the values say it all."""
        return None

    def render_audit_diff(self, entry: AuditEntry) -> SafeString:
        return render_diff(entry.diff, lambda path: self.audit_diff_words(entry, path))

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
            "entries": [(entry, self.render_audit_diff(entry)) for entry in page.object_list],
            "preserved_filters": model_admin.get_preserved_filters(request),
            **(extra_context or {}),
        }
        request.current_app = model_admin.admin_site.name
        return TemplateResponse(request, "admin/audit_history.html", context)


# The model of each kind of audited object that has an admin page: app label, model name.
AUDITED_MODELS = {
    "flag": ("flags", "flag"), "segment": ("flags", "segment"), "environment": ("base", "environment"),
    "layer": ("traffic", "layer"), "holdout": ("traffic", "holdout"),
}


def _object_link(entry: AuditEntry) -> str | None:
    """The admin page of the entry's object, when it still exists."""
    from django.apps import apps

    target = AUDITED_MODELS.get(entry.object_type)
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


def render_entry_diff(site: Any, entry: AuditEntry) -> SafeString:
    """An entry's diff, in words too when the admin of the entry's kind of object has them."""
    from django.apps import apps

    target = AUDITED_MODELS.get(entry.object_type)
    model = apps.get_model(*target) if target else None
    model_admin = site.get_model_admin(model) if model and site.is_registered(model) else None
    if isinstance(model_admin, AuditHistoryMixin):
        return model_admin.render_audit_diff(entry)
    return render_diff(entry.diff)


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
        return render_entry_diff(self.admin_site, obj)

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
