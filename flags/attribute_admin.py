"""Admin for attribute definitions: the context attributes conditions are written against,
with their types and allowed values. Every write is a `flags.attributes` service call.
Registered by `flags.admin`."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from base.admin import AuditHistoryMixin
from base.admin_base import AdminRoles, ErrorTarget, Formsets, ServiceAdmin, admin_actor
from base.permissions import Action
from flags import attributes
from flags.forms import AttributeDefinitionForm
from flags.models import AttributeDefinition

# Allowed values shown in the list before "…".
SHOWN_VALUES = 8


@admin.register(AttributeDefinition)
class AttributeDefinitionAdmin(AuditHistoryMixin, ServiceAdmin[AttributeDefinition]):
    roles = AdminRoles(view=Action.ATTRIBUTE_VIEW, add=Action.ATTRIBUTE_CREATE, change=Action.ATTRIBUTE_CHANGE,
                       delete=Action.ATTRIBUTE_DELETE)
    audit_object_type = "attribute"
    audit_key_field = "name"
    form = AttributeDefinitionForm
    list_display = ("name", "type", "values", "description", "updated_at")
    list_filter = ("type",)
    search_fields = ("name", "description")
    fields = ("name", "type", "allowed_values", "description")

    def get_readonly_fields(self, request: HttpRequest, obj: AttributeDefinition | None = None) -> Any:
        return () if obj is None else ("name",)

    @admin.display(description="Allowed values")
    def values(self, obj: AttributeDefinition) -> str:
        items = [str(v) for v in obj.allowed_values or []]
        if not items:
            return "any"
        shown = ", ".join(items[:SHOWN_VALUES])
        return shown if len(items) <= SHOWN_VALUES else f"{shown}, … ({len(items)} in all)"

    def apply(self, request: HttpRequest, form: Any, formsets: Formsets, change: bool) -> None:
        data = form.cleaned_data
        if not change:
            attribute = self.call(ErrorTarget(), attributes.attribute_create, actor=admin_actor(request),
                                  name=data["name"], **{f: data[f] for f in attributes.ATTRIBUTE_FIELDS})
            form.instance.pk = attribute.pk
            return
        changes = {f: data[f] for f in attributes.ATTRIBUTE_FIELDS if f in form.changed_data}
        if changes:
            self.call(ErrorTarget(), attributes.attribute_update, actor=admin_actor(request),
                      attribute=AttributeDefinition.objects.get(pk=form.instance.pk), **changes)

    def delete_model(self, request: HttpRequest, obj: AttributeDefinition) -> None:
        attributes.attribute_delete(actor=admin_actor(request), attribute=obj)
