"""Ramping an experiment from its page: raise coverage now or on a schedule, or change the split.

Every change is shown first with what it does to the phase ("phase 2 continues" for a coverage
raise, "phase 3 starts" for a new split or a lower coverage), and made only once confirmed.
The writes are `experiments.ramp`'s, as for the admin and the API.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from base.permissions import Action
from config.errors import ApplicationError
from experiments import selectors, services
from experiments.checks import MAX_RAMP_STEPS
from experiments.models import Experiment
from experiments.phases import split_text
from pages.access import page_actor, permission_required
from pages.experiments.views import _experiment_environment, _experiment_or_404, page_context
from pages.forms import parse_percents, parse_weights, place_service_errors

TIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]


class RampNowForm(forms.Form):
    coverage = forms.FloatField(
        min_value=0.01, max_value=100, label="Coverage (%)",
        help_text="Share of eligible users in the experiment. Raising it keeps everyone already in, in their "
                  "variation: the phase continues. Lowering it starts a new phase.",
    )
    weights = forms.CharField(
        label="Split", help_text="Share of the experiment's users per variation, control first (e.g. 50/50). "
                                 "A different split moves some users: it starts a new phase.",
    )

    def __init__(self, *args: Any, variations: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.variations = variations

    def clean_weights(self) -> list[float]:
        return parse_weights(self.cleaned_data["weights"], self.variations)


class RampScheduleForm(forms.Form):
    percents = forms.CharField(
        label="Coverage at each step (%)", initial="50, 100",
        help_text="Rising percentages, each above today's coverage, e.g. 25, 50, 100.",
    )
    start = forms.DateTimeField(
        label="First step at (UTC)", input_formats=TIME_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=TIME_FORMATS[0]),
        help_text="When the first step is applied; within a minute of that time.",
    )
    interval_hours = forms.FloatField(
        min_value=0.1, max_value=24 * 90, initial=24, label="Hours between steps",
        help_text="Watch the guardrails between steps; cancel the planned steps here at any time.",
    )

    def clean_percents(self) -> list[float]:
        percents = parse_percents(self.cleaned_data["percents"])
        if len(percents) > MAX_RAMP_STEPS:
            raise forms.ValidationError(f"Plan at most {MAX_RAMP_STEPS} steps.")
        return percents

    def steps(self) -> list[tuple[float, datetime]]:
        start: datetime = self.cleaned_data["start"]
        interval = timedelta(hours=float(self.cleaned_data["interval_hours"]))
        return [(p / 100, start + i * interval) for i, p in enumerate(self.cleaned_data["percents"])]


def _phase_number(experiment: Experiment) -> int:
    phase = experiment.phases.filter(ended_at__isnull=True).order_by("-number").first()
    return phase.number if phase is not None else 0


def _initial(experiment: Experiment) -> tuple[dict[str, Any], dict[str, Any]]:
    coverage = experiment.coverage * 100
    weights = [v.weight for v in experiment.variations.all()]
    now = {"coverage": f"{min(100.0, coverage * 5 if coverage < 20 else 100.0):g}", "weights": split_text(weights)}
    start = (timezone.now() + timedelta(days=1)).replace(second=0, microsecond=0)
    later = [p for p in (25, 50, 100) if p > coverage] or [100]
    schedule = {"percents": ", ".join(f"{p:g}" for p in later), "start": start, "interval_hours": 24}
    return now, schedule


def _apply_now(request: HttpRequest, experiment: Experiment, form: RampNowForm, confirm: bool) -> Any:
    coverage = form.cleaned_data["coverage"] / 100
    weights = form.cleaned_data["weights"]
    current = [v.weight for v in experiment.variations.all()]
    new_weights = None if all(abs(a - b) < 1e-9 for a, b in zip(weights, current, strict=True)) else weights
    try:
        if not confirm:
            return services.ramp_preview(experiment=experiment, coverage=coverage, weights=new_weights)
        updated, change = services.experiment_ramp(actor=page_actor(request), experiment=experiment,
                                                   coverage=coverage, weights=new_weights)
    except ApplicationError as exc:
        place_service_errors(form, exc)
        return None
    number = _phase_number(updated)
    if change.new_phase:
        messages.success(request, f"Phase {number} started: coverage {updated.coverage * 100:.4g}%, split "
                                  f"{split_text([v.weight for v in updated.variations.all()])}.")
    else:
        messages.success(request, f"Coverage is now {updated.coverage * 100:.4g}%; phase {number} continues and "
                                  "everyone already in keeps their variation.")
    return HttpResponseRedirect(reverse("experiment-pages:detail", args=[experiment.key]))


def _apply_schedule(request: HttpRequest, experiment: Experiment, form: RampScheduleForm, confirm: bool) -> Any:
    steps = form.steps()
    try:
        if not confirm:
            services.ramp_schedule_check(experiment=experiment, steps=steps)
            return steps
        services.experiment_ramp_schedule(actor=page_actor(request), experiment=experiment, steps=steps)
    except ApplicationError as exc:
        place_service_errors(form, exc)
        return None
    plan = " → ".join(f"{c * 100:.4g}% on {at:%Y-%m-%d %H:%M} UTC" for c, at in steps)
    messages.success(request, f"Ramp planned: {plan}. Phase {_phase_number(experiment)} continues at each step.")
    return HttpResponseRedirect(reverse("experiment-pages:detail", args=[experiment.key]))


@require_http_methods(["GET", "POST"])
@permission_required(Action.EXPERIMENT_RAMP, environment=_experiment_environment)
def experiment_ramp(request: HttpRequest, key: str) -> HttpResponse:
    experiment = _experiment_or_404(key)
    count = experiment.variations.count()
    initial_now, initial_schedule = _initial(experiment)
    mode = request.POST.get("mode", "")
    confirm = request.POST.get("confirm") == "yes"
    now_form = RampNowForm(request.POST if mode == "now" else None, initial=initial_now, variations=count,
                           prefix="now")
    schedule_form = RampScheduleForm(request.POST if mode == "schedule" else None, initial=initial_schedule,
                                     prefix="schedule")
    context: dict[str, Any] = {}
    if request.method == "POST" and mode == "cancel":
        cancelled = services.experiment_ramp_cancel(actor=page_actor(request), experiment=experiment)
        messages.info(request, f"{cancelled} planned step{'s' if cancelled != 1 else ''} cancelled; the coverage "
                               "stays where it is.")
        return HttpResponseRedirect(reverse("experiment-pages:ramp", args=[key]))
    if experiment.status != Experiment.Status.RUNNING:
        messages.error(request, f"Only a running experiment is ramped; this one is {experiment.status}.")
        return HttpResponseRedirect(reverse("experiment-pages:detail", args=[key]))
    if request.method == "POST" and mode == "now" and now_form.is_valid():
        result = _apply_now(request, experiment, now_form, confirm)
        if isinstance(result, HttpResponse):
            return result
        if result is not None:
            context["now_change"] = result
    elif request.method == "POST" and mode == "schedule" and schedule_form.is_valid():
        result = _apply_schedule(request, experiment, schedule_form, confirm)
        if isinstance(result, HttpResponse):
            return result
        if result is not None:
            context["schedule_steps"] = [(c * 100, at) for c, at in result]
    if "now_change" in context or "schedule_steps" in context:
        prefix = f"{mode}-"
        context["confirm_fields"] = [("mode", mode), ("confirm", "yes"), *(
            (name, request.POST.get(name, "")) for name in request.POST if name.startswith(prefix))]
    phase = _phase_number(experiment)
    steps = selectors.ramp_steps(experiment=experiment)
    return render(request, "experiments/experiment_ramp.html", page_context(
        request, experiment=experiment, now_form=now_form, schedule_form=schedule_form, phase=phase,
        next_phase=phase + 1, split=split_text([v.weight for v in experiment.variations.all()]),
        coverage_text=f"{experiment.coverage * 100:.4g}%", steps=steps,
        has_planned=any(s.status == "planned" for s in steps), **context,
    ))
