"""The audit history of an object in the admin: its entries with their diffs, as JSON and, where
the admin of the object's kind knows what a change means, in words (`DiffWords`). Every audited
model's admin takes `AuditHistoryMixin`; the audit log's own page and the review queue show one
entry's diff with `render_entry_diff`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from audit.models import AuditEntry
from config.json_text import json_text

__all__ = [
    "AUDITED_MODELS",
    "AuditHistoryMixin",
    "DiffRow",
    "DiffWords",
    "diff_rows",
    "object_link",
    "render_diff",
    "render_entry_diff",
    "show_value",
]


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


def show_value(value: Any) -> str:
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
        rows.append(DiffRow(label, show_value(change.get("before")), show_value(change.get("after")), meaning.before,
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


def object_link(entry: AuditEntry) -> str | None:
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
