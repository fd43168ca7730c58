"""Downloads of a readout: the stored snapshot as JSON, and every stored view as CSV rows
(the view chosen by the page's toggles marked `selected`). Both read the snapshot through the
readout contract, so a readout stored in an older shape downloads in the current one.

Both carry what the Bayesian engine stores (the chance to win, the risk of each side, the
credible interval, named as such) and the heterogeneity tests per slice attribute (Cochran's Q,
its p-value before and after the correction, and the values flagged as differing)."""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse

from config.csv_export import csv_text
from experiments.models import Experiment, ResultSnapshot
from experiments.readout import (
    BAYESIAN_MODES,
    MODES,
    READOUT_FIELDS,
    Comparison,
    MetricReadout,
    readout_to_json,
)
from pages.access import staff_required
from pages.experiments.views import _experiment_or_404, _toggles
from pages.presentation.formatting import difference_unit, metric_title, raw_unit
from pages.presentation.viewmodels import SnapshotData, parse_snapshot


def _export_snapshot(experiment: Experiment, snapshot_id: str | None) -> ResultSnapshot:
    qs = ResultSnapshot.objects.filter(experiment=experiment)
    if snapshot_id:
        if not snapshot_id.isdigit():
            raise Http404("Unknown readout.")
        found = qs.filter(pk=int(snapshot_id)).first()
    else:
        found = qs.filter(status=ResultSnapshot.Status.SUCCESS).order_by("-created_at", "-id").first()
    if found is None:
        raise Http404("No readout to export yet.")
    return found


# The run's facts exported next to the readout's fields.
RUN_FIELDS = ("id", "status", "trigger", "created_at", "finished_at", "analysis_end", "duration_ms", "error",
              "error_code")


def _snapshot_data(snap: ResultSnapshot) -> SnapshotData:
    return parse_snapshot({name: getattr(snap, name) for name in (*RUN_FIELDS, *READOUT_FIELDS)})


