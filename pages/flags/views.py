"""Flag pages: the list with stale flags marked, one flag's usage and lifecycle, the kill
switch (with a confirmation step) and rollout ramps. Writes go through `flags.services` and
`flags.ramps`, which audit every change."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from audit.selectors import audit_list
from base.change_requests import change_requests_pending
from base.models import Environment
from base.permissions import Action, require
from base.reviews import ChangeRequested
from config.errors import ApplicationError, error_text
from experiments import selectors as experiment_selectors
from experiments.models import Experiment
from flags import ramps, selectors, services
from flags import staleness as lifecycle
from flags.models import Flag, FlagState, Rule
from flags.summaries import state_warnings
from guarded import selectors as guarded_selectors
from pages.access import can, page_actor, permission_required, staff_required
from pages.experiments.views import page_context
from pages.forms import RampForm, place_service_errors
from pages.rows import KEY_PLACEHOLDER, flag_rows


def _environment_or_404(env: str, **_: Any) -> Environment:
    """The environment a flag page acts in (for the permission check)."""
    environment = Environment.objects.filter(key=env).first()
    if environment is None:
        raise Http404(f"No environment '{env}'.")
    return environment


def _flag_or_404(key: str) -> Flag:
    flag = (
        Flag.objects.filter(key=key)
        .prefetch_related(
            "variants",
            Prefetch(
                "states",
                queryset=FlagState.objects.select_related("environment", "flag").prefetch_related(
                    Prefetch("rules", queryset=Rule.objects.order_by("position", "id"))
                ),
            ),
        )
        .first()
    )
    if flag is None:
        raise Http404(f"No flag '{key}'.")
    return flag


@staff_required
def flag_list(request: HttpRequest) -> HttpResponse:
    only_stale = request.GET.get("stale") == "1"
    search = (request.GET.get("q") or "").strip()
    flags = Flag.objects.all()
    if search:
        flags = flags.filter(key__icontains=search)
    loaded = list(lifecycle.flags_with_rules(flags))
    assessed = lifecycle.flag_lifecycle_assess(loaded, every_flag=not search)
    environments = selectors.environment_keys()
    usage = experiment_selectors.experiment_counts_by_flag()
    rows = []
    for flag, item in zip(loaded, assessed, strict=True):
        if only_stale and not item.stale:
            continue
        states = {s.environment.key: s for s in flag.states.all()}
        rows.append(
            {
                "lifecycle": item,
                "environments": [(env, states.get(env)) for env in environments],
                "experiments": usage.get(flag.pk, 0),
            }
        )
    return render(
        request,
        "flags/flag_list.html",
        page_context(
            request,
            rows_html=flag_rows(rows, detail_url=reverse("flag-pages:detail", args=[KEY_PLACEHOLDER]),
                                only_stale=only_stale),
            environments=environments,
            only_stale=only_stale,
            search=search,
            stale_days=lifecycle.stale_flag_days(),
        ),
    )


@staff_required
def flag_detail(request: HttpRequest, key: str) -> HttpResponse:
    flag = _flag_or_404(key)
    states = sorted(flag.states.all(), key=lambda s: s.environment.key)
    all_rules = [rule for state in states for rule in state.rules.all()]
    ramp_rule_ids = {s.rule_id for r in ramps.ramp_steps_from_rules(all_rules) for s in r.steps}
    flag_ramps = ramps.ramp_steps_from_rules(all_rules)
    evaluated = selectors.flag_usage_by_environment(flag_ids=[flag.pk]).get(flag.pk, {})
    fetched = selectors.payload_fetches()
    guarded = guarded_selectors.rollouts_of_flag(flag=flag)
    environments = [
        {
            "state": state,
            "rules": [r for r in state.rules.all() if r.uid not in ramp_rule_ids],
            "ramps": [r for r in flag_ramps if r.environment == state.environment.key],
            "guarded": guarded.get(state.environment.key, []),
            "last_evaluated": evaluated.get(state.environment.key),
            "payload_fetched": fetched.get(state.environment.key),
            "warnings": state_warnings(state, state.rules.all()),
        }
        for state in states
    ]
    return render(
        request,
        "flags/flag_detail.html",
        page_context(
            request,
            flag=flag,
            variants=list(flag.variants.all()),
            environments=environments,
            lifecycle=lifecycle.flag_lifecycle_get(flag=flag),
            stale_days=lifecycle.stale_flag_days(),
            experiments=experiment_selectors.experiments_of_flag(flag=flag),
            required_by_flags=selectors.flags_requiring(flag=flag),
            required_by_rules=selectors.rules_requiring(flag=flag),
            audit=list(audit_list(object_type="flag", object_key=flag.key)[:15]),
            change_requests=list(change_requests_pending(object_type="flag", object_key=flag.key)),
            can_change_flag=can(request, Action.FLAG_CHANGE),
            now=timezone.now(),
        ),
    )


@require_http_methods(["GET", "POST"])
@permission_required(Action.FLAG_KILL_SWITCH, environment=_environment_or_404)
def flag_switch(request: HttpRequest, key: str, env: str) -> HttpResponse:
    """The kill switch: a confirmation page, then one service call."""
    flag = _flag_or_404(key)
    state = next((s for s in flag.states.all() if s.environment.key == env), None)
    if state is None:
        raise Http404(f"No environment '{env}' for this flag.")
    turn_on = not state.enabled
    if request.method == "POST":
        # The page asks for the state it offered; an answer it cannot have sent is treated as a
        # stale page, which the switch refuses.
        wanted = {"1": True, "0": False}.get(request.POST.get("enabled", ""), state.enabled)
        try:
            services.flag_switch(actor=page_actor(request), flag=flag, environment=state.environment, enabled=wanted)
        except ChangeRequested as exc:
            messages.info(request, exc.message)
        except ApplicationError as exc:
            messages.error(request, error_text(exc))
        else:
            messages.success(
                request,
                f"'{flag.key}' is now {'on' if wanted else 'OFF'} in {env}"
                + ("" if wanted else f": every unit gets '{state.off_variant}'."),
            )
        return HttpResponseRedirect(reverse("flag-pages:detail", args=[flag.key]))
    running = list(experiment_selectors.experiment_list(
        status=Experiment.Status.RUNNING, environment=state.environment.key, flag=flag.key))
    return render(
        request,
        "flags/flag_switch.html",
        page_context(request, flag=flag, state=state, turn_on=turn_on, running=running),
    )


@require_http_methods(["GET", "POST"])
@permission_required(Action.FLAG_RAMP)
def ramp_new(request: HttpRequest, key: str) -> HttpResponse:
    flag = _flag_or_404(key)
    envs = sorted(s.environment.key for s in flag.states.all())
    variants = [v.key for v in flag.variants.all()]
    initial: dict[str, Any] = {"variant": variants[-1] if variants else "", "start": timezone.now()}
    form = RampForm(request.POST or None, environments=envs, variants=variants, initial=initial)
    if request.method == "POST" and form.is_valid():
        state = next(s for s in flag.states.all() if s.environment.key == form.cleaned_data["environment"])
        require(request.user, Action.FLAG_RAMP, environment=state.environment)
        steps = ramps.ramp_plan(start=form.start_at(), interval=form.interval(), percents=form.cleaned_data["percents"])
        try:
            ramp = ramps.ramp_create(
                actor=page_actor(request),
                flag=flag,
                environment=state.environment,
                variant=form.cleaned_data["variant"],
                steps=steps,
                condition=form.cleaned_data["condition"],
                segments=form.cleaned_data["segments"],
                position=0 if form.cleaned_data["position"] == "top" else None,
            )
        except ChangeRequested as exc:
            messages.info(request, exc.message)
            return HttpResponseRedirect(reverse("flag-pages:detail", args=[flag.key]))
        except ApplicationError as exc:
            place_service_errors(form, exc)
        else:
            plan = " → ".join(f"{s.percent:g}%" for s in ramp.steps)
            messages.success(request, f"Ramp {plan} scheduled for '{flag.key}' in {state.environment.key}.")
            return HttpResponseRedirect(reverse("flag-pages:detail", args=[flag.key]))
    return render(request, "flags/ramp_form.html", page_context(request, flag=flag, form=form))


@require_POST
@permission_required(Action.FLAG_RAMP, environment=_environment_or_404)
def ramp_stop(request: HttpRequest, key: str, env: str, ramp_id: str) -> HttpResponse:
    flag = _flag_or_404(key)
    state = next((s for s in flag.states.all() if s.environment.key == env), None)
    if state is None:
        raise Http404(f"No environment '{env}' for this flag.")
    hold = request.POST.get("mode", "hold") != "remove"
    try:
        ramps.ramp_cancel(
            actor=page_actor(request), flag=flag, environment=state.environment, ramp_id=ramp_id, hold=hold
        )
    except ChangeRequested as exc:
        messages.info(request, exc.message)
    except ApplicationError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(
            request,
            "Ramp held at its current share." if hold else "Ramp removed: its units fall back to the other rules.",
        )
    return HttpResponseRedirect(reverse("flag-pages:detail", args=[flag.key]))
