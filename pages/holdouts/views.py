"""A holdout's result page: the held-out units against everyone else on the holdout's metrics
(the stored readout, in the same rows and toggles as an experiment's results), what the holdout
keeps its units from, and a refresh. Numbers come from the stored snapshot."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from base.models import Environment
from base.permissions import Action
from experiments.holdout_readout import holdout_refresh as queue_refresh
from experiments.holdouts import holdout_rules
from experiments.models import Experiment, HoldoutAnalysis, HoldoutSnapshot
from pages.access import can, page_actor, permission_required
from pages.experiments.panels import toggles_for
from pages.presentation.badges import srm_explanation
from pages.presentation.viewmodels import SnapshotData, parse_snapshot, result_rows


def _analysis_or_404(key: str, environment: str) -> HoldoutAnalysis:
    found = HoldoutAnalysis.objects.select_related("holdout", "environment").filter(
        holdout__key=key, environment__key=environment).first()
    if found is None:
        raise Http404("No readout of this holdout in this environment.")
    return found


def _environment(key: str, environment: str, **_: Any) -> Environment:
    return _analysis_or_404(key, environment).environment


def _snapshot_data(snapshot: HoldoutSnapshot) -> SnapshotData:
    return parse_snapshot({**(snapshot.readout or {}), "id": snapshot.pk, "status": snapshot.status,
                           "created_at": snapshot.created_at, "analysis_end": snapshot.analysis_end,
                           "error": snapshot.error})


def _url_with(request: HttpRequest, **changes: str) -> str:
    query = request.GET.copy()
    for name, value in changes.items():
        query[name] = value
    return "?" + query.urlencode()


@require_GET
@permission_required(Action.HOLDOUT_VIEW, environment=_environment)
def holdout_detail(request: HttpRequest, key: str, environment: str) -> HttpResponse:
    analysis = _analysis_or_404(key, environment)
    holdout = analysis.holdout
    latest = analysis.snapshots.filter(status=HoldoutSnapshot.Status.SUCCESS).first()
    last = analysis.snapshots.first()
    scope = Experiment.objects.filter(holdout=holdout, environment=analysis.environment).select_related("flag")
    context: dict[str, Any] = {
        "analysis": analysis,
        "holdout": holdout,
        "share_text": f"{holdout.share * 100:.4g}%",
        "held_flags": [name for name in holdout_rules(holdout) if name.endswith(f"@{analysis.environment.key}")],
        "shipped": [e for e in scope if e.decision == Experiment.Decision.SHIP],
        "running": [e for e in scope if e.status == Experiment.Status.RUNNING],
        "last": last,
        "pending": bool(last and last.status in (HoldoutSnapshot.Status.QUEUED, HoldoutSnapshot.Status.RUNNING)),
        "can_refresh": can(request, Action.HOLDOUT_CHANGE, environment=analysis.environment),
        "snapshot": None,
    }
    if latest is not None:
        snapshot = _snapshot_data(latest)
        toggles = toggles_for(request, snapshot)
        context.update(
            snapshot=snapshot, latest=latest, toggles=toggles, relative=toggles.difference_type == "relative",
            rows=result_rows(snapshot, toggles, ("primary", "secondary", "guardrail")),
            srm_text=srm_explanation(snapshot),
            warnings=[(w.code, w.message) for w in snapshot.warnings if w.code != "srm"],
            alpha=snapshot.alpha, confidence=f"{(1 - snapshot.alpha) * 100:g}", show_adjusted=False,
            units_text=f"{snapshot.units:,}",
            urls={"cuped_on": _url_with(request, cuped="on"), "cuped_off": _url_with(request, cuped="off"),
                  "relative": _url_with(request, diff="relative"), "absolute": _url_with(request, diff="absolute"),
                  "fixed": _url_with(request, analysis="fixed"),
                  "sequential": _url_with(request, analysis="sequential")},
        )
    return render(request, "holdouts/holdout_detail.html", context)


@require_POST
@permission_required(Action.HOLDOUT_CHANGE, environment=_environment)
def holdout_refresh(request: HttpRequest, key: str, environment: str) -> HttpResponse:
    analysis = _analysis_or_404(key, environment)
    with transaction.atomic():
        queue_refresh(analysis=analysis, trigger="page", requested_by=page_actor(request).label)
    messages.info(request, "A readout is queued; reload the page in a minute.")
    return HttpResponseRedirect(reverse("holdout-pages:detail", args=[key, environment]))
