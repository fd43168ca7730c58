"""Served exposures of warehouse-backed experiments, appended to a table of their data source,
so that the assignments the SDK endpoints made join the warehouse's own events.

On a schedule (Celery beat, `EXPOSURE_EXPORT_SECONDS`), for every data source with an
`exposure_export_table`: the exposures the service recorded for the experiments reading from it,
received since the last export (minus an overlap, for rows committed late), are appended in
batches (`experiments.warehouse.export`: staged, then an anti-join on `exposure_id`, so that
a row is never written twice). The watermark moves only once every batch is in. A source that
fails is logged and left for the next run; the others are exported.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from experiments import connectors
from experiments.models import DataSource
from experiments.warehouse import export_statements

__all__ = ["EXPORT_BATCH", "EXPORT_OVERLAP", "ExportReport", "exposures_export", "exposures_export_all"]

logger = logging.getLogger(__name__)

EXPORT_BATCH = 50_000
# Exposures are written in transactions that may commit a little after their received_at.
EXPORT_OVERLAP = timedelta(minutes=5)

_ROWS = """
SELECT env.key || ':' || x.client_id, u.key, x.ts, ex.key, v.key, x.attributes, x.received_at, x.environment_id,
       x.client_id
FROM experiments_exposure x
JOIN experiments_experiment ex ON ex.id = x.experiment_id
JOIN flags_environment env ON env.id = x.environment_id
JOIN experiments_unit u ON u.id = x.unit_id
JOIN experiments_variation v ON v.experiment_id = x.experiment_id AND v.position = x.variation
WHERE ex.data_source_id = %(source)s AND x.received_at > %(since)s AND x.received_at <= %(until)s
  AND (x.received_at, x.environment_id, x.client_id) > (%(after_at)s, %(after_env)s, %(after_id)s)
ORDER BY x.received_at, x.environment_id, x.client_id
LIMIT %(limit)s
"""


@dataclass
class ExportReport:
    appended: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def _utc_naive(value: datetime) -> datetime:
    return timezone.localtime(value, timezone.get_fixed_timezone(0)).replace(tzinfo=None)


def exposures_export(source: DataSource, *, batch: int = EXPORT_BATCH, now: datetime | None = None) -> int:
    """Append the source's new served exposures to its table; the number of rows appended.

    Raises `connectors.ConnectorError` when the warehouse fails (nothing is marked exported)."""
    if not source.exposure_export_table:
        return 0
    until = now or timezone.now()
    since = (source.exposures_exported_until - EXPORT_OVERLAP if source.exposures_exported_until
             else datetime(1970, 1, 1, tzinfo=until.tzinfo))
    statements = export_statements(source.exposure_export_table, source.engine)
    timeout = float(source.timeout_seconds)
    after: tuple[Any, ...] = (since, 0, "")
    appended = 0
    writer = None
    try:
        while True:
            with connection.cursor() as cur:
                cur.execute(_ROWS, {"source": source.pk, "since": since, "until": until, "after_at": after[0],
                                    "after_env": after[1], "after_id": after[2], "limit": batch})
                found = cur.fetchall()
            if not found:
                break
            exported_at = _utc_naive(timezone.now())
            rows = [(r[0], r[1], _utc_naive(r[2]), r[3], r[4],
                     json.dumps(r[5] if isinstance(r[5], dict) else json.loads(r[5] or "{}"), sort_keys=True),
                     exported_at) for r in found]
            if writer is None:
                writer = connectors.connect_writer(source.engine, source.connection, timeout=timeout)
            appended += connectors.rows_append(writer, statements=statements, rows=rows, timeout=timeout,
                                               source=source.key)
            after = (found[-1][6], found[-1][7], found[-1][8])
            if len(found) < batch:
                break
    finally:
        if writer is not None:
            writer.close()
    DataSource.objects.filter(pk=source.pk).update(exposures_exported_until=until)
    return appended


def exposures_export_all(*, now: datetime | None = None) -> ExportReport:
    """Export every source that names a table; one failing source does not stop the others."""
    report = ExportReport()
    for source in DataSource.objects.exclude(exposure_export_table="").order_by("key"):
        try:
            report.appended[source.key] = exposures_export(source, now=now)
        except connectors.ConnectorError as exc:
            logger.warning("Exporting the exposures to data source %s failed: %s", source.key, exc)
            report.failed[source.key] = str(exc)
    return report
