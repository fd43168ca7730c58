"""Admin for guarded rollouts: started through `guarded.services` (steps and guardrails as JSON,
checked there), then read only, with pause, resume and roll back as buttons and the decision
history on the page."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from base.admin_base import AdminRoles, ErrorTarget, Formsets, ServiceAdmin, ServiceModelForm, admin_actor, requires
from base.models import Environment
from base.permissions import Action, require
from config.errors import ApplicationError, error_text
from guarded import services
from guarded.documents import next_step
from guarded.models import GuardedRollout

F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:

    def action(*, description: str, url_path: str) -> Callable[[F], F]: ...

else:
    from unfold.decorators import action


class GuardedRolloutForm(ServiceModelForm):
    class Meta:
        model = GuardedRollout
        fields = ("flag", "environment", "rule_uid", "steps", "guardrails", "on_harm", "alpha", "min_units")
        help_texts = {
            "rule_uid": "The id of the flag's percentage rollout rule in that environment (r_...).",
            "steps": 'e.g. [{"percent": 1, "min_duration_seconds": 3600}, {"percent": 5, "min_duration_seconds": '
                     '3600}, {"percent": 25, "min_duration_seconds": 86400}, {"percent": 100}]',
            "guardrails": 'e.g. [{"metric": "errors", "direction": "lower", "threshold": 0.02}]',
            "alpha": "The false-alarm budget of the whole rollout (every step, every look).",
            "min_units": "Units on each side before a guardrail may stop the rollout.",
        }


@admin.register(GuardedRollout)
class GuardedRolloutAdmin(ServiceAdmin[GuardedRollout]):
    # Its audit entries are the flag's (object type flag): the flag's history shows them.
    roles = AdminRoles(view=Action.FLAG_VIEW, add=Action.FLAG_RAMP, change=Action.FLAG_RAMP)
    form = GuardedRolloutForm
    list_display = ("id", "flag", "environment", "status", "percent_shown", "variant", "on_harm", "created_at")
    list_filter = ("status", "environment")
    search_fields = ("flag__key", "rule_uid")
    actions_detail = ("pause_detail", "resume_detail", "rollback_detail")
    SHOWN = ("flag", "environment", "rule_uid", "variant", "control_variant", "experiment", "status",
             "percent_shown", "next_shown", "steps", "guardrails", "on_harm", "alpha", "min_units", "reason",
             "created_by", "created_at", "finished_at", "decisions_shown")

    def get_queryset(self, request: HttpRequest) -> QuerySet[GuardedRollout]:
        return super().get_queryset(request).select_related("flag", "environment", "experiment")

    def environment_of(self, obj: GuardedRollout | None) -> Environment | None:
        return obj.environment if obj is not None else None

    def get_fields(self, request: HttpRequest, obj: GuardedRollout | None = None) -> Any:
        return self.SHOWN if obj is not None else GuardedRolloutForm.Meta.fields

    def get_readonly_fields(self, request: HttpRequest, obj: GuardedRollout | None = None) -> Any:
        return self.SHOWN if obj is not None else ()

    @admin.display(description="Serving")
    def percent_shown(self, obj: GuardedRollout) -> str:
        return f"{obj.percent:g}%"

    @admin.display(description="Next step")
    def next_shown(self, obj: GuardedRollout) -> str:
        upcoming = next_step(obj)
        return f"{upcoming['percent']:g}% from {upcoming['earliest_at']}" if upcoming else "-"

    @admin.display(description="Decisions")
    def decisions_shown(self, obj: GuardedRollout) -> SafeString:
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}%</td><td>{}</td><td>{}</td></tr>", (
            (d.at.strftime("%Y-%m-%d %H:%M:%S"), d.get_action_display(), f"{d.percent:g}", d.actor, d.reason)
            for d in obj.decisions.exclude(action="checked").order_by("at", "id")))
        return format_html("<table><tr><th>When</th><th>What</th><th>At</th><th>Who</th><th>Why</th></tr>{}</table>",
                           rows)

    def apply(self, request: HttpRequest, form: Any, formsets: Formsets, change: bool) -> None:
        data = form.cleaned_data
        rollout = self.call(ErrorTarget(fields={"rule_id": "rule_uid"}), services.guarded_rollout_start,
                            actor=admin_actor(request), flag=data["flag"], environment=data["environment"],
                            rule_id=data["rule_uid"], steps=data["steps"], guardrails=data["guardrails"],
                            on_harm=data["on_harm"], alpha=data["alpha"], min_units=data["min_units"])
        form.instance.pk = rollout.pk

    def _detail(self, request: HttpRequest, object_id: Any, do: Callable[[GuardedRollout], Any],
                done: str) -> HttpResponse:
        rollout = GuardedRollout.objects.select_related("environment").get(pk=object_id)
        require(request.user, Action.FLAG_RAMP, environment=rollout.environment)
        try:
            do(rollout)
        except ApplicationError as exc:
            self.message_user(request, error_text(exc), messages.ERROR)
        else:
            self.message_user(request, done, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:guarded_guardedrollout_change", args=[object_id]))

    DETAIL_ACTIONS_BY_STATUS: ClassVar[dict[str, tuple[str, ...]]] = {
        GuardedRollout.Status.RUNNING: ("pause_detail", "rollback_detail"),
        GuardedRollout.Status.PAUSED: ("resume_detail", "rollback_detail"),
    }

    def get_actions_detail(self, request: HttpRequest, object_id: Any) -> Any:
        actions = super().get_actions_detail(request, object_id)
        status = GuardedRollout.objects.filter(pk=object_id).values_list("status", flat=True).first()
        prefix = f"{self.model._meta.app_label}_{self.model._meta.model_name}_"
        allowed = {prefix + name for name in self.DETAIL_ACTIONS_BY_STATUS.get(str(status), ())}
        return [a for a in actions if a.action_name in allowed]

    @action(description="Pause", url_path="pause")
    @requires(Action.FLAG_RAMP)
    def pause_detail(self, request: HttpRequest, object_id: Any) -> HttpResponse:
        return self._detail(request, object_id,
                            lambda r: services.guarded_rollout_pause(actor=admin_actor(request), rollout=r),
                            "Paused: units keep what they are served and no step advances.")

    @action(description="Resume", url_path="resume")
    @requires(Action.FLAG_RAMP)
    def resume_detail(self, request: HttpRequest, object_id: Any) -> HttpResponse:
        return self._detail(request, object_id,
                            lambda r: services.guarded_rollout_resume(actor=admin_actor(request), rollout=r),
                            "Resumed.")

    @action(description="Roll back to 0%", url_path="rollback")
    @requires(Action.FLAG_RAMP)
    def rollback_detail(self, request: HttpRequest, object_id: Any) -> HttpResponse:
        return self._detail(request, object_id,
                            lambda r: services.guarded_rollout_rollback(actor=admin_actor(request), rollout=r),
                            "Rolled back: the rollout rule serves 0%.")