@staff_required
def experiment_export_json(request: HttpRequest, key: str) -> HttpResponse:
    experiment = _experiment_or_404(key)
    snap = _export_snapshot(experiment, request.GET.get("snapshot"))
    data = _snapshot_data(snap)
    body = {"experiment": experiment.key, "phase": snap.phase.number if snap.phase else None,
            **{f: getattr(snap, f) for f in RUN_FIELDS}, **readout_to_json(data.readout)}
    # Which stored view the page showed: `metrics[].<mode>` entries of `difference_type`.
    toggles = _toggles(request, data)
    body["selected_view"] = {"analysis": toggles.analysis, "cuped": toggles.cuped, "mode": toggles.mode,
                             "difference_type": toggles.difference_type}
    # Estimates and intervals are raw numbers: what each metric's are measured in, per difference type.
    body["units"] = {m.key: {t: raw_unit(difference_unit(m.kind, t)) for t in ("relative", "absolute")}
                     for m in data.metrics}
    response = HttpResponse(json.dumps(body, cls=DjangoJSONEncoder, indent=2), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{experiment.key}-readout-{snap.pk}.json"'
    return response


CSV_HEADER = (
    "experiment", "readout", "created_at", "slice_attribute", "slice_value", "metric", "role", "direction",
    "analysis", "headline", "selected", "difference_type", "unit", "variation", "control_users", "variation_users",
    "control_mean", "variation_mean", "estimate", "ci_low", "ci_high", "p_value", "p_value_adjusted", "chance_to_win",
    "variance_reduction", "cuped_applied", "sequential", "error", "metric_title", "metric_day",
    # Bayesian analyses: the interval is a credible one, and the risk (expected loss) of keeping
    # the control and of choosing the variation.
    "interval", "risk_control", "risk_variation",
    # Heterogeneity rows (analysis "heterogeneity"): Cochran's Q per treatment and slice attribute
    # (slice_value empty), then each value's difference from the rest; `flagged`: significant
    # after the correction over every slice attribute and variation.
    "statistic", "degrees_of_freedom", "flagged",
)
HETEROGENEITY = "heterogeneity"


def _interval(mode: str) -> str:
    return "credible" if mode in BAYESIAN_MODES else "confidence"


def _bayes(mode: str, c: Comparison) -> list[Any]:
    risk = c.risk if c.risk is not None else ("", "")
    return [_interval(mode), risk[0], risk[1], "", "", ""]


def _heterogeneity_rows(base: list[Any], metric: MetricReadout, dtype: str) -> list[list[Any]]:
    rows: list[list[Any]] = []
    unit = raw_unit(difference_unit(metric.kind, dtype))
    title = [metric_title(metric.name, metric.kind, metric.day), "" if metric.day is None else metric.day]
    no_arms = ["", "", "", ""]
    for test in metric.heterogeneity:
        head = [*base, test.attribute]
        rows.append([*head, "", metric.key, metric.role, metric.direction, HETEROGENEITY, False, "", dtype, unit,
                     test.variation, *no_arms, "", "", "", test.p_value, test.p_value_adjusted, "", "", "", "", "",
                     *title, "", "", "", test.q, test.degrees_of_freedom, test.significant])
        for value in test.values:
            rows.append([*head, value.value, metric.key, metric.role, metric.direction, HETEROGENEITY, False, "",
                         dtype, unit, test.variation, *no_arms, value.difference, "", "", value.p_value,
                         value.p_value_adjusted, "", "", "", "", "", *title, "", "", "", "", "", value.differs])
    return rows


def _csv_rows(experiment: Experiment, snap: ResultSnapshot, request: HttpRequest | None = None
              ) -> list[list[Any]]:
    data = _snapshot_data(snap)
    selection: tuple[str, str] | None = None
    if request is not None:
        toggles = _toggles(request, data)
        selection = (toggles.mode, toggles.difference_type)
    rows: list[list[Any]] = []
    base = [experiment.key, snap.pk, snap.created_at.isoformat()]
    for metric in data.metrics:
        control = metric.variations[0] if metric.variations else None
        # Every stored view: analyses in a fixed order, the experiment's own difference type first.
        views = sorted(metric.views().items(), key=lambda item: (
            MODES.index(item[0][0]) if item[0][0] in MODES else len(MODES), item[0][1] != data.difference_type))
        for (mode, dtype), by_variation in views:
            for key, n in by_variation.items():
                arm = metric.arm(key)
                selected = selection is not None and (mode, dtype) == selection
                rows.append([*base, "", "", metric.key, metric.role, metric.direction, mode,
                             mode == metric.headline and dtype == data.difference_type, selected, dtype,
                             raw_unit(difference_unit(metric.kind, dtype)), key,
                             control.users if control else "",
                             arm.users if arm else "", control.mean if control else "", arm.mean if arm else "",
                             n.estimate, n.ci_low, n.ci_high, n.p_value, n.p_value_adjusted, n.chance_to_win,
                             n.variance_reduction, n.cuped_applied, n.sequential, n.error or "",
                             metric_title(metric.name, metric.kind, metric.day),
                             "" if metric.day is None else metric.day, *_bayes(mode, n)])
        rows.extend(_heterogeneity_rows(base, metric, data.difference_type))
    by_key = {m.key: m for m in data.metrics}
    control_key = data.arms[0].key if data.arms else ""
    for entry in data.readout.slices:
        for m in entry.metrics:
            found = by_key.get(m.key)
            if found is None:
                continue
            control_arm = m.arm(control_key)
            for c in m.comparisons:
                slice_arm = m.arm(c.variation)
                rows.append([*base, entry.attribute, entry.value, found.key, found.role, found.direction,
                             found.headline, True, "", c.difference_type,
                             raw_unit(difference_unit(found.kind, c.difference_type)), c.variation,
                             control_arm.users if control_arm else "", slice_arm.users if slice_arm else "",
                             control_arm.mean if control_arm else "", slice_arm.mean if slice_arm else "",
                             c.estimate, c.ci_low, c.ci_high, c.p_value, "", c.chance_to_win, c.variance_reduction,
                             c.cuped_applied, c.sequential, c.error or "",
                             metric_title(found.name, found.kind, found.day), "" if found.day is None else found.day,
                             *_bayes(found.headline, c)])
    return rows


@staff_required
def experiment_export_csv(request: HttpRequest, key: str) -> HttpResponse:
    experiment = _experiment_or_404(key)
    snap = _export_snapshot(experiment, request.GET.get("snapshot"))
    # Slice values and keys come from clients: formulas are written as text (config.csv_export).
    body = csv_text(CSV_HEADER, _csv_rows(experiment, snap, request))
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{experiment.key}-readout-{snap.pk}.csv"'
    return response
