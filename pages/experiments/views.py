"""Result pages: the experiment list and one experiment's results, with exports, plus the
start, stop and refresh actions. Numbers come from the stored snapshot; views only choose
what to show (`viewmodels`) and draw it (`charts`)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from base.models import Environment
from base.permissions import Action
from config.errors import ApplicationError, error_text
from experiments import services
from experiments.models import Experiment, RampStep, ResultSnapshot
from flags.models import FlagState
from pages.access import can, page_actor, permission_required, staff_required
from pages.experiments import panels, queries
from pages.forms import StopForm, place_service_errors
from pages.presentation import charts
from pages.presentation.badges import ListFacts, list_badges, srm_explanation
from pages.presentation.formatting import metric_title
from pages.presentation.recommendation import decision_words, recommend
from pages.presentation.viewmodels import (
    SnapshotData,
    Toggles,
    difference_unit,
    fmt_estimate,
    fmt_interval,
    fmt_share,
    judge,
    parse_snapshot,
    result_rows,
)
from pages.rows import KEY_PLACEHOLDER, experiment_rows

TARGET_MDE_RE = re.compile(r"Target MDE:\s*(?P<value>[0-9]*\.?[0-9]+)\s*(?P<percent>%?)", re.IGNORECASE)
STATUS_CHOICES = [("", "Any status"), *Experiment.Status.choices]


def page_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    """What every page template needs: the role (read-only or not) and the page's data."""
    changer = can(request, Action.EXPERIMENT_CHANGE) or can(request, Action.FLAG_CHANGE)
    return {"can_create": can(request, Action.EXPERIMENT_CREATE), "read_only": not changer, **extra}


def _experiment_environment(key: str, **_: Any) -> Environment:
    """The environment an experiment page acts in (for the permission check)."""
    return _experiment_or_404(key).environment


def _experiment_or_404(key: str) -> Experiment:
    experiment = (
        Experiment.objects.select_related("environment", "flag", "layer", "holdout", "data_source")
        .prefetch_related("variations", "phases", "experiment_metrics__metric")
        .filter(key=key)
        .first()
    )
    if experiment is None:
        raise Http404(f"No experiment '{key}'.")
    return experiment


def _days(start: datetime | None, end: datetime | None) -> float | None:
    if start is None:
        return None
    return max(0.0, ((end or timezone.now()) - start).total_seconds() / 86400)


# List ------------------------------------------------------------------------------------------


@staff_required
def experiment_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    owner = (request.GET.get("owner") or "").strip()
    tag = (request.GET.get("tag") or "").strip()
    search = (request.GET.get("q") or "").strip()
    experiments = list(queries.experiments_for_list(status=status, owner=owner, tag=tag, search=search))
    latest = queries.list_snapshots([e.pk for e in experiments])
    rows = []
    for e in experiments:
        snap = latest.get(e.pk)
        rows.append(_list_row(e, snap))
    rows_html = experiment_rows(rows, detail_url=reverse("experiment-pages:detail", args=[KEY_PLACEHOLDER]))
    owners = sorted({o for o in Experiment.objects.values_list("owner", flat=True).distinct() if o})
    tags = sorted({str(t) for tags in Experiment.objects.values_list("tags", flat=True) for t in tags or ()})
    return render(
        request,
        "experiments/experiment_list.html",
        page_context(
            request,
            rows_html=rows_html,
            status=status,
            owner=owner,
            tag=tag,
            search=search,
            statuses=STATUS_CHOICES,
            owners=owners,
            tags=tags,
            total=len(rows),
        ),
    )


