"""The pieces every app's admin is built from.

- Typed base classes: unfold's admin classes at run time, django-stubs' generic ones for
  the type checker (unfold ships no type information).
- Roles: every permission question of an admin is asked of `base.permissions`. A model admin
  declares the actions its pages need (`roles`); an inline's rows are part of the parent
  object, so they follow the parent's roles. Custom actions and detail buttons declare the
  action they perform with `@requires(...)`: they are offered only to users allowed it and
  refused (403) to anyone else; an action that declares nothing is offered to nobody.
- `ServiceAdmin`: an admin whose writes are service calls. Services reject bad input with
  `{field: [messages]}` details; those are placed back on the forms (`place_errors`,
  `apply_placements`) and nothing is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import wraps
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from django import forms
from django.contrib import messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from audit.types import Actor
from base.models import Environment
from base.permissions import Action, allowed, require
from base.reviews import ChangeRequested
from config.errors import ApplicationError, error_path_label, error_text

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin as _ModelAdmin
    from django.contrib.admin import StackedInline as _StackedInline
    from django.contrib.admin import TabularInline as _TabularInline
else:
    from unfold import admin as unfold_admin

    class _Generic:
        """Lets `ModelAdmin[Flag]` work at run time as it does for the type checker."""

        def __class_getitem__(cls, item: object) -> type:
            return cls

    class _ModelAdmin(_Generic, unfold_admin.ModelAdmin):
        pass

    class _TabularInline(_Generic, unfold_admin.TabularInline):
        pass

    class _StackedInline(_Generic, unfold_admin.StackedInline):
        pass


__all__ = [
    "AdminRoles", "ErrorTarget", "ModelAdmin", "Placement", "ServiceAdmin", "ServiceModelForm", "ServiceRejected",
    "ServiceStackedInline", "ServiceTabularInline", "admin_actor", "place_errors", "requires",
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
    text = message if key == base else f"{error_path_label(key)}: {message}"
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
            form.add_error(None, f"{error_path_label(name)}: {placement.message}")
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


# Roles ------------------------------------------------------------------------------------

M = TypeVar("M", bound=Model)
C = TypeVar("C", bound=Model)
P = TypeVar("P", bound=Model)
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])
Formsets = Mapping[str, Any]

REQUIRED_ACTION_ATTR = "required_action"


@dataclass(frozen=True, slots=True)
class AdminRoles:
    """The action each of an admin's permissions stands for; None: the admin offers no such write."""

    view: Action
    add: Action | None = None
    change: Action | None = None
    delete: Action | None = None


