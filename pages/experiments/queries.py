"""Read-only queries of the result pages, each a fixed number of statements whatever the size.

Snapshots can be large (20 metrics x 3 variations x 50 slices is about a megabyte of JSON),
so the pages never load whole snapshot histories: PostgreSQL picks out the parts a page
shows (the primary metric for the list, one metric's always-valid intervals for the trend,
one slice dimension for the drill-down) and only those travel to Python, where each part is
read through the readout contract (`readout_from_json`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import OuterRef, QuerySet, Subquery

from experiments.models import Experiment, Phase, ResultSnapshot
from experiments.readout import Readout, SliceReadout, readout_from_json

__all__ = [
    "TREND_POINTS",
    "ListSnapshot",
    "experiments_for_list",
    "latest_finished",
    "latest_snapshot",
    "list_snapshots",
    "slice_entries",
    "trend_history",
]

# The trend chart keeps at most about this many readouts, evenly spread, plus the last one.
TREND_POINTS = 120
PAGE_FIELDS = (
    "id", "experiment_id", "phase_id", "status", "created_at", "finished_at", "analysis_end", "units",
    "multiple_exposure_units", "multiple_exposure_share", "srm_p_value", "srm_warning", "guardrail_status",
    "variations", "metrics", "warnings", "settings", "error", "error_code", "duration_ms", "schema_version",
)


def experiments_for_list(
    *, status: str = "", owner: str = "", tag: str = "", search: str = ""
) -> QuerySet[Experiment]:
    """Experiments with their environment, flag and current phase (number, start) in one query."""
    current = Phase.objects.filter(experiment=OuterRef("pk")).order_by("-number")
    qs = (
        Experiment.objects.select_related("environment", "flag")
        .only(
            "key", "name", "owner", "status", "decision", "shipped_variation", "started_at", "stopped_at",
            "min_sample_per_arm", "created_at", "tags", "environment__key", "flag__key",
        )
        .annotate(
            phase_number=Subquery(current.values("number")[:1]),
            phase_started=Subquery(current.values("started_at")[:1]),
            phase_id_current=Subquery(current.values("id")[:1]),
        )
        .order_by("-created_at", "key")
    )
    if status:
        qs = qs.filter(status=status)
    if owner:
        qs = qs.filter(owner__iexact=owner)
    if tag:
        qs = qs.filter(tags__contains=[tag.lower()])
    if search:
        qs = qs.filter(key__icontains=search)
    return qs


@dataclass(frozen=True, slots=True)
class ListSnapshot:
    """The latest successful readout of one experiment, cut down to what the list shows (the
    readout holds the primary metric only, without its analyses other than the headline list),
    and the latest outcome."""

    id: int | None
    created_at: datetime | None
    readout: Readout
    last_status: str | None
    last_error: str


_LIST_SQL = """
SELECT e.id, ok.id, ok.created_at, ok.units, ok.srm_warning, ok.srm_p_value, ok.multiple_exposure_share,
       ok.guardrail_status, ok.variations, ok.warnings, ok.settings, ok.prim, last.status, last.error
