"""Admin for data sources: the same checks as the API (`experiments.data_sources`), and a
button that tests the connection and the queries; and for the project's settings
(`experiments.project`). Registered by `experiments.admin`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from base.admin import AuditHistoryMixin
from base.admin_base import AdminRoles, ErrorTarget, ServiceAdmin, ServiceModelForm, admin_actor, requires
from base.permissions import Action
from experiments import data_sources, project
from experiments.models import DataSource, ProjectSettings
from experiments.traffic_admin import ServiceDeleteMixin
from experiments.warehouse import ENGINES

if TYPE_CHECKING:
    from collections.abc import Callable

    F = TypeVar("F", bound=Callable[..., Any])

    def action(*, description: str, url_path: str) -> Callable[[F], F]: ...

else:
    from unfold.decorators import action


def _engine_help() -> SafeString:
    return format_html("<ul>{}</ul>", format_html_join("", "<li><b>{}</b>: {}</li>", (
        (engine.key, ", ".join(f"{name}{' (required)' if spec.required else ''}" for name, spec in
                               engine.fields.items())) for engine in ENGINES.values())))


class DataSourceForm(ServiceModelForm):
    class Meta:
        model = DataSource
        fields = ("key", "name", "description", "engine", "connection", "exposure_query", "event_query",
                  "timeout_seconds", "exposure_export_table")
        help_texts = {
            "connection": format_html(
                'Engine settings as JSON, e.g. {{"path": "/data/dw.duckdb"}}. Secrets are never stored: give '
                'the name of the workers\' environment variable instead, e.g. {{"password_env": '
                '"WAREHOUSE_PASSWORD"}}. Fields per engine: {}', _engine_help()),
            "exposure_query": "One SELECT in the engine's dialect returning unit_id, timestamp, experiment, "
                              "variation; further columns are slice attributes.",
            "event_query": "One SELECT in the engine's dialect returning unit_id, timestamp, name, value.",
        }


@admin.register(DataSource)
class DataSourceAdmin(ServiceDeleteMixin, AuditHistoryMixin, ServiceAdmin[DataSource]):
    roles = AdminRoles(view=Action.DATA_SOURCE_VIEW, add=Action.DATA_SOURCE_CREATE,
                       change=Action.DATA_SOURCE_CHANGE, delete=Action.DATA_SOURCE_DELETE)
    audit_object_type = "data_source"
    form = DataSourceForm
    list_display = ("key", "name", "engine", "used_by")
    list_filter = ("engine",)
    search_fields = ("key", "name", "description")
    actions_detail = ("test_detail",)
    delete_service = staticmethod(data_sources.data_source_delete)
    service_argument = "source"

    def get_readonly_fields(self, request: HttpRequest, obj: DataSource | None = None) -> Any:
        return () if obj is None else ("key",)

    @admin.display(description="Experiments")
    def used_by(self, obj: DataSource) -> str:
        return ", ".join(obj.experiments.values_list("key", flat=True)[:5]) or "—"

    def apply(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        data = {name: form.cleaned_data.get(name) for name in data_sources.DATA_SOURCE_FIELDS}
        data["connection"] = data.get("connection") or {}
        for name in ("name", "description"):
            data[name] = data.get(name) or ""
        if not change:
            source = self.call(ErrorTarget(), data_sources.data_source_create, actor=admin_actor(request),
                               key=form.cleaned_data["key"], **data)
            form.instance.pk = source.pk
            return
        changes = {name: data[name] for name in data_sources.DATA_SOURCE_FIELDS if name in form.changed_data}
        if changes:
            self.call(ErrorTarget(), data_sources.data_source_update, actor=admin_actor(request),
                      source=DataSource.objects.get(pk=form.instance.pk), **changes)

    @action(description="Test the connection and the queries", url_path="test")
    @requires(Action.DATA_SOURCE_TEST)
    def test_detail(self, request: HttpRequest, object_id: Any) -> HttpResponse:
        source = DataSource.objects.get(pk=object_id)
        report = data_sources.data_source_test(source=source)
        if report.error:
            self.message_user(request, f"The test failed: {report.error}", messages.ERROR)
        for query in report.queries:
            text = (f"{query.query}: {query.rows} row(s) read (limit {query.limit}) in {query.seconds:g} s; "
                    f"columns {', '.join(query.columns) or '—'}")
            if query.problems:
                self.message_user(request, f"{text}. Problems: {' '.join(query.problems)}", messages.ERROR)
            else:
                self.message_user(request, text, messages.SUCCESS)
        if report.ok:
            self.message_user(request, f"Connected to {report.engine_version}: both queries work.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:experiments_datasource_change", args=[object_id]))


class ProjectSettingsForm(ServiceModelForm):
    class Meta:
        model = ProjectSettings
        fields = ("stats_engine_default",)
        help_texts = {
            "stats_engine_default": "The statistics engine of a new experiment that does not choose one. Existing "
                                    "experiments keep theirs. Empty: the service's STATS_ENGINE_DEFAULT setting.",
        }


@admin.register(ProjectSettings)
class ProjectSettingsAdmin(AuditHistoryMixin, ServiceAdmin[ProjectSettings]):
    """One row, changed through `experiments.project`; never added or deleted by hand."""

    roles = AdminRoles(view=Action.PROJECT_SETTINGS_VIEW, change=Action.PROJECT_SETTINGS_CHANGE)
    audit_object_type = "project_settings"
    form = ProjectSettingsForm
    list_display = ("__str__", "stats_engine_default", "updated_at")

    def get_queryset(self, request: HttpRequest) -> Any:
        project.project_settings_get()
        return super().get_queryset(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ProjectSettings | None = None) -> bool:
        return False

    def apply(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        self.call(ErrorTarget(), project.project_settings_update, actor=admin_actor(request),
                  stats_engine_default=form.cleaned_data.get("stats_engine_default") or "")
