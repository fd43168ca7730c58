"""Admin for layers and holdouts: saves go through `traffic.services`, deletes through
`experiments.traffic` (which checks the experiments and rules that use them).

Registered by `experiments.admin`: deleting needs to know about experiments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from base.admin import AuditHistoryMixin
from base.admin_base import AdminRoles, ErrorTarget, ServiceAdmin, ServiceModelForm, admin_actor, requires
from base.forms import NameOptionalMixin, as_percent, percent_field
from base.permissions import Action
from config.errors import ApplicationError, error_text
from experiments import traffic as traffic_deletes
from experiments.holdouts import holdout_end
from traffic import services
from traffic.models import Holdout, Layer


class LayerForm(NameOptionalMixin, ServiceModelForm):
    class Meta:
        model = Layer
        fields = ("key", "name", "description")
        help_texts = {"key": "Experiments in the same layer never share a user. It cannot be changed later."}


class HoldoutForm(NameOptionalMixin, ServiceModelForm):
    share_percent = percent_field(
        maximum=50, label="Held-out share (%)", required=True,
        help_text="Share of units kept out of every experiment in scope, to measure their combined impact. "
                  "Changing it later moves units in or out of the holdout.",
    )

    class Meta:
        model = Holdout
        fields = ("key", "name", "description", "hash_attribute", "seed")
        help_texts = {"seed": "Leave empty to use the key.", "hash_attribute": "Attribute units are hashed by."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["share_percent"] = as_percent(self.instance.share)
        seed = self.fields.get("seed")
        if isinstance(seed, forms.CharField):
            seed.required = False


def _text_fields(form: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: form.cleaned_data[name] for name in names if name in form.changed_data}


class ServiceDeleteMixin:
    """Deletes one object at a time through the service, which refuses while experiments
    that are not archived use the object (and lets archived ones go); the refusal is shown
    on the object's page."""

    delete_service: Callable[..., None]
    service_argument = ""

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)  # type: ignore[misc]
        actions.pop("delete_selected", None)
        return actions

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        # The service decides what may go; archived experiments are let go, not deleted.
        return [str(o) for o in objs], {}, set(), []

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        type(self).delete_service(actor=admin_actor(request), **{self.service_argument: obj})

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
                    ) -> HttpResponse:
        try:
            response: HttpResponse = super().delete_view(request, object_id, extra_context)  # type: ignore[misc]
        except ApplicationError as exc:
            self.message_user(request, error_text(exc, names=True), messages.ERROR)  # type: ignore[attr-defined]
            opts = self.opts  # type: ignore[attr-defined]
            return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id]))
        return response


@admin.register(Layer)
class LayerAdmin(ServiceDeleteMixin, AuditHistoryMixin, ServiceAdmin[Layer]):
    roles = AdminRoles(view=Action.LAYER_VIEW, add=Action.LAYER_CREATE, change=Action.LAYER_CHANGE,
                       delete=Action.LAYER_DELETE)
    audit_object_type = "layer"
    form = LayerForm
    list_display = ("key", "name", "description", "created_at")
    search_fields = ("key", "name", "description")

    delete_service = staticmethod(traffic_deletes.layer_delete)
    service_argument = "layer"

    def get_readonly_fields(self, request: HttpRequest, obj: Layer | None = None) -> Any:
        return () if obj is None else ("key", "created_at")

    def apply(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        data = form.cleaned_data
        if not change:
            layer = self.call(ErrorTarget(), services.layer_create, actor=admin_actor(request), key=data["key"],
                              name=data["name"], description=data["description"])
            form.instance.pk = layer.pk
            return
        changes = _text_fields(form, services.LAYER_FIELDS)
        if changes:
            self.call(ErrorTarget(), services.layer_update, actor=admin_actor(request),
                      layer=Layer.objects.get(pk=form.instance.pk), **changes)


@admin.register(Holdout)
class HoldoutAdmin(ServiceDeleteMixin, AuditHistoryMixin, ServiceAdmin[Holdout]):
    roles = AdminRoles(view=Action.HOLDOUT_VIEW, add=Action.HOLDOUT_CREATE, change=Action.HOLDOUT_CHANGE,
                       delete=Action.HOLDOUT_DELETE)
    audit_object_type = "holdout"
    form = HoldoutForm
    list_display = ("key", "name", "share_shown", "hash_attribute", "created_at", "ended_at")
    search_fields = ("key", "name", "description")
    fields = ("key", "name", "description", "share_percent", "hash_attribute", "seed", "ended_at")
    actions = ("end_holdouts",)

    delete_service = staticmethod(traffic_deletes.holdout_delete)
    service_argument = "holdout"

    def get_readonly_fields(self, request: HttpRequest, obj: Holdout | None = None) -> Any:
        return ("ended_at",) if obj is None else ("key", "ended_at")

    @admin.action(description="End the selected holdouts (their units get the shipped experiences)")
    @requires(Action.HOLDOUT_CHANGE)
    def end_holdouts(self, request: HttpRequest, queryset: QuerySet[Holdout]) -> None:
        self.run_each(request, queryset, holdout_end, "holdout",
                      "{count} holdout(s) ended: their units now get the shipped experiences.")

    @admin.display(description="Held-out share", ordering="share")
    def share_shown(self, obj: Holdout) -> str:
        return f"{as_percent(obj.share)} %"

    @admin.display(description="Held-out share (%)")
    def share_percent(self, obj: Holdout) -> str:
        return self.share_shown(obj)

    def apply(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        data = form.cleaned_data
        share = float(data["share_percent"]) / 100
        if not change:
            holdout = self.call(
                ErrorTarget(fields={"share": "share_percent"}), services.holdout_create, actor=admin_actor(request),
                key=data["key"], share=share, name=data["name"], description=data["description"],
                hash_attribute=data["hash_attribute"], seed=data["seed"],
            )
            form.instance.pk = holdout.pk
            return
        changes = _text_fields(form, ("name", "description", "hash_attribute", "seed"))
        if "share_percent" in form.changed_data:
            changes["share"] = share
        if changes:
            self.call(ErrorTarget(fields={"share": "share_percent"}), services.holdout_update,
                      actor=admin_actor(request), holdout=Holdout.objects.get(pk=form.instance.pk), **changes)
