"""The panels of a results page that update on their own: the trend (its metric), the slices
(dimension and metric) and the power panel (the target effect) with the recommendation it
informs.

Each panel is computed from the request's query alone, by the same function for the whole page
(`views.experiment_detail`) and for the panel by itself (`views.experiment_panel`, the fragment
the page's script fetches), so a link with the query reproduces either. `PANELS` names each
panel's computation and template.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from django.utils.safestring import mark_safe

from experiments.models import Experiment, Phase
from experiments.readout import BAYESIAN_MODES, MetricReadout
from pages.experiments import queries
from pages.presentation import charts
from pages.presentation.formatting import Unit, metric_title
from pages.presentation.recommendation import BayesThresholds, decision_words, power_panel, recommend
from pages.presentation.viewmodels import (
    SnapshotData,
    Toggles,
    choose_toggles,
    difference_unit,
    heterogeneity_lines,
    parse_snapshot,
    slice_rows,
)

TARGET_MDE_RE = re.compile(r"Target MDE:\s*(?P<value>[0-9]*\.?[0-9]+)\s*(?P<percent>%?)", re.IGNORECASE)


@dataclass(frozen=True)
class ResultsView:
    """What every panel of one results page reads: the experiment, its current phase, the latest
    readout, the toggles the query chose and the variations' names."""

    experiment: Experiment
    phase: Phase | None
    snapshot: SnapshotData | None
    toggles: Toggles | None
    names: dict[str, str]


def _flag(request: HttpRequest, name: str, on: str, off: str) -> bool | None:
    value = request.GET.get(name)
    return True if value == on else False if value == off else None


def toggles_for(request: HttpRequest, snapshot: SnapshotData) -> Toggles:
    """The analysis, CUPED and difference type the query asks for, among the stored views."""
    return choose_toggles(
        snapshot,
        cuped=_flag(request, "cuped", "on", "off"),
        relative=_flag(request, "diff", "relative", "absolute"),
        analysis=request.GET.get("analysis"),
    )


def results_view(request: HttpRequest, experiment: Experiment) -> ResultsView:
    """The experiment's current phase, its latest successful readout and the query's toggles."""
    phases = sorted(experiment.phases.all(), key=lambda p: p.number)
    phase = phases[-1] if phases else None
    row = queries.latest_snapshot(experiment=experiment, phase_id=phase.pk if phase else None)
    snapshot = parse_snapshot(row) if row else None
    return ResultsView(
        experiment=experiment,
        phase=phase,
        snapshot=snapshot,
        toggles=toggles_for(request, snapshot) if snapshot is not None else None,
        names={v.key: v.name or v.key for v in experiment.variations.all()},
    )


# Power and recommendation ----------------------------------------------------------------------


def target_mde(experiment: Experiment, requested: str | None, unit: Unit,
               control_mean: float | None = None) -> float | None:
    """The target effect in the snapshot's difference type: from ?mde= (percent for relative
    lifts, percentage points for absolute differences of rates, else the metric's units), else
    the experiment's `target_mde` (relative; times the control mean for absolute results), else
    a "Target MDE: 5%" line of descriptions written before the field existed."""
    relative = unit == "percent"
    text = requested if requested not in (None, "") else None
    if text is not None:
        try:
            value = float(text.rstrip("%"))
        except ValueError:
            return None
        if not math.isfinite(value) or value <= 0:
            return None
        return value / 100 if unit in ("percent", "pp") else value
    if experiment.target_mde is not None:
        if relative:
            return experiment.target_mde
        return experiment.target_mde * abs(control_mean) if control_mean else None
    match = TARGET_MDE_RE.search(experiment.description or "")
    if match is None:
        return None
    value = float(match["value"])
    return value / 100 if match["percent"] or relative else value


def bayes_thresholds() -> BayesThresholds:
    """The Bayesian recommendation's thresholds, from the settings (BAYES_CHANCE_TO_WIN, BAYES_RISK_THRESHOLD)."""
    return BayesThresholds(chance_to_win=float(settings.BAYES_CHANCE_TO_WIN), risk=float(settings.BAYES_RISK_THRESHOLD))


def power_context(view: ResultsView, request: HttpRequest) -> dict[str, Any]:
    """The power panel for the query's target effect, and the recommendation that reads it."""
    experiment, snapshot = view.experiment, view.snapshot
    power = None
    if snapshot is not None:
        primary = snapshot.primary
        control = primary.variations[0] if primary and primary.variations else None
        unit = difference_unit(primary.kind if primary else "", snapshot.difference_type)
        mde = target_mde(experiment, request.GET.get("mde"), unit, control.mean if control else None)
        power = power_panel(snapshot, target_mde=mde, started_at=view.phase.started_at if view.phase else None,
                            now=experiment.stopped_at or timezone.now())
    shipped = view.names.get(experiment.shipped_variation, experiment.shipped_variation)
    return {
        "power": power,
        "mde_input": request.GET.get("mde", ""),
        "recommendation": recommend(snapshot, status=experiment.status, power=power, names=view.names,
                                    thresholds=bayes_thresholds()),
        "decision_text": decision_words(experiment.decision, shipped),
    }


# Trend -----------------------------------------------------------------------------------------


def trend_context(view: ResultsView, request: HttpRequest) -> dict[str, Any]:
    """The trend of the query's metric (`trend`, else the primary), and users per arm."""
    snapshot, toggles = view.snapshot, view.toggles
    if snapshot is None or toggles is None:
        return {}
    key = request.GET.get("trend") or (snapshot.primary.key if snapshot.primary else "")
    metric = next((m for m in snapshot.metrics if m.key == key), snapshot.primary)
    trend_svg, users_svg, note = ("", "", "")
    if metric is not None:
        trend_svg, users_svg, note = _trend(view, metric, toggles)
    return {
        "trend_metric": metric,
        "trend_svg": mark_safe(trend_svg),  # noqa: S308 - built from escaped parts in charts
        "users_svg": mark_safe(users_svg),  # noqa: S308
        "trend_note": note,
    }