def _list_row(e: Experiment, snap: queries.ListSnapshot | None) -> dict[str, Any]:
    has = snap is not None and snap.id is not None
    readout = snap.readout if snap is not None and has else None
    arms = readout.variations if readout else ()
    settings = readout.settings if readout else None
    facts = ListFacts(
        status=e.status,
        min_sample=settings.min_sample_per_arm if settings else e.min_sample_per_arm,
        arm_units=tuple(a.units for a in arms),
        srm_warning=bool(readout and readout.srm_warning),
        srm_p_value=readout.srm_p_value if readout else None,
        multiple_exposure_share=readout.multiple_exposure_share if readout else None,
        guardrail_status=(readout.guardrail_status or "") if readout else "",
        warning_codes=frozenset(w.code for w in readout.warnings) if readout else frozenset(),
        has_snapshot=has,
        last_failed=bool(snap and snap.last_status == ResultSnapshot.Status.FAILED),
    )
    primary_text = ""
    primary_tone = "neutral"
    primary_name = ""
    metric = readout.primary if readout else None
    if readout and metric:
        analysis = readout.analysis
        dtype = analysis.own_type
        primary_name = metric.name
        parts = []
        unit = difference_unit(metric.kind, dtype)
        for a in arms[1:]:
            n = metric.numbers(metric.headline, dtype).get(a.key)
            if n is None or n.error:
                continue
            tone, _ = judge(metric, n, alpha=analysis.alpha, min_sample=facts.min_sample,
                            users=min(facts.arm_units, default=0))
            if tone != "neutral":
                primary_tone = tone
            parts.append(
                f"{a.name or a.key}: {fmt_estimate(n.estimate, unit)} {fmt_interval(n.ci_low, n.ci_high, unit)}"
            )
        primary_text = "; ".join(parts)
    end = e.stopped_at if e.status != Experiment.Status.RUNNING else None
    started = getattr(e, "phase_started", None) or e.started_at
    shipped = next((a.name or a.key for a in arms if a.key == e.shipped_variation), e.shipped_variation)
    return {
        "experiment": e,
        "decision": decision_words(e.decision, shipped),
        "phase": getattr(e, "phase_number", None),
        "days": _days(started, end) if e.started_at else None,
        "arms": [(a.name or a.key, f"{a.units:,}") for a in arms],
        "primary_name": primary_name,
        "primary": primary_text,
        "primary_tone": primary_tone,
        "badges": list_badges(facts),
        "updated": snap.created_at if has and snap else None,
    }


# Detail ----------------------------------------------------------------------------------------


def _url_with(request: HttpRequest, **changes: str) -> str:
    query = request.GET.copy()
    for name, value in changes.items():
        query[name] = value
    return "?" + query.urlencode()


def _toggles(request: HttpRequest, snapshot: SnapshotData) -> Toggles:
    return panels.toggles_for(request, snapshot)


def _export_query(toggles: Toggles) -> str:
    """The toggles as a query string, so that an export marks the view the page shows."""
    return "?" + urlencode({"analysis": toggles.analysis, "cuped": "on" if toggles.cuped else "off",
                            "diff": toggles.difference_type})


def _forest(snapshot: SnapshotData, toggles: Toggles, names: dict[str, str]) -> list[dict[str, Any]]:
    """One shared-axis plot for relative lifts; one plot per metric for absolute differences."""
    relative = toggles.difference_type == "relative"
    groups = (("Goal metrics", ("primary", "secondary")), ("Guardrails", ("guardrail",)))
    rows: list[charts.ForestRow] = []
    per_metric: list[dict[str, Any]] = []
    for title, roles in groups:
        for row in result_rows(snapshot, toggles, roles):
            n = row.numbers
            forest_row = charts.ForestRow(
                label=f"{metric_title(row.metric.name, row.metric.kind, row.metric.day)} · "
                      f"{names.get(row.variation, row.variation)}",
                estimate=n.estimate if n and not n.error else None,
                low=n.ci_low if n and not n.error else None,
                high=n.ci_high if n and not n.error else None,
                tone=row.tone,
                group=title,
                note=row.verdict,
            )
            rows.append(forest_row)
            if not relative:
                if row.first_of_metric:
                    per_metric.append({"metric": row.metric, "rows": []})
                per_metric[-1]["rows"].append(
                    charts.ForestRow(forest_row.label, forest_row.estimate, forest_row.low, forest_row.high,
                                     forest_row.tone, note=row.verdict)
                )
    if relative:
        return [{"title": "", "svg": mark_safe(charts.forest_plot(rows, unit="percent"))}]  # noqa: S308
    return [
        {"title": item["metric"].name,
         "svg": mark_safe(charts.forest_plot(  # noqa: S308
             item["rows"], unit=difference_unit(item["metric"].kind, "absolute"),
             label=f"Forest plot: {item['metric'].name}"))}
        for item in per_metric
    ]


