"""The growth page of an environment: the north star's level over time, each shipped experiment
with its measured and corrected lift on it, their naive sum beside the lift a holdout measured
(and why they differ, in words), and the experiments still running with their expected decision
dates. Reads stored readouts and the events; the numbers and words come from
`pages.presentation.growth`."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from base.models import Environment
from base.permissions import Action
from experiments.growth import north_star_get, north_star_levels
from experiments.models import Experiment, HoldoutAnalysis, HoldoutSnapshot, Metric
from experiments.readout import MetricReadout, Readout, readout_from_json
from pages.access import permission_required
from pages.experiments import queries
from pages.experiments.panels import target_mde
from pages.presentation.formatting import difference_unit
from pages.presentation.growth import Effect, Measured, Running, growth_view, level_chart
from pages.presentation.recommendation import power_panel
from pages.presentation.viewmodels import parse_snapshot

LEVEL_DAYS = 60


def _environment(environment: str, **_: Any) -> Environment:
    found = Environment.objects.filter(key=environment).first()
    if found is None:
        raise Http404("No such environment.")
    return found


def _north(readout: Readout, metric: Metric) -> MetricReadout | None:
    return next((m for m in readout.metrics if m.key == metric.key), None)


def _effect(experiment: Experiment, metric: Metric) -> Effect | None:
    row = queries.latest_snapshot(experiment=experiment, phase_id=None)
    if row is None:
        return None
    readout = parse_snapshot(row).readout
    found = _north(readout, metric)
    if found is None or len(readout.variations) < 2:
        return None
    shipped = experiment.decision == Experiment.Decision.SHIP
    variation = experiment.shipped_variation if shipped else readout.variations[1].key
    numbers = found.numbers("fixed", "relative").get(variation)
    if numbers is None or not numbers.has_interval or numbers.estimate is None:
        return None
    assert numbers.ci_low is not None and numbers.ci_high is not None
    return Effect(key=experiment.key, name=experiment.name or experiment.key, estimate=numbers.estimate,
                  ci_low=numbers.ci_low, ci_high=numbers.ci_high, alpha=readout.analysis.alpha, shipped=shipped,
                  decided_at=experiment.stopped_at)


def _measured(environment: Environment, metric: Metric) -> tuple[Measured | None, HoldoutAnalysis | None]:
    analyses = HoldoutAnalysis.objects.filter(environment=environment, links__metric=metric).select_related("holdout")
    for analysis in analyses:
        snapshot = analysis.snapshots.filter(status=HoldoutSnapshot.Status.SUCCESS).first()
        if snapshot is None:
            continue
        found = _north(readout_from_json(snapshot.readout or {}), metric)
        numbers = found.numbers("fixed", "relative").get("released") if found else None
        if numbers is not None and numbers.has_interval and numbers.estimate is not None:
            assert numbers.ci_low is not None and numbers.ci_high is not None
            return Measured(holdout=analysis.holdout.key, estimate=numbers.estimate, ci_low=numbers.ci_low,
                            ci_high=numbers.ci_high), analysis
    return None, None


def _running(experiment: Experiment) -> Running:
    row = queries.latest_snapshot(experiment=experiment, phase_id=None)
    name = experiment.name or experiment.key
    if row is None:
        return Running(experiment.key, name, experiment.started_at, None, "No readout yet.")
    snapshot = parse_snapshot(row)
    primary = snapshot.primary
    control = primary.variations[0] if primary and primary.variations else None
    unit = difference_unit(primary.kind if primary else "", snapshot.difference_type)
    mde = target_mde(experiment, None, unit, control.mean if control else None)
    panel = power_panel(snapshot, target_mde=mde, started_at=experiment.started_at, now=timezone.now())
    note = panel.note if panel is not None else ""
    projected = panel.projected if panel is not None else None
    if mde is None:
        note = "No target effect set: no decision date can be projected."
    return Running(experiment.key, name, experiment.started_at, projected, note)


@require_GET
@permission_required(Action.EXPERIMENT_VIEW, environment=_environment)
def growth(request: HttpRequest, environment: str) -> HttpResponse:
    env = _environment(environment)
    north = north_star_get()
    context: dict[str, Any] = {"environment": env, "north": north}
    if north is not None:
        metric = north.metric
        now = timezone.now()
        levels = north_star_levels(environment=env, metric=metric, end=now, days=LEVEL_DAYS)
        experiments = list(Experiment.objects.filter(environment=env).exclude(status=Experiment.Status.DRAFT)
                           .order_by("stopped_at", "started_at"))
        effects = [e for e in (_effect(x, metric) for x in experiments) if e is not None]
        measured, analysis = _measured(env, metric)
        running = [_running(x) for x in experiments if x.status == Experiment.Status.RUNNING]
        context.update(
            metric=metric,
            inputs=sorted(m.key for m in north.input_metrics.all()),
            chart=mark_safe(level_chart([(d.day, d.level) for d in levels if d.level is not None])),  # noqa: S308
            latest_level=levels[-1] if levels else None,
            view=growth_view(effects=effects, measured=measured, running=running),
            analysis=analysis,
        )
    return render(request, "holdouts/growth.html", context)
