"""The review queue in the admin: change requests, each with what it changes (in words where the
admin of the object has them) and its review, approve and reject buttons for those who may."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from audit.models import AuditEntry
from base import change_requests
from base.admin_base import AdminRoles, ModelAdmin, admin_actor
from base.audit_history_admin import render_entry_diff
from base.models import ChangeRequest, Environment
from base.permissions import Action, allowed
from config.errors import ApplicationError, error_text

__all__ = ["ChangeRequestAdmin", "change_request_link", "render_changes"]


def render_changes(site: Any, request: ChangeRequest) -> list[tuple[str, SafeString]]:
    """Each object the change request changes, with its diff as the audit history shows one."""
    shown = []
    for change in request.changes or []:
        entry = AuditEntry(object_type=change.get("object_type", ""), object_key=change.get("object_key", ""),
                           before=change.get("before"), after=change.get("after"), diff=change.get("diff") or {},
                           environment=request.environment.key)
        shown.append((f"{entry.object_type} {entry.object_key}", render_entry_diff(site, entry)))
    return shown


def change_request_link(request: ChangeRequest) -> str:
    return reverse("admin:base_changerequest_change", args=[request.pk])


@admin.register(ChangeRequest)
class ChangeRequestAdmin(ModelAdmin[ChangeRequest]):
    """Read-only rows; reviewing happens on each change request's page (`change_view`)."""

    roles = AdminRoles(view=Action.ENVIRONMENT_VIEW)
    list_display = ("number", "summary", "environment", "status", "author_label", "created_at", "apply_at")
    list_filter = ("status", "environment")
    search_fields = ("summary", "object_key", "author_label", "comment")
    list_per_page = 50

    def get_queryset(self, request: HttpRequest) -> QuerySet[ChangeRequest]:
        return super().get_queryset(request).select_related("environment")

    def environment_of(self, obj: ChangeRequest | None) -> Environment | None:
        return obj.environment if obj is not None else None

    @admin.display(description="#", ordering="id")
    def number(self, obj: ChangeRequest) -> SafeString:
        return format_html('<span class="change-request-number">#{}</span>', obj.pk)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_view_permission(request, obj):
            raise Http404("No such change request.")
        if request.method == "POST":
            return self._review(request, obj)
        user: Any = request.user
        may_review = obj.status == ChangeRequest.Status.OPEN and obj.author_id != user.pk and allowed(
            user, Action.CHANGE_APPROVE, environment=obj.environment)
        may_cancel = obj.status in (ChangeRequest.Status.OPEN, ChangeRequest.Status.APPROVED) and (
            obj.author_id == user.pk or allowed(user, Action.CHANGE_APPROVE, environment=obj.environment))
        opts = obj._meta
        context = {
            **self.admin_site.each_context(request),
            "title": f"Change request #{obj.pk}", "subtitle": obj.summary, "object": obj, "opts": opts,
            "module_name": str(opts.verbose_name_plural).capitalize(),
            "changes": render_changes(self.admin_site, obj), "may_review": may_review, "may_cancel": may_cancel,
            "own": obj.author_id == user.pk, "has_view_permission": True,
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/change_request_review.html", context)

    def _review(self, request: HttpRequest, obj: ChangeRequest) -> HttpResponse:
        decision = request.POST.get("decision", "")
        comment = request.POST.get("review_comment", "")
        actor = admin_actor(request)
        try:
            if decision == "approve":
                done = change_requests.change_request_approve(actor=actor, change_request=obj, comment=comment)
                text = "applied" if done.status == ChangeRequest.Status.APPLIED else \
                    f"approved; it applies at {done.apply_at:%Y-%m-%d %H:%M %Z}"
                self.message_user(request, f"Change request #{obj.pk} {text}.", messages.SUCCESS)
            elif decision == "reject":
                change_requests.change_request_reject(actor=actor, change_request=obj, comment=comment)
                self.message_user(request, f"Change request #{obj.pk} rejected.", messages.SUCCESS)
            elif decision == "cancel":
                change_requests.change_request_cancel(actor=actor, change_request=obj)
                self.message_user(request, f"Change request #{obj.pk} cancelled.", messages.SUCCESS)
            else:
                self.message_user(request, "Choose approve, reject or cancel.", messages.ERROR)
        except ApplicationError as exc:
            self.message_user(request, error_text(exc), messages.ERROR)
        return HttpResponseRedirect(change_request_link(obj))