@staff_required
def experiment_detail(request: HttpRequest, key: str) -> HttpResponse:
    experiment = _experiment_or_404(key)
    view = panels.results_view(request, experiment)
    phase, snapshot = view.phase, view.snapshot
    last = queries.latest_finished(experiment=experiment) if experiment.status != Experiment.Status.DRAFT else None
    context: dict[str, Any] = {
        "experiment": experiment,
        "phase": phase,
        "phases": sorted(experiment.phases.all(), key=lambda p: p.number),
        "variations": list(experiment.variations.all()),
        "links": sorted(experiment.experiment_metrics.all(), key=lambda m: m.position),
        "snapshot": snapshot,
        "last": last,
        "last_failed": bool(last and last["status"] == ResultSnapshot.Status.FAILED and (
            snapshot is None or last["id"] != snapshot.id)),
        "pending": bool(last and last["status"] in (ResultSnapshot.Status.QUEUED, ResultSnapshot.Status.RUNNING)),
        "days": _days(phase.started_at if phase else experiment.started_at,
                      experiment.stopped_at if experiment.status != Experiment.Status.RUNNING else None)
        if experiment.started_at else None,
        "can_change": can(request, Action.EXPERIMENT_CHANGE, environment=experiment.environment),
        "target_mde_text": f"{experiment.target_mde * 100:.4g}%" if experiment.target_mde is not None else "",
        "tuning_text": f"{experiment.sequential_tuning:,.0f}",
        "coverage_text": f"{experiment.coverage * 100:.4g}%",
        "planned_steps": [{"percent": f"{s.coverage * 100:.4g}%", "at": s.apply_at}
                          for s in experiment.ramp_steps.filter(status=RampStep.Status.PLANNED)],
        "can_ramp": experiment.status == Experiment.Status.RUNNING
        and can(request, Action.EXPERIMENT_RAMP, environment=experiment.environment),
        "flag_off": experiment.status == Experiment.Status.RUNNING
        and FlagState.objects.filter(flag_id=experiment.flag_id, environment_id=experiment.environment_id,
                                     enabled=False).exists(),
        "start_problems": services.experiment_start_problems(experiment=experiment)
        if experiment.status == Experiment.Status.DRAFT else {},
        **panels.power_context(view, request),
    }
    toggles = view.toggles
    if snapshot is not None and toggles is not None:
        context.update(
            toggles=toggles,
            relative=toggles.difference_type == "relative",
            goal_rows=result_rows(snapshot, toggles, ("primary", "secondary")),
            guardrail_rows=result_rows(snapshot, toggles, ("guardrail",)),
            forests=_forest(snapshot, toggles, view.names),
            srm_text=srm_explanation(snapshot),
            warnings=[(w.code, w.message) for w in snapshot.warnings if w.code != "srm"],
            urls={
                "cuped_on": _url_with(request, cuped="on"),
                "cuped_off": _url_with(request, cuped="off"),
                "relative": _url_with(request, diff="relative"),
                "absolute": _url_with(request, diff="absolute"),
                "fixed": _url_with(request, analysis="fixed"),
                "sequential": _url_with(request, analysis="sequential"),
                "bayesian": _url_with(request, analysis="bayesian"),
                "export_query": _export_query(toggles),
            },
            alpha=snapshot.alpha,
            confidence=f"{(1 - snapshot.alpha) * 100:g}",
            correction=dict(Experiment.Correction.choices).get(snapshot.settings.correction, "none"),
            show_adjusted=snapshot.settings.correction_method is not None
            and toggles.mode == snapshot.headline and toggles.difference_type == snapshot.difference_type,
            multiple_share=fmt_share(snapshot.multiple_exposure_share),
            units_text=f"{snapshot.units:,}",
            query=request.GET.copy(),
            **panels.trend_context(view, request),
            **panels.slices_context(view, request),
        )
    return render(request, "experiments/experiment_detail.html", page_context(request, **context))


