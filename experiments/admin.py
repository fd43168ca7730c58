"""Admin for product managers: the metric catalog and experiments.

The experiment page follows the PM flow: create a draft (flag, environment, variations and
their weights, metrics and their roles), review what still blocks the start, start it, read
the latest results, stop it with a decision (ship a variation, or roll back) and archive it.
Every write goes through `experiments.services`, as from the API, so the same validation and
audit entries apply; the admin never saves these rows itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from base.admin import AuditHistoryMixin
from base.admin_base import (
    AdminRoles,
    ErrorTarget,
    ModelAdmin,
    ServiceAdmin,
    ServiceModelForm,
    ServiceTabularInline,
    admin_actor,
    requires,
)
from base.models import Environment
from base.permissions import Action, require
from config.errors import ApplicationError, error_text
from experiments import data_source_admin as _data_source_admin  # noqa: F401 - registers the data source admin
from experiments import holdout_admin as _holdout_admin  # noqa: F401 - registers the holdout readout admin
from experiments import selectors, services
from experiments import traffic_admin as _traffic_admin  # noqa: F401 - registers the layer and holdout admin
from experiments.catalog import METRIC_FIELDS
from experiments.lifecycle import EXPERIMENT_FIELDS
from experiments.mappers import snapshot_readout
from experiments.models import Experiment, ExperimentMetric, Metric, ResultSnapshot, Variation
from experiments.project import project_engine_default

F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:

    def action(*, description: str, url_path: str) -> Callable[[F], F]: ...

else:
    # unfold's detail-page buttons (it ships no type information).
    from unfold.decorators import action

# Metrics ------------------------------------------------------------------------------------


class MetricForm(ServiceModelForm):
    class Meta:
        model = Metric
        fields = ("key", "name", "description", "kind", "event_name", "denominator_event", "funnel_steps",
                  "retention_day", "ltv_day", "window_hours", "capping", "capping_value", "direction", "owner")
        help_texts = {
            "event_name": "The event measured; for a ratio, the numerator.",
            "denominator_event": "Ratio metrics only: the event whose values sum to the denominator.",
            "funnel_steps": 'Funnel metrics only: the event names of the steps in order, e.g. '
                            '["view_item", "add_to_cart", "checkout"].',
            "retention_day": "Retention metrics only: a unit is retained when active on day N after exposure.",
            "ltv_day": "LTV metrics only: each unit's event values are summed from its first exposure to day N "
                       "(1 to 365, e.g. 7, 30, 90, 365); only units exposed at least N days ago count.",
            "window_hours": "Hours after the first exposure during which events count (at most 8760, 365 days); "
                            "empty for no limit. LTV metrics leave it empty: their window is their day N.",
            "capping_value": "The cap (absolute), or the percentile between 0 and 1, e.g. 0.99 (percentile).",
        }


@admin.register(Metric)
class MetricAdmin(AuditHistoryMixin, ServiceAdmin[Metric]):
    # Archived, never deleted: experiments and their snapshots refer to metrics.
    roles = AdminRoles(view=Action.METRIC_VIEW, add=Action.METRIC_CREATE, change=Action.METRIC_CHANGE)
    audit_object_type = "metric"
    form = MetricForm
    list_display = ("key", "name", "kind", "events", "window", "capping_shown", "direction", "status")
    list_filter = ("kind", "direction")
    search_fields = ("key", "name", "event_name", "description")
    actions = ("archive_metrics", "restore_metrics")

    def get_readonly_fields(self, request: HttpRequest, obj: Metric | None = None) -> Any:
        return () if obj is None else ("key",)

    @admin.display(description="Events")
    def events(self, obj: Metric) -> str:
        if obj.kind == Metric.Kind.FUNNEL:
            return " → ".join(map(str, obj.funnel_steps or []))
        if obj.kind == Metric.Kind.RATIO:
            return f"{obj.event_name} / {obj.denominator_event}"
        if obj.kind == Metric.Kind.RETENTION:
            return f"{obj.event_name} on day {obj.retention_day}"
        if obj.kind == Metric.Kind.LTV:
            return f"{obj.event_name} values by day {obj.ltv_day}"
        return obj.event_name

    @admin.display(description="Window")
    def window(self, obj: Metric) -> str:
        if obj.kind == Metric.Kind.LTV:
            return f"{obj.ltv_day} days"
        return "no limit" if obj.window_hours is None else f"{obj.window_hours} h"

    @admin.display(description="Capping")
    def capping_shown(self, obj: Metric) -> str:
        if obj.capping == Metric.Capping.ABSOLUTE:
            return f"at {obj.capping_value:g}"
        if obj.capping == Metric.Capping.PERCENTILE and obj.capping_value is not None:
            return f"at the {obj.capping_value * 100:g}th percentile"
        return "—"

    @admin.display(description="Status")
    def status(self, obj: Metric) -> str:
        return "Archived" if obj.archived_at else "Active"

    def apply(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        data = {name: form.cleaned_data.get(name) for name in METRIC_FIELDS}
        data["funnel_steps"] = data.get("funnel_steps") or []
        for name in ("event_name", "denominator_event", "name", "description", "owner"):
            data[name] = data.get(name) or ""
        if not change:
            metric = self.call(ErrorTarget(), services.metric_create, actor=admin_actor(request),
                               key=form.cleaned_data["key"], **data)
            form.instance.pk = metric.pk
            return
        changes = {name: data[name] for name in METRIC_FIELDS if name in form.changed_data}
        if changes:
            self.call(ErrorTarget(), services.metric_update, actor=admin_actor(request),
                      metric=Metric.objects.get(pk=form.instance.pk), **changes)

    @admin.action(description="Archive the selected metrics")
    @requires(Action.METRIC_ARCHIVE)
    def archive_metrics(self, request: HttpRequest, queryset: QuerySet[Metric]) -> None:
        self.run_each(request, queryset, services.metric_archive, "metric", "{count} metric(s) archived.")

    @admin.action(description="Restore the selected metrics")
    @requires(Action.METRIC_ARCHIVE)
    def restore_metrics(self, request: HttpRequest, queryset: QuerySet[Metric]) -> None:
        self.run_each(request, queryset, services.metric_archive, "metric", "{count} metric(s) restored.",
                      archived=False)


# Experiments --------------------------------------------------------------------------------


class VariationInline(ServiceTabularInline[Variation, Experiment]):
    model = Variation
    fields = ("key", "name", "weight")
    verbose_name_plural = "Variations (keys are the flag's variants; the first is the control; weights sum to 1)"

    def get_extra(self, request: HttpRequest, obj: Experiment | None = None, **kwargs: Any) -> int:
        return 2 if obj is None else 0


class ExperimentMetricInline(ServiceTabularInline[ExperimentMetric, Experiment]):
    model = ExperimentMetric
    fields = ("metric", "role")
    verbose_name_plural = "Metrics (one primary; guardrails watch for harm)"

    def get_extra(self, request: HttpRequest, obj: Experiment | None = None, **kwargs: Any) -> int:
        return 2 if obj is None else 0


class TagsField(forms.CharField):
    """Tags typed as comma-separated words; the service checks and normalises them."""

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(str(t) for t in value) if isinstance(value, (list, tuple)) else value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        if isinstance(value, (list, tuple)):
            return [str(t) for t in value]
        text = super().to_python(value) or ""
        return [t.strip() for t in text.split(",") if t.strip()]


class ExperimentForm(ServiceModelForm):
    tags = TagsField(required=False, help_text="Comma-separated, e.g. checkout, q3-growth: lowercase letters, "
                                               "digits and hyphens; up to 20 tags of at most 40 characters.")
    decision = forms.ChoiceField(
        required=False, label="Stop with a decision",
        choices=[("", "— keep running —"), ("ship", "Stop and ship a variation"), ("rollback", "Stop and roll back")],
        help_text="Shipping makes the variation the flag's default in this environment; rolling back serves "
                  "what the flag served before. The experiment rule is removed either way.",
    )
    ship_variation = forms.CharField(required=False, label="Variation to ship")
    decision_note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Why")

    # The engine settings may be left out of a submitted form: a new experiment then takes the
    # project's default engine, and the prior its usual values (the service checks them).
    ENGINE_DEFAULTS: ClassVar[dict[str, Any]] = {"prior_mean": 0.0, "prior_stddev": 0.3}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("stats_engine", "prior_mean", "prior_stddev"):
            if name in self.fields:
                self.fields[name].required = False

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("stats_engine"):
            data["stats_engine"] = self.instance.stats_engine if self.instance.pk else project_engine_default()
        for name, default in self.ENGINE_DEFAULTS.items():
            if data.get(name) is None:
                data[name] = getattr(self.instance, name) if self.instance.pk else default
        return data

    class Meta:
        model = Experiment
        fields = ("key", "name", "hypothesis", "description", "owner", "environment", "flag", "hash_attribute",
                  "seed", "coverage", "condition", "layer", "range_start", "range_end", "holdout", "alpha",
                  "difference_type", "sequential", "sequential_tuning", "cuped", "cuped_lookback_days",
                  "correction", "min_sample_per_arm", "slice_attributes", "target_mde", "tags", "data_source",
                  "stats_engine", "prior_enabled", "prior_mean", "prior_stddev")
        labels = {"target_mde": "Target MDE", "stats_engine": "Statistics engine"}
        help_texts = {
            "seed": "Leave empty to use the key.",
            "holdout": "Units in the holdout's share never enter this experiment. Changing it while running "
                       "starts a new phase.",
            "coverage": "Share of eligible units in the experiment (0.5 = 50%). While it runs, raising it continues "
                        "the phase (units already in keep their variation); lowering it, or changing the weights, "
                        "starts a new phase. The experiment's page ramps it now or on a schedule.",
            "condition": 'Targeting: who may enter, e.g. {"country": {"$in": ["US", "CA"]}}.',
            "range_start": "With a layer: the part of the layer's hash space this experiment owns.",
            "slice_attributes": 'Exposure attributes to slice results by, e.g. ["country", "platform"].',
            "data_source": "Where the readouts read exposures and events; empty: the service's own events.",
            "sequential": "Always-valid results: safe to look at any time, at the cost of wider intervals.",
            "cuped": "Reduce variance with each unit's metric values before its exposure.",
            "stats_engine": "Frequentist: p-values and confidence intervals (fixed horizon or sequential). Bayesian: "
                            "credible intervals, chance to beat the control and risk; no sequential test and no "
                            "multiple-testing correction. A new experiment starts with the project's default.",
            "target_mde": "Smallest relative effect on the primary metric worth acting on: 0.05 for +5%. "
                          "The results page computes the users still needed to detect it.",
        }


ASSIGNMENT_LOCKED = ("key", "environment", "flag", "hash_attribute", "seed", "layer", "range_start", "range_end")
SETTINGS_FIELDS = ("stats_engine", "prior_enabled", "prior_mean", "prior_stddev", "alpha", "difference_type",
                   "sequential", "sequential_tuning", "cuped", "cuped_lookback_days", "correction",
                   "min_sample_per_arm", "slice_attributes", "data_source")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.1f}%"


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


@admin.register(Experiment)
class ExperimentAdmin(AuditHistoryMixin, ServiceAdmin[Experiment]):
    # Archived, never deleted: the audit log and snapshots refer to it.
    roles = AdminRoles(view=Action.EXPERIMENT_VIEW, add=Action.EXPERIMENT_CREATE, change=Action.EXPERIMENT_CHANGE)
    audit_object_type = "experiment"
    form = ExperimentForm
    inlines = (VariationInline, ExperimentMetricInline)
    list_display = ("key", "name", "status", "environment", "flag", "tags_shown", "started_at", "latest_readout")
    list_filter = ("status", "environment")
    search_fields = ("key", "name", "hypothesis", "owner")
    actions = ("start_experiments", "refresh_results", "archive_experiments")
    actions_detail = ("start_detail", "refresh_detail", "archive_detail")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Experiment]:
        return super().get_queryset(request).select_related("environment", "flag")

    def environment_of(self, obj: Experiment | None) -> Environment | None:
        return obj.environment if obj is not None else None

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = dict(super().get_changeform_initial_data(request))
        initial.setdefault("stats_engine", project_engine_default())
        return initial

    def get_fieldsets(self, request: HttpRequest, obj: Experiment | None = None) -> Any:
        sets: list[Any] = [
            (None, {"fields": ("key", "name", "hypothesis", "description", "owner", "tags", "target_mde",
                               "environment", "flag")}),
            ("Assignment", {"fields": ("hash_attribute", "seed", "coverage", "condition", "layer", "range_start",
                                       "range_end", "holdout")}),
            ("Analysis", {"fields": SETTINGS_FIELDS, "classes": ["collapse"]}),
        ]
        if obj is not None:
            sets.insert(0, ("Status", {"fields": ("status", "start_checks", "phases_shown", "ramp_shown",
                                                  "results_shown")}))
            if obj.status == Experiment.Status.RUNNING:
                sets.append(("Stop", {"fields": ("decision", "ship_variation", "decision_note")}))
            elif obj.status in (Experiment.Status.STOPPED, Experiment.Status.ARCHIVED):
                sets.append(("Decision", {"fields": ("decision_shown",)}))
        return sets

    def get_readonly_fields(self, request: HttpRequest, obj: Experiment | None = None) -> Any:
        if obj is None:
            return ()
        shown = ("status", "start_checks", "phases_shown", "ramp_shown", "results_shown", "decision_shown")
        if obj.status == Experiment.Status.DRAFT:
            return (*shown, "key")
        if obj.status == Experiment.Status.RUNNING:
            return (*shown, *ASSIGNMENT_LOCKED)
        return (*shown, *ASSIGNMENT_LOCKED, "coverage", "condition", "holdout")

    # Read-only panels ----------------------------------------------------------------

    @admin.display(description="Tags")
    def tags_shown(self, obj: Experiment) -> str:
        return ", ".join(obj.tags or []) or "—"

    @admin.display(description="Latest readout")
    def latest_readout(self, obj: Experiment) -> str:
        snapshot = selectors.snapshot_latest(experiment=obj)
        if snapshot is None:
            return "—"
        when = snapshot.finished_at or snapshot.created_at
        return f"{snapshot.status} {when:%Y-%m-%d %H:%M}"

    @admin.display(description="Ready to start?")
    def start_checks(self, obj: Experiment) -> SafeString | str:
        if obj.status != Experiment.Status.DRAFT:
            return "Started." if obj.started_at else "—"
        problems = services.experiment_start_problems(experiment=obj)
        if not problems:
            return "Yes: use “Start” at the top of the page."
        return format_html("<ul>{}</ul>", format_html_join(
            "", "<li>{}</li>", ((message,) for messages_ in problems.values() for message in messages_)))

    @admin.display(description="Phases")
    def phases_shown(self, obj: Experiment) -> SafeString | str:
        phases = list(obj.phases.all())
        if not phases:
            return "Not started."
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{} {}: {} → {}, weights {}, coverage {}</li>", (
            ("Phase", p.number, f"{p.started_at:%Y-%m-%d %H:%M}",
             f"{p.ended_at:%Y-%m-%d %H:%M}" if p.ended_at else "now", p.weights, p.coverage) for p in phases)))

    @admin.display(description="Ramp")
    def ramp_shown(self, obj: Experiment) -> SafeString | str:
        steps = selectors.ramp_steps(experiment=obj, limit=10)
        if not steps:
            return "No ramp steps. The experiment's page raises coverage now or on a schedule."
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}% at {}: {}{}</li>", (
            (f"{s.coverage * 100:.4g}", f"{s.apply_at:%Y-%m-%d %H:%M}", s.get_status_display(),
             f" ({s.note})" if s.note else "") for s in steps)))

    @admin.display(description="Decision")
    def decision_shown(self, obj: Experiment) -> str:
        if obj.decision == Experiment.Decision.SHIP:
            return f"Shipped '{obj.shipped_variation}'. {obj.decision_note}".strip()
        if obj.decision == Experiment.Decision.ROLLBACK:
            return f"Rolled back. {obj.decision_note}".strip()
        return "—"

    @admin.display(description="Results")
    def results_shown(self, obj: Experiment) -> SafeString | str:
        snapshot = selectors.snapshot_latest(experiment=obj)
        if snapshot is None:
            pending = selectors.snapshot_history(experiment=obj).first()
            return f"No readout yet ({pending.status})." if pending else "No readout yet."
        readout = snapshot_readout(snapshot)
        head = format_html(
            "<p>Readout {} of {} ({}), {} units, SRM p = {}, multiple exposures {}{}</p>",
            snapshot.pk, f"{(snapshot.finished_at or snapshot.created_at):%Y-%m-%d %H:%M}", snapshot.status,
            readout.units if readout.units is not None else "—", _num(readout.srm_p_value),
            _pct(readout.multiple_exposure_share).lstrip("+"),
            f", guardrails {readout.guardrail_status}" if readout.guardrail_status else "",
        )
        page = format_html('<p><a class="text-primary-600 font-medium" href="{}">Open the results page</a>: '
                           "charts, slices and the recommendation.</p>",
                           reverse("experiment-pages:detail", args=[obj.key]))
        head = format_html("{}{}", page, head)
        if snapshot.status == ResultSnapshot.Status.FAILED:
            return format_html("{}<p><b>The readout failed:</b> {}</p>", head, snapshot.error)
        rows = []
        for metric in readout.metrics:
            for c in metric.comparisons:
                absolute = c.difference_type == "absolute"
                ci = "—"
                if c.ci_low is not None:
                    ci = (f"[{_num(c.ci_low)}, {_num(c.ci_high)}]" if absolute
                          else f"[{_pct(c.ci_low)}, {_pct(c.ci_high)}]")
                rows.append((metric.key, metric.role, c.variation, _num(c.estimate) if absolute else _pct(c.estimate),
                             ci, _num(c.p_value), _num(c.chance_to_win, 2), "yes" if c.significant else "no",
                             c.error or metric.guardrail or ""))
        warnings = format_html_join("", "<li>{}</li>", ((w.message,) for w in readout.warnings))
        table = format_html_join("", "<tr>" + "<td>{}</td>" * 9 + "</tr>", rows)
        return format_html(
            '{}<ul>{}</ul><table style="border-collapse:separate;border-spacing:14px 3px;margin-left:-14px">'
            "<tr><th>metric</th><th>role</th><th>variation</th><th>lift</th><th>interval</th>"
            "<th>p</th><th>chance to win</th><th>significant</th><th>note</th></tr>{}</table>",
            head, warnings, table,
        )

    # Writes ---------------------------------------------------------------------------

    @staticmethod
    def _rows(formset: Any, names: tuple[str, ...]) -> tuple[list[dict[str, Any]], list[int]]:
        rows, indexes = [], []
        for index, form in enumerate(formset.forms if formset is not None else []):
            data = getattr(form, "cleaned_data", None)
            if data and not data.get("DELETE") and any(data.get(n) not in (None, "") for n in names):
                rows.append({n: data.get(n) for n in names})
                indexes.append(index)
        return rows, indexes

    def apply(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        actor = admin_actor(request)
        data = form.cleaned_data
        variations_formset, metrics_formset = formsets.get("variations"), formsets.get("experiment_metrics")
        variations, v_index = self._rows(variations_formset, ("key", "name", "weight"))
        links, m_index = self._rows(metrics_formset, ("metric", "role"))
        metric_links = [{"metric": row["metric"].key, "role": row["role"]} for row in links if row.get("metric")]
        for row in variations:
            row["name"] = row.get("name") or ""
        target = ErrorTarget(items={"variations": ("variations", v_index), "metrics": ("experiment_metrics", m_index)})
        editable = [f for f in EXPERIMENT_FIELDS if f not in ("variations", "metrics")]
        if data.get("condition") is None:
            data["condition"] = {}
        if data.get("slice_attributes") is None:
            data["slice_attributes"] = []
        if not change:
            fields = {f: data[f] for f in editable if f in data}
            experiment = self.call(target, services.experiment_create, actor=actor, key=data["key"],
                                   flag=data["flag"], environment=data["environment"], variations=variations,
                                   metrics=metric_links, **fields)
            form.instance.pk = experiment.pk
            return
        experiment = Experiment.objects.get(pk=form.instance.pk)
        changes: dict[str, Any] = {f: data[f] for f in editable if f in form.changed_data and f in data}
        for f in ("flag", "environment"):
            if f in form.changed_data and f in data:
                changes[f] = data[f]
        if variations_formset is not None and variations_formset.has_changed():
            changes["variations"] = variations
        if metrics_formset is not None and metrics_formset.has_changed():
            changes["metrics"] = metric_links
        if changes:
            experiment = self.call(target, services.experiment_update, actor=actor, experiment=experiment, **changes)
        if data.get("decision"):
            require(request.user, Action.EXPERIMENT_STOP, environment=experiment.environment)
            self.call(ErrorTarget(fields={"variation": "ship_variation", "note": "decision_note"}),
                      services.experiment_stop, actor=actor, experiment=experiment, decision=data["decision"],
                      variation=data.get("ship_variation") or None, note=data.get("decision_note") or "")

    # Actions --------------------------------------------------------------------------

    def _refresh(self, request: HttpRequest, experiment: Experiment) -> None:
        services.experiment_readout_request(actor=admin_actor(request), experiment=experiment,
                                            trigger=ResultSnapshot.Trigger.ADMIN)

    @admin.action(description="Start the selected experiments")
    @requires(Action.EXPERIMENT_START)
    def start_experiments(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        self.run_each(request, queryset, services.experiment_start, "experiment", "{count} experiment(s) started.")

    @admin.action(description="Refresh the results of the selected experiments now")
    @requires(Action.EXPERIMENT_REFRESH)
    def refresh_results(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        count = 0
        for experiment in queryset:
            try:
                self._refresh(request, experiment)
            except ApplicationError:
                continue  # not started: nothing to read out, and the count says how many were queued
            count += 1
        self.message_user(request, f"{count} readout(s) queued; results appear within a minute.", messages.SUCCESS)

    @admin.action(description="Archive the selected experiments")
    @requires(Action.EXPERIMENT_ARCHIVE)
    def archive_experiments(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        self.run_each(request, queryset, services.experiment_archive, "experiment",
                      "{count} experiment(s) archived.")

    def _detail(self, request: HttpRequest, object_id: Any, needs: Action, do: Any, done: str) -> HttpResponse:
        url = reverse("admin:experiments_experiment_change", args=[object_id])
        experiment = Experiment.objects.select_related("environment").get(pk=object_id)
        require(request.user, needs, environment=experiment.environment)
        try:
            do(experiment)
        except ApplicationError as exc:
            self.message_user(request, error_text(exc), messages.ERROR)
        else:
            self.message_user(request, done, messages.SUCCESS)
        return HttpResponseRedirect(url)

    # The buttons at the top of an experiment's page that its status allows.
    DETAIL_ACTIONS_BY_STATUS: ClassVar[dict[str, tuple[str, ...]]] = {
        Experiment.Status.DRAFT: ("start_detail", "archive_detail"),
        Experiment.Status.RUNNING: ("refresh_detail",),
        Experiment.Status.STOPPED: ("refresh_detail", "archive_detail"),
        Experiment.Status.ARCHIVED: (),
    }

    def get_actions_detail(self, request: HttpRequest, object_id: Any) -> Any:
        actions = super().get_actions_detail(request, object_id)
        status = Experiment.objects.filter(pk=object_id).values_list("status", flat=True).first()
        prefix = f"{self.model._meta.app_label}_{self.model._meta.model_name}_"
        allowed = {prefix + name for name in self.DETAIL_ACTIONS_BY_STATUS.get(str(status), ())}
        return [a for a in actions if a.action_name in allowed]

    @action(description="Start", url_path="start")
    @requires(Action.EXPERIMENT_START)
    def start_detail(self, request: HttpRequest, object_id: Any) -> HttpResponse:
        return self._detail(request, object_id, Action.EXPERIMENT_START,
                            lambda e: services.experiment_start(actor=admin_actor(request), experiment=e),
                            "Started: the flag now splits traffic between the variations.")

    @action(description="Refresh results now", url_path="refresh")
    @requires(Action.EXPERIMENT_REFRESH)
    def refresh_detail(self, request: HttpRequest, object_id: Any) -> HttpResponse:
        return self._detail(request, object_id, Action.EXPERIMENT_REFRESH, lambda e: self._refresh(request, e),
                            "Readout queued; reload the page in a moment.")

    @action(description="Archive", url_path="archive")
    @requires(Action.EXPERIMENT_ARCHIVE)
    def archive_detail(self, request: HttpRequest, object_id: Any) -> HttpResponse:
        return self._detail(request, object_id, Action.EXPERIMENT_ARCHIVE,
                            lambda e: services.experiment_archive(actor=admin_actor(request), experiment=e),
                            "Archived.")


@admin.register(ResultSnapshot)
class ResultSnapshotAdmin(ModelAdmin[ResultSnapshot]):
    """Read-only list of readouts, failures included: part of their experiments' results."""

    roles = AdminRoles(view=Action.EXPERIMENT_VIEW)

    list_display = ("id", "experiment", "phase", "status", "trigger", "created_at", "duration_ms", "units",
                    "srm_p_value", "guardrail_status", "error_code")
    list_filter = ("status", "trigger")
    search_fields = ("experiment__key", "error")
    readonly_fields = ("experiment", "phase", "status", "trigger", "requested_by", "attempts", "created_at",
                       "started_at", "finished_at", "duration_ms", "analysis_end", "rollup_mode", "error_code",
                       "error", "units", "multiple_exposure_units", "multiple_exposure_share", "srm_p_value",
                       "srm_warning", "guardrail_status", "schema_version", "variations", "metrics", "slices",
                       "warnings", "settings", "inputs")
