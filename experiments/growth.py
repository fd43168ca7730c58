"""The north star and the numbers of the growth page.

`north_star_set` chooses the project's north-star metric (from the catalog: a conversion, mean
or count metric, whose level per active user can be followed day by day) and up to
`MAX_INPUT_METRICS` input metrics; validated, audited as `project.north_star`.
`north_star_levels` reads the north star's daily level from the events: per day, the metric's
events (or, for a conversion, the users with one) over the users active that day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from psycopg import sql

from audit.services import audit_record
from audit.types import Actor
from base.checks import add_error, raise_if
from base.keys import Errors
from base.models import Environment
from experiments.models import Metric, NorthStar

__all__ = ["LEVEL_KINDS", "MAX_INPUT_METRICS", "DailyLevel", "north_star_document", "north_star_get",
           "north_star_levels", "north_star_set"]

LEVEL_KINDS = ("conversion", "mean", "count")
MAX_INPUT_METRICS = 10
MAX_DAYS = 365


def north_star_get() -> NorthStar | None:
    return NorthStar.objects.select_related("metric").filter(pk=1).first()


def north_star_document(row: NorthStar | None) -> dict[str, Any]:
    if row is None:
        return {"metric": None, "input_metrics": []}
    return {"metric": row.metric.key, "input_metrics": sorted(m.key for m in row.input_metrics.all())}


@transaction.atomic
def north_star_set(*, actor: Actor, metric: Any, input_metrics: Any = ()) -> NorthStar:
    """Choose the north star (a metric key) and its input metrics (a list of keys)."""
    errors: Errors = {}
    found = Metric.objects.filter(key=metric).first() if isinstance(metric, str) else None
    if found is None:
        add_error(errors, "metric", f"Unknown metric '{str(metric)[:100]}'.")
    elif found.archived_at is not None:
        add_error(errors, "metric", f"Metric '{found.key}' is archived.")
    elif found.kind not in LEVEL_KINDS:
        add_error(errors, "metric", f"Choose a {', '.join(LEVEL_KINDS)} metric: its level per active user is "
                                    "followed day by day.")
    inputs: list[Metric] = []
    if not isinstance(input_metrics, (list, tuple)) or len(input_metrics) > MAX_INPUT_METRICS:
        add_error(errors, "input_metrics", f"Give a list of at most {MAX_INPUT_METRICS} metric keys.")
    else:
        known = {m.key: m for m in Metric.objects.filter(key__in=[k for k in input_metrics if isinstance(k, str)])}
        for i, key in enumerate(input_metrics):
            item = known.get(key) if isinstance(key, str) else None
            if item is None:
                add_error(errors, f"input_metrics[{i}]", f"Unknown metric '{str(key)[:100]}'.")
            elif item.archived_at is not None:
                add_error(errors, f"input_metrics[{i}]", f"Metric '{item.key}' is archived.")
            elif item in inputs or (found is not None and item.pk == found.pk):
                add_error(errors, f"input_metrics[{i}]", f"Metric '{item.key}' is named twice.")
            else:
                inputs.append(item)
    raise_if(errors, "The north star is not valid.")
    assert found is not None
    before = north_star_document(north_star_get())
    row, _ = NorthStar.objects.update_or_create(pk=1, defaults={"metric": found})
    row.input_metrics.set(inputs)
    audit_record(actor=actor, action="project.north_star", object_type="project_settings", object_key="project",
                 before=before, after=north_star_document(row))
    return row


_NUMERATORS = {
    "conversion": "count(DISTINCT e.unit_id) FILTER (WHERE e.name = %(event)s)",
    "mean": "coalesce(sum(e.value) FILTER (WHERE e.name = %(event)s), 0)",
    "count": "count(*) FILTER (WHERE e.name = %(event)s)",
}
_LEVELS = """
SELECT date_trunc('day', e.ts AT TIME ZONE 'UTC')::date AS day, count(DISTINCT e.unit_id), {numerator}
FROM experiments_event e
WHERE e.environment_id = %(environment)s AND e.ts >= %(start)s AND e.ts < %(end)s
GROUP BY 1 ORDER BY 1
"""


@dataclass(frozen=True, slots=True)
class DailyLevel:
    day: date
    active_users: int
    level: float | None


def north_star_levels(*, environment: Environment, metric: Metric, end: datetime, days: int = 60
                      ) -> list[DailyLevel]:
    """The north star's level per day over the `days` (at most 365) days before `end`."""
    days = max(1, min(days, MAX_DAYS))
    start = end - timedelta(days=days)
    numerator = sql.SQL(_NUMERATORS.get(metric.kind, _NUMERATORS["count"]))
    query = sql.SQL(_LEVELS).format(numerator=numerator)
    with connection.cursor() as cur:
        cur.execute(query, {"event": metric.event_name, "environment": environment.pk, "start": start, "end": end})
        rows: Sequence[tuple[date, int, float]] = cur.fetchall()
    return [DailyLevel(day=day, active_users=int(active), level=float(value) / active if active else None)
            for day, active, value in rows]