def requires(action: Action) -> Callable[[F], F]:
    """Declare the action an admin action or detail button performs (put it under `@admin.action`
    or unfold's `@action`): offered only to users allowed it, refused with 403 to anyone else."""

    def decorate(func: F) -> F:
        @wraps(func)
        def guarded(model_admin: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            require(request.user, action)
            # A bulk action also needs the right in the environment of each object it touches.
            if args and isinstance(args[0], QuerySet):
                for environment in {model_admin.environment_of(obj) for obj in args[0]} - {None}:
                    require(request.user, action, environment=environment)
            return func(model_admin, request, *args, **kwargs)

        setattr(guarded, REQUIRED_ACTION_ATTR, action)
        return cast(F, guarded)

    return decorate


def may_offer(request: HttpRequest, function: Any) -> bool:
    """Whether an admin action may be offered to the user: its declared action is allowed, or it
    is one of Django's own (`delete_selected`), whose model permissions ask the admin's roles."""
    needed = getattr(function, REQUIRED_ACTION_ATTR, None)
    if needed is not None:
        return allowed(request.user, needed)
    return bool(getattr(function, "allowed_permissions", ()))


class ModelAdmin(_ModelAdmin[M]):
    """A model admin whose permissions are the actions of `roles`, asked of `base.permissions`.

    Without `roles` nobody may use the admin: a new admin says what it needs before anyone sees it.
    """

    roles: ClassVar[AdminRoles | None] = None

    def environment_of(self, obj: M | None) -> Environment | None:
        """The environment an object lives in, for admins of objects that live in one."""
        return None

    def _may(self, request: HttpRequest, kind: str, obj: M | None = None) -> bool:
        action = getattr(self.roles, kind) if self.roles is not None else None
        return action is not None and allowed(request.user, action, environment=self.environment_of(obj))

    def has_view_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        return self._may(request, "view", obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._may(request, "add")

    def has_change_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        return self._may(request, "change", obj)

    def has_delete_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        return self._may(request, "delete", obj)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return any(self.get_model_perms(request).values())

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        return {name: entry for name, entry in actions.items() if entry is not None and may_offer(request, entry[0])}

    # unfold's buttons: at the top of the list and of an object's page, per row, in the submit line.

    def get_actions_list(self, request: HttpRequest) -> Any:
        return [a for a in super().get_actions_list(request) if may_offer(request, a.method)]  # type: ignore[misc]

    def get_actions_detail(self, request: HttpRequest, object_id: Any) -> Any:
        actions = super().get_actions_detail(request, object_id)  # type: ignore[misc]
        return [a for a in actions if may_offer(request, a.method)]

    def get_actions_row(self, request: HttpRequest) -> Any:
        return [a for a in super().get_actions_row(request) if may_offer(request, a.method)]  # type: ignore[misc]

    def get_actions_submit_line(self, request: HttpRequest, object_id: Any) -> Any:
        actions = super().get_actions_submit_line(request, object_id)  # type: ignore[misc]
        return [a for a in actions if may_offer(request, a.method)]


def _inline_may(inline: Any, request: HttpRequest, parent: Any, *, write: bool) -> bool:
    """An inline's rows are part of their parent: seeing them is seeing the parent, writing them is
    changing it (or adding it, on the page that adds the parent)."""
    parent_admin: Any = inline.admin_site.get_model_admin(inline.parent_model)
    if not write:
        return bool(parent_admin.has_view_permission(request, parent))
    if parent is None:
        return bool(parent_admin.has_add_permission(request))
    return bool(parent_admin.has_change_permission(request, parent))


class TabularInline(_TabularInline[C, P]):
    def has_view_permission(self, request: HttpRequest, obj: P | None = None) -> bool:
        return _inline_may(self, request, obj, write=False)

    def has_add_permission(self, request: HttpRequest, obj: P | None = None) -> bool:
        return _inline_may(self, request, obj, write=True)

    def has_change_permission(self, request: HttpRequest, obj: P | None = None) -> bool:
        return _inline_may(self, request, obj, write=True)

    def has_delete_permission(self, request: HttpRequest, obj: P | None = None) -> bool:
        return _inline_may(self, request, obj, write=True)


class StackedInline(_StackedInline[C, P]):
    def has_view_permission(self, request: HttpRequest, obj: P | None = None) -> bool:
        return _inline_may(self, request, obj, write=False)

    def has_add_permission(self, request: HttpRequest, obj: P | None = None) -> bool:
        return _inline_may(self, request, obj, write=True)

    def has_change_permission(self, request: HttpRequest, obj: P | None = None) -> bool:
        return _inline_may(self, request, obj, write=True)

    def has_delete_permission(self, request: HttpRequest, obj: P | None = None) -> bool:
        return _inline_may(self, request, obj, write=True)


# Admin classes that write through services ------------------------------------------------

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
        except ChangeRequested as exc:
            # The admin's transaction rolled back; the change request is stored again outside it.
            change_request = exc.change_request
            self.message_user(request, exc.message, messages.INFO)
            return HttpResponseRedirect(reverse("admin:base_changerequest_change", args=[change_request.pk]))
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
        except ChangeRequested:
            raise
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
            except ChangeRequested as exc:
                self.message_user(request, f"{obj}: {exc.message}", messages.INFO)
            except ApplicationError as exc:
                self.message_user(request, f"{obj}: {error_text(exc)}", messages.ERROR)
            else:
                count += 1
        if count:
            self.message_user(request, done.format(count=count), messages.SUCCESS)