def _trend(view: ResultsView, metric: MetricReadout, toggles: Toggles) -> tuple[str, str, str]:
    """(trend chart, users chart, note): the always-valid intervals of the view the toggles chose."""
    names = view.names
    history = queries.trend_history(experiment_id=view.experiment.pk, phase_id=view.phase.pk if view.phase else None,
                                    metric_key=metric.key, mode=toggles.sequential_mode,
                                    difference_type=toggles.difference_type)
    relative = toggles.difference_type == "relative"
    users: dict[str, list[tuple[datetime, float]]] = {}
    expected: dict[str, list[tuple[datetime, float]]] = {}
    parsed: list[tuple[datetime, MetricReadout]] = []
    for at, readout in history:
        variations = readout.variations
        total = sum(v.units for v in variations)
        weight_sum = sum(v.weight or 0.0 for v in variations) or 1.0
        for v in variations:
            users.setdefault(v.key, []).append((at, float(v.units)))
            expected.setdefault(v.key, []).append((at, total * (v.weight or 0.0) / weight_sum))
        found = readout.metric(metric.key)
        if found is not None:
            parsed.append((at, found))
    series, missing = _trend_series(parsed, toggles.sequential_mode, toggles.difference_type)
    note = ""
    if missing:
        note = (f"{missing} older readout{'s' if missing != 1 else ''} did not store this view "
                "(sequential, " + ("without CUPED, " if toggles.sequential_mode != "sequential" else "")
                + f"{toggles.difference_type}) and {'are' if missing != 1 else 'is'} left out of the trend.")
    trend_svg = charts.trend_chart(
        [(names.get(k, k), pts) for k, pts in series.items()],
        unit=difference_unit(metric.kind, toggles.difference_type),
        label=f"Cumulative {'lift' if relative else 'difference'} of "
              f"{metric_title(metric.name, metric.kind, metric.day)} with its always-valid band",
    )
    user_series = [charts.Series(names.get(k, k), tuple(pts)) for k, pts in users.items()]
    if view.snapshot is not None and view.snapshot.srm_warning:
        user_series += [
            charts.Series(f"expected {names.get(k, k)}", tuple(pts), dashed=True) for k, pts in expected.items()
        ]
    return trend_svg, charts.users_chart(user_series), note


def _trend_series(parsed: list[tuple[datetime, MetricReadout]], mode: str, difference_type: str
                  ) -> tuple[dict[str, list[charts.TrendPoint]], int]:
    """Points per variation of one stored view, and how many readouts lack that view."""
    series: dict[str, list[charts.TrendPoint]] = {}
    missing = 0
    for at, entry in parsed:
        numbers = entry.numbers(mode, difference_type)
        if not numbers:
            missing += 1
            continue
        for key, n in numbers.items():
            if n.error or n.estimate is None:
                continue
            series.setdefault(key, []).append(charts.TrendPoint(at, n.estimate, n.ci_low, n.ci_high))
    return series, missing


# Slices ----------------------------------------------------------------------------------------


def slices_context(view: ResultsView, request: HttpRequest) -> dict[str, Any]:
    """The slices of the query's dimension (`slice`) for its metric (`slice_metric`)."""
    snapshot = view.snapshot
    attrs = [str(a) for a in view.experiment.slice_attributes or []]
    if snapshot is None:
        return {"slice_attrs": attrs}
    attr = request.GET.get("slice") or (attrs[0] if attrs else "")
    metric_key = request.GET.get("slice_metric") or (snapshot.primary.key if snapshot.primary else "")
    metric = next((m for m in snapshot.metrics if m.key == metric_key), snapshot.primary)
    table: list[Any] = []
    svg = ""
    if attr and metric is not None and snapshot.id is not None:
        part = queries.slice_entries(snapshot_id=snapshot.id, attribute=attr, metric_key=metric.key)
        table = slice_rows(part, metric=metric, snapshot=snapshot)
        svg = charts.forest_plot(
            [charts.ForestRow(f"{r.value} · {r.variation_name}",
                              r.numbers.estimate if r.numbers and not r.numbers.error else None,
                              r.numbers.ci_low if r.numbers and not r.numbers.error else None,
                              r.numbers.ci_high if r.numbers and not r.numbers.error else None, r.tone,
                              note=r.verdict) for r in table],
            unit=difference_unit(metric.kind, snapshot.difference_type),
            label=f"{metric_title(metric.name, metric.kind, metric.day)} by {attr}",
        )
    return {
        "slice_attrs": attrs,
        "slice_attr": attr,
        "slice_metric": metric,
        "slice_table": table,
        "slice_svg": mark_safe(svg),  # noqa: S308 - built from escaped parts in charts
        "slice_count": len({r.value for r in table}),
        "heterogeneity": heterogeneity_lines(metric, attr, view.names) if attr and metric is not None else [],
        "bayesian_slices": snapshot.headline in BAYESIAN_MODES,
    }


# name -> (what it computes, the template that draws it by itself)
PANELS: dict[str, tuple[Callable[[ResultsView, HttpRequest], dict[str, Any]], str]] = {
    "trend": (trend_context, "experiments/panels/trend.html"),
    "slices": (slices_context, "experiments/panels/slices.html"),
    # The recommendation reads the power panel's target, so both come back.
    "power": (power_context, "experiments/panels/power_and_recommendation.html"),
}

