"""The pieces every app's admin is built from.

- Typed base classes: unfold's admin classes at run time, django-stubs' generic ones for
  the type checker (unfold ships no type information).
- `ServiceAdmin`: an admin whose writes are service calls. Services reject bad input with
  `{field: [messages]}` details; those are placed back on the forms (`place_errors`,
  `apply_placements`) and nothing is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from django import forms
from django.contrib import messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

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
    "ErrorTarget", "ModelAdmin", "Placement", "ServiceAdmin", "ServiceModelForm", "ServiceRejected",
    "ServiceStackedInline", "ServiceTabularInline", "StackedInline", "TabularInline", "admin_actor", "place_errors",
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
    a list argument (`variants[1].key`) to the inline form that item came from, where `fields`
    renames the item's fields.
    """

    prefix: str | None = None
    index: int | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
    items: Mapping[str, tuple[str, Sequence[int]]] = field(default_factory=dict)


ITEM_PATH = re.compile(r"^([A-Za-z_]+)\[(\d+)\]")


def _readable_path(path: str) -> str:
    return re.sub(r"\[(\d+)\]", lambda m: f" #{int(m.group(1)) + 1}", path).replace(".", " ")


def _place(key: str, message: str, target: ErrorTarget) -> Placement:
    match = ITEM_PATH.match(key)
    if match and match.group(1) in target.items:
        prefix, indexes = target.items[match.group(1)]
        position = int(match.group(2))
        index = indexes[position] if position < len(indexes) else None
        rest = key[match.end(2) + 1:].lstrip(".")
        if not rest:
            return Placement(prefix, index, None, message)
        # The rest of the path is about the item's own form, placed as for a call about that form.
        return _place(rest, message, ErrorTarget(prefix=prefix, index=index, fields=target.fields))
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
