"""Admin for holdout readouts (which holdout is read out where, on which metrics; writes go
through `experiments.holdout_analyses`, readouts are queued by `experiments.holdout_readout`)
and for the project's north star (`experiments.growth`).

Registered by `experiments.admin`."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from base.admin_base import AdminRoles, ErrorTarget, ServiceAdmin, ServiceModelForm, admin_actor, requires
from base.permissions import Action
from experiments import holdout_analyses
from experiments.growth import MAX_INPUT_METRICS, north_star_set
from experiments.holdout_readout import holdout_refresh
from experiments.models import HoldoutAnalysis, Metric, NorthStar


class HoldoutAnalysisForm(ServiceModelForm):
    primary_metric = forms.ModelChoiceField(
        queryset=Metric.objects.filter(archived_at__isnull=True), required=True,
        help_text="The metric the holdout is judged on (the north star, usually).")
    secondary_metrics = forms.ModelMultipleChoiceField(
        queryset=Metric.objects.filter(archived_at__isnull=True), required=False)

    class Meta:
        model = HoldoutAnalysis
        fields = ("holdout", "environment", "alpha", "difference_type", "sequential", "cuped", "cuped_lookback_days",
                  "started_at")
        help_texts = {"started_at": "Exposures of the holdout count from here on (within the last 90 days)."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            links = list(self.instance.links.order_by("position"))
            if links:
                self.initial["primary_metric"] = links[0].metric_id
                self.initial["secondary_metrics"] = [link.metric_id for link in links[1:]]
        started = self.fields.get("started_at")
        if started is not None:
            started.required = False
        difference = self.fields.get("difference_type")
        if difference is not None:
            self.fields["difference_type"] = forms.ChoiceField(
                choices=[("relative", "Relative lift"), ("absolute", "Absolute difference")],
                initial=difference.initial or "relative")


def _metrics(data: dict[str, Any]) -> list[dict[str, str]]:
    primary = data["primary_metric"]
    out = [{"metric": primary.key, "role": "primary"}]
    out += [{"metric": m.key, "role": "secondary"} for m in data.get("secondary_metrics") or [] if m != primary]
    return out


@admin.register(HoldoutAnalysis)
class HoldoutAnalysisAdmin(ServiceAdmin[HoldoutAnalysis]):
    roles = AdminRoles(view=Action.HOLDOUT_VIEW, add=Action.HOLDOUT_CHANGE, change=Action.HOLDOUT_CHANGE)
    form = HoldoutAnalysisForm
    list_display = ("holdout", "environment", "started_at", "results")
    actions = ("refresh_readouts",)

    def get_readonly_fields(self, request: HttpRequest, obj: HoldoutAnalysis | None = None) -> Any:
        return () if obj is None else ("holdout", "environment", "started_at")

    @admin.display(description="Results")
    def results(self, obj: HoldoutAnalysis) -> str:
        url = reverse("holdout-pages:detail", args=[obj.holdout.key, obj.environment.key])
        return format_html('<a href="{}">Result page</a>', url)

    @admin.action(description="Refresh the selected holdout readouts now")
    @requires(Action.HOLDOUT_CHANGE)
    def refresh_readouts(self, request: HttpRequest, queryset: QuerySet[HoldoutAnalysis]) -> None:
        with transaction.atomic():
            for analysis in queryset:
                holdout_refresh(analysis=analysis, trigger="admin", requested_by=admin_actor(request).label)
        self.message_user(request, "Readout(s) queued; results appear within a minute.", messages.SUCCESS)

    def apply(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        data = form.cleaned_data
        settings = {name: data[name] for name in holdout_analyses.ANALYSIS_FIELDS if name in data}
        target = ErrorTarget(fields={"metrics": "primary_metric"})
        if not change:
            analysis = self.call(target, holdout_analyses.holdout_analysis_create, actor=admin_actor(request),
                                 holdout=data["holdout"], environment=data["environment"], metrics=_metrics(data),
                                 started_at=data.get("started_at"), **settings)
            form.instance.pk = analysis.pk
            return
        self.call(target, holdout_analyses.holdout_analysis_update, actor=admin_actor(request),
                  analysis=HoldoutAnalysis.objects.get(pk=form.instance.pk), metrics=_metrics(data), **settings)


class NorthStarForm(ServiceModelForm):
    class Meta:
        model = NorthStar
        fields = ("metric", "input_metrics")
        help_texts = {"metric": "A conversion, mean or count metric: its level per active user is followed day by day.",
                      "input_metrics": f"Up to {MAX_INPUT_METRICS} metrics that drive the north star."}


@admin.register(NorthStar)
class NorthStarAdmin(ServiceAdmin[NorthStar]):
    """One row, written through `experiments.growth.north_star_set`."""

    roles = AdminRoles(view=Action.PROJECT_SETTINGS_VIEW, add=Action.PROJECT_SETTINGS_CHANGE,
                       change=Action.PROJECT_SETTINGS_CHANGE)
    form = NorthStarForm
    list_display = ("__str__", "metric", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not NorthStar.objects.exists() and super().has_add_permission(request)

    def apply(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        data = form.cleaned_data
        row = self.call(ErrorTarget(), north_star_set, actor=admin_actor(request), metric=data["metric"].key,
                        input_metrics=[m.key for m in data.get("input_metrics") or []])
        form.instance.pk = row.pk