FROM experiments_experiment e
LEFT JOIN LATERAL (
    SELECT s.id, s.created_at, s.units, s.srm_warning, s.srm_p_value, s.multiple_exposure_share,
           s.guardrail_status, s.variations, s.warnings, s.settings,
           (SELECT m - 'fixed' - 'cuped' - 'sequential' - 'sequential_unadjusted' - 'bayesian'
                     - 'bayesian_unadjusted' - 'heterogeneity'
              FROM jsonb_array_elements(s.metrics) AS m
             WHERE m ->> 'role' = 'primary' LIMIT 1) AS prim
      FROM experiments_resultsnapshot s
     WHERE s.experiment_id = e.id AND s.status = 'success'
     ORDER BY s.created_at DESC, s.id DESC LIMIT 1
) ok ON true
LEFT JOIN LATERAL (
    SELECT s.status, s.error FROM experiments_resultsnapshot s
     WHERE s.experiment_id = e.id AND s.status IN ('success', 'failed')
     ORDER BY s.created_at DESC, s.id DESC LIMIT 1
) last ON true
WHERE e.id = ANY(%s)
"""


def list_snapshots(experiment_ids: Sequence[int]) -> dict[int, ListSnapshot]:
    """Latest successful readout (primary metric only) and latest outcome, per experiment."""
    if not experiment_ids:
        return {}
    with connection.cursor() as cur:
        cur.execute(_LIST_SQL, [list(experiment_ids)])
        rows = cur.fetchall()
    out: dict[int, ListSnapshot] = {}
    for row in rows:
        if row[1] is None and row[12] is None:
            continue
        primary = _json(row[11])
        out[row[0]] = ListSnapshot(
            id=row[1],
            created_at=row[2],
            readout=readout_from_json({
                "units": row[3], "srm_warning": row[4], "srm_p_value": row[5], "multiple_exposure_share": row[6],
                "guardrail_status": row[7], "variations": _json(row[8]), "warnings": _json(row[9]),
                "settings": _json(row[10]), "metrics": [primary] if primary else [],
            }),
            last_status=row[12],
            last_error=row[13] or "",
        )
    return out


def _json(value: Any) -> Any:
    if isinstance(value, (str, bytes)):
        import json

        return json.loads(value)
    return value


def latest_snapshot(*, experiment: Experiment, phase_id: int | None) -> dict[str, Any] | None:
    """The newest successful readout of the phase, without its slices and inputs."""
    qs = ResultSnapshot.objects.filter(experiment=experiment, status=ResultSnapshot.Status.SUCCESS)
    if phase_id is not None:
        qs = qs.filter(phase_id=phase_id)
    found: dict[str, Any] | None = qs.order_by("-created_at", "-id").values(*PAGE_FIELDS).first()
    return found


def latest_finished(*, experiment: Experiment) -> dict[str, Any] | None:
    """Status and error of the newest readout that ended or is waiting (so failures show)."""
    found = (
        ResultSnapshot.objects.filter(experiment=experiment)
        .order_by("-created_at", "-id")
        .values("id", "status", "created_at", "finished_at", "error", "error_code")
        .first()
    )
    return dict(found) if found is not None else None


_TREND_SQL = """
WITH h AS (
    SELECT id, created_at, row_number() OVER (ORDER BY created_at, id) AS rn, count(*) OVER () AS n
      FROM experiments_resultsnapshot
     WHERE experiment_id = %s AND status = 'success' AND (%s::bigint IS NULL OR phase_id = %s::bigint)
)
SELECT s.created_at, s.variations,
       (SELECT jsonb_build_object(%s::text, jsonb_path_query_array(
                   m -> %s::text, '$[*] ? (@.difference_type == $t)', jsonb_build_object('t', %s::text)))
          FROM jsonb_array_elements(s.metrics) AS m WHERE m ->> 'key' = %s LIMIT 1)
  FROM h JOIN experiments_resultsnapshot s ON s.id = h.id
 WHERE (h.rn - 1) %% GREATEST(1, CEIL(h.n::numeric / %s)::int) = 0 OR h.rn = h.n
 ORDER BY s.created_at, s.id
"""


def trend_history(
    *, experiment_id: int, phase_id: int | None, metric_key: str, mode: str = "sequential",
    difference_type: str = "relative",
) -> list[tuple[datetime, Readout]]:
    """(time, readout) for up to ~TREND_POINTS readouts, each readout holding its variations and
    one view of one metric: one analysis (`sequential` or `sequential_unadjusted`), one
    difference type. The metric is missing where a readout has none, and the view empty where
    the readout did not store it."""
    with connection.cursor() as cur:
        cur.execute(_TREND_SQL, [experiment_id, phase_id, phase_id, mode, mode, difference_type, metric_key,
                                 TREND_POINTS])
        rows = cur.fetchall()
    out = []
    for at, variations, part in rows:
        view = _json(part)
        metrics = [{"key": metric_key, **view}] if view else []
        out.append((at, readout_from_json({"variations": _json(variations), "metrics": metrics})))
    return out


_SLICE_SQL = """
SELECT e ->> 'value', e -> 'units',
       (SELECT jsonb_agg(m) FROM jsonb_array_elements(e -> 'metrics') AS m WHERE m ->> 'key' = %s)
  FROM experiments_resultsnapshot s, jsonb_array_elements(s.slices) WITH ORDINALITY AS x(e, i)
 WHERE s.id = %s AND e ->> 'attribute' = %s
 ORDER BY x.i
"""


def slice_entries(*, snapshot_id: int, attribute: str, metric_key: str) -> tuple[SliceReadout, ...]:
    """The slices of one dimension, each carrying only the chosen metric."""
    with connection.cursor() as cur:
        cur.execute(_SLICE_SQL, [metric_key, snapshot_id, attribute])
        entries = [
            {"attribute": attribute, "value": row[0], "units": _json(row[1]) or [], "metrics": _json(row[2]) or []}
            for row in cur.fetchall()
        ]
    return readout_from_json({"slices": entries}).slices


def slice_attributes(*, snapshot_id: int) -> list[str]:
    """Slice dimensions present in a snapshot, in their stored order."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT e ->> 'attribute' FROM experiments_resultsnapshot s, "
            "jsonb_array_elements(s.slices) WITH ORDINALITY AS x(e, i) WHERE s.id = %s "
            "GROUP BY 1 ORDER BY min(x.i)",
            [snapshot_id],
        )
        return [row[0] for row in cur.fetchall() if row[0]]
