"""Admin for the audit log, plus the pieces every app's admin is built from.

- Typed base classes: unfold's admin classes at run time, django-stubs' generic ones for
  the type checker (unfold ships no type information).
- `ServiceAdmin`: an admin whose writes are service calls. Services reject bad input with
  `{field: [messages]}` details; those are placed back on the forms (`place_errors`,
  `apply_placements`) and nothing is written.
- `AuditHistoryMixin`: the "History" page of an object lists its audit entries with diffs,
  so product managers see who changed what, whichever interface made the change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from audit.models import AuditEntry
from audit.types import Actor
from config.errors import ApplicationError

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin, StackedInline, TabularInline
else:
    from unfold import admin as unfold_admin

    class _Generic:
        """Lets `ModelAdmin[Flag]` work at run time as it does for the type checker."""

        def __class_getitem__(cls, item: object) -> type:
            return cls

    class ModelAdmin(_Generic, unfold_admin.ModelAdmin):
        pass

    class TabularInline(_Generic, unfold_admin.TabularInline):
        pass

    class StackedInline(_Generic, unfold_admin.StackedInline):
        pass


__all__ = [
    "AuditEntryAdmin", "AuditHistoryMixin", "ErrorTarget", "ModelAdmin", "Placement", "ServiceAdmin",
    "ServiceModelForm", "ServiceRejected", "ServiceStackedInline", "ServiceTabularInline", "StackedInline",
    "TabularInline", "admin_actor", "diff_rows", "place_errors",
]

# Placing service errors on forms ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placement:
    """One error message and where it belongs: the main form (prefix None) or an inline form."""

    prefix: str | None
    index: int | None
    field: str | None
    message: str


@dataclass(frozen=True, slots=True)
class ErrorTarget:
    """Where a service call's errors go.

    `fields` renames service fields to form fields; `items` sends errors about the n-th item of
    a list argument (`variants[1].key`) to the inline form that item came from.
    """

    prefix: str | None = None
    index: int | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
    items: Mapping[str, tuple[str, Sequence[int]]] = field(default_factory=dict)


ITEM_PATH = re.compile(r"^([A-Za-z_]+)\[(\d+)\](?:\.([A-Za-z_]+))?")


def _readable_path(path: str) -> str:
    return re.sub(r"\[(\d+)\]", lambda m: f" #{int(m.group(1)) + 1}", path).replace(".", " ")


def _place(key: str, message: str, target: ErrorTarget) -> Placement:
    match = ITEM_PATH.match(key)
    if match and match.group(1) in target.items:
        prefix, indexes = target.items[match.group(1)]
        position = int(match.group(2))
        index = indexes[position] if position < len(indexes) else None
        return Placement(prefix, index, match.group(3), message)
    if key in target.items:
        return Placement(target.items[key][0], None, None, message)
    base = re.split(r"[.\[]", key, maxsplit=1)[0]
    text = message if key == base else f"{_readable_path(key)}: {message}"
    return Placement(target.prefix, target.index, target.fields.get(base, base), text)


def place_errors(exc: ApplicationError, target: ErrorTarget) -> list[Placement]:
    """Spread a service error over the forms: its summary on the main form, details by field."""
    placements = [Placement(None, None, None, exc.message)]
    details = exc.details if isinstance(exc.details, Mapping) else {}
    for key, texts in details.items():
        items = texts if isinstance(texts, (list, tuple)) else [texts]
        if key in ("required_by", "used_by"):
            placements.append(Placement(target.prefix, target.index, None, f"Used by: {', '.join(map(str, items))}."))
            continue
        placements.extend(_place(str(key), str(m), target) for m in items)
    return placements


def apply_placements(form: forms.BaseForm, placements: Sequence[Placement]) -> None:
    for placement in placements:
        name = placement.field
        if name is not None and name in form.fields:
            form.add_error(name, placement.message)
        elif name is not None and name != "__all__":
            form.add_error(None, f"{name.replace('_', ' ').capitalize()}: {placement.message}")
        else:
            form.add_error(None, placement.message)


if TYPE_CHECKING:
    _ModelForm = forms.ModelForm[Any]
else:
    _ModelForm = forms.ModelForm


class ServiceModelForm(_ModelForm):
    """A model form that shows errors a service raised for the previous submission of it."""

    injected_errors: ClassVar[Sequence[Placement]] = ()

    def clean(self) -> dict[str, Any]:
        super().clean()
        apply_placements(self, self.injected_errors)
        return self.cleaned_data


def formset_with_errors(formset_class: type[Any], placements: Sequence[Placement]) -> type[Any]:
    """Subclass an inline formset so that it shows the service errors meant for its forms."""

    def clean(self: Any) -> None:
        formset_class.clean(self)
        general: list[str] = []
        for placement in placements:
            if placement.prefix != self.prefix:
                continue
            if placement.index is None or placement.index >= len(self.forms):
                general.append(placement.message)
            else:
                apply_placements(self.forms[placement.index], [placement])
        if general:
            raise ValidationError(general)

    return type(formset_class.__name__, (formset_class,), {"clean": clean})


# Admin classes that write through services ------------------------------------------------

M = TypeVar("M", bound=Model)
C = TypeVar("C", bound=Model)
P = TypeVar("P", bound=Model)
R = TypeVar("R")
Formsets = Mapping[str, Any]

REJECTION_ATTR = "_service_rejection"


def admin_actor(request: HttpRequest) -> Actor:
    user: Any = request.user
    return Actor(label=user.get_username(), user_id=user.pk, via="admin")


class ServiceRejected(Exception):
    def __init__(self, placements: Sequence[Placement]) -> None:
        super().__init__(placements[0].message if placements else "Rejected.")
        self.placements = list(placements)


def _rejection(request: HttpRequest) -> list[Placement]:
    placements: list[Placement] = getattr(request, REJECTION_ATTR, [])
    return placements


def _formset_for(request: HttpRequest, formset: Any) -> Any:
    placements = _rejection(request)
    return formset_with_errors(formset, placements) if placements else formset


class ServiceTabularInline(TabularInline[C, P]):
    """A tabular inline whose formset shows the service errors of the previous attempt."""

    def get_formset(self, request: HttpRequest, obj: P | None = None, **kwargs: Any) -> Any:
        return _formset_for(request, super().get_formset(request, obj, **kwargs))


class ServiceStackedInline(StackedInline[C, P]):
    """A stacked inline whose formset shows the service errors of the previous attempt."""

    def get_formset(self, request: HttpRequest, obj: P | None = None, **kwargs: Any) -> Any:
        return _formset_for(request, super().get_formset(request, obj, **kwargs))


class ServiceAdmin(ModelAdmin[M]):
    """A model admin whose writes are service calls made from `apply`.

    A rejected call raises `ServiceRejected`; the admin's own transaction rolls back every
    write of the request, then the view runs again with the same POST data and the errors
    injected into the forms' validation, so the page re-renders with them and writes nothing.
    """

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceRejected as exc:
            setattr(request, REJECTION_ATTR, exc.placements)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request: HttpRequest, obj: M | None = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        placements = [p for p in _rejection(request) if p.prefix is None]
        if placements:
            return type(form.__name__, (form,), {"injected_errors": placements})
        return form

    def call(self, target: ErrorTarget, service: Callable[..., R], **kwargs: Any) -> R:
        try:
            return service(**kwargs)
        except ApplicationError as exc:
            raise ServiceRejected(place_errors(exc, target)) from exc

    def save_model(self, request: HttpRequest, obj: M, form: Any, change: Any) -> None:
        """Nothing is saved here: `apply` writes through the services."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: Any) -> None:
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        self.apply(request, form, {formset.prefix: formset for formset in formsets}, bool(change))

    def apply(self, request: HttpRequest, form: Any, formsets: Formsets, change: bool) -> None:
        raise PermissionDenied

    def delete_model(self, request: HttpRequest, obj: M) -> None:
        raise PermissionDenied

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            self.delete_model(request, obj)

    def confirm(
        self, request: HttpRequest, queryset: QuerySet[Any], *, action: str, question: str, explanation: str,
        confirm_label: str,
    ) -> TemplateResponse:
        """An intermediate page for an admin action that deserves a second thought."""
        opts = self.model._meta
        return TemplateResponse(request, "admin/confirm_action.html", {
            **self.admin_site.each_context(request),
            "title": question, "opts": opts, "queryset": queryset, "action": action, "question": question,
            "explanation": explanation, "confirm_label": confirm_label,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "cancel_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
        })

    def run_each(
        self, request: HttpRequest, queryset: QuerySet[Any], service: Callable[..., Any], param: str, done: str,
        **kwargs: Any,
    ) -> None:
        """Call a service per selected object; report what worked and what was refused, and why."""
        count = 0
        for obj in queryset:
            try:
                service(actor=admin_actor(request), **{param: obj}, **kwargs)
            except ApplicationError as exc:
                details = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in dict(exc.details or {}).items())
                self.message_user(request, f"{obj}: {exc.message} {details}".strip(), messages.ERROR)
            else:
                count += 1
        if count:
            self.message_user(request, done.format(count=count), messages.SUCCESS)


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
        "flag": ("flags", "flag"), "segment": ("flags", "segment"), "environment": ("flags", "environment"),
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

    list_display = ("created_at", "actor_label", "via", "action", "object_type", "object_key", "environment",
                    "changed_fields")
    list_filter = ("object_type", "action", "via", "environment", "created_at")
    search_fields = ("object_key", "actor_label", "action")
    date_hierarchy = "created_at"
    list_per_page = 50
    fields = ("created_at", "actor_label", "via", "action", "object_type", "object_link", "environment", "changes",
              "before_json", "after_json")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

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