@require_GET
@staff_required
def experiment_panel(request: HttpRequest, key: str, name: str) -> HttpResponse:
    """One panel of the results page by itself (an HTML fragment), for the query the whole page
    would get: the page's script fetches it when a panel's choice changes."""
    found = panels.PANELS.get(name)
    if found is None:
        raise Http404(f"No panel '{name}'.")
    experiment = _experiment_or_404(key)
    view = panels.results_view(request, experiment)
    if view.snapshot is None:
        raise Http404("This experiment has no results yet.")
    compute, template = found
    response = render(request, template, {"experiment": experiment, "snapshot": view.snapshot,
                                          "toggles": view.toggles,
                                          "query": request.GET.copy(), **compute(view, request)})
    response["Cache-Control"] = "no-store"
    return response


# Actions ---------------------------------------------------------------------------------------


def _detail(experiment: Experiment) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("experiment-pages:detail", args=[experiment.key]))


@require_POST
@permission_required(Action.EXPERIMENT_START, environment=_experiment_environment)
def experiment_start(request: HttpRequest, key: str) -> HttpResponse:
    experiment = _experiment_or_404(key)
    try:
        services.experiment_start(actor=page_actor(request), experiment=experiment)
    except ApplicationError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, f"'{experiment.key}' is running: the flag now splits traffic.")
    return _detail(experiment)


@require_POST
@permission_required(Action.EXPERIMENT_REFRESH, environment=_experiment_environment)
def experiment_refresh(request: HttpRequest, key: str) -> HttpResponse:
    experiment = _experiment_or_404(key)
    try:
        services.experiment_readout_request(actor=page_actor(request), experiment=experiment,
                                            trigger=ResultSnapshot.Trigger.ADMIN)
    except ApplicationError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.info(request, "A readout is queued; reload the page in a minute.")
    return _detail(experiment)


@require_http_methods(["GET", "POST"])
@permission_required(Action.EXPERIMENT_STOP, environment=_experiment_environment)
def experiment_stop(request: HttpRequest, key: str) -> HttpResponse:
    experiment = _experiment_or_404(key)
    variations = [(v.key, v.name or v.key) for v in experiment.variations.all()]
    row = queries.latest_snapshot(experiment=experiment, phase_id=None)
    snapshot = parse_snapshot(row) if row else None
    advice = recommend(snapshot, status=experiment.status, power=None,
                       names=dict(variations)) if experiment.status == Experiment.Status.RUNNING else None
    initial: dict[str, Any] = {}
    if advice is not None and advice.verdict == "ship":
        initial = {"decision": "ship", "variation": advice.variation, "note": " ".join(advice.reasons)}
    elif advice is not None and advice.verdict == "rollback":
        initial = {"decision": "rollback", "note": " ".join(advice.reasons)}
    form = StopForm(request.POST or None, variations=variations, initial=initial)
    if experiment.status != Experiment.Status.RUNNING:
        messages.error(request, f"Only a running experiment can stop; this one is {experiment.status}.")
        return _detail(experiment)
    if request.method == "POST" and form.is_valid():
        decision = form.cleaned_data["decision"]
        try:
            services.experiment_stop(
                actor=page_actor(request),
                experiment=experiment,
                decision=decision,
                variation=form.cleaned_data.get("variation") or None if decision == "ship" else None,
                note=form.cleaned_data.get("note", ""),
            )
        except ApplicationError as exc:
            place_service_errors(form, exc)
        else:
            shipped = dict(variations).get(form.cleaned_data.get("variation") or "", "")
            messages.success(request, f"'{experiment.key}' stopped: {decision_words(decision, shipped)}.")
            return _detail(experiment)
    return render(
        request,
        "experiments/experiment_stop.html",
        page_context(request, experiment=experiment, form=form, recommendation=advice),
    )

