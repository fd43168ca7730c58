"""The metric catalog: create, change and archive metrics (every write validated, then audited)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import audit_record
from audit.types import Actor
from base.checks import add_error, is_number, raise_if
from base.keys import Errors, check_key
from base.writes import reject_unknown
from config.errors import Conflict
from experiments.documents import metric_document
from experiments.models import MAX_METRIC_DAYS, Metric

METRIC_FIELDS = (
    "name", "description", "kind", "event_name", "denominator_event", "funnel_steps", "retention_day",
    "ltv_day", "window_hours", "capping", "capping_value", "direction", "owner",
)
MAX_WINDOW_HOURS = 24 * MAX_METRIC_DAYS


def _check_event_name(value: Any, field: str, errors: Errors) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= 100:
        add_error(errors, field, "Give an event name of 1 to 100 characters.")


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _check_metric(data: Mapping[str, Any], given: Mapping[str, Any]) -> Errors:
    """Errors of the merged definition `data`; `given` holds the fields the caller sent."""
    errors: Errors = {}
    kind = data.get("kind")
    if kind not in Metric.Kind.values:
        add_error(errors, "kind", f"Use one of {', '.join(Metric.Kind.values)}.")
        return errors
    if kind == Metric.Kind.FUNNEL:
        steps = data.get("funnel_steps")
        if not isinstance(steps, list) or len(steps) < 2:
            add_error(errors, "funnel_steps", "A funnel needs at least two steps (event names, in order).")
        else:
            for i, step in enumerate(steps):
                _check_event_name(step, f"funnel_steps[{i}]", errors)
            if len(set(map(str, steps))) != len(steps):
                add_error(errors, "funnel_steps", "Each step must be a different event.")
    else:
        _check_event_name(data.get("event_name"), "event_name", errors)
    if kind == Metric.Kind.RATIO:
        _check_event_name(data.get("denominator_event"), "denominator_event", errors)
    if kind == Metric.Kind.RETENTION:
        day = data.get("retention_day")
        if not _whole(day, 0, MAX_METRIC_DAYS):
            add_error(errors, "retention_day",
                      f"Give the day N (0 to {MAX_METRIC_DAYS}) on which a retained unit is active.")
    if kind == Metric.Kind.LTV:
        if not _whole(data.get("ltv_day"), 1, MAX_METRIC_DAYS):
            add_error(errors, "ltv_day", f"Give the day N (1 to {MAX_METRIC_DAYS}) up to which each unit's "
                                         "event values are summed, e.g. 7, 30, 90 or 365.")
        if given.get("window_hours") is not None:
            add_error(errors, "window_hours", "An LTV metric's window is its day N (ltv_day): leave window_hours "
                                              "empty.")
    window = data.get("window_hours")
    if window is not None and not _whole(window, 1, MAX_WINDOW_HOURS):
        add_error(errors, "window_hours", f"Give a window of 1 to {MAX_WINDOW_HOURS} hours ({MAX_METRIC_DAYS} "
                                          "days), or none for no limit.")
    capping = data.get("capping", Metric.Capping.NONE)
    value = data.get("capping_value")
    if capping not in Metric.Capping.values:
        add_error(errors, "capping", f"Use one of {', '.join(Metric.Capping.values)}.")
    elif capping != Metric.Capping.NONE:
        if kind not in (Metric.Kind.MEAN, Metric.Kind.COUNT, Metric.Kind.RATIO, Metric.Kind.LTV):
            add_error(errors, "capping", "Only mean, count, ratio and LTV metrics can be capped.")
        elif capping == Metric.Capping.ABSOLUTE and not (is_number(value) and value > 0):
            add_error(errors, "capping_value", "Give the cap, a positive number.")
        elif capping == Metric.Capping.PERCENTILE and not (is_number(value) and 0 < value < 1):
            add_error(errors, "capping_value", "Give the percentile as a number between 0 and 1 (e.g. 0.99).")
    if data.get("direction", Metric.Direction.HIGHER) not in Metric.Direction.values:
        add_error(errors, "direction", f"Use one of {', '.join(Metric.Direction.values)}.")
    return errors


def _normalise_metric(data: dict[str, Any]) -> dict[str, Any]:
    if data.get("capping", Metric.Capping.NONE) == Metric.Capping.NONE:
        data["capping_value"] = None
    if data.get("kind") != Metric.Kind.RETENTION:
        data["retention_day"] = None
    if data.get("kind") != Metric.Kind.LTV:
        data["ltv_day"] = None
    else:
        data["window_hours"] = None
    if data.get("kind") != Metric.Kind.FUNNEL:
        data["funnel_steps"] = []
    elif data.get("funnel_steps"):
        data["event_name"] = str(data["funnel_steps"][-1])
    if data.get("kind") != Metric.Kind.RATIO:
        data["denominator_event"] = ""
    return data


@transaction.atomic
def metric_create(*, actor: Actor, key: str, kind: str, **data: Any) -> Metric:
    """Add a metric to the catalog."""
    reject_unknown(data, METRIC_FIELDS, what="metric")
    errors = check_key(key)
    merged = {"kind": kind, **data}
    errors.update(_check_metric(merged, merged))
    raise_if(errors, "The metric is not valid.")
    if Metric.objects.filter(key=key).exists():
        raise Conflict(f"Metric '{key}' already exists.", code="duplicate_key")
    try:
        metric = Metric.objects.create(key=key, **_normalise_metric(merged))
    except IntegrityError as exc:
        raise Conflict(f"Metric '{key}' already exists.", code="duplicate_key") from exc
    audit_record(actor=actor, action="metric.create", object_type="metric", object_key=key,
                 after=metric_document(metric))
    return metric


@transaction.atomic
def metric_update(*, actor: Actor, metric: Metric, **changes: Any) -> Metric:
    """Change a metric; running experiments pick the new definition up at their next readout."""
    reject_unknown(changes, METRIC_FIELDS, what="metric")
    metric = Metric.objects.select_for_update().get(pk=metric.pk)
    before = metric_document(metric)
    merged = {f: getattr(metric, f) for f in METRIC_FIELDS}
    merged.update(changes)
    raise_if(_check_metric(merged, changes), "The metric is not valid.")
    for field, value in _normalise_metric(merged).items():
        setattr(metric, field, value)
    metric.save()
    audit_record(actor=actor, action="metric.update", object_type="metric", object_key=metric.key,
                 before=before, after=metric_document(metric))
    return metric


@transaction.atomic
def metric_archive(*, actor: Actor, metric: Metric, archived: bool = True) -> Metric:
    """Hide a metric from new experiments (experiments using it keep it)."""
    metric = Metric.objects.select_for_update().get(pk=metric.pk)
    before = metric_document(metric)
    metric.archived_at = timezone.now() if archived else None
    metric.save(update_fields=["archived_at", "updated_at"])
    audit_record(actor=actor, action="metric.archive" if archived else "metric.restore", object_type="metric",
                 object_key=metric.key, before=before, after=metric_document(metric))
    return metric
