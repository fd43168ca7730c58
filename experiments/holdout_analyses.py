"""Holdout readouts configured: which holdout, in which environment, on which metrics and with
which analysis settings (validated, one transaction, audited, the environment's config version
bumped so that ingestion routes the holdout's exposures at once).

The readout compares the holdout's units (`held-out`, the control) with everyone else its
tracking rule reported (`released`): the lift is what the experiences shipped in its scope
added together, measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import audit_record
from audit.types import Actor
from base.checks import add_error, raise_if
from base.environments import environments_bump
from base.keys import Errors
from base.models import Environment
from base.writes import reject_unknown
from config.errors import Conflict
from experiments.checks import check_metric_links, check_settings
from experiments.models import HoldoutAnalysis, HoldoutMetric, Metric
from traffic.models import Holdout

__all__ = ["ANALYSIS_FIELDS", "MAX_METRICS", "holdout_analysis_create", "holdout_analysis_document",
           "holdout_analysis_update"]

ANALYSIS_FIELDS = ("alpha", "difference_type", "sequential", "cuped", "cuped_lookback_days")
MAX_METRICS = 20
# Exposures older than this cannot be sent (the events API's limit), so neither can a start.
MAX_START_AGE = timedelta(days=90)


def holdout_analysis_document(analysis: HoldoutAnalysis) -> dict[str, Any]:
    return {
        "holdout": analysis.holdout.key,
        "environment": analysis.environment.key,
        "metrics": [{"metric": link.metric.key, "role": link.role}
                    for link in analysis.links.select_related("metric").order_by("position")],
        **{name: getattr(analysis, name) for name in ANALYSIS_FIELDS},
        "started_at": analysis.started_at.isoformat(),
    }


def _check(data: Mapping[str, Any], metrics: Any, errors: Errors) -> list[tuple[Metric, str]]:
    check_settings({k: v for k, v in data.items() if k in ("alpha", "difference_type", "cuped_lookback_days")},
                   errors)
    for name in ("sequential", "cuped"):
        if name in data and not isinstance(data[name], bool):
            add_error(errors, name, "Give true or false.")
    links: list[tuple[Metric, str]] = []
    if metrics is not None:
        links = check_metric_links(metrics, errors)
        if isinstance(metrics, list) and not 1 <= len(metrics) <= MAX_METRICS:
            add_error(errors, "metrics", f"Choose 1 to {MAX_METRICS} metrics.")
        for i, (metric, _) in enumerate(links):
            if metric.archived_at is not None:
                add_error(errors, f"metrics[{i}].metric", f"Metric '{metric.key}' is archived.")
    return links


def _link(analysis: HoldoutAnalysis, links: Sequence[tuple[Metric, str]]) -> None:
    analysis.links.all().delete()
    HoldoutMetric.objects.bulk_create(
        HoldoutMetric(analysis=analysis, metric=metric, role=role, position=i)
        for i, (metric, role) in enumerate(links)
    )


@transaction.atomic
def holdout_analysis_create(
    *, actor: Actor, holdout: Holdout, environment: Environment, metrics: Sequence[Mapping[str, Any]],
    started_at: datetime | None = None, **settings: Any,
) -> HoldoutAnalysis:
    """Read `holdout` out in `environment` on `metrics` (`{metric, role}`, roles as experiments
    take them), counting its exposures from `started_at` (default now, at most 90 days back)."""
    reject_unknown(settings, ANALYSIS_FIELDS, what="holdout readout")
    errors: Errors = {}
    links = _check(settings, list(metrics), errors)
    now = timezone.now()
    start = started_at or now
    if not isinstance(start, datetime) or start.tzinfo is None or not now - MAX_START_AGE <= start <= now:
        add_error(errors, "started_at", "Give a time zone aware moment within the last 90 days.")
    if holdout.ended_at is not None:
        add_error(errors, "holdout", f"Holdout '{holdout.key}' has ended.")
    raise_if(errors, "The holdout readout is not valid.")
    if HoldoutAnalysis.objects.filter(holdout=holdout, environment=environment).exists():
        raise Conflict(f"Holdout '{holdout.key}' is already read out in {environment.key}.", code="duplicate_key")
    try:
        with transaction.atomic():
            analysis = HoldoutAnalysis.objects.create(holdout=holdout, environment=environment, started_at=start,
                                                      **settings)
    except IntegrityError as exc:
        raise Conflict(f"Holdout '{holdout.key}' is already read out in {environment.key}.",
                       code="duplicate_key") from exc
    _link(analysis, links)
    environments_bump(environment_ids=[environment.pk])
    audit_record(actor=actor, action="holdout.analysis_create", object_type="holdout", object_key=holdout.key,
                 after=holdout_analysis_document(analysis), environment=environment.key)
    return analysis


@transaction.atomic
def holdout_analysis_update(
    *, actor: Actor, analysis: HoldoutAnalysis, metrics: Sequence[Mapping[str, Any]] | None = None, **changes: Any,
) -> HoldoutAnalysis:
    """Change the metrics or analysis settings; the next readout uses them."""
    reject_unknown(changes, ANALYSIS_FIELDS, what="holdout readout")
    analysis = HoldoutAnalysis.objects.select_for_update().select_related("holdout", "environment").get(
        pk=analysis.pk)
    errors: Errors = {}
    links = _check(changes, list(metrics) if metrics is not None else None, errors)
    raise_if(errors, "The holdout readout is not valid.")
    before = holdout_analysis_document(analysis)
    for name, value in changes.items():
        setattr(analysis, name, value)
    analysis.save()
    if metrics is not None:
        _link(analysis, links)
    audit_record(actor=actor, action="holdout.analysis_update", object_type="holdout",
                 object_key=analysis.holdout.key, before=before, after=holdout_analysis_document(analysis),
                 environment=analysis.environment.key)
    return analysis
